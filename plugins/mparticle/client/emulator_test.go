package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// These tests run the client against the Events API emulator over loopback
// HTTP, one per row of the Events API response table and per fault, and
// check the outcome event by event: every event is either recorded by the
// emulator exactly once or reported failed, never both, never neither.

// startEmulator serves an emulator knowing testCreds.
func startEmulator(t testing.TB, cfg emulator.Config) *emulator.Server {
	t.Helper()
	cfg.Feeds = map[string]emulator.Credentials{}
	for feed, c := range testCreds {
		cfg.Feeds[feed] = emulator.Credentials{Key: c.Key, Secret: c.Secret}
	}
	srv := emulator.NewServer(cfg)
	t.Cleanup(srv.Close)
	return srv
}

// emulatedClient is a test client on the real clock (the emulator's rate
// limit and historical rules run on it too).
func emulatedClient(t testing.TB, srv *emulator.Server, edit func(*Config)) (*Client, *recordingMetrics, *recordingLogger) {
	return newTestClient(t, srv.URL, func(cfg *Config) {
		cfg.Now = time.Now
		if edit != nil {
			edit(cfg)
		}
	})
}

// nowMS returns a wall-clock event time age ago.
func nowMS(age time.Duration) int64 { return time.Now().Add(-age).UnixMilli() }

// recorded returns how often each event id was recorded, and on which
// endpoint and feed.
func recorded(t *testing.T, srv *emulator.Server) (counts map[string]int, where map[string]string) {
	t.Helper()
	counts, where = map[string]int{}, map[string]string{}
	for _, rec := range srv.Batches() {
		var b map[string]json.RawMessage
		if err := json.Unmarshal(rec.Batch, &b); err != nil {
			t.Fatalf("recorded batch: %v", err)
		}
		for _, id := range batchEventIDs(t, b) {
			counts[id]++
			where[id] = rec.Feed + " " + rec.Endpoint
		}
	}
	return counts, where
}

// outcome checks that every event of ids ended either recorded exactly once
// or failed, and returns the failures (event id → reason) and the endpoint
// of recorded events.
func outcome(t *testing.T, srv *emulator.Server, errs []error, ids [][]string) (failed, where map[string]string) {
	t.Helper()
	counts, where := recorded(t, srv)
	failed = failedIDs(errs, ids)
	all := map[string]bool{}
	for _, item := range ids {
		for _, id := range item {
			all[id] = true
			_, f := failed[id]
			switch n := counts[id]; {
			case f && n > 0:
				t.Errorf("event %s both failed (%s) and recorded", id, failed[id])
			case !f && n == 0:
				t.Errorf("event %s lost: neither failed nor recorded", id)
			case n > 1:
				t.Errorf("event %s recorded %d times", id, n)
			}
		}
	}
	for id := range counts {
		if !all[id] {
			t.Errorf("the emulator recorded unknown event %s", id)
		}
	}
	return failed, where
}

func TestEmulatorAccepted(t *testing.T) {
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1})
	c, m, l := emulatedClient(t, srv, nil)
	var items []Item
	var ids [][]string
	for _, x := range []struct {
		feed  string
		first int
		age   time.Duration
	}{
		{"ios", 1, time.Minute},
		{"android", 100, time.Hour},
		{"web", 200, 40 * 24 * time.Hour},
		{"unbound", 300, 31 * 24 * time.Hour},
	} {
		it, id := oneEventItems(x.feed, x.first, 30, nowMS(x.age))
		items, ids = append(items, it...), append(ids, id...)
	}
	// Several events of one user: they must share one batch.
	items = append(items, Item{Feed: "ios", Batch: testBatch("multi", nowMS(time.Minute), eventID(900), eventID(901), eventID(902))})
	ids = append(ids, []string{eventID(900), eventID(901), eventID(902)})

	errs := c.Send(context.Background(), items)
	failed, where := outcome(t, srv, errs, ids)
	if len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	for _, x := range []struct {
		id, want string
	}{
		{eventID(1), "ios bulkevents"},
		{eventID(100), "android bulkevents"},
		{eventID(200), "web bulkevents/historical"},
		{eventID(300), "unbound bulkevents/historical"},
		{eventID(901), "ios bulkevents"},
	} {
		if where[x.id] != x.want {
			t.Errorf("event %s went to %q, want %q", x.id, where[x.id], x.want)
		}
	}
	st := srv.Stats()
	if st.Requests != 4 || st.Statuses[202] != 4 || st.Batches != 121 || st.Duplicates != 0 {
		t.Errorf("stats: %d requests, %v, %d batches, %d duplicates; want 4, 4×202, 121, 0",
			st.Requests, st.Statuses, st.Batches, st.Duplicates)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.events["ios"] }); got != 33 {
		t.Errorf("ios events accepted = %d, want 33", got)
	}

	// Replaying the same items is deduplicated by source_request_id.
	requireAllDelivered(t, c.Send(context.Background(), items))
	if st := srv.Stats(); st.Batches != 121 || st.Duplicates != 121 {
		t.Errorf("replay: %d batches recorded, %d duplicates; want 121, 121", st.Batches, st.Duplicates)
	}
	l.assertNoLeaks(t, "user-")
}

func TestEmulatorBadRequestInFullRequest(t *testing.T) {
	// One invalid batch among 100 in one bulk request: only it fails.
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1})
	c, m, _ := emulatedClient(t, srv, nil)
	items, ids := oneEventItems("android", 1, 100, nowMS(time.Minute))
	items[41].Batch = bytes.Replace(items[41].Batch, []byte(`"source_message_id":"`+eventID(42)+`"`),
		[]byte(`"source_message_id":"not-a-uuid"`), 1)
	ids[41] = []string{"not-a-uuid"}

	errs := c.Send(context.Background(), items)
	failed, _ := outcome(t, srv, errs, ids)
	if fmt.Sprint(failed) != "map[not-a-uuid:bad_request]" {
		t.Fatalf("failed %v, want only the invalid event", failed)
	}
	var de *DeliveryError
	errors.As(errs[41], &de)
	if de.Status != 400 || !strings.Contains(de.Message, "source_message_id") {
		t.Errorf("bad_request error: %+v", de)
	}
	st := srv.Stats()
	if st.Batches != 99 || st.Statuses[400] < 1 || st.Statuses[400] > 14 {
		t.Errorf("stats: %d batches, statuses %v", st.Batches, st.Statuses)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.failed["android bad_request"] }); got != 1 {
		t.Errorf("bad_request count %d", got)
	}
}

// stripAuth is a transport that loses the Authorization header, as a
// misconfigured proxy would; the emulator then answers 401.
type stripAuth struct{ next http.RoundTripper }

func (s stripAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Del("Authorization")
	return s.next.RoundTrip(r)
}

func TestEmulatorUnauthorized(t *testing.T) {
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1})
	c, _, _ := emulatedClient(t, srv, func(cfg *Config) {
		cfg.HTTPClient = &http.Client{Transport: stripAuth{http.DefaultTransport}}
	})
	items, ids := oneEventItems("web", 1, 5, nowMS(time.Minute))
	errs := c.Send(context.Background(), items)
	failed, _ := outcome(t, srv, errs, ids)
	if len(failed) != 5 {
		t.Fatalf("failed %v, want all 5", failed)
	}
	for id, r := range failed {
		if r != ReasonAuthFailed {
			t.Errorf("event %s: %s, want auth_failed", id, r)
		}
	}
	if st := srv.Stats(); st.Requests != 1 || st.Statuses[401] != 1 {
		t.Errorf("stats %+v: want one 401 and no retry", st.Counts)
	}
}

func TestEmulatorForbidden(t *testing.T) {
	t.Run("outage longer than the window", func(t *testing.T) {
		srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1,
			Faults: emulator.Faults{Forbidden: true, ForbiddenFeeds: []string{"unbound"}}})
		c, m, l := emulatedClient(t, srv, func(cfg *Config) {
			cfg.AuthFailureWindow = 300 * time.Millisecond
			cfg.InitialInterval, cfg.MaxInterval = 10*time.Millisecond, 50*time.Millisecond
		})
		unbound, uids := oneEventItems("unbound", 1, 10, nowMS(time.Minute))
		ios, iids := oneEventItems("ios", 100, 10, nowMS(time.Minute))
		errs := c.Send(context.Background(), append(unbound, ios...))
		failed, _ := outcome(t, srv, errs, append(uids, iids...))
		if len(failed) != 10 {
			t.Fatalf("failed %v, want the 10 unbound events", failed)
		}
		for _, id := range uids {
			if failed[id[0]] != ReasonAuthWindowExpired {
				t.Errorf("event %s: %q", id[0], failed[id[0]])
			}
		}
		st := srv.Stats()
		if st.Feeds["unbound"].Statuses[403] < 2 || st.Feeds["ios"].Batches != 10 {
			t.Errorf("stats: unbound %v, ios %d batches", st.Feeds["unbound"].Statuses, st.Feeds["ios"].Batches)
		}
		if m.get(func(m *recordingMetrics) int { return m.failed["unbound auth_window_expired"] }) != 10 {
			t.Error("auth_window_expired not counted")
		}
		l.assertNoLeaks(t, "user-")
	})
	t.Run("wrong secret", func(t *testing.T) {
		srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1})
		c, _, _ := emulatedClient(t, srv, func(cfg *Config) {
			cfg.Credentials = map[string]Credentials{"web": {Key: "web-key", Secret: "stale"}}
			cfg.AuthFailureWindow = 100 * time.Millisecond
		})
		items, ids := oneEventItems("web", 1, 3, nowMS(time.Minute))
		failed, _ := outcome(t, srv, c.Send(context.Background(), items), ids)
		if len(failed) != 3 || failed[eventID(1)] != ReasonAuthWindowExpired {
			t.Errorf("failed %v", failed)
		}
	})
	t.Run("outage shorter than the window", func(t *testing.T) {
		srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1, Faults: emulator.Faults{ForbiddenNext: 3}})
		c, m, _ := emulatedClient(t, srv, func(cfg *Config) { cfg.AuthFailureWindow = time.Hour })
		items, ids := oneEventItems("android", 1, 10, nowMS(time.Minute))
		failed, _ := outcome(t, srv, c.Send(context.Background(), items), ids)
		if len(failed) != 0 {
			t.Errorf("failed %v", failed)
		}
		if got := m.get(func(m *recordingMetrics) int { return m.retries["android forbidden"] }); got != 3 {
			t.Errorf("forbidden retries = %d, want 3", got)
		}
	})
}

func TestEmulatorThrottlingStorm(t *testing.T) {
	// Four concurrent senders push 300 batches at a 100 batches/s limit:
	// many 429s with Retry-After, and every event arrives exactly once.
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: 100})
	c, m, _ := emulatedClient(t, srv, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var allErrs []error
	var allIDs [][]string
	for w := 0; w < 4; w++ {
		items, ids := oneEventItems([]string{"ios", "android", "web", "unbound"}[w], 1+w*1000, 75, nowMS(time.Minute))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs := c.Send(context.Background(), items)
			mu.Lock()
			allErrs, allIDs = append(allErrs, errs...), append(allIDs, ids...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	failed, _ := outcome(t, srv, allErrs, allIDs)
	if len(failed) != 0 {
		t.Fatalf("failed: %v", failed)
	}
	st := srv.Stats()
	if st.Statuses[429] == 0 {
		t.Error("the storm produced no 429")
	}
	throttled := 0
	for _, feed := range []string{"ios", "android", "web", "unbound"} {
		throttled += m.get(func(m *recordingMetrics) int { return m.retries[feed+" throttled"] })
	}
	if throttled != st.Statuses[429] {
		t.Errorf("client counted %d throttled retries, emulator sent %d 429s", throttled, st.Statuses[429])
	}
	if st.Batches != 300 || st.Duplicates != 0 {
		t.Errorf("%d batches, %d duplicates; want 300, 0", st.Batches, st.Duplicates)
	}
}

func TestEmulatorServerErrorsAndResets(t *testing.T) {
	tests := []struct {
		name   string
		faults emulator.Faults
		check  func(t *testing.T, st emulator.Stats)
	}{
		{"503", emulator.Faults{Seed: 3, ServerErrorRate: 0.6}, func(t *testing.T, st emulator.Stats) {
			if st.Statuses[503] == 0 {
				t.Error("no 503 was injected")
			}
		}},
		{"reset before reading", emulator.Faults{Seed: 5, ResetRate: 0.5}, func(t *testing.T, st emulator.Stats) {
			if st.Resets == 0 {
				t.Error("no reset was injected")
			}
		}},
		{"reset after accepting", emulator.Faults{Seed: 11, ResetAfterAcceptRate: 0.5}, func(t *testing.T, st emulator.Stats) {
			// The client never saw the 202 of a reset request and sent it
			// again; the emulator's deduplication kept one copy.
			if st.Resets == 0 || st.Duplicates == 0 {
				t.Errorf("resets %d, duplicates %d: want both > 0", st.Resets, st.Duplicates)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1, Faults: tt.faults})
			c, _, _ := emulatedClient(t, srv, func(cfg *Config) { cfg.Limits.MaxBatchesPerRequest = 10 })
			items, ids := oneEventItems("web", 1, 100, nowMS(time.Minute))
			failed, _ := outcome(t, srv, c.Send(context.Background(), items), ids)
			if len(failed) != 0 {
				t.Fatalf("failed: %v", failed)
			}
			st := srv.Stats()
			if st.Batches != 100 {
				t.Errorf("%d batches recorded, want 100", st.Batches)
			}
			tt.check(t, st)
		})
	}
}

func TestEmulatorAcceptedWithBatchErrors(t *testing.T) {
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: -1, Faults: emulator.Faults{Seed: 2, BatchErrorRate: 0.25}})
	c, m, _ := emulatedClient(t, srv, nil)
	items, ids := oneEventItems("ios", 1, 100, nowMS(time.Minute))
	errs := c.Send(context.Background(), items)
	failed, _ := outcome(t, srv, errs, ids)
	st := srv.Stats()
	if st.FailedBatches == 0 || len(failed) != st.FailedBatches {
		t.Fatalf("%d events failed, the emulator failed %d batches", len(failed), st.FailedBatches)
	}
	for id, r := range failed {
		if r != ReasonRejected {
			t.Errorf("event %s: %s, want rejected", id, r)
		}
	}
	if st.Requests != 1 || st.Batches+st.FailedBatches != 100 {
		t.Errorf("stats %+v", st.Counts)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.batches["ios"] }); got != st.Batches {
		t.Errorf("client counted %d accepted batches, emulator recorded %d", got, st.Batches)
	}
}

func TestEmulatorEverythingAtOnce(t *testing.T) {
	// All faults together, several feeds, concurrent senders, users with
	// several events: the bookkeeping must still balance exactly.
	srv := startEmulator(t, emulator.Config{BatchesPerSecond: 400, Faults: emulator.Faults{
		Seed: 9, ServerErrorRate: 0.1, ResetRate: 0.1, ResetAfterAcceptRate: 0.1, BatchErrorRate: 0.05,
		ForbiddenNext: 2,
	}})
	c, _, _ := emulatedClient(t, srv, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var allErrs []error
	var allIDs [][]string
	for w := 0; w < 4; w++ {
		var items []Item
		var ids [][]string
		for u := 0; u < 60; u++ {
			n := 1 + u%4
			evs := make([]string, n)
			for k := range evs {
				evs[k] = eventID(w*10000 + u*10 + k)
			}
			feed := []string{"ios", "android", "web", "unbound"}[(w+u)%4]
			items = append(items, Item{Feed: feed, Batch: testBatch(fmt.Sprintf("u%d", u%20), nowMS(time.Minute), evs...)})
			ids = append(ids, evs)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs := c.Send(context.Background(), items)
			mu.Lock()
			allErrs, allIDs = append(allErrs, errs...), append(allIDs, ids...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	failed, _ := outcome(t, srv, allErrs, allIDs)
	for id, r := range failed {
		if r != ReasonRejected {
			t.Errorf("event %s failed as %s; only rejected batches may fail", id, r)
		}
	}
}
