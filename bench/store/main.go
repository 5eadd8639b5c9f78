// Command store measures the two embedded stores this project could keep its
// state in — go.etcd.io/bbolt and github.com/cockroachdb/pebble/v2 — on the
// spool's workload: mapped events written in batches of an input batch
// (500), each batch durable (fsynced) before it is acknowledged, keyed so
// that a feed's events of one user lie together; then drained in key order,
// each drained batch deleted, durably. It prints, per store, the wall and
// CPU time of each phase, the events per second, and the disk held at the
// peak and after the drain.
//
//	go run ./bench/store                 # 200,000 events of ~1 KB
//	go run ./bench/store -events 1000000 -value 1200
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"
)

func main() {
	events := flag.Int("events", 200_000, "events written then drained")
	valueSize := flag.Int("value", 1000, "bytes of one mapped event")
	batch := flag.Int("batch", 500, "events per durable write (an input batch)")
	users := flag.Int("users", 20_000, "distinct users")
	flag.Parse()
	keys := makeKeys(*events, *users)
	value := makeValue(*valueSize)
	for _, s := range []store{&boltStore{}, &pebbleStore{}} {
		dir, err := os.MkdirTemp("", "store-bench-")
		if err != nil {
			panic(err)
		}
		if err := s.open(dir); err != nil {
			panic(err)
		}
		w := measure(func() {
			for i := 0; i < len(keys); i += *batch {
				if err := s.put(keys[i:min(i+*batch, len(keys))], value); err != nil {
					panic(err)
				}
			}
		})
		peak := du(dir)
		d := measure(func() {
			if err := s.drain(*batch); err != nil {
				panic(err)
			}
		})
		after := du(dir)
		s.close()
		os.RemoveAll(dir)
		fmt.Printf("%-6s write: %6.2f s wall %6.2f s CPU %8.0f events/s | drain: %6.2f s wall %6.2f s CPU %8.0f events/s | disk %5.0f MB at peak, %5.0f MB drained\n",
			s.name(), w.wall.Seconds(), w.cpu.Seconds(), float64(len(keys))/w.wall.Seconds(),
			d.wall.Seconds(), d.cpu.Seconds(), float64(len(keys))/d.wall.Seconds(), peak/1e6, after/1e6)
	}
}

// makeValue returns a value as compressible as a mapped event's JSON: text
// over a small alphabet, not one byte repeated (which a compressing store
// would shrink to nothing).
func makeValue(n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = `{}":,abcdefghijklmnopqrstuvwxyz0123456789_-`
	v := make([]byte, n)
	for i := range v {
		v[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return v
}

// makeKeys returns the spool's keys in arrival order: feed, user, arrival
// sequence, as the spool keys them (a user's events together, oldest first).
func makeKeys(n, users int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	feeds := []string{"ios", "android", "web", "unbound"}
	out := make([][]byte, n)
	for i := range out {
		k := fmt.Appendf(nil, "%s/u%08d/", feeds[rng.IntN(len(feeds))], rng.IntN(users))
		out[i] = binary.BigEndian.AppendUint64(k, uint64(i))
	}
	return out
}

type store interface {
	name() string
	open(dir string) error
	put(keys [][]byte, value []byte) error // one durable write
	drain(batch int) error                 // read everything in key order, delete it batch by batch, durably
	close()
}

type boltStore struct{ db *bolt.DB }

var bucket = []byte("spool")

func (*boltStore) name() string { return "bbolt" }
func (s *boltStore) open(dir string) (err error) {
	s.db, err = bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
	return err
}
func (s *boltStore) put(keys [][]byte, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Put(k, value); err != nil {
				return err
			}
		}
		return nil
	})
}
func (s *boltStore) drain(batch int) error {
	for {
		var taken [][]byte
		if err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			for k, v := c.First(); k != nil && len(taken) < batch; k, v = c.Next() {
				_ = v
				taken = append(taken, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		if len(taken) == 0 {
			return nil
		}
		if err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			for _, k := range taken {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
}
func (s *boltStore) close() { _ = s.db.Close() }

type pebbleStore struct{ db *pebble.DB }

func (*pebbleStore) name() string { return "pebble" }
func (s *pebbleStore) open(dir string) (err error) {
	s.db, err = pebble.Open(dir, &pebble.Options{})
	return err
}
func (s *pebbleStore) put(keys [][]byte, value []byte) error {
	b := s.db.NewBatch()
	for _, k := range keys {
		if err := b.Set(k, value, nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}
func (s *pebbleStore) drain(batch int) error {
	var from []byte
	for {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from})
		if err != nil {
			return err
		}
		b := s.db.NewBatch()
		n := 0
		var last []byte
		for ok := it.First(); ok && n < batch; ok = it.Next() {
			_ = it.Value()
			last = append(last[:0], it.Key()...)
			if err := b.Delete(it.Key(), nil); err != nil {
				return err
			}
			n++
		}
		if err := it.Close(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return err
		}
		from = append(last, 0)
	}
}
func (s *pebbleStore) close() { _ = s.db.Close() }

type cost struct{ wall, cpu time.Duration }

func measure(fn func()) cost {
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	start := time.Now()
	fn()
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
	return cost{wall: wall, cpu: cpu}
}

func du(dir string) float64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return float64(n)
}
