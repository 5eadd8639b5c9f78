package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a Store in memory; fail and delay inject faults.
type memStore struct {
	mu    sync.Mutex
	keys  map[string]time.Duration
	fail  atomic.Bool
	delay time.Duration
}

func newMemStore() *memStore { return &memStore{keys: map[string]time.Duration{}} }

func (s *memStore) Has(ctx context.Context, key string) (bool, error) {
	if err := s.wait(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[key]
	return ok, nil
}

func (s *memStore) Put(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = ttl
	return nil
}

func (s *memStore) wait(ctx context.Context) error {
	if s.fail.Load() {
		return errors.New("store down")
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

type countingMetrics struct{ get, set atomic.Int64 }

func (m *countingMetrics) StoreError(op string) {
	if op == "get" {
		m.get.Add(1)
	} else {
		m.set.Add(1)
	}
}

// sender records what it sent; fail decides which ids fail.
type sender struct {
	mu   sync.Mutex
	sent map[string]int
	fail func(id string) error
}

func (s *sender) send(ids []string) func([]int) []error {
	return func(idx []int) []error {
		s.mu.Lock()
		defer s.mu.Unlock()
		errs := make([]error, len(idx))
		for j, i := range idx {
			if s.fail != nil {
				if errs[j] = s.fail(ids[i]); errs[j] != nil {
					continue
				}
			}
			s.sent[ids[i]]++
		}
		return errs
	}
}

func TestDeliverSendsEachIDOnceAndRecordsOnlyAccepted(t *testing.T) {
	store := newMemStore()
	l := New(Config{Store: store, Prefix: "p_", Retention: time.Hour})
	s := &sender{sent: map[string]int{}, fail: func(id string) error {
		if id == "bad" {
			return errors.New("refused")
		}
		return nil
	}}
	ids := []string{"a", "b", "a", "", "bad", "bad"}
	out := l.Deliver(context.Background(), ids, s.send(ids))
	want := []string{"<nil>", "<nil>", ErrDuplicate.Error(), "<nil>", "refused", "refused"}
	for i := range ids {
		if fmt.Sprint(out[i]) != want[i] {
			t.Errorf("event %d (%q): %v, want %s", i, ids[i], out[i], want[i])
		}
	}
	if s.sent["a"] != 1 || s.sent["b"] != 1 || s.sent[""] != 1 {
		t.Errorf("sent %v", s.sent)
	}
	if _, ok := store.keys["p_bad"]; ok || store.keys["p_a"] != time.Hour {
		t.Errorf("store %v: want a and b recorded with the retention, bad not", store.keys)
	}

	// Again, as after a crash or a Braze duplicate: a and b are skipped,
	// bad is tried again.
	s.fail = nil
	out = l.Deliver(context.Background(), ids, s.send(ids))
	if out[0] != ErrDuplicate || out[1] != ErrDuplicate || out[4] != nil || out[5] != ErrDuplicate {
		t.Errorf("second delivery: %v", out)
	}
	if s.sent["a"] != 1 || s.sent["bad"] != 1 {
		t.Errorf("sent %v after the second delivery", s.sent)
	}
}

func TestDeliverConcurrentCallersNeverSendAnIDTwiceNorDeadlock(t *testing.T) {
	// Many callers share ids in opposite orders; one id fails its first
	// send. Each id must be sent (and accepted) exactly once, and no caller
	// may wait for ever on another's claim.
	store := newMemStore()
	l := New(Config{Store: store})
	var failedOnce atomic.Bool
	s := &sender{sent: map[string]int{}, fail: func(id string) error {
		if id == "id-7" && failedOnce.CompareAndSwap(false, true) {
			return errors.New("first attempt fails")
		}
		return nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var dups atomic.Int64
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, 20)
			for i := range ids {
				n := i
				if c%2 == 1 {
					n = len(ids) - 1 - i
				}
				ids[i] = fmt.Sprintf("id-%d", n)
			}
			for i, err := range l.Deliver(ctx, ids, s.send(ids)) {
				switch {
				case err == ErrDuplicate:
					dups.Add(1)
				case err != nil && ids[i] != "id-7":
					t.Errorf("caller %d, %s: %v", c, ids[i], err)
				}
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("callers deadlocked")
	}
	for i := range 20 {
		if n := s.sent[fmt.Sprintf("id-%d", i)]; n != 1 {
			t.Errorf("id-%d accepted %d times", i, n)
		}
	}
	if dups.Load() < 16*20-20-1 {
		t.Errorf("%d duplicates counted", dups.Load())
	}
}

func TestDeliverWithAFailingOrSlowStoreStillDelivers(t *testing.T) {
	for name, store := range map[string]*memStore{"failing": newMemStore(), "slow": {keys: map[string]time.Duration{}, delay: time.Hour}} {
		t.Run(name, func(t *testing.T) {
			if name == "failing" {
				store.fail.Store(true)
			}
			m := &countingMetrics{}
			l := New(Config{Store: store, Timeout: 20 * time.Millisecond, Metrics: m})
			s := &sender{sent: map[string]int{}}
			ids := []string{"x", "y"}
			start := time.Now()
			for i, err := range l.Deliver(context.Background(), ids, s.send(ids)) {
				if err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
			if s.sent["x"] != 1 || s.sent["y"] != 1 {
				t.Errorf("sent %v, want each once", s.sent)
			}
			if m.get.Load() != 2 || m.set.Load() != 2 {
				t.Errorf("store errors counted: get %d, set %d; want 2 and 2", m.get.Load(), m.set.Load())
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("a slow store held delivery %v", d)
			}
		})
	}
}

func BenchmarkDeliverMemStore(b *testing.B) {
	l := New(Config{Store: newMemStore()})
	ids := make([]string, 500)
	s := &sender{sent: map[string]int{}}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		for i := range ids {
			ids[i] = fmt.Sprintf("%d-%d", n, i)
		}
		l.Deliver(context.Background(), ids, s.send(ids))
	}
}
