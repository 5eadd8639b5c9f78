package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memStore is a Store in memory; fail and delay inject faults.
type memStore struct {
	mu    sync.Mutex
	keys  map[string]time.Duration
	vals  map[string][]byte
	fail  atomic.Bool
	delay time.Duration
}

func newMemStore() *memStore {
	return &memStore{keys: map[string]time.Duration{}, vals: map[string][]byte{}}
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := s.wait(ctx); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vals[key]
	return v, ok, nil
}

func (s *memStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = ttl
	s.vals[key] = append([]byte(nil), value...)
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

// sender records what it sent; fail decides which ids fail. It sends each
// id in a batch of its own and tells l about it as the mparticle output's
// client does: Intend before, Delivered once accepted.
type sender struct {
	mu    sync.Mutex
	sent  map[string]int
	fail  func(id string) error
	sends int
}

func (s *sender) send(l *Ledger, ids []string) func([]int) []error {
	return func(idx []int) []error {
		s.mu.Lock()
		defer s.mu.Unlock()
		errs := make([]error, len(idx))
		for j, i := range idx {
			s.sends++
			srid := fmt.Sprintf("srid-%d", s.sends)
			batch := []Batch{{SourceRequestID: srid, Body: []byte(`{}`), IDs: []string{ids[i]}}}
			l.Intend(context.Background(), "ios", batch)
			if s.fail != nil {
				if errs[j] = s.fail(ids[i]); errs[j] != nil {
					continue
				}
			}
			s.sent[ids[i]]++
			l.Delivered(context.Background(), batch)
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
	out := l.Deliver(context.Background(), ids, s.send(l, ids))
	want := []string{"<nil>", "<nil>", ErrDuplicate.Error(), "<nil>", "refused", "refused"}
	for i := range ids {
		if fmt.Sprint(out[i]) != want[i] {
			t.Errorf("event %d (%q): %v, want %s", i, ids[i], out[i], want[i])
		}
	}
	if s.sent["a"] != 1 || s.sent["b"] != 1 || s.sent[""] != 1 {
		t.Errorf("sent %v", s.sent)
	}
	for _, key := range []string{"p_a", "p_b", "p_bad"} {
		if store.keys[key] != time.Hour {
			t.Errorf("store %v: want %s recorded with the retention", store.keys, key)
		}
	}

	// Again, as after a crash or a Braze duplicate: a and b are skipped,
	// bad is tried again.
	s.fail = nil
	out = l.Deliver(context.Background(), ids, s.send(l, ids))
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
			for i, err := range l.Deliver(ctx, ids, s.send(l, ids)) {
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
	for name, store := range map[string]*memStore{"failing": newMemStore(), "slow": {keys: map[string]time.Duration{}, vals: map[string][]byte{}, delay: time.Hour}} {
		t.Run(name, func(t *testing.T) {
			if name == "failing" {
				store.fail.Store(true)
			}
			m := &countingMetrics{}
			l := New(Config{Store: store, Timeout: 20 * time.Millisecond, Metrics: m})
			s := &sender{sent: map[string]int{}}
			ids := []string{"x", "y"}
			start := time.Now()
			for i, err := range l.Deliver(context.Background(), ids, s.send(l, ids)) {
				if err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
			if s.sent["x"] != 1 || s.sent["y"] != 1 {
				t.Errorf("sent %v, want each once", s.sent)
			}
			// Per id, alone in its batch: its get; Intend's record, in
			// the id's key, and Delivered's mark.
			if m.get.Load() != 2 || m.set.Load() != 4 {
				t.Errorf("store errors counted: get %d, set %d; want 2 and 4", m.get.Load(), m.set.Load())
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
		l.Deliver(context.Background(), ids, s.send(l, ids))
	}
}

func TestAfterACrashTheBatchUnderWayIsSentAgainUnchanged(t *testing.T) {
	// A process recorded a batch of a and b as under way, then died before
	// learning that mParticle accepted it. The next process, meeting a,
	// sends that very batch again (mParticle deduplicates it by its
	// source_request_id) rather than a new batch holding a, and counts a
	// and then b as delivered.
	store := newMemStore()
	New(Config{Store: store}).Intend(context.Background(), "ios", []Batch{{SourceRequestID: "srid-1", Body: []byte(`{"events":["a","b"]}`), IDs: []string{"a", "b"}}})

	var resent []string
	l := New(Config{Store: store, Resend: func(_ context.Context, feed string, body []byte) error {
		resent = append(resent, feed+" "+string(body))
		return nil
	}})
	s := &sender{sent: map[string]int{}}
	ids := []string{"a", "c"}
	out := l.Deliver(context.Background(), ids, s.send(l, ids))
	if out[0] != ErrDuplicate || out[1] != nil || s.sent["a"] != 0 || s.sent["c"] != 1 {
		t.Fatalf("outcomes %v, sent %v: want a recovered (not sent anew) and c sent", out, s.sent)
	}
	if len(resent) != 1 || resent[0] != `ios {"events":["a","b"]}` {
		t.Fatalf("resent %q, want the recorded batch once", resent)
	}
	ids = []string{"b"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != ErrDuplicate || len(resent) != 1 {
		t.Fatalf("b: %v, resent %d times: want a duplicate without another resend", out, len(resent))
	}
}

func TestARecordedBatchThatCannotBeResentIsSentAsUsual(t *testing.T) {
	store := newMemStore()
	New(Config{Store: store}).Intend(context.Background(), "ios", []Batch{{SourceRequestID: "srid-2", Body: []byte(`{}`), IDs: []string{"a"}}})
	l := New(Config{Store: store, Resend: func(context.Context, string, []byte) error { return errors.New("feed paused") }})
	s := &sender{sent: map[string]int{}}
	ids := []string{"a"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != nil || s.sent["a"] != 1 {
		t.Fatalf("outcome %v, sent %v: want a sent as usual", out, s.sent)
	}
}

func TestBatchRecordReadsBackAsWritten(t *testing.T) {
	b := Batch{SourceRequestID: "r1", Body: []byte(`{"events":[{"data":{"x":"a\"b"}}]}`), IDs: []string{"id-1", "", "q\"\\\u2028"}}
	var rec batchRecord
	if err := json.Unmarshal(appendBatchRecord(nil, "ios", b), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Feed != "ios" || !slices.Equal(rec.IDs, b.IDs) || string(rec.Body) != string(b.Body) {
		t.Fatalf("read back %+v, wrote feed ios and %+v", rec, b)
	}
}

func TestAnIDRecordedDeliveredByItselfIsADuplicate(t *testing.T) {
	// Earlier versions recorded each delivered id as "d"; a store written
	// by them keeps working.
	store := newMemStore()
	store.vals["old"] = []byte("d")
	l := New(Config{Store: store})
	s := &sender{sent: map[string]int{}}
	ids := []string{"old"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != ErrDuplicate || s.sent["old"] != 0 {
		t.Fatalf("outcome %v, sent %v: want a duplicate", out, s.sent)
	}
}

func TestAnIDUnderWayInABatchNeverRecordedIsSentAsUsual(t *testing.T) {
	// A process died inside Intend: the id points at a batch whose record
	// was not written yet, so the batch was never sent.
	store := newMemStore()
	store.vals["a"] = []byte(pendingPrefix + "srid-never")
	l := New(Config{Store: store, Resend: func(context.Context, string, []byte) error {
		t.Error("resent a batch that has no record")
		return nil
	}})
	s := &sender{sent: map[string]int{}}
	ids := []string{"a"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != nil || s.sent["a"] != 1 {
		t.Fatalf("outcome %v, sent %v: want a sent as usual", out, s.sent)
	}
}

func TestAResentBatchCountsEveryIDItHolds(t *testing.T) {
	// b was written over after its batch was recorded (here: pointing at a
	// batch that does not exist); once a's batch is resent, b is delivered
	// with it and must not be sent again.
	store := newMemStore()
	New(Config{Store: store}).Intend(context.Background(), "ios", []Batch{{SourceRequestID: "srid-1", Body: []byte(`{}`), IDs: []string{"a", "b"}}})
	store.vals["b"] = []byte(pendingPrefix + "srid-other")
	l := New(Config{Store: store, Resend: func(context.Context, string, []byte) error { return nil }})
	s := &sender{sent: map[string]int{}}
	ids := []string{"a", "b"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != ErrDuplicate || out[1] != ErrDuplicate || len(s.sent) != 0 {
		t.Fatalf("outcomes %v, sent %v: want both delivered by the resent batch", out, s.sent)
	}
}

func TestAnIDAloneInItsBatchHoldsTheRecordItself(t *testing.T) {
	// One key per event for a batch that tracks one id: the record under
	// way, then the mark. A process that died in between sends that batch
	// again; one that learnt of the acceptance skips the id.
	store := newMemStore()
	batch := []Batch{{SourceRequestID: "srid-solo", Body: []byte(`{"events":["a"]}`), IDs: []string{"", "a"}}}
	New(Config{Store: store}).Intend(context.Background(), "web", batch)
	if len(store.vals) != 1 || string(store.vals["a"][:2]) != recordPrefix {
		t.Fatalf("store %q: want only a, holding the record", store.vals)
	}
	var resent []string
	l := New(Config{Store: store, Resend: func(_ context.Context, feed string, body []byte) error {
		resent = append(resent, feed+" "+string(body))
		return nil
	}})
	s := &sender{sent: map[string]int{}}
	ids := []string{"a"}
	if out := l.Deliver(context.Background(), ids, s.send(l, ids)); out[0] != ErrDuplicate || len(s.sent) != 0 {
		t.Fatalf("outcome %v, sent %v: want a recovered by resending its batch", out, s.sent)
	}
	if len(resent) != 1 || resent[0] != `web {"events":["a"]}` {
		t.Fatalf("resent %q", resent)
	}
	store2 := newMemStore()
	l2 := New(Config{Store: store2})
	l2.Intend(context.Background(), "web", batch)
	l2.Delivered(context.Background(), batch)
	if string(store2.vals["a"]) != "d" || len(store2.vals) != 1 {
		t.Fatalf("after Delivered the store holds %q, want a delivered", store2.vals)
	}
}
