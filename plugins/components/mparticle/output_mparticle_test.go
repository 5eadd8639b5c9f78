package mparticle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	// The file output used by the spec examples.
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	// The fallback output and the local rate limit.
	_ "github.com/benthosdev/benthos/v4/public/components/pure"

	"github.com/currents-mparticle/currents-mparticle/internal/redelivery"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// mpOutputTestFeeds are the emulator's and the output's credentials.
var mpOutputTestFeeds = map[string]emulator.Credentials{
	"ios":     {Key: "ios-key", Secret: "ios-SECRET"},
	"android": {Key: "android-key", Secret: "android-SECRET"},
	"unbound": {Key: "unbound-key", Secret: "unbound-SECRET"},
}

// mpOutputTestID is a deterministic UUID for test event n.
func mpOutputTestID(n int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
}

// mpOutputTestBatch is a mapped batch for user with one event.
func mpOutputTestBatch(user, id string) []byte {
	return []byte(fmt.Sprintf(`{"schema_version":2,"environment":"production","user_identities":{"customer_id":%q},`+
		`"events":[{"event_type":"custom_event","data":{"event_name":"Email Opens","custom_event_type":"other",`+
		`"timestamp_unixtime_ms":%d,"source_message_id":%q,"custom_attributes":{"campaign_name":"Spring"}}}]}`,
		user, time.Now().Add(-time.Minute).UnixMilli(), id))
}

// mpOutputTestMessage is one message to inject: its body and feed metadata
// (no metadata when feed is empty), and the event id to look for.
type mpOutputTestMessage struct {
	feed string
	body []byte
	id   string
}

// mpOutputTestCaptured is a message that reached the dead-letter output.
type mpOutputTestCaptured struct {
	body          string
	fallbackError string
}

// mpOutputTestCapture is a batch output that keeps what it receives.
type mpOutputTestCapture struct {
	mu   sync.Mutex
	msgs []mpOutputTestCaptured
}

func (c *mpOutputTestCapture) Connect(context.Context) error { return nil }
func (c *mpOutputTestCapture) Close(context.Context) error   { return nil }
func (c *mpOutputTestCapture) WriteBatch(_ context.Context, b service.MessageBatch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range b {
		raw, _ := m.AsBytes()
		e, _ := m.MetaGet("fallback_error")
		c.msgs = append(c.msgs, mpOutputTestCaptured{body: string(raw), fallbackError: e})
	}
	return nil
}

// mpOutputTestLogs collects the stream's log lines.
type mpOutputTestLogs struct {
	mu    sync.Mutex
	lines []string
}

func (l *mpOutputTestLogs) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *mpOutputTestLogs) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintln(v...))
}

func (l *mpOutputTestLogs) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// mpOutputTestRun runs a stream that injects msgs into the output
// configured by outputYAML, where the placeholder CAPTURE names a
// dead-letter output keeping what it gets. With asBatch the messages form
// one input transaction; otherwise each message is its own transaction, sent
// concurrently, as most inputs produce them. It returns the acknowledgement
// error of each transaction, the captured messages and the logs.
func mpOutputTestRun(t *testing.T, outputYAML, resourcesYAML string, msgs []mpOutputTestMessage, asBatch bool) ([]error, []mpOutputTestCaptured, string) {
	t.Helper()
	env := service.NewEnvironment()
	capture := &mpOutputTestCapture{}
	err := env.RegisterBatchOutput("mp_output_test_capture", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			return capture, service.BatchPolicy{}, 1, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	b := env.NewStreamBuilder()
	logs := &mpOutputTestLogs{}
	b.SetPrintLogger(logs)
	var produceBatch service.MessageBatchHandlerFunc
	var produce service.MessageHandlerFunc
	if asBatch {
		produceBatch, err = b.AddBatchProducerFunc()
	} else {
		produce, err = b.AddProducerFunc()
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(strings.ReplaceAll(outputYAML, "CAPTURE", "mp_output_test_capture: {}")); err != nil {
		t.Fatalf("output config: %v", err)
	}
	if resourcesYAML != "" {
		if err := b.AddResourcesYAML(resourcesYAML); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- stream.Run(context.Background()) }()

	batch := make(service.MessageBatch, len(msgs))
	for i, m := range msgs {
		batch[i] = service.NewMessage(m.body)
		if m.feed != "" {
			batch[i].MetaSetMut("mparticle_feed", m.feed)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acks []error
	if asBatch {
		acks = []error{produceBatch(ctx, batch)}
	} else {
		acks = make([]error, len(batch))
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				acks[i] = produce(ctx, batch[i])
				for acks[i] != nil && mpOutputTestRetryNacks > 0 && ctx.Err() == nil {
					time.Sleep(mpOutputTestRetryNacks)
					acks[i] = produce(ctx, batch[i])
				}
			}()
		}
		wg.Wait()
	}

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := stream.Stop(stopCtx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	<-runErr
	capture.mu.Lock()
	defer capture.mu.Unlock()
	return acks, slices.Clone(capture.msgs), logs.text()
}

// mpOutputTestNoErrors fails the test on any acknowledgement error.
func mpOutputTestNoErrors(t *testing.T, acks []error) {
	t.Helper()
	for i, err := range acks {
		if err != nil {
			t.Fatalf("transaction %d nacked: %v", i, err)
		}
	}
}

// mpOutputTestRetryNacks, when set, makes mpOutputTestRun send a nacked
// message again after this pause, as the braze_currents input does.
var mpOutputTestRetryNacks time.Duration

// mpOutputTestFallbackRetrying wraps an mparticle output config in a
// fallback whose dead letter refuses feed_paused failures (they go back to
// the input, to be sent again), as the shipped configs do.
func mpOutputTestFallbackRetrying(inner string) string {
	return "fallback:\n  - " + strings.TrimPrefix(mpOutputTestIndent(inner, "    "), "    ") + `
  - switch:
      cases:
        - check: '@fallback_error.has_prefix("mparticle feed_paused")'
          output:
            reject: '${! @fallback_error }'
        - output:
            CAPTURE
`
}

// mpOutputTestFallback wraps an mparticle output config in a fallback to the
// capturing output.
func mpOutputTestFallback(inner string) string {
	return "fallback:\n  - " + strings.TrimPrefix(mpOutputTestIndent(inner, "    "), "    ") + "\n  - CAPTURE\n"
}

// mpOutputTestEmulator starts an emulator with the test feeds.
func mpOutputTestEmulator(t *testing.T, faults emulator.Faults) *emulator.Server {
	t.Helper()
	srv := emulator.NewServer(emulator.Config{Feeds: mpOutputTestFeeds, BatchesPerSecond: -1, Faults: faults})
	t.Cleanup(srv.Close)
	return srv
}

// mpOutputTestRecorded returns the sorted event ids the emulator recorded,
// each with its feed.
func mpOutputTestRecorded(t *testing.T, srv *emulator.Server) []string {
	t.Helper()
	var out []string
	for _, rec := range srv.Batches() {
		var b struct {
			Events []struct {
				Data struct {
					SourceMessageID string `json:"source_message_id"`
				} `json:"data"`
			} `json:"events"`
		}
		if err := json.Unmarshal(rec.Batch, &b); err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Events {
			out = append(out, rec.Feed+" "+e.Data.SourceMessageID)
		}
	}
	sort.Strings(out)
	return out
}

// mpOutputTestConfig is the mparticle output config used by the tests.
func mpOutputTestConfig(url, extra string) string {
	return fmt.Sprintf(`
mparticle:
  url: %s
  feeds:
    ios: { key: ios-key, secret: ios-SECRET }
    android: { key: android-key, secret: android-SECRET }
    unbound: { key: unbound-key, secret: unbound-SECRET }
  backoff: { initial_interval: 1ms, max_interval: 10ms }
%s`, url, extra)
}

// mpOutputTestIndent indents a config block to sit inside a fallback list.
func mpOutputTestIndent(s, prefix string) string {
	lines := strings.Split(strings.TrimPrefix(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

func mpOutputTestAssertNoLeaks(t *testing.T, logs string) {
	t.Helper()
	for _, secret := range []string{"SECRET", "ios-key", "unbound-key", "Basic ", "user-", "campaign_name"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

func TestMPOutputDeliversAndDeadLetters(t *testing.T) {
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	bad := strings.Replace(string(mpOutputTestBatch("user-bad", mpOutputTestID(3))), mpOutputTestID(3), "not-a-uuid", 1)
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"unbound", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
		{"ios", []byte(bad), "not-a-uuid"},
		{"ios", []byte(`{"events":[`), ""},
		{"tvos", mpOutputTestBatch("user-5", mpOutputTestID(5)), mpOutputTestID(5)},
		{"", mpOutputTestBatch("user-6", mpOutputTestID(6)), mpOutputTestID(6)},
		{"ANDROID", mpOutputTestBatch("user-7", mpOutputTestID(7)), mpOutputTestID(7)},
	}
	acks, captured, logs := mpOutputTestRun(t, mpOutputTestFallback(mpOutputTestConfig(srv.URL, "")), "", msgs, false)
	mpOutputTestNoErrors(t, acks) // with a fallback every message is acked

	want := []string{"android " + mpOutputTestID(7), "ios " + mpOutputTestID(1), "unbound " + mpOutputTestID(2)}
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	var dead []string
	for _, c := range captured {
		var reason string
		switch {
		case strings.Contains(c.body, "not-a-uuid"):
			reason = "bad-uuid"
		case strings.Contains(c.body, mpOutputTestID(5)):
			reason = "tvos"
		case strings.Contains(c.body, mpOutputTestID(6)):
			reason = "no-feed"
		case c.body == `{"events":[`:
			reason = "broken-json"
		default:
			reason = "unexpected " + c.body
		}
		dead = append(dead, reason+" => "+strings.SplitN(c.fallbackError, " (", 2)[0])
	}
	sort.Strings(dead)
	wantDead := []string{
		"bad-uuid => mparticle bad_request",
		"broken-json => mparticle invalid_batch",
		"no-feed => mparticle feed_not_configured",
		"tvos => mparticle feed_not_configured",
	}
	if !slices.Equal(dead, wantDead) {
		t.Errorf("dead-lettered %q, want %q", dead, wantDead)
	}
	mpOutputTestAssertNoLeaks(t, logs)
}

func TestMPOutputFallbackFeedCarriesUnconfiguredFeeds(t *testing.T) {
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	msgs := []mpOutputTestMessage{
		{"tvos", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	acks, captured, _ := mpOutputTestRun(t, mpOutputTestConfig(srv.URL, "  fallback_feed: unbound"), "", msgs, false)
	mpOutputTestNoErrors(t, acks)
	if len(captured) != 0 {
		t.Fatalf("captured %v", captured)
	}
	want := []string{"unbound " + mpOutputTestID(1), "unbound " + mpOutputTestID(2)}
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestMPOutputForbiddenFeedIsDeadLetteredAfterWindow(t *testing.T) {
	srv := mpOutputTestEmulator(t, emulator.Faults{Forbidden: true, ForbiddenFeeds: []string{"unbound"}})
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"unbound", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
		{"unbound", mpOutputTestBatch("user-3", mpOutputTestID(3)), mpOutputTestID(3)},
	}
	conf := mpOutputTestFallbackRetrying(mpOutputTestConfig(srv.URL, "  auth_failure_window: 300ms"))
	mpOutputTestRetryNacks = 20 * time.Millisecond
	defer func() { mpOutputTestRetryNacks = 0 }()
	acks, captured, logs := mpOutputTestRun(t, conf, "", msgs, false)
	mpOutputTestNoErrors(t, acks)
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, []string{"ios " + mpOutputTestID(1)}) {
		t.Errorf("delivered %v", got)
	}
	if len(captured) != 2 {
		t.Fatalf("dead-lettered %d messages, want 2", len(captured))
	}
	for _, c := range captured {
		if !strings.HasPrefix(c.fallbackError, "mparticle auth_window_expired") {
			t.Errorf("fallback_error %q", c.fallbackError)
		}
		if !strings.Contains(c.body, mpOutputTestID(2)) && !strings.Contains(c.body, mpOutputTestID(3)) {
			t.Errorf("unexpected dead letter %s", c.body)
		}
	}
	mpOutputTestAssertNoLeaks(t, logs)
}

func TestMPOutputWithoutFallbackNacksFailures(t *testing.T) {
	// A permanent failure without a fallback is returned to the input
	// (nack), never acknowledged as if delivered.
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	bad := strings.Replace(string(mpOutputTestBatch("user-bad", mpOutputTestID(3))), mpOutputTestID(3), "not-a-uuid", 1)
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", []byte(bad), "not-a-uuid"},
	}
	acks, _, _ := mpOutputTestRun(t, mpOutputTestConfig(srv.URL, ""), "", msgs, false)
	if acks[0] != nil {
		t.Errorf("the delivered message was nacked: %v", acks[0])
	}
	if acks[1] == nil || !strings.Contains(acks[1].Error(), "mparticle bad_request") {
		t.Fatalf("ack error %v, want the bad_request failure", acks[1])
	}
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, []string{"ios " + mpOutputTestID(1)}) {
		t.Errorf("delivered %v", got)
	}
}

func TestMPOutputRetriesTransientFaults(t *testing.T) {
	srv := mpOutputTestEmulator(t, emulator.Faults{Seed: 4, ServerErrorRate: 0.5, ResetRate: 0.2, ResetAfterAcceptRate: 0.2})
	var msgs []mpOutputTestMessage
	var want []string
	for i := 1; i <= 50; i++ {
		feed := []string{"ios", "android", "unbound"}[i%3]
		msgs = append(msgs, mpOutputTestMessage{feed, mpOutputTestBatch(fmt.Sprintf("user-%d", i%7), mpOutputTestID(i)), mpOutputTestID(i)})
		want = append(want, feed+" "+mpOutputTestID(i))
	}
	sort.Strings(want)
	res := `
rate_limit_resources:
  - label: mp_limit
    local:
      count: 1000
      interval: 1s
`
	acks, captured, _ := mpOutputTestRun(t, mpOutputTestConfig(srv.URL, "  rate_limit: mp_limit"), res, msgs, false)
	mpOutputTestNoErrors(t, acks)
	if len(captured) != 0 {
		t.Fatalf("captured %d", len(captured))
	}
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %d events, want %d:\n%v", len(got), len(want), got)
	}
}

func TestMPOutputDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "requests.jsonl")
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(2)), mpOutputTestID(2)},
		{"unbound", mpOutputTestBatch("user-3", mpOutputTestID(3)), mpOutputTestID(3)},
	}
	// No server at all: the port is closed, so any request would fail.
	conf := mpOutputTestConfig("http://127.0.0.1:1/v2", fmt.Sprintf("  dry_run: true\n  dry_run_path: %s\n  environment: development", path))
	acks, _, logs := mpOutputTestRun(t, conf, "", msgs, true)
	mpOutputTestNoErrors(t, acks)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var feeds []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			URL     string            `json:"url"`
			Feed    string            `json:"feed"`
			Headers map[string]string `json:"headers"`
			Body    []struct {
				Environment string            `json:"environment"`
				Events      []json.RawMessage `json:"events"`
			} `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if line.Headers["Authorization"] != "Basic [redacted]" || line.URL != "http://127.0.0.1:1/v2/bulkevents" {
			t.Errorf("line header/url: %v %s", line.Headers, line.URL)
		}
		for _, b := range line.Body {
			feeds = append(feeds, fmt.Sprintf("%s:%d:%s", line.Feed, len(b.Events), b.Environment))
		}
		if strings.Contains(sc.Text(), "SECRET") {
			t.Error("dry-run line contains a secret")
		}
	}
	sort.Strings(feeds)
	if want := []string{"ios:2:development", "unbound:1:development"}; !slices.Equal(feeds, want) {
		t.Errorf("batches %v, want %v (user-1's events packed together)", feeds, want)
	}
	for _, want := range []string{"feed ios: 1 requests, 1 batches, 2 events", "feed unbound: 1 requests, 1 batches, 1 events"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack the dry-run summary %q", want)
		}
	}
	mpOutputTestAssertNoLeaks(t, logs)

	// A second run starts the file afresh: it holds that run's requests
	// only, not twice as many.
	before, _ := os.ReadFile(path)
	acks, _, _ = mpOutputTestRun(t, conf, "", msgs, true)
	mpOutputTestNoErrors(t, acks)
	after, _ := os.ReadFile(path)
	if n, m := bytes.Count(before, []byte("\n")), bytes.Count(after, []byte("\n")); n == 0 || m != n {
		t.Errorf("dry-run file has %d lines after a second run, %d after the first", m, n)
	}
}

func TestMPOutputConfigErrors(t *testing.T) {
	feeds := "\n  feeds:\n    unbound: { key: k, secret: s }"
	tests := []struct {
		name, conf, want string
	}{
		{"no url nor pod", "mparticle:\n  timeout: 5s" + feeds, "set url or pod"},
		{"url and pod", "mparticle:\n  url: https://s2s.example.test/v2\n  pod: eu1" + feeds, "not both"},
		{"no feeds", "mparticle:\n  pod: eu1\n  feeds: {}", "no feed has credentials"},
		{"every feed empty", "mparticle:\n  pod: eu1\n  feeds:\n    ios: { key: '', secret: '' }\n    all: { key: '', secret: '' }", "no feed has credentials"},
		{"empty secret", "mparticle:\n  pod: eu1\n  feeds:\n    ios: { key: k, secret: '' }", "set both key and secret"},
		{"empty key of all", "mparticle:\n  pod: eu1\n  feeds:\n    all: { key: '', secret: s }", "feeds.all: set both"},
		{"fallback feed without credentials", "mparticle:\n  pod: eu1\n  fallback_feed: unbound\n  feeds:\n    ios: { key: k, secret: s }", "has no credentials"},
		{"unknown pod", "mparticle:\n  pod: eu9" + feeds, "want one of"},
		{"empty url and pod", "mparticle:\n  url: ''\n  pod: ''" + feeds, "set url or pod"},
		{"missing rate limit", "mparticle:\n  pod: eu1\n  rate_limit: nope" + feeds, "was not found"},
		{"zero window", "mparticle:\n  pod: eu1\n  auth_failure_window: 0s" + feeds, "must be positive"},
		{"pace 0", "mparticle:\n  pod: eu1\n  pace_threshold: 0" + feeds, "between 0 and 100"},
		{"credentials in url", "mparticle:\n  url: https://k:s@s2s.example.test/v2" + feeds, "must not carry credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := mpOutputSpec().ParseYAML(strings.TrimPrefix(strings.ReplaceAll(tt.conf, "\n  ", "\n"), "mparticle:\n"), nil)
			if err == nil {
				_, err = mpOutputFromParsed(conf, service.MockResources(), 1)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "k:s@") {
				t.Errorf("error leaks credentials: %v", err)
			}
		})
	}
}

func TestMPOutputOptionalFeedsAndSharedCredentials(t *testing.T) {
	// android is named with empty credentials (an unset optional variable):
	// not an error; its messages fail as feed_not_configured, counted, and
	// reach the dead letter. With feeds.all, every feed without its own
	// credentials sends with the shared pair instead.
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"android", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	base := fmt.Sprintf("mparticle:\n  url: %s\n  pod: ''\n  feeds:\n    ios: { key: ios-key, secret: ios-SECRET }\n    android: { key: '', secret: '' }\n", srv.URL)
	acks, captured, _ := mpOutputTestRun(t, mpOutputTestFallback(base), "", msgs, false)
	mpOutputTestNoErrors(t, acks)
	if got, want := mpOutputTestRecorded(t, srv), []string{"ios " + mpOutputTestID(1)}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if len(captured) != 1 || !strings.HasPrefix(captured[0].fallbackError, "mparticle feed_not_configured (feed \"android\")") {
		t.Errorf("dead-lettered %+v, want the android message as feed_not_configured", captured)
	}

	srv2 := mpOutputTestEmulator(t, emulator.Faults{})
	shared := fmt.Sprintf("mparticle:\n  url: %s\n  feeds:\n    all: { key: unbound-key, secret: unbound-SECRET }\n", srv2.URL)
	acks, captured, _ = mpOutputTestRun(t, mpOutputTestFallback(shared), "", msgs, false)
	mpOutputTestNoErrors(t, acks)
	// The emulator names a feed by the credentials that signed the batch.
	if got, want := mpOutputTestRecorded(t, srv2), []string{"unbound " + mpOutputTestID(1), "unbound " + mpOutputTestID(2)}; !slices.Equal(got, want) || len(captured) != 0 {
		t.Errorf("with feeds.all: delivered %v (want %v), dead-lettered %+v", got, want, captured)
	}
}

func TestMPOutputPods(t *testing.T) {
	for pod, want := range map[string]string{"us1": "s2s.us1.", "us2": "s2s.us2.", "eu1": "s2s.eu1.", "au1": "s2s.au1."} {
		conf, err := mpOutputSpec().ParseYAML("pod: "+pod+"\nfeeds:\n  unbound: { key: k, secret: s }", nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := mpOutputConfigFromParsed(conf)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.client.URL, want) || !strings.HasSuffix(c.client.URL, "/v2") || !strings.HasPrefix(c.client.URL, "https://") {
			t.Errorf("pod %s: URL %s", pod, c.client.URL)
		}
	}
}

func TestMPOutputMetricLabelsStayBounded(t *testing.T) {
	m := &mpOutputMetrics{feeds: map[string]bool{"ios": true}}
	for feed, want := range map[string]string{"ios": "ios", "tvos": "unknown", "": "unknown", "user@example.com": "unknown"} {
		if got := m.label(feed); got != want {
			t.Errorf("label(%q) = %q, want %q", feed, got, want)
		}
	}
}

func TestMPOutputDeadLettersExactlyUnderTheDefaults(t *testing.T) {
	// An input batch of several messages with the output's defaults: only
	// the failed message reaches the dead letter, with its own reason. (With
	// Benthos's output batching, the whole transaction was dead-lettered
	// under the bad message's error, delivered messages included.)
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	bad := strings.Replace(string(mpOutputTestBatch("user-bad", mpOutputTestID(3))), mpOutputTestID(3), "not-a-uuid", 1)
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", []byte(bad), "not-a-uuid"},
		{"unbound", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	acks, captured, _ := mpOutputTestRun(t, mpOutputTestFallback(mpOutputTestConfig(srv.URL, "")), "", msgs, true)
	mpOutputTestNoErrors(t, acks)
	want := []string{"ios " + mpOutputTestID(1), "unbound " + mpOutputTestID(2)}
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if len(captured) != 1 || !strings.Contains(captured[0].body, "not-a-uuid") ||
		!strings.HasPrefix(captured[0].fallbackError, "mparticle bad_request") {
		t.Errorf("dead-lettered %+v, want only the invalid message", captured)
	}
}

func TestMPOutputDefaultBatching(t *testing.T) {
	conf, err := mpOutputSpec().ParseYAML("pod: eu1\nfeeds:\n  unbound: { key: k, secret: s }", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := conf.FieldBatchPolicy(mpOutputFieldBatching)
	if err != nil {
		t.Fatal(err)
	}
	if !mpOutputBatchingOff(p) {
		t.Errorf("default batching %+v, want off", p)
	}
	if n, _ := conf.FieldMaxInFlight(); n != mpOutputDefaultMaxInFlight {
		t.Errorf("default max_in_flight %d, want %d", n, mpOutputDefaultMaxInFlight)
	}
}

func TestMPOutputRefusesBenthosBatching(t *testing.T) {
	// Any batching merges transactions (inexact dead letters), and a count
	// without a period held a one-pass run's last messages for ever.
	for _, batching := range []string{"{ count: 100 }", "{ count: 10, period: 1s }", "{ period: 20ms }", "{ byte_size: 1000 }", "{ count: 1 }"} {
		b := service.NewStreamBuilder()
		b.SetPrintLogger(&mpOutputTestLogs{})
		err := b.SetYAML("input:\n  generate:\n    mapping: 'root = {}'\noutput:\n" +
			mpOutputTestIndent(mpOutputTestConfig("http://127.0.0.1:1/v2", "  batching: "+batching), "  "))
		if err == nil {
			var stream *service.Stream
			if stream, err = b.Build(); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = stream.Run(ctx)
				cancel()
			}
		}
		if err == nil || !strings.Contains(err.Error(), "dead letters could not be exact") {
			t.Errorf("batching %s: got %v, want a refusal", batching, err)
		}
	}
}

func TestMPOutputFailsErroredMessagesWithTheirReason(t *testing.T) {
	// A message a processor flagged (e.g. an event that could not be
	// mapped) is not sent: it goes to the dead letter with its own error.
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	out := mpOutputTestFallback(mpOutputTestConfig(srv.URL, `processors:
  - mapping: |
      root = this
      root = if content().string().contains("user-bad") { throw("cannot map event 7: bad time") }
`))
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", mpOutputTestBatch("user-bad", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	acks, captured, _ := mpOutputTestRun(t, out, "", msgs, true)
	mpOutputTestNoErrors(t, acks)
	if got, want := mpOutputTestRecorded(t, srv), []string{"ios " + mpOutputTestID(1)}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if len(captured) != 1 || !strings.Contains(captured[0].body, "user-bad") ||
		!strings.HasPrefix(captured[0].fallbackError, "mparticle upstream_error") ||
		!strings.Contains(captured[0].fallbackError, "bad time") {
		t.Errorf("dead-lettered %+v, want the flagged message with its reason", captured)
	}
}

func TestMPOutputPausedFeedHoldsNothing(t *testing.T) {
	// android answers 403 for the whole test; max_in_flight is small and
	// every transaction holds an android message. The android messages come
	// back to the input at once (feed_paused, refused by the dead letter),
	// so the other feeds' messages are all delivered while the outage lasts,
	// however many transactions there are.
	srv := mpOutputTestEmulator(t, emulator.Faults{Forbidden: true, ForbiddenFeeds: []string{emulator.FeedAndroid}})
	conf := mpOutputTestConfig(srv.URL, "  max_in_flight: 2\n  auth_failure_window: 1h\n  group_window: 0s")
	produce := mpOutputTestProducer(t, strings.ReplaceAll(mpOutputTestFallbackRetrying(conf), "CAPTURE", "drop: {}"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var want []string
	for tx := range 20 {
		batch := service.MessageBatch{}
		for k := range 3 {
			feed := []string{"android", "ios", "unbound"}[k]
			id := mpOutputTestID(tx*10 + k)
			// As the braze_currents input marks its messages: it reads
			// refused events again by itself.
			m := service.NewMessage(mpOutputTestBatch(fmt.Sprintf("user-%d-%d", tx, k), id)).WithContext(redelivery.Mark(context.Background()))
			m.MetaSetMut("mparticle_feed", feed)
			batch = append(batch, m)
			if feed != "android" {
				want = append(want, feed+" "+id)
			}
		}
		// The android message comes back (the braze_currents input maps
		// the batch error to it and reads only it again later).
		if err := produce(ctx, batch); err == nil || !strings.Contains(err.Error(), "mparticle feed_paused") {
			t.Fatalf("transaction %d: ack %v, want the android message back as feed_paused", tx, err)
		}
	}
	sort.Strings(want)
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %d events, want the %d ios and unbound ones", len(got), len(want))
	}
}

// mpOutputTestProducer runs a stream into output (YAML) until the test
// ends and returns its producer: each call is one input transaction, and
// returns its acknowledgement.
func mpOutputTestProducer(t *testing.T, output string) service.MessageBatchHandlerFunc {
	t.Helper()
	b := service.NewStreamBuilder()
	b.SetPrintLogger(&mpOutputTestLogs{})
	produce, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(output); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = stream.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = stream.Stop(ctx)
	})
	return produce
}

// A message from an input that does not read refused events again (any
// stock input) is held while its feed is paused, and delivered once the
// credentials work again: handed back, it would wait in the input's memory,
// and a one-pass run can end without it.
func TestMPOutputPausedFeedHoldsAStockInputsMessages(t *testing.T) {
	forbiddenUntil := time.Now().Add(3 * time.Second)
	srv := mpOutputTestEmulator(t, emulator.Faults{ForbiddenFeeds: []string{emulator.FeedAndroid}, ForbiddenUntil: forbiddenUntil})
	conf := mpOutputTestConfig(srv.URL, "  auth_failure_window: 1h\n  group_window: 0s")
	produce := mpOutputTestProducer(t, conf)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var batch service.MessageBatch
	var want []string
	for k, feed := range []string{"android", "ios", "android"} {
		id := mpOutputTestID(k)
		m := service.NewMessage(mpOutputTestBatch(fmt.Sprintf("user-%d", k), id))
		m.MetaSetMut("mparticle_feed", feed)
		batch = append(batch, m)
		want = append(want, feed+" "+id)
	}
	if err := produce(ctx, batch); err != nil {
		t.Fatalf("ack %v, want every message delivered once android is back", err)
	}
	if early := time.Until(forbiddenUntil); early > 0 {
		t.Errorf("acknowledged %v before android's credentials worked again", early)
	}
	sort.Strings(want)
	if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestMPOutputSpecExamplesLint(t *testing.T) {
	var spec []byte
	service.NewEnvironment().WalkOutputs(func(name string, view *service.ConfigView) {
		if name == "mparticle" {
			spec, _ = view.FormatJSON()
		}
	})
	var parsed struct {
		Examples []struct {
			Title  string `json:"title"`
			Config string `json:"config"`
		} `json:"examples"`
	}
	if err := json.Unmarshal(spec, &parsed); err != nil {
		t.Fatalf("spec JSON: %v", err)
	}
	if len(parsed.Examples) == 0 {
		t.Fatal("the spec has no examples")
	}
	for _, ex := range parsed.Examples {
		b := service.NewStreamBuilder()
		b.SetEnvVarLookupFunc(func(string) (string, bool) { return "example", true })
		if err := b.SetYAML("input:\n  generate:\n    mapping: 'root = {}'\n" + ex.Config); err != nil {
			t.Errorf("example %q does not lint: %v", ex.Title, err)
		}
	}
}

func TestMPOutputLedgerDeliversEachEventOnce(t *testing.T) {
	// The same event twice in one input batch (a Braze duplicate) and the
	// whole batch again in a second run (a crash, a replay): mParticle gets
	// each event once. The ledger lives in a file cache, as Redis would
	// across restarts.
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	dir := t.TempDir()
	conf := mpOutputTestConfig(srv.URL, `  ledger:
    cache: delivered
    key: '${! json("events.0.data.source_message_id") }'`)
	resources := fmt.Sprintf("cache_resources:\n  - label: delivered\n    file: { directory: %s }\n", dir)
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"unbound", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	want := []string{"ios " + mpOutputTestID(1), "unbound " + mpOutputTestID(2)}
	for run := 1; run <= 2; run++ {
		acks, captured, _ := mpOutputTestRun(t, mpOutputTestFallback(conf), resources, msgs, true)
		mpOutputTestNoErrors(t, acks)
		if len(captured) != 0 {
			t.Fatalf("run %d dead-lettered %+v", run, captured)
		}
		if got := mpOutputTestRecorded(t, srv); !slices.Equal(got, want) {
			t.Fatalf("after run %d the emulator holds %v, want %v once each", run, got, want)
		}
	}
	if n := mpOutputTestDeliveredKeys(t, dir); n != 2 {
		t.Errorf("the ledger holds %d delivered ids, want 2", n)
	}
}

// mpOutputTestDeliveredKeys counts the ids a file-cache ledger records as
// delivered (besides them it keeps batches under way).
func mpOutputTestDeliveredKeys(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); string(b) == "d" {
			n++
		}
	}
	return n
}

func TestMPOutputLedgerRecordsOnlyAccepted(t *testing.T) {
	// A batch mParticle refuses is dead-lettered and not recorded: once the
	// cause is fixed, replaying it delivers it.
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	srv.SetFaults(emulator.Faults{BatchErrorRate: 1})
	dir := t.TempDir()
	conf := mpOutputTestConfig(srv.URL, `  ledger:
    cache: delivered
    key: '${! json("events.0.data.source_message_id") }'`)
	resources := fmt.Sprintf("cache_resources:\n  - label: delivered\n    file: { directory: %s }\n", dir)
	msgs := []mpOutputTestMessage{{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)}}
	_, captured, _ := mpOutputTestRun(t, mpOutputTestFallback(conf), resources, msgs, true)
	if len(captured) != 1 {
		t.Fatalf("dead-lettered %d, want the refused message", len(captured))
	}
	if mpOutputTestDeliveredKeys(t, dir) != 0 {
		t.Fatalf("a refused event was recorded as delivered")
	}
	srv.SetFaults(emulator.Faults{})
	_, captured, _ = mpOutputTestRun(t, mpOutputTestFallback(conf), resources, msgs, true)
	if got := mpOutputTestRecorded(t, srv); len(captured) != 0 || !slices.Equal(got, []string{"ios " + mpOutputTestID(1)}) {
		t.Fatalf("replay: delivered %v, dead-lettered %d", got, len(captured))
	}
}

func TestMPOutputLedgerSendsMessagesWithoutIDUntracked(t *testing.T) {
	// Messages without the id metadata the default ledger.key reads are sent
	// without the ledger, as its description says: not all under one id
	// ("null", what the interpolation of a missing key gives), which made
	// every such message after the first a "duplicate".
	srv := mpOutputTestEmulator(t, emulator.Faults{})
	conf := mpOutputTestConfig(srv.URL, "  ledger: { cache: delivered }")
	resources := "cache_resources:\n  - label: delivered\n    memory: {}\n"
	msgs := []mpOutputTestMessage{
		{"ios", mpOutputTestBatch("user-1", mpOutputTestID(1)), mpOutputTestID(1)},
		{"ios", mpOutputTestBatch("user-2", mpOutputTestID(2)), mpOutputTestID(2)},
	}
	acks, captured, _ := mpOutputTestRun(t, mpOutputTestFallback(conf), resources, msgs, true)
	mpOutputTestNoErrors(t, acks)
	want := []string{"ios " + mpOutputTestID(1), "ios " + mpOutputTestID(2)}
	if got := mpOutputTestRecorded(t, srv); len(captured) != 0 || !slices.Equal(got, want) {
		t.Fatalf("delivered %v (dead-lettered %d), want %v", got, len(captured), want)
	}
}
