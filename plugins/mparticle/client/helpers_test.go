package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the packing tests.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// recentMS and oldMS are event times on either side of the historical age.
var (
	recentMS = testNow.Add(-time.Hour).UnixMilli()
	oldMS    = testNow.Add(-40 * 24 * time.Hour).UnixMilli()
)

// eventID returns a deterministic UUID for test event n.
func eventID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

// testBatch returns a mapped batch for user holding one custom event per id,
// shaped as the mapping processor writes them.
func testBatch(user string, tsMS int64, ids ...string) []byte {
	var sb strings.Builder
	sb.WriteString(`{"schema_version":2,"environment":"production","user_identities":{"customer_id":`)
	sb.WriteString(quote(user))
	sb.WriteString(`},"source_request_id":"mapped-`)
	sb.WriteString(user)
	sb.WriteString(`","events":[`)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"event_type":"custom_event","data":{"event_name":"Email Opens","custom_event_type":"other","timestamp_unixtime_ms":%d,"source_message_id":%s,"custom_attributes":{"campaign_name":"Spring","source_request_id":%s}}}`,
			tsMS, quote(id), quote(id))
	}
	sb.WriteString("]}")
	return []byte(sb.String())
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// testCreds are the credentials of the test feeds; the secrets must never
// show up in logs or dry-run output.
var testCreds = map[string]Credentials{
	"ios":     {Key: "ios-key", Secret: "ios-SECRET-value"},
	"android": {Key: "android-key", Secret: "android-SECRET-value"},
	"web":     {Key: "web-key", Secret: "web-SECRET-value"},
	"unbound": {Key: "unbound-key", Secret: "unbound-SECRET-value"},
}

// newTestClient builds a client with fast retries for tests.
func newTestClient(t testing.TB, url string, edit func(*Config)) (*Client, *recordingMetrics, *recordingLogger) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Credentials = testCreds
	cfg.InitialInterval = time.Millisecond
	cfg.MaxInterval = 5 * time.Millisecond
	cfg.Timeout = 5 * time.Second
	cfg.Now = func() time.Time { return testNow }
	m := &recordingMetrics{}
	l := &recordingLogger{}
	cfg.Metrics = m
	cfg.Logger = l
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c, m, l
}

// recordingMetrics keeps every count it is given.
type recordingMetrics struct {
	mu             sync.Mutex
	requests       map[string]int // "feed status"
	batches        map[string]int // feed
	events         map[string]int // feed
	retries        map[string]int // "feed cause"
	throttled      map[string]time.Duration
	failed         map[string]int // "feed reason"
	eventsPerBatch []int
}

func (m *recordingMetrics) init() {
	if m.requests == nil {
		m.requests = map[string]int{}
		m.batches = map[string]int{}
		m.events = map[string]int{}
		m.retries = map[string]int{}
		m.throttled = map[string]time.Duration{}
		m.failed = map[string]int{}
	}
}

func (m *recordingMetrics) Request(feed string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.requests[fmt.Sprintf("%s %d", feed, status)]++
}

func (m *recordingMetrics) BatchAccepted(feed string, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.batches[feed]++
	m.events[feed] += events
	m.eventsPerBatch = append(m.eventsPerBatch, events)
}

func (m *recordingMetrics) Retry(feed, cause string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.retries[feed+" "+cause]++
}

func (m *recordingMetrics) Throttled(feed string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.throttled[feed] += d
}

func (m *recordingMetrics) EventsFailed(feed, reason string, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	m.failed[feed+" "+reason] += events
}

func (m *recordingMetrics) get(f func(m *recordingMetrics) int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	return f(m)
}

// recordingLogger keeps every line it is given.
type recordingLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recordingLogger) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *recordingLogger) Debugf(format string, v ...any) { l.add("DEBUG", format, v...) }
func (l *recordingLogger) Warnf(format string, v ...any)  { l.add("WARN", format, v...) }
func (l *recordingLogger) Errorf(format string, v ...any) { l.add("ERROR", format, v...) }

// assertNoLeaks fails when any log line holds a secret, a key, a user id or
// an event body.
func (l *recordingLogger) assertNoLeaks(t *testing.T, forbidden ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	forbidden = append(forbidden, "SECRET", "-key", "Basic ", "campaign_name", "custom_attributes")
	for _, line := range l.lines {
		for _, f := range forbidden {
			if strings.Contains(line, f) {
				t.Errorf("log line leaks %q: %s", f, line)
			}
		}
	}
}

// failedIDs returns, sorted, the event ids of items whose error is non-nil,
// with their reasons; ids[i] lists the event ids of items[i].
func failedIDs(errs []error, ids [][]string) map[string]string {
	out := map[string]string{}
	for i, err := range errs {
		if err == nil {
			continue
		}
		for _, id := range ids[i] {
			out[id] = Reason(err)
		}
	}
	return out
}

// decodeBulk splits a bulk request body into batches for assertions.
func decodeBulk(t testing.TB, body []byte) []map[string]json.RawMessage {
	t.Helper()
	var batches []map[string]json.RawMessage
	if err := json.Unmarshal(body, &batches); err != nil {
		t.Fatalf("request body is not a JSON array of batches: %v", err)
	}
	return batches
}

// batchEventIDs returns the source_message_ids of a decoded batch.
func batchEventIDs(t testing.TB, b map[string]json.RawMessage) []string {
	t.Helper()
	var evs []struct {
		Data struct {
			SourceMessageID string `json:"source_message_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b["events"], &evs); err != nil {
		t.Fatalf("events: %v", err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.Data.SourceMessageID
	}
	return ids
}
