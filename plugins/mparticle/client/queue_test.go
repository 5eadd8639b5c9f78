package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// authOf is the Authorization header of a test feed.
func authOf(feed string) string {
	c := testCreds[feed]
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Key+":"+c.Secret))
}

func newTestQueue(t *testing.T, c *Client) *Queue {
	t.Helper()
	return mustQueue(t, c, QueueConfig{})
}

// mustQueue starts a queue, DefaultSendersPerFeed senders unless cfg says.
func mustQueue(t testing.TB, c *Client, cfg QueueConfig) *Queue {
	t.Helper()
	if cfg.SendersPerFeed == 0 {
		cfg.SendersPerFeed = DefaultSendersPerFeed
	}
	q, err := NewQueue(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

func TestQueuePacksConcurrentCallersIntoSharedRequests(t *testing.T) {
	// The server answers slowly, so callers arriving while a request is
	// under way pile up and share the next requests.
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
		time.Sleep(20 * time.Millisecond)
		accept(w)
	})
	c, m, _ := newTestClient(t, s.url(), nil)
	q := newTestQueue(t, c)

	const callers = 200
	var wg sync.WaitGroup
	errs := make([][]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			items, _ := oneEventItems("web", i*10, 1, recentMS)
			errs[i] = q.Send(context.Background(), items)
		}()
	}
	wg.Wait()
	for i := range callers {
		requireAllDelivered(t, errs[i])
	}
	if got := m.get(func(m *recordingMetrics) int { return m.events["web"] }); got != callers {
		t.Fatalf("%d events accepted, want %d", got, callers)
	}
	if n := len(s.seen()); n >= callers/4 {
		t.Errorf("%d requests for %d single-item callers: callers were not packed together", n, callers)
	}
}

func TestQueueReleasesAPausedFeedsItems(t *testing.T) {
	// android's credentials are refused; every other feed works. A caller
	// holding an android item gets it back at once as feed_paused (to send
	// again later) and its other items delivered, however many callers
	// there are compared with the senders; once the window has passed, the
	// android items fail for good as auth_window_expired.
	var androidAttempts atomic.Int32
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		if r.auth == authOf("android") {
			androidAttempts.Add(1)
			writeErrorBody(w, http.StatusForbidden, "expired")
			return
		}
		accept(w)
	})
	// Wide margins: CI runs this beside other packages on two cores.
	const window = 3 * time.Second
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) {
		cfg.AuthFailureWindow = window
		cfg.InitialInterval = 300 * time.Millisecond
		cfg.MaxInterval = time.Second
	})
	q := newTestQueue(t, c)

	start := time.Now()
	var wg sync.WaitGroup
	for i := range 10 * DefaultSendersPerFeed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			android, _ := oneEventItems("android", 1000+i, 1, recentMS)
			ios, _ := oneEventItems("ios", 2000+i, 1, recentMS)
			errs := q.Send(context.Background(), append(android, ios...))
			var de *DeliveryError
			if !errors.As(errs[0], &de) || de.Reason != ReasonFeedPaused || !de.Temporary() || de.Status != http.StatusForbidden {
				t.Errorf("android item: %v, want a temporary %s", errs[0], ReasonFeedPaused)
			}
			if errs[1] != nil {
				t.Errorf("ios item of the same caller: %v", errs[1])
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > window/2 {
		t.Errorf("callers holding android items waited %v", d)
	}
	if n := androidAttempts.Load(); n > 5 {
		t.Errorf("%d android requests for 40 callers inside one backoff: paused items were sent", n)
	}

	// Probing goes on; after the window the items fail for good.
	deadline := time.Now().Add(5 * window)
	for {
		android, _ := oneEventItems("android", 5000, 1, recentMS)
		r := Reason(q.Send(context.Background(), android)[0])
		if r == ReasonAuthWindowExpired {
			break
		}
		if r != ReasonFeedPaused || time.Now().After(deadline) {
			t.Fatalf("android item: reason %q %v after the outage began", r, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d < window {
		t.Errorf("auth_window_expired after %v, before the %v window", d, window)
	}
}

func TestQueuePausedFeedRecovers(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		if refuse.Load() {
			writeErrorBody(w, http.StatusForbidden, "expired")
			return
		}
		accept(w)
	})
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) { cfg.InitialInterval, cfg.MaxInterval = 20*time.Millisecond, 20*time.Millisecond })
	q := newTestQueue(t, c)
	items, _ := oneEventItems("web", 1, 1, recentMS)
	if r := Reason(q.Send(context.Background(), items)[0]); r != ReasonFeedPaused {
		t.Fatalf("reason %q, want %s", r, ReasonFeedPaused)
	}
	refuse.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for Reason(q.Send(context.Background(), items)[0]) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the feed did not recover after its credentials worked again")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueueCallerContextEndsOnlyItsWait(t *testing.T) {
	release := make(chan struct{})
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		if r.auth == authOf("ios") {
			<-release
		}
		accept(w)
	})
	c, _, _ := newTestClient(t, s.url(), nil)
	q := newTestQueue(t, c)
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	ios, _ := oneEventItems("ios", 1, 2, recentMS)
	web, _ := oneEventItems("web", 10, 1, recentMS)
	errs := q.Send(ctx, append(ios, web...))
	for i := range 2 {
		if r := Reason(errs[i]); r != ReasonContext {
			t.Errorf("ios item %d: reason %q, want %s", i, r, ReasonContext)
		}
	}
	if errs[2] != nil {
		t.Errorf("web item: %v", errs[2])
	}
}

func TestQueueUnknownFeedAndCloseFailVisibly(t *testing.T) {
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) { accept(w) })
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) {
		cfg.Credentials = map[string]Credentials{"ios": testCreds["ios"]}
	})
	q := mustQueue(t, c, QueueConfig{SendersPerFeed: 1})
	items, _ := oneEventItems("roku", 1, 1, recentMS)
	if r := Reason(q.Send(context.Background(), items)[0]); r != ReasonFeedNotConfigured {
		t.Errorf("unknown feed: reason %q", r)
	}
	q.Close()
	items, _ = oneEventItems("ios", 2, 1, recentMS)
	if r := Reason(q.Send(context.Background(), items)[0]); r != ReasonContext {
		t.Errorf("after Close: reason %q, want %s", r, ReasonContext)
	}
}

func BenchmarkQueueSendDiscard(b *testing.B) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { accept(w) }))
	defer s.Close()
	c, _, _ := newTestClient(b, s.URL+"/v2", nil)
	q := mustQueue(b, c, QueueConfig{})
	items := make([]Item, 500)
	for i := range items {
		items[i] = Item{Feed: []string{"ios", "android", "web", "unbound"}[i%4], Batch: testBatch(fmt.Sprintf("u%d", i%97), recentMS, eventID(i))}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			q.Send(context.Background(), items)
		}
	})
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "items/s")
}

func TestQueueGroupWindowPacksAUsersEventsFromDifferentCallers(t *testing.T) {
	// One user's Send and Open reach the output 100 ms apart, from two
	// different writes (two Currents files). Within the group window they
	// share one batch; without it, each goes alone.
	for _, tt := range []struct {
		window      time.Duration
		wantBatches int
	}{{0, 2}, {1500 * time.Millisecond, 1}} {
		s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) { accept(w) })
		c, m, _ := newTestClient(t, s.url(), nil)
		q := mustQueue(t, c, QueueConfig{GroupWindow: tt.window})
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(k) * 100 * time.Millisecond)
				item := Item{Feed: "web", Batch: testBatch("user-1", recentMS, eventID(k))}
				requireAllDelivered(t, q.Send(context.Background(), []Item{item}))
			}()
		}
		wg.Wait()
		q.Close()
		if got := m.get(func(m *recordingMetrics) int { return m.batches["web"] }); got != tt.wantBatches {
			t.Errorf("window %v: %d batches, want %d", tt.window, got, tt.wantBatches)
		}
	}
}

func TestQueueGroupWindowDoesNotWaitWhenEveryCallerWaits(t *testing.T) {
	// With MaxCallers callers all waiting, nothing more can arrive: the
	// window must not hold them (a small max_in_flight would otherwise
	// make every write wait the whole window).
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) { accept(w) })
	c, _, _ := newTestClient(t, s.url(), nil)
	q := mustQueue(t, c, QueueConfig{GroupWindow: 5 * time.Second, MaxCallers: 2})
	start := time.Now()
	var wg sync.WaitGroup
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := Item{Feed: "web", Batch: testBatch(fmt.Sprintf("user-%d", k), recentMS, eventID(k))}
			requireAllDelivered(t, q.Send(context.Background(), []Item{item}))
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("two callers of two waited %v for a 5s window", d)
	}
}

func TestNewQueueRejectsBadConfig(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", nil)
	for _, cfg := range []QueueConfig{{}, {SendersPerFeed: -1}, {SendersPerFeed: 1, GroupWindow: -time.Second}} {
		q, err := NewQueue(c, cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			if q != nil {
				q.Close()
			}
			t.Errorf("%+v: got %v, want a *ConfigError", cfg, err)
		}
	}
}
