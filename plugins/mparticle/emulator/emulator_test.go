package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

var (
	iosCreds     = emulator.Credentials{Key: "ios-key", Secret: "ios-secret"}
	unboundCreds = emulator.Credentials{Key: "unbound-key", Secret: "unbound-secret"}
)

// clock is a settable clock so rate limits, 403 windows and the 72 h rule are
// tested without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	*emulator.Server
	clock  *clock
	client *http.Client
}

// start runs an emulator with the ios and unbound feeds on a fake clock; cfg
// may set anything else.
func start(t *testing.T, cfg emulator.Config) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	if cfg.Feeds == nil {
		cfg.Feeds = map[string]emulator.Credentials{emulator.FeedIOS: iosCreds, emulator.FeedUnbound: unboundCreds}
	}
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	srv := emulator.NewServer(cfg)
	t.Cleanup(srv.Close)
	// A transport of its own, so resets and closed connections stay in this test.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{Server: srv, clock: c, client: &http.Client{Transport: tr}}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errors(t *testing.T) []map[string]any {
	t.Helper()
	var body struct {
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("status %d: error body is not JSON: %q", r.status, r.body)
	}
	return body.Errors
}

func (r reply) firstMessage(t *testing.T) string {
	t.Helper()
	errs := r.errors(t)
	if len(errs) == 0 {
		t.Fatalf("status %d: no errors in body %q", r.status, r.body)
	}
	return errs[0]["message"].(string)
}

// post sends body to path under the base URL with creds (nil: no auth) and
// optional header overrides; it returns the transport error as is.
func (f *fixture) post(path string, creds *emulator.Credentials, body []byte, headers ...string) (reply, error) {
	req, err := http.NewRequest(http.MethodPost, f.URL+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if creds != nil {
		req.SetBasicAuth(creds.Key, creds.Secret)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (f *fixture) mustPost(t *testing.T, path string, creds *emulator.Credentials, body []byte, headers ...string) reply {
	t.Helper()
	r, err := f.post(path, creds, body, headers...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// batch builds a valid batch with n custom events at ts; srid "" leaves
// source_request_id out.
func batch(srid string, ts time.Time, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"schema_version":2,"environment":"production",`)
	if srid != "" {
		fmt.Fprintf(&b, `"source_request_id":%q,`, srid)
	}
	b.WriteString(`"user_identities":{"customer_id":"user-1"},"events":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"event_type":"custom_event","data":{"event_name":"Email Opens","custom_event_type":"other",`+
			`"timestamp_unixtime_ms":%d,"source_message_id":"3f1c9a52-7d4b-4e8a-b6c1-2a9d8e7f%04x"}}`, ts.UnixMilli(), i)
	}
	b.WriteString("]}")
	return []byte(b.String())
}

func bulk(batches ...[]byte) []byte {
	return append(append([]byte("["), bytes.Join(batches, []byte(","))...), ']')
}

func TestURL(t *testing.T) {
	f := start(t, emulator.Config{})
	if !strings.HasPrefix(f.URL, "http://127.0.0.1:") || !strings.HasSuffix(f.URL, "/v2") {
		t.Fatalf("URL = %q, want http://127.0.0.1:<port>/v2", f.URL)
	}
}

func TestAcceptedBatch(t *testing.T) {
	f := start(t, emulator.Config{})
	body := batch("req-1", f.clock.Now(), 2)
	r := f.mustPost(t, "/events", &iosCreds, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	if len(r.body) != 0 {
		t.Errorf("202 body = %q, want empty", r.body)
	}
	if got := r.header.Get("X-mp-rate-limit-percentage-used"); got != "0" {
		t.Errorf("X-mp-rate-limit-percentage-used = %q, want 0 (1 of 270)", got)
	}
	recs := f.Batches()
	if len(recs) != 1 || recs[0].Feed != emulator.FeedIOS || recs[0].Endpoint != emulator.EndpointEvents || !bytes.Equal(recs[0].Batch, body) {
		t.Fatalf("records = %+v", recs)
	}
	st := f.Stats()
	if st.Requests != 1 || st.Statuses[202] != 1 || st.Batches != 1 || st.Events != 2 {
		t.Fatalf("stats = %+v", st)
	}
	if ios := st.Feeds[emulator.FeedIOS]; ios.Requests != 1 || ios.Batches != 1 || ios.Events != 2 || ios.Statuses[202] != 1 {
		t.Fatalf("ios stats = %+v", ios)
	}
}

func TestAcceptedBulk(t *testing.T) {
	for _, path := range []string{"/bulkevents", "/bulkevents/historical"} {
		t.Run(path, func(t *testing.T) {
			f := start(t, emulator.Config{})
			old := f.clock.Now().Add(-emulator.HistoricalMinAge)
			r := f.mustPost(t, path, &unboundCreds, bulk(batch("a", old, 1), batch("b", old, 3), batch("", old, 0)))
			if r.status != http.StatusAccepted {
				t.Fatalf("status %d, body %s", r.status, r.body)
			}
			recs := f.Batches()
			if len(recs) != 3 {
				t.Fatalf("recorded %d batches, want 3", len(recs))
			}
			if !bytes.Equal(recs[1].Batch, batch("b", old, 3)) || recs[1].Feed != emulator.FeedUnbound || "/"+recs[1].Endpoint != path {
				t.Fatalf("record 1 = %s %s %s", recs[1].Feed, recs[1].Endpoint, recs[1].Batch)
			}
			if st := f.Stats(); st.Batches != 3 || st.Events != 4 {
				t.Fatalf("stats = %+v", st)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := batch("x", now, 1)
	many := make([][]byte, validate.MaxBatchesPerRequest+1)
	for i := range many {
		many[i] = valid
	}
	// 40 values of 4000 characters: a batch over 128 KB with every value in its limit.
	var big strings.Builder
	big.WriteString(`{"environment":"production","user_attributes":{`)
	for i := 0; i < 40; i++ {
		if i > 0 {
			big.WriteByte(',')
		}
		fmt.Fprintf(&big, `"a%d":"%s"`, i, strings.Repeat("x", 4000))
	}
	big.WriteString("}}")
	cases := []struct {
		name    string
		path    string
		body    []byte
		headers []string
		message string
	}{
		{"malformed JSON", "/events", []byte(`{"environment":`), nil, "Unable to parse JSON"},
		{"array on /events", "/events", bulk(valid), nil, "must be a JSON object"},
		{"object on /bulkevents", "/bulkevents", valid, nil, "must be a JSON array"},
		{"missing environment", "/events", []byte(`{"events":[]}`), nil, `environment: Required batch field "environment" is missing or empty.`},
		{"missing event_type", "/events", []byte(`{"environment":"production","events":[{"data":{}}]}`), nil, `events[0].event_type: Required event field "event_type" is missing or empty.`},
		{"bad batch in bulk", "/bulkevents", bulk(valid, []byte(`{"environment":"live"}`)), nil, `[1].environment: Field "environment" has invalid value "live"`},
		{"too many batches", "/bulkevents", bulk(many...), nil, "Bulk request has 101 batches; the limit is 100."},
		{"batch over 128 KB", "/events", []byte(big.String()), nil, "Batch is"},
		{"request of 256 KB", "/bulkevents", bulk([]byte(big.String()), []byte(big.String())), nil, "it must be smaller than 262144 bytes"},
		{"wrong content type", "/events", valid, []string{"Content-Type", "text/plain"}, "Content-Type must be application/json"},
		{"compressed body", "/events", valid, []string{"Content-Encoding", "gzip"}, `Content-Encoding "gzip" is not supported`},
		{"empty bulk", "/bulkevents", []byte(`[]`), nil, "Bulk request contains no batch."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, emulator.Config{})
			r := f.mustPost(t, tc.path, &iosCreds, tc.body, tc.headers...)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			errs := r.errors(t)
			if errs[0]["code"] != "BAD_REQUEST" {
				t.Errorf("code = %v, want BAD_REQUEST", errs[0]["code"])
			}
			if msg := r.firstMessage(t); !strings.Contains(msg, tc.message) {
				t.Errorf("message %q does not contain %q", msg, tc.message)
			}
			if n := len(f.Batches()); n != 0 {
				t.Errorf("%d batches recorded from a rejected request", n)
			}
			if st := f.Stats(); st.Statuses[400] != 1 || st.Feeds[emulator.FeedIOS].Statuses[400] != 1 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	f := start(t, emulator.Config{})
	body := batch("", f.clock.Now(), 1)
	cases := []struct {
		name   string
		creds  *emulator.Credentials
		header []string
		status int
		code   string
	}{
		{"no Authorization", nil, nil, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"not Basic", nil, []string{"Authorization", "Bearer abc"}, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"unknown key", &emulator.Credentials{Key: "nope", Secret: "ios-secret"}, nil, http.StatusForbidden, "FORBIDDEN"},
		{"wrong secret", &emulator.Credentials{Key: iosCreds.Key, Secret: unboundCreds.Secret}, nil, http.StatusForbidden, "FORBIDDEN"},
		{"another feed's secret pair", &emulator.Credentials{Key: unboundCreds.Key, Secret: iosCreds.Secret}, nil, http.StatusForbidden, "FORBIDDEN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.mustPost(t, "/events", tc.creds, body, tc.header...)
			if r.status != tc.status || r.errors(t)[0]["code"] != tc.code {
				t.Fatalf("status %d body %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a Basic challenge")
			}
		})
	}
	st := f.Stats()
	if st.Statuses[401] != 2 || st.Statuses[403] != 3 || len(st.Feeds) != 0 || len(f.Batches()) != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestForbiddenFaults(t *testing.T) {
	t.Run("toggle", func(t *testing.T) {
		f := start(t, emulator.Config{Faults: emulator.Faults{Forbidden: true}})
		body := batch("", f.clock.Now(), 1)
		if r := f.mustPost(t, "/events", &iosCreds, body); r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.status)
		}
		if err := f.SetFaults(emulator.Faults{}); err != nil {
			t.Fatal(err)
		}
		if r := f.mustPost(t, "/events", &iosCreds, body); r.status != http.StatusAccepted {
			t.Fatalf("status %d after the toggle, want 202", r.status)
		}
	})
	t.Run("next N", func(t *testing.T) {
		f := start(t, emulator.Config{Faults: emulator.Faults{ForbiddenNext: 2}})
		body := batch("", f.clock.Now(), 1)
		var got []int
		for i := 0; i < 4; i++ {
			got = append(got, f.mustPost(t, "/events", &iosCreds, body).status)
		}
		if want := []int{403, 403, 202, 202}; !slices.Equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		if f.Faults().ForbiddenNext != 0 {
			t.Fatalf("ForbiddenNext not consumed: %+v", f.Faults())
		}
	})
	t.Run("window on one feed", func(t *testing.T) {
		f := start(t, emulator.Config{})
		now := f.clock.Now()
		if err := f.SetFaults(emulator.Faults{ForbiddenFrom: now, ForbiddenUntil: now.Add(10 * time.Minute), ForbiddenFeeds: []string{emulator.FeedIOS}}); err != nil {
			t.Fatal(err)
		}
		body := batch("", now, 1)
		if r := f.mustPost(t, "/events", &iosCreds, body); r.status != http.StatusForbidden {
			t.Fatalf("ios in window: status %d, want 403", r.status)
		}
		if r := f.mustPost(t, "/events", &unboundCreds, body); r.status != http.StatusAccepted {
			t.Fatalf("unbound in window: status %d, want 202", r.status)
		}
		f.clock.Advance(10 * time.Minute)
		if r := f.mustPost(t, "/events", &iosCreds, body); r.status != http.StatusAccepted {
			t.Fatalf("ios after window: status %d, want 202", r.status)
		}
		if st := f.Stats(); st.Feeds[emulator.FeedIOS].Statuses[403] != 1 || st.Feeds[emulator.FeedIOS].Statuses[202] != 1 {
			t.Fatalf("ios stats = %+v", st.Feeds[emulator.FeedIOS])
		}
	})
	t.Run("bad credentials stay 403 without faults", func(t *testing.T) {
		f := start(t, emulator.Config{Faults: emulator.Faults{ServerErrorRate: 1}})
		r := f.mustPost(t, "/events", &emulator.Credentials{Key: "x", Secret: "y"}, batch("", f.clock.Now(), 1))
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403 (faults apply to valid credentials only)", r.status)
		}
	})
}

func TestRateLimit(t *testing.T) {
	f := start(t, emulator.Config{BatchesPerSecond: 2})
	now := f.clock.Now()
	r := f.mustPost(t, "/bulkevents", &iosCreds, bulk(batch("a", now, 1), batch("b", now, 1)))
	if r.status != http.StatusAccepted || r.header.Get("X-mp-rate-limit-percentage-used") != "100" {
		t.Fatalf("status %d, percentage %q; want 202 and 100", r.status, r.header.Get("X-mp-rate-limit-percentage-used"))
	}
	r = f.mustPost(t, "/events", &iosCreds, batch("c", now, 1))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", r.status)
	}
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
	if got := r.header.Get("X-mp-rate-limit-exceeded"); got != "workspace" {
		t.Errorf("X-mp-rate-limit-exceeded = %q, want workspace", got)
	}
	if r.errors(t)[0]["code"] != "TOO_MANY_REQUESTS" {
		t.Errorf("body %s", r.body)
	}
	// Another feed shares the workspace's bucket.
	if r := f.mustPost(t, "/events", &unboundCreds, batch("c", now, 1)); r.status != http.StatusTooManyRequests {
		t.Fatalf("unbound: status %d, want 429 (one bucket per workspace)", r.status)
	}
	f.clock.Advance(500 * time.Millisecond) // one token back
	if r := f.mustPost(t, "/events", &iosCreds, batch("c", now, 1)); r.status != http.StatusAccepted {
		t.Fatalf("after refill: status %d, want 202", r.status)
	}
	if st := f.Stats(); st.Statuses[429] != 2 || st.Batches != 3 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRateLimitLargeBulkGoesIntoDebt(t *testing.T) {
	f := start(t, emulator.Config{BatchesPerSecond: 10})
	now := f.clock.Now()
	batches := make([][]byte, 100)
	for i := range batches {
		batches[i] = batch(fmt.Sprint(i), now, 1)
	}
	if r := f.mustPost(t, "/bulkevents", &iosCreds, bulk(batches...)); r.status != http.StatusAccepted {
		t.Fatalf("100 batches at 10/s: status %d, want 202", r.status)
	}
	r := f.mustPost(t, "/events", &iosCreds, batch("next", now, 1))
	// 90 batches of debt plus the one asked for, at 10 per second: 9.1 s → 10.
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "10" {
		t.Fatalf("status %d Retry-After %q, want 429 and 10", r.status, r.header.Get("Retry-After"))
	}
}

func TestRateLimitUnlimited(t *testing.T) {
	f := start(t, emulator.Config{BatchesPerSecond: -1})
	now := f.clock.Now()
	batches := make([][]byte, 100)
	for i := range batches {
		batches[i] = batch("", now, 1)
	}
	for i := 0; i < 5; i++ {
		if r := f.mustPost(t, "/bulkevents", &iosCreds, bulk(batches...)); r.status != http.StatusAccepted {
			t.Fatalf("request %d: status %d", i, r.status)
		}
	}
}

func TestServerErrorFault(t *testing.T) {
	f := start(t, emulator.Config{Faults: emulator.Faults{ServerErrorRate: 1}})
	r := f.mustPost(t, "/events", &iosCreds, batch("a", f.clock.Now(), 1))
	if r.status != http.StatusServiceUnavailable || r.errors(t)[0]["code"] != "SERVICE_UNAVAILABLE" {
		t.Fatalf("status %d body %s, want 503", r.status, r.body)
	}
	if len(f.Batches()) != 0 {
		t.Fatal("a 503 recorded its batch")
	}
}

// statuses sends n identical requests and lists the statuses (-1 for a reset).
func statuses(t *testing.T, f *fixture, n int) []int {
	t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		r, err := f.post("/events", &iosCreds, batch("", f.clock.Now(), 1))
		if err != nil {
			out = append(out, -1)
			continue
		}
		out = append(out, r.status)
	}
	return out
}

func TestFaultsAreDeterministic(t *testing.T) {
	faults := emulator.Faults{Seed: 7, ServerErrorRate: 0.3, ResetRate: 0.2}
	a := statuses(t, start(t, emulator.Config{Faults: faults}), 30)
	b := statuses(t, start(t, emulator.Config{Faults: faults}), 30)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
	}
	for _, want := range []int{202, 503, -1} {
		if !slices.Contains(a, want) {
			t.Errorf("seed 7 gives no %d in 30 requests: %v", want, a)
		}
	}
	// SetFaults restarts the sequence.
	f := start(t, emulator.Config{Faults: faults})
	first := statuses(t, f, 10)
	if err := f.SetFaults(faults); err != nil {
		t.Fatal(err)
	}
	if again := statuses(t, f, 10); !slices.Equal(first, again) {
		t.Fatalf("SetFaults did not restart the sequence:\n%v\n%v", first, again)
	}
}

func TestResetFault(t *testing.T) {
	f := start(t, emulator.Config{Faults: emulator.Faults{ResetRate: 1}})
	if _, err := f.post("/events", &iosCreds, batch("a", f.clock.Now(), 1)); err == nil {
		t.Fatal("want a transport error from a reset connection")
	}
	st := f.Stats()
	if st.Resets != 1 || st.Requests != 1 || len(st.Statuses) != 0 || len(f.Batches()) != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestResetAfterAcceptThenRetryIsDeduplicated(t *testing.T) {
	f := start(t, emulator.Config{Faults: emulator.Faults{ResetAfterAcceptRate: 1}})
	body := batch("req-42", f.clock.Now(), 1)
	if _, err := f.post("/events", &iosCreds, body); err == nil {
		t.Fatal("want a transport error")
	}
	if n := len(f.Batches()); n != 1 {
		t.Fatalf("%d batches recorded before the reset, want 1", n)
	}
	if err := f.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	if r := f.mustPost(t, "/events", &iosCreds, body); r.status != http.StatusAccepted {
		t.Fatalf("retry: status %d", r.status)
	}
	st := f.Stats()
	if len(f.Batches()) != 1 || st.Duplicates != 1 || st.Batches != 1 || st.Resets != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestLatency(t *testing.T) {
	const latency = 20 * time.Millisecond
	f := start(t, emulator.Config{Faults: emulator.Faults{Latency: latency}})
	began := time.Now()
	if r := f.mustPost(t, "/events", &iosCreds, batch("", f.clock.Now(), 1)); r.status != http.StatusAccepted {
		t.Fatalf("status %d", r.status)
	}
	// A lower bound only: the answer cannot come before the delay, however slow
	// the machine is.
	if elapsed := time.Since(began); elapsed < latency {
		t.Fatalf("answered after %v, before the %v latency", elapsed, latency)
	}
}

func TestHistorical(t *testing.T) {
	f := start(t, emulator.Config{})
	now := f.clock.Now()
	old := now.Add(-emulator.HistoricalMinAge)
	recent := now.Add(-71 * time.Hour)
	noTimestamp := []byte(`{"environment":"production","events":[{"event_type":"uninstall","data":{}}]}`)

	r := f.mustPost(t, "/bulkevents/historical", &iosCreds, bulk(batch("a", old, 1), batch("b", recent, 2)))
	if r.status != http.StatusBadRequest {
		t.Fatalf("recent event: status %d, want 400", r.status)
	}
	errs := r.errors(t)
	if len(errs) != 2 || !strings.HasPrefix(errs[0]["message"].(string), "[1].events[0].data.timestamp_unixtime_ms: Historical events must be at least 72 hours old") {
		t.Fatalf("errors = %v", errs)
	}
	r = f.mustPost(t, "/bulkevents/historical", &iosCreds, bulk(noTimestamp))
	if r.status != http.StatusBadRequest || !strings.Contains(r.firstMessage(t), `"timestamp_unixtime_ms" is missing`) {
		t.Fatalf("missing timestamp: status %d body %s", r.status, r.body)
	}
	if len(f.Batches()) != 0 {
		t.Fatal("rejected historical batches were recorded")
	}
	// The real-time endpoints accept both.
	if r := f.mustPost(t, "/bulkevents", &iosCreds, bulk(batch("b", recent, 1), noTimestamp)); r.status != http.StatusAccepted {
		t.Fatalf("real-time bulk: status %d body %s", r.status, r.body)
	}
}

func TestDeduplication(t *testing.T) {
	f := start(t, emulator.Config{})
	now := f.clock.Now()
	send := func(creds *emulator.Credentials, path string, body []byte) {
		t.Helper()
		if r := f.mustPost(t, path, creds, body); r.status != http.StatusAccepted {
			t.Fatalf("status %d body %s", r.status, r.body)
		}
	}
	send(&iosCreds, "/events", batch("r1", now, 1))
	send(&iosCreds, "/events", batch("r1", now, 1))                                // duplicate
	send(&unboundCreds, "/events", batch("r1", now, 1))                            // other key: new
	send(&iosCreds, "/bulkevents", bulk(batch("r2", now, 1), batch("r2", now, 1))) // duplicate inside one request
	send(&iosCreds, "/events", batch("", now, 1))                                  // no id: never deduplicated
	send(&iosCreds, "/events", batch("", now, 1))
	send(&iosCreds, "/events", []byte(`{"environment":"production","source_request_id":7}`))
	send(&iosCreds, "/events", []byte(`{"environment":"production","source_request_id":"7"}`)) // a string is another id

	st := f.Stats()
	if got := len(f.Batches()); got != 7 || st.Batches != 7 || st.Duplicates != 2 {
		t.Fatalf("recorded %d, stats %+v; want 7 recorded, 2 duplicates", got, st)
	}
	if st.Feeds[emulator.FeedIOS].Duplicates != 2 || st.Feeds[emulator.FeedUnbound].Batches != 1 {
		t.Fatalf("feeds = %+v", st.Feeds)
	}
	f.Reset()
	send(&iosCreds, "/events", batch("r1", now, 1))
	if len(f.Batches()) != 1 || f.Stats().Duplicates != 0 {
		t.Fatal("Reset did not forget seen ids")
	}
}

func TestBulkWithBatchErrors(t *testing.T) {
	f := start(t, emulator.Config{Faults: emulator.Faults{BatchErrorRate: 1}})
	now := f.clock.Now()
	body := bulk(batch("a", now, 1), []byte(`{"environment":"production","source_request_id":5}`), batch("", now, 1))
	r := f.mustPost(t, "/bulkevents", &iosCreds, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202", r.status)
	}
	var got struct {
		Errors []struct {
			Code            string `json:"code"`
			Message         string `json:"message"`
			BatchIndex      *int   `json:"batch_index"`
			SourceRequestID string `json:"source_request_id"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if len(got.Errors) != 3 {
		t.Fatalf("errors = %+v", got.Errors)
	}
	for i, e := range got.Errors {
		if e.Code != "BATCH_FAILED" || e.BatchIndex == nil || *e.BatchIndex != i || e.Message == "" {
			t.Errorf("error %d = %+v", i, e)
		}
	}
	if got.Errors[0].SourceRequestID != "a" || got.Errors[1].SourceRequestID != "5" || got.Errors[2].SourceRequestID != "" {
		t.Errorf("source_request_ids = %q %q %q", got.Errors[0].SourceRequestID, got.Errors[1].SourceRequestID, got.Errors[2].SourceRequestID)
	}
	if st := f.Stats(); len(f.Batches()) != 0 || st.FailedBatches != 3 || st.Batches != 0 {
		t.Fatalf("stats = %+v", st)
	}
	// The single-batch endpoint has no partial failure.
	if r := f.mustPost(t, "/events", &iosCreds, batch("s", now, 1)); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Fatalf("/events: status %d body %q", r.status, r.body)
	}
	// Failed batches were not remembered: the retry is recorded.
	if err := f.SetFaults(emulator.Faults{}); err != nil {
		t.Fatal(err)
	}
	if r := f.mustPost(t, "/bulkevents", &iosCreds, body); r.status != http.StatusAccepted || len(r.body) != 0 {
		t.Fatalf("retry: status %d body %q", r.status, r.body)
	}
	if st := f.Stats(); st.Batches != 4 || st.Duplicates != 0 {
		t.Fatalf("stats after retry = %+v", st)
	}
}

func TestBulkWithSomeBatchErrors(t *testing.T) {
	f := start(t, emulator.Config{Faults: emulator.Faults{Seed: 3, BatchErrorRate: 0.5}})
	now := f.clock.Now()
	batches := make([][]byte, 20)
	for i := range batches {
		batches[i] = batch(fmt.Sprint(i), now, 1)
	}
	r := f.mustPost(t, "/bulkevents", &iosCreds, bulk(batches...))
	var body struct {
		Errors []struct {
			BatchIndex int `json:"batch_index"`
		} `json:"errors"`
	}
	if r.status != http.StatusAccepted || json.Unmarshal(r.body, &body) != nil {
		t.Fatalf("status %d body %q", r.status, r.body)
	}
	failed := map[int]bool{}
	for _, e := range body.Errors {
		failed[e.BatchIndex] = true
	}
	var recorded []int
	for _, rec := range f.Batches() {
		var b struct {
			ID string `json:"source_request_id"`
		}
		if err := json.Unmarshal(rec.Batch, &b); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscan(b.ID, &i)
		recorded = append(recorded, i)
	}
	if len(failed) == 0 || len(recorded) == 0 || len(failed)+len(recorded) != 20 {
		t.Fatalf("failed %v, recorded %v", failed, recorded)
	}
	for _, i := range recorded {
		if failed[i] {
			t.Errorf("batch %d both failed and recorded", i)
		}
	}
}

func TestInspectionEndpoints(t *testing.T) {
	f := start(t, emulator.Config{})
	now := f.clock.Now()
	f.mustPost(t, "/events", &iosCreds, batch("i", now, 1))
	f.mustPost(t, "/events", &unboundCreds, batch("u", now, 2))
	base := strings.TrimSuffix(f.URL, "/v2")
	get := func(path string) []byte {
		t.Helper()
		resp, err := f.client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	var recs []struct {
		Feed  string          `json:"feed"`
		Batch json.RawMessage `json:"batch"`
	}
	if err := json.Unmarshal(get("/_emulator/batches"), &recs); err != nil || len(recs) != 2 || recs[0].Feed != "ios" || recs[1].Feed != "unbound" {
		t.Fatalf("batches = %+v (%v)", recs, err)
	}
	if !bytes.Equal(recs[1].Batch, batch("u", now, 2)) {
		t.Fatalf("batch bytes changed: %s", recs[1].Batch)
	}
	if err := json.Unmarshal(get("/_emulator/batches?feed=unbound"), &recs); err != nil || len(recs) != 1 || recs[0].Feed != "unbound" {
		t.Fatalf("filtered batches = %+v (%v)", recs, err)
	}
	var st emulator.Stats
	if err := json.Unmarshal(get("/_emulator/stats"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Requests != 2 || st.Batches != 2 || st.Events != 3 || st.Statuses[202] != 2 || st.Feeds["unbound"].Events != 2 {
		t.Fatalf("stats = %+v", st)
	}

	req, _ := http.NewRequest(http.MethodPut, base+"/_emulator/faults", strings.NewReader(`{"seed":9,"server_error_rate":1,"latency":"5ms","forbidden_feeds":["ios"]}`))
	resp, err := f.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT faults: %v %v", err, resp)
	}
	resp.Body.Close()
	if got := f.Faults(); got.Seed != 9 || got.ServerErrorRate != 1 || got.Latency != 5*time.Millisecond || !slices.Equal(got.ForbiddenFeeds, []string{"ios"}) {
		t.Fatalf("faults = %+v", got)
	}
	var faults emulator.Faults
	if err := json.Unmarshal(get("/_emulator/faults"), &faults); err != nil || faults.Latency != 5*time.Millisecond {
		t.Fatalf("GET faults = %+v (%v)", faults, err)
	}
	req, _ = http.NewRequest(http.MethodPut, base+"/_emulator/faults", strings.NewReader(`{"reset_rate":2}`))
	if resp, err := f.client.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT invalid faults: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}

	resp, err = f.client.Post(base+"/_emulator/reset", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset: %v %v", err, resp)
	}
	resp.Body.Close()
	if string(get("/_emulator/batches")) != "[]" || f.Stats().Requests != 0 {
		t.Fatal("reset left state behind")
	}
}

func TestRouting(t *testing.T) {
	f := start(t, emulator.Config{})
	resp, err := f.client.Get(f.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET /v2/events: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if r := f.mustPost(t, "/identify", &iosCreds, []byte(`{}`)); r.status != http.StatusNotFound {
		t.Fatalf("unknown path: %d", r.status)
	}
	if f.Stats().Requests != 0 {
		t.Fatal("routing errors are not API requests")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]emulator.Config{
		"shared key": {Feeds: map[string]emulator.Credentials{"ios": iosCreds, "web": {Key: iosCreds.Key, Secret: "s"}}},
		"empty key":  {Feeds: map[string]emulator.Credentials{"ios": {Secret: "s"}}},
		"bad rate":   {Faults: emulator.Faults{ServerErrorRate: 1.5}},
		"negative":   {Faults: emulator.Faults{Latency: -time.Second}},
	}
	for name, cfg := range cases {
		if _, err := emulator.New(cfg); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetFaults(emulator.Faults{BatchErrorRate: -0.1}); err == nil {
		t.Error("SetFaults accepted a negative rate")
	}
}

// TestConcurrentUse runs requests while faults change, for the race detector and
// for exact counting under concurrency.
func TestConcurrentUse(t *testing.T) {
	f := start(t, emulator.Config{BatchesPerSecond: -1})
	now := f.clock.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				r, err := f.post("/events", &iosCreds, batch(fmt.Sprint(i), now, 1))
				if err != nil || r.status != http.StatusAccepted {
					t.Errorf("request: %v %d", err, r.status)
					return
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		_ = f.SetFaults(emulator.Faults{Seed: int64(i)})
		_ = f.Stats()
		_ = f.Batches()
	}
	wg.Wait()
	st := f.Stats()
	if st.Batches != 25 || st.Duplicates != 75 || st.Requests != 100 {
		t.Fatalf("stats = %+v; want 25 recorded and 75 duplicates", st)
	}
}

func BenchmarkServeBatch(b *testing.B) {
	e, err := emulator.New(emulator.Config{
		Feeds:            map[string]emulator.Credentials{emulator.FeedIOS: iosCreds},
		BatchesPerSecond: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	body := batch("", time.Now(), 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v2/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(iosCreds.Key, iosCreds.Secret)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkServeBulk(b *testing.B) {
	e, err := emulator.New(emulator.Config{
		Feeds:            map[string]emulator.Credentials{emulator.FeedIOS: iosCreds},
		BatchesPerSecond: -1,
	})
	if err != nil {
		b.Fatal(err)
	}
	batches := make([][]byte, 100)
	for i := range batches {
		batches[i] = batch("", time.Now(), 1)
	}
	body := bulk(batches...)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v2/bulkevents", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(iosCreds.Key, iosCreds.Secret)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatal(w.Code)
		}
	}
}

// KeepBatches bounds what is kept for inspection: the latest n, in arrival
// order, or none; counters and deduplication still cover every batch.
func TestKeepBatches(t *testing.T) {
	for _, keep := range []int{3, -1} {
		f := start(t, emulator.Config{KeepBatches: keep, BatchesPerSecond: -1})
		now := f.clock.Now()
		for i := 0; i < 7; i++ {
			if r := f.mustPost(t, "/events", &iosCreds, batch(fmt.Sprintf("r%d", i), now, 1)); r.status != http.StatusAccepted {
				t.Fatalf("status %d body %s", r.status, r.body)
			}
		}
		// A duplicate of a batch no longer kept is still a duplicate.
		if r := f.mustPost(t, "/events", &iosCreds, batch("r0", now, 1)); r.status != http.StatusAccepted {
			t.Fatalf("status %d", r.status)
		}
		st := f.Stats()
		if st.Batches != 7 || st.Duplicates != 1 {
			t.Fatalf("keep %d: stats %+v, want 7 batches and 1 duplicate", keep, st)
		}
		got := f.Batches()
		if keep < 0 {
			if len(got) != 0 {
				t.Fatalf("keep %d: %d batches kept", keep, len(got))
			}
			continue
		}
		if len(got) != keep {
			t.Fatalf("keep %d: %d batches kept", keep, len(got))
		}
		for i, r := range got {
			if want := fmt.Sprintf(`"source_request_id":"r%d"`, 7-keep+i); !strings.Contains(string(r.Batch), want) {
				t.Fatalf("keep %d: batch %d is %s, want %s", keep, i, r.Batch, want)
			}
		}
	}
}
