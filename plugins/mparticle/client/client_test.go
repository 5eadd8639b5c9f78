package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
	"runtime"
	"weak"
)

// seenRequest is one request a scripted server received.
type seenRequest struct {
	path, auth, contentType string
	body                    []byte
}

// scripted is an httptest server whose answer to the n-th request (from 0)
// is decided by a function, and which records every request.
type scripted struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seenRequest
}

func newScripted(t *testing.T, answer func(n int, r seenRequest, w http.ResponseWriter)) *scripted {
	t.Helper()
	s := &scripted{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := seenRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: body}
		s.mu.Lock()
		n := len(s.requests)
		s.requests = append(s.requests, req)
		s.mu.Unlock()
		answer(n, req, w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) seen() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// url is the Events API base of the scripted server.
func (s *scripted) url() string { return s.URL + "/v2" }

func accept(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }

func writeErrorBody(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":"X","message":%s}]}`, quote(msg))
}

// oneEventItems returns n items of distinct users on feed, one event each,
// with event ids first..first+n-1, and the ids per item.
func oneEventItems(feed string, first, n int, ts int64) ([]Item, [][]string) {
	items := make([]Item, n)
	ids := make([][]string, n)
	for i := range items {
		id := eventID(first + i)
		items[i] = Item{Feed: feed, Batch: testBatch(fmt.Sprintf("user-%d", first+i), ts, id)}
		ids[i] = []string{id}
	}
	return items, ids
}

func requireAllDelivered(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("item %d failed: %v", i, err)
		}
	}
}

func TestSendAccepted(t *testing.T) {
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) { accept(w) })
	c, m, l := newTestClient(t, s.url(), nil)
	items, _ := oneEventItems("ios", 1, 3, recentMS)
	old, _ := oneEventItems("web", 10, 2, oldMS)
	errs := c.Send(context.Background(), append(items, old...))
	requireAllDelivered(t, errs)

	reqs := s.seen()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (ios real-time, web historical)", len(reqs))
	}
	byPath := map[string]seenRequest{}
	for _, r := range reqs {
		byPath[r.path] = r
		if r.contentType != "application/json" {
			t.Errorf("Content-Type %q", r.contentType)
		}
		if err := validate.BulkRequest(r.body); err != nil {
			t.Errorf("invalid request: %v", err)
		}
	}
	rt, ok := byPath["/v2/bulkevents"]
	if !ok || rt.auth != "Basic "+base64.StdEncoding.EncodeToString([]byte("ios-key:ios-SECRET-value")) {
		t.Errorf("ios request: path or auth wrong: %+v", byPath)
	}
	hist, ok := byPath["/v2/bulkevents/historical"]
	if !ok || hist.auth != "Basic "+base64.StdEncoding.EncodeToString([]byte("web-key:web-SECRET-value")) {
		t.Errorf("web request: path or auth wrong")
	}
	if got := len(decodeBulk(t, rt.body)); got != 3 {
		t.Errorf("ios request has %d batches, want 3", got)
	}
	if m.get(func(m *recordingMetrics) int { return m.batches["ios"] }) != 3 ||
		m.get(func(m *recordingMetrics) int { return m.events["web"] }) != 2 ||
		m.get(func(m *recordingMetrics) int { return m.requests["ios 202"] }) != 1 {
		t.Errorf("metrics: %+v", m)
	}
	l.assertNoLeaks(t, "user-")
}

func TestSendRetriesThrottlingAndServerErrors(t *testing.T) {
	tests := []struct {
		name   string
		answer func(n int, w http.ResponseWriter)
		cause  string
	}{
		{"429 with Retry-After", func(n int, w http.ResponseWriter) {
			if n < 2 {
				w.Header().Set("Retry-After", "0")
				w.Header().Set("X-mp-rate-limit-exceeded", "workspace")
				writeErrorBody(w, http.StatusTooManyRequests, "Rate limit exceeded.")
				return
			}
			accept(w)
		}, "throttled"},
		{"429 without Retry-After", func(n int, w http.ResponseWriter) {
			if n < 2 {
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			accept(w)
		}, "throttled"},
		{"503", func(n int, w http.ResponseWriter) {
			if n < 2 {
				writeErrorBody(w, http.StatusServiceUnavailable, "later")
				return
			}
			accept(w)
		}, "server_error"},
		{"500", func(n int, w http.ResponseWriter) {
			if n < 2 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			accept(w)
		}, "server_error"},
		{"connection reset", func(n int, w http.ResponseWriter) {
			if n < 2 {
				hijackAndClose(w)
				return
			}
			accept(w)
		}, "network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScripted(t, func(n int, _ seenRequest, w http.ResponseWriter) { tt.answer(n, w) })
			c, m, l := newTestClient(t, s.url(), nil)
			items, _ := oneEventItems("android", 1, 5, recentMS)
			requireAllDelivered(t, c.Send(context.Background(), items))
			reqs := s.seen()
			if len(reqs) != 3 {
				t.Fatalf("%d requests, want 3", len(reqs))
			}
			// Retries resend the very same bytes (same source_request_ids).
			if !bytes.Equal(reqs[0].body, reqs[2].body) {
				t.Error("the retry sent different bytes")
			}
			if got := m.get(func(m *recordingMetrics) int { return m.retries["android "+tt.cause] }); got != 2 {
				t.Errorf("retries[%s] = %d, want 2", tt.cause, got)
			}
			if got := m.get(func(m *recordingMetrics) int { return m.batches["android"] }); got != 5 {
				t.Errorf("%d batches accepted, want 5", got)
			}
			l.assertNoLeaks(t, "user-")
		})
	}
}

// hijackAndClose drops the connection without an answer.
func hijackAndClose(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestSendGivesUpAfterMaxElapsedTime(t *testing.T) {
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
		writeErrorBody(w, http.StatusServiceUnavailable, "down")
	})
	c, m, _ := newTestClient(t, s.url(), func(cfg *Config) { cfg.MaxElapsedTime = 30 * time.Millisecond })
	items, _ := oneEventItems("web", 1, 2, recentMS)
	errs := c.Send(context.Background(), items)
	for i, err := range errs {
		var de *DeliveryError
		if !errors.As(err, &de) || de.Reason != ReasonRetriesExhausted || de.Status != 503 || !de.Temporary() {
			t.Fatalf("item %d: want a temporary retries_exhausted after 503, got %v", i, err)
		}
		if !strings.Contains(de.Message, "down") {
			t.Errorf("message %q lost the server's explanation", de.Message)
		}
	}
	if got := m.get(func(m *recordingMetrics) int { return m.failed["web "+ReasonRetriesExhausted] }); got != 2 {
		t.Errorf("EventsFailed = %d, want 2", got)
	}
}

func TestSendHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
		cancel() // the caller gives up while the server is failing
		writeErrorBody(w, http.StatusServiceUnavailable, "down")
	})
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) {
		cfg.InitialInterval, cfg.MaxInterval = time.Hour, time.Hour
	})
	items, _ := oneEventItems("web", 1, 2, recentMS)
	errs := c.Send(ctx, items)
	for i, err := range errs {
		var de *DeliveryError
		if !errors.As(err, &de) || de.Reason != ReasonContext || !de.Temporary() || !errors.Is(err, context.Canceled) {
			t.Fatalf("item %d: want a temporary context error wrapping context.Canceled, got %v", i, err)
		}
	}
	if n := len(s.seen()); n != 1 {
		t.Errorf("%d requests after cancel, want 1", n)
	}
}

func TestSendIsolatesBadBatchesOf400(t *testing.T) {
	const badUser = `"customer_id":"user-37"`
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		if bytes.Contains(r.body, []byte(badUser)) || bytes.Contains(r.body, []byte(`"customer_id":"user-80"`)) {
			writeErrorBody(w, http.StatusBadRequest, "[5].events[0].data: bad")
			return
		}
		accept(w)
	})
	c, m, l := newTestClient(t, s.url(), nil)
	items, ids := oneEventItems("ios", 1, 100, recentMS)
	errs := c.Send(context.Background(), items)
	failed := failedIDs(errs, ids)
	want := map[string]string{eventID(37): ReasonBadRequest, eventID(80): ReasonBadRequest}
	if fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("failed = %v, want %v", failed, want)
	}
	var de *DeliveryError
	errors.As(errs[36], &de)
	if de.Status != 400 || !strings.Contains(de.Message, "bad") || de.SourceRequestID == "" {
		t.Errorf("bad_request error lacks status, message or batch: %+v", de)
	}
	// Every other event arrived exactly once.
	arrived := map[string]int{}
	for _, r := range s.seen() {
		if bytes.Contains(r.body, []byte(badUser)) || bytes.Contains(r.body, []byte(`"customer_id":"user-80"`)) {
			continue
		}
		for _, b := range decodeBulk(t, r.body) {
			for _, id := range batchEventIDs(t, b) {
				arrived[id]++
			}
		}
	}
	if len(arrived) != 98 {
		t.Errorf("%d events arrived, want 98", len(arrived))
	}
	for id, n := range arrived {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
	// Two bad batches among 100 cost at most 1 + 2·2·log2(100) requests.
	if n := len(s.seen()); n > 1+4*7 {
		t.Errorf("%d requests to isolate 2 bad batches", n)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.failed["ios bad_request"] }); got != 2 {
		t.Errorf("EventsFailed bad_request = %d, want 2", got)
	}
	l.assertNoLeaks(t, "user-", "events[0]")
}

func TestSendPermanentStatuses(t *testing.T) {
	tests := []struct {
		status int
		reason string
	}{
		{http.StatusUnauthorized, ReasonAuthFailed},
		{http.StatusNotFound, ReasonUnexpectedStatus},
		{http.StatusMethodNotAllowed, ReasonUnexpectedStatus},
		{http.StatusRequestEntityTooLarge, ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
				writeErrorBody(w, tt.status, "nope")
			})
			c, _, _ := newTestClient(t, s.url(), nil)
			items, _ := oneEventItems("unbound", 1, 1, recentMS)
			errs := c.Send(context.Background(), items)
			var de *DeliveryError
			if !errors.As(errs[0], &de) || de.Reason != tt.reason || de.Status != tt.status || de.Temporary() {
				t.Fatalf("want permanent %s, got %v", tt.reason, errs[0])
			}
			if de.Message != "X: nope" {
				t.Errorf("message %q, want the server's", de.Message)
			}
			if n := len(s.seen()); n != 1 {
				t.Errorf("%d requests, want 1 (no retry)", n)
			}
		})
	}
}

func TestSendForbiddenPausesOnlyThatFeed(t *testing.T) {
	// unbound's credentials stay refused; ios works. unbound must fail with
	// auth_window_expired once the window is over, ios must be delivered,
	// and nothing may be dropped.
	iosAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("ios-key:ios-SECRET-value"))
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		if r.auth == iosAuth {
			accept(w)
			return
		}
		writeErrorBody(w, http.StatusForbidden, "API key or secret is invalid or expired.")
	})
	c, m, l := newTestClient(t, s.url(), func(cfg *Config) { cfg.AuthFailureWindow = 60 * time.Millisecond })
	unbound, uids := oneEventItems("unbound", 1, 3, recentMS)
	ios, iids := oneEventItems("ios", 100, 3, recentMS)
	errs := c.Send(context.Background(), append(unbound, ios...))
	failed := failedIDs(errs, append(uids, iids...))
	if len(failed) != 3 {
		t.Fatalf("failed %v, want the 3 unbound events", failed)
	}
	for _, id := range uids {
		if failed[id[0]] != ReasonAuthWindowExpired {
			t.Errorf("event %s: reason %q", id[0], failed[id[0]])
		}
	}
	var de *DeliveryError
	errors.As(errs[0], &de)
	if de.Status != 403 || de.Temporary() || !strings.Contains(de.Message, "invalid or expired") {
		t.Errorf("auth_window_expired error: %+v", de)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.retries["unbound forbidden"] }); got < 1 {
		t.Errorf("no forbidden retries counted")
	}

	// The outage goes on: the next Send on unbound fails after a single
	// attempt, since the window already ran out.
	before := len(s.seen())
	more, _ := oneEventItems("unbound", 50, 1, recentMS)
	if r := Reason(c.Send(context.Background(), more)[0]); r != ReasonAuthWindowExpired {
		t.Errorf("next Send during the outage: reason %q", r)
	}
	if n := len(s.seen()) - before; n != 1 {
		t.Errorf("%d attempts after the window, want 1", n)
	}
	l.assertNoLeaks(t, "user-")
}

func TestSendForbiddenRecoversWithinWindow(t *testing.T) {
	s := newScripted(t, func(n int, _ seenRequest, w http.ResponseWriter) {
		if n < 3 {
			writeErrorBody(w, http.StatusForbidden, "expired")
			return
		}
		accept(w)
	})
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) { cfg.AuthFailureWindow = time.Hour })
	items, _ := oneEventItems("web", 1, 4, recentMS)
	requireAllDelivered(t, c.Send(context.Background(), items))
	fs := c.feeds["web"]
	fs.mu.Lock()
	since := fs.authSince
	fs.mu.Unlock()
	if !since.IsZero() {
		t.Error("a success did not end the 403 outage")
	}
}

func TestFeedsDoNotWaitForEachOther(t *testing.T) {
	// ios is refused until the unbound batch has arrived. Were feeds sent
	// one after the other (ios first), unbound would never arrive and ios
	// would run out its window.
	unboundAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("unbound-key:unbound-SECRET-value"))
	var mu sync.Mutex
	unboundArrived := false
	s := newScripted(t, func(_ int, r seenRequest, w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		if r.auth == unboundAuth {
			unboundArrived = true
			accept(w)
			return
		}
		if !unboundArrived {
			writeErrorBody(w, http.StatusForbidden, "expired")
			return
		}
		accept(w)
	})
	c, _, _ := newTestClient(t, s.url(), func(cfg *Config) { cfg.AuthFailureWindow = 10 * time.Second })
	ios, _ := oneEventItems("ios", 1, 2, recentMS)
	unbound, _ := oneEventItems("unbound", 10, 2, recentMS)
	requireAllDelivered(t, c.Send(context.Background(), append(ios, unbound...)))
}

func TestSendAcceptedWithBatchErrors(t *testing.T) {
	var srid2 string
	s := newScripted(t, func(n int, r seenRequest, w http.ResponseWriter) {
		var batches []struct {
			SourceRequestID string `json:"source_request_id"`
		}
		if err := json.Unmarshal(r.body, &batches); err != nil || len(batches) != 4 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		srid2 = batches[2].SourceRequestID
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"errors":[{"code":"BATCH_FAILED","message":"batch 0 failed","batch_index":0},`+
			`{"code":"BATCH_FAILED","message":"by id","source_request_id":%q}]}`, srid2)
	})
	c, m, _ := newTestClient(t, s.url(), nil)
	items, ids := oneEventItems("android", 1, 4, recentMS)
	errs := c.Send(context.Background(), items)
	failed := failedIDs(errs, ids)
	want := map[string]string{eventID(1): ReasonRejected, eventID(3): ReasonRejected}
	if fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("failed %v, want %v", failed, want)
	}
	var de *DeliveryError
	errors.As(errs[2], &de)
	if de.SourceRequestID != srid2 || de.Message != "BATCH_FAILED: by id" || de.Status != 202 {
		t.Errorf("rejected error %+v", de)
	}
	if got := m.get(func(m *recordingMetrics) int { return m.batches["android"] }); got != 2 {
		t.Errorf("%d batches counted accepted, want 2", got)
	}
}

func TestSendAcceptedWithUnattributedErrorsFailsAll(t *testing.T) {
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"errors":[{"code":"SOMETHING","message":"went wrong"}]}`)
	})
	c, _, _ := newTestClient(t, s.url(), nil)
	items, _ := oneEventItems("web", 1, 3, recentMS)
	for i, err := range c.Send(context.Background(), items) {
		if Reason(err) != ReasonRejected {
			t.Errorf("item %d: %v, want rejected", i, err)
		}
	}
}

func TestSendPacesOnRateLimitPercentage(t *testing.T) {
	tests := []struct {
		pct  string
		want time.Duration
	}{
		{"100", 2 * 10 * time.Millisecond}, // two responses at full pause
		{"90", 2 * 5 * time.Millisecond},   // half way from 80 to 100
		{"80", 0},
		{"12", 0},
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.pct, func(t *testing.T) {
			s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) {
				if tt.pct != "" {
					w.Header().Set("X-mp-rate-limit-percentage-used", tt.pct)
				}
				accept(w)
			})
			c, m, _ := newTestClient(t, s.url(), func(cfg *Config) {
				cfg.PaceMaxDelay = 10 * time.Millisecond
				cfg.Limits.MaxBatchesPerRequest = 1
			})
			items, _ := oneEventItems("ios", 1, 2, recentMS)
			requireAllDelivered(t, c.Send(context.Background(), items))
			m.mu.Lock()
			got := m.throttled["ios"]
			m.mu.Unlock()
			if got != tt.want {
				t.Errorf("throttled %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSendCallsRateLimiterPerAttempt(t *testing.T) {
	s := newScripted(t, func(n int, _ seenRequest, w http.ResponseWriter) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		accept(w)
	})
	var mu sync.Mutex
	calls := 0
	c, m, _ := newTestClient(t, s.url(), func(cfg *Config) {
		cfg.RateLimit = func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return errors.New("limiter hiccup")
			}
			return nil
		}
	})
	items, _ := oneEventItems("ios", 1, 1, recentMS)
	requireAllDelivered(t, c.Send(context.Background(), items))
	// Call 1 fails (retried), call 2 precedes the 503, call 3 the 202.
	if calls != 3 || len(s.seen()) != 2 {
		t.Errorf("limiter calls %d, requests %d; want 3 and 2", calls, len(s.seen()))
	}
	if got := m.get(func(m *recordingMetrics) int { return m.retries["ios rate_limit"] }); got != 1 {
		t.Errorf("rate_limit retries = %d, want 1", got)
	}

	// A limiter that blocks until the context ends fails the items as
	// context errors, without any request.
	ctx, cancel := context.WithCancel(context.Background())
	blocking, _, _ := newTestClient(t, s.url(), func(cfg *Config) {
		cfg.RateLimit = func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
	})
	before := len(s.seen())
	if r := Reason(blocking.Send(ctx, items)[0]); r != ReasonContext {
		t.Errorf("blocked limiter: reason %q, want context", r)
	}
	if len(s.seen()) != before {
		t.Error("a request went out although the limiter never allowed it")
	}
}

func TestDryRunWritesTheExactRequests(t *testing.T) {
	// The same items through a real server and through dry-run must give
	// the same bodies.
	s := newScripted(t, func(_ int, _ seenRequest, w http.ResponseWriter) { accept(w) })
	real, _, _ := newTestClient(t, s.url(), nil)
	var out bytes.Buffer
	dry, m, l := newTestClient(t, s.url(), func(cfg *Config) { cfg.DryRun = &out })

	items, _ := oneEventItems("ios", 1, 3, recentMS)
	old, _ := oneEventItems("unbound", 10, 2, oldMS)
	items = append(items, old...)
	requireAllDelivered(t, real.Send(context.Background(), items))
	requireAllDelivered(t, dry.Send(context.Background(), items))
	sent := s.seen()
	if len(sent) != 2 {
		t.Fatalf("the dry-run client reached the server: %d requests", len(sent))
	}

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d dry-run lines, want 2:\n%s", len(lines), out.String())
	}
	for i, line := range lines {
		var rec struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Feed    string            `json:"feed"`
			Headers map[string]string `json:"headers"`
			Body    json.RawMessage   `json:"body"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		if rec.Method != "POST" || rec.Headers["Authorization"] != "Basic [redacted]" || rec.Headers["Content-Type"] != "application/json" {
			t.Errorf("line %d: method/headers %v %v", i, rec.Method, rec.Headers)
		}
		match := false
		for _, r := range sent {
			if s.URL+r.path == rec.URL && bytes.Equal(r.body, rec.Body) {
				match = true
			}
		}
		if !match {
			t.Errorf("line %d (%s, feed %s) matches no real request", i, rec.URL, rec.Feed)
		}
	}
	for _, secret := range []string{"SECRET", "-key", base64.StdEncoding.EncodeToString([]byte("ios-key:ios-SECRET-value"))} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("dry-run output contains %q", secret)
		}
	}
	sum := dry.DryRunSummary()
	if sum["ios"] != (DryRunCounts{Requests: 1, Batches: 3, Events: 3}) || sum["unbound"] != (DryRunCounts{Requests: 1, Batches: 2, Events: 2}) {
		t.Errorf("summary %+v", sum)
	}
	if real.DryRunSummary() != nil {
		t.Error("a real client reports a dry-run summary")
	}
	if got := m.get(func(m *recordingMetrics) int { return m.batches["ios"] }); got != 3 {
		t.Errorf("dry-run accepted batches = %d, want 3", got)
	}
	l.assertNoLeaks(t, "user-")
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A dry-run file that cannot be written (a full disk) fails the events for
// good: a dry run delivers nothing, so nothing is lost, and a one-pass dry
// run must end rather than retry for ever.
func TestDryRunWriteFailureIsPermanent(t *testing.T) {
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) { cfg.DryRun = failingWriter{} })
	items, _ := oneEventItems("ios", 1, 1, recentMS)
	var de *DeliveryError
	if err := c.Send(context.Background(), items)[0]; !errors.As(err, &de) || de.Reason != ReasonDryRunWrite || de.Temporary() {
		t.Fatalf("want a permanent dry_run_write error, got %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := func() Config {
		cfg := DefaultConfig()
		cfg.URL = "https://s2s.example.test/v2"
		cfg.Credentials = map[string]Credentials{"ios": {Key: "k", Secret: "s"}}
		return cfg
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"no scheme", func(c *Config) { c.URL = "s2s.example.test/v2" }},
		{"credentials in URL", func(c *Config) { c.URL = "https://k:s@s2s.example.test/v2" }},
		{"no feeds", func(c *Config) { c.Credentials = nil }},
		{"empty secret", func(c *Config) { c.Credentials = map[string]Credentials{"ios": {Key: "k"}} }},
		{"empty feed name", func(c *Config) { c.Credentials = map[string]Credentials{"": {Key: "k", Secret: "s"}} }},
		{"bad environment", func(c *Config) { c.Environment = "staging" }},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }},
		// Zero is refused, not taken as the default: the output passes its
		// fields as they are, and 0s there is a mistake to report.
		{"zero timeout", func(c *Config) { c.Timeout = 0 }},
		{"pace threshold 0", func(c *Config) { c.PaceThreshold = 0 }},
		// An error, not a silent raise to InitialInterval.
		{"max interval under initial", func(c *Config) { c.MaxInterval = c.InitialInterval / 2 }},
		{"negative max elapsed", func(c *Config) { c.MaxElapsedTime = -time.Second }},
		{"pace threshold 100", func(c *Config) { c.PaceThreshold = 100 }},
		{"historical age under 72h", func(c *Config) { c.HistoricalAge = 24 * time.Hour }},
		{"request smaller than batch", func(c *Config) { c.Limits.MaxRequestBytes = 1000 }},
	}
	if _, err := New(ok()); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for _, tt := range tests {
		cfg := ok()
		tt.edit(&cfg)
		_, err := New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if ce := (*ConfigError)(nil); !errors.As(err, &ce) || ce.Field == "" {
			t.Errorf("%s: %v is not a *ConfigError naming a field", tt.name, err)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), ":s@") {
			t.Errorf("%s: error leaks a secret: %v", tt.name, err)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{" 1 ", time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"Wed, 01 Jan 2025 00:00:10 GMT", 10 * time.Second, true},
		{"Tue, 31 Dec 2024 23:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
		// A hostile or broken header must not park a feed for ever.
		{"1e30", MaxRetryAfter, true},
		{"86400", MaxRetryAfter, true},
		{"NaN", 0, false},
		{"Fri, 01 Jan 2100 00:00:00 GMT", MaxRetryAfter, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	prevCap := time.Duration(0)
	for i := 0; i < 50; i++ {
		d := b.next()
		if d < b.cur/2 || d > b.max || d > b.cur*3/2 {
			t.Fatalf("step %d: %v outside [%v/2, min(1.5·%v, %v)]", i, d, b.cur, b.cur, b.max)
		}
		if b.cur < prevCap {
			t.Fatalf("step %d: interval shrank", i)
		}
		prevCap = b.cur
	}
	if b.cur != time.Second {
		t.Errorf("interval %v never reached the max", b.cur)
	}
}

func TestDeliveryErrorText(t *testing.T) {
	err := &DeliveryError{Reason: ReasonBadRequest, Status: 400, Message: "bad", Feed: "ios", SourceRequestID: "abc"}
	if got := err.Error(); got != `mparticle bad_request (feed "ios", batch abc, HTTP 400): bad` {
		t.Errorf("Error() = %s", got)
	}
	wrapped := fmt.Errorf("send: %w", &DeliveryError{Reason: ReasonContext, Err: context.DeadlineExceeded})
	if Reason(wrapped) != ReasonContext || !errors.Is(wrapped, context.DeadlineExceeded) {
		t.Errorf("Reason/Unwrap broken: %v", wrapped)
	}
	if Reason(errors.New("other")) != "" {
		t.Error("Reason of a foreign error is not empty")
	}
	long := clipMessage(strings.Repeat("é", 400) + "\nnext")
	if len(long) > maxMessageLen+len("…") || strings.Contains(long, "\n") {
		t.Errorf("clipMessage kept %d bytes or a newline", len(long))
	}
}

func TestIsTemporary(t *testing.T) {
	paused := &DeliveryError{Reason: ReasonFeedPaused, Feed: "android", Status: 403}
	rejected := &DeliveryError{Reason: ReasonRejected, Feed: "ios"}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{paused, true},
		{fmt.Errorf("write: %w", paused), true},
		{errors.New(paused.Error()), true}, // only the text survived a reject output
		{rejected, false},
		{errors.New(rejected.Error()), false},
		{errors.New("mparticle feed_pausedness is not a reason"), false},
		{errors.New("connection refused"), false},
	} {
		if got := IsTemporary(tt.err); got != tt.want {
			t.Errorf("IsTemporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// Once Send returned, the client keeps no reference into the items' bytes:
// they are most often slices of one buffer shared by a whole batch of
// messages, which a stale reference in a pooled packer would keep alive.
func TestSendKeepsNoReferenceToTheItems(t *testing.T) {
	var out bytes.Buffer
	c, _, _ := newTestClient(t, "http://127.0.0.1:1/v2", func(cfg *Config) { cfg.DryRun = &out })
	items, _ := oneEventItems("ios", 1, 3, recentMS)
	shared := make([]byte, 0, 1<<20)
	for i := range items {
		start := len(shared)
		shared = append(shared, items[i].Batch...)
		items[i].Batch = shared[start:len(shared):len(shared)]
	}
	alive := weak.Make(&shared[:1][0])
	requireAllDelivered(t, c.Send(context.Background(), items))
	items, shared = nil, nil
	runtime.GC()
	if alive.Value() != nil {
		t.Fatal("the client still holds the items' bytes after Send returned")
	}
}
