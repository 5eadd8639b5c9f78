package mparticle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/hamba/avro/v2/ocf"

	// The file input and output, the switch output.
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"

	// The braze_currents scanner.
	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// ctmTestMetrics is a metrics exporter keeping counter totals, so that a
// stream test reads the processor's counters as a metrics backend would.
type ctmTestMetrics struct {
	mu     sync.Mutex
	counts map[string]int64
}

type ctmTestCounter struct {
	m   *ctmTestMetrics
	key string
}

func (c ctmTestCounter) Incr(n int64) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	c.m.counts[c.key] += n
}

type ctmTestNoop struct{}

func (ctmTestNoop) Timing(int64) {}
func (ctmTestNoop) Set(int64)    {}

func (m *ctmTestMetrics) NewCounterCtor(name string, keys ...string) service.MetricsExporterCounterCtor {
	return func(values ...string) service.MetricsExporterCounter {
		return ctmTestCounter{m, ctmMetricKey(name, keys, values)}
	}
}

func (m *ctmTestMetrics) NewTimerCtor(string, ...string) service.MetricsExporterTimerCtor {
	return func(...string) service.MetricsExporterTimer { return ctmTestNoop{} }
}

func (m *ctmTestMetrics) NewGaugeCtor(string, ...string) service.MetricsExporterGaugeCtor {
	return func(...string) service.MetricsExporterGauge { return ctmTestNoop{} }
}

func (m *ctmTestMetrics) Close(context.Context) error { return nil }

// ctmMetricKey spells a counter as name{key=value,...}, labels in order.
func ctmMetricKey(name string, keys, values []string) string {
	if len(keys) == 0 {
		return name
	}
	parts := make([]string, len(keys))
	for i := range keys {
		parts[i] = keys[i] + "=" + values[i]
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// sum adds up every series of a counter whose labels include all of labels
// ("key=value"); Benthos adds labels of its own (label, path).
func (m *ctmTestMetrics) sum(name string, labels ...string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, v := range m.counts {
		series, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(","+strings.TrimSuffix(series, "}")+",", ","+l+",") {
				match = false
			}
		}
		if match {
			n += v
		}
	}
	return n
}

func (m *ctmTestMetrics) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.counts))
	for k, v := range m.counts {
		keys = append(keys, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n")
}

// ctmTestStream is a stream under construction with the test metrics
// exporter and a logfmt log file, both read after the run.
type ctmTestStream struct {
	b       *service.StreamBuilder
	metrics *ctmTestMetrics
	logPath string
}

func newCtmTestStream(t *testing.T) *ctmTestStream {
	t.Helper()
	env := service.NewEnvironment()
	s := &ctmTestStream{metrics: &ctmTestMetrics{counts: map[string]int64{}}, logPath: filepath.Join(t.TempDir(), "benthos.log")}
	err := env.RegisterMetricsExporter("ctm_test_metrics", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Logger) (service.MetricsExporter, error) { return s.metrics, nil })
	if err != nil {
		t.Fatal(err)
	}
	s.b = env.NewStreamBuilder()
	return s
}

// run builds the stream and runs it until its input is exhausted. A stream still running after
// the timeout fails the test: with a file input, that is an event looping.
func (s *ctmTestStream) run(t *testing.T) string {
	t.Helper()
	stream := s.build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		_ = stream.StopWithin(5 * time.Second)
		t.Fatalf("the stream did not end by itself (%v): a message loops\nmetrics:\n%s\nlogs:\n%s", err, s.metrics, s.logs(t))
	}
	return s.logs(t)
}

// build sets metrics and logging (after any SetYAML, which replaces them)
// and builds the stream.
func (s *ctmTestStream) build(t *testing.T) *service.Stream {
	t.Helper()
	if err := s.b.SetMetricsYAML(`ctm_test_metrics: {}`); err != nil {
		t.Fatal(err)
	}
	if err := s.b.SetLoggerYAML(fmt.Sprintf("level: INFO\nformat: logfmt\nadd_timestamp: false\nfile:\n  path: %q\n", s.logPath)); err != nil {
		t.Fatal(err)
	}
	stream, err := s.b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

func (s *ctmTestStream) logs(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(s.logPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(raw)
}

// ctmTestExportEvent is one event of a test export: its type, and the
// fields that differ from the catalog's defaults.
type ctmTestExportEvent struct {
	eventType string
	fields    map[string]any
}

// ctmWriteExport writes the events as Avro objects under dir in Braze's key
// layout, one object per type, each with its catalog writer schema: what the
// braze_currents scanner reads from a real export. Fields take a neutral
// value of their type, optional ones null, unless the event sets them.
func ctmWriteExport(t *testing.T, dir string, events []ctmTestExportEvent) {
	t.Helper()
	byType := map[string][]map[string]any{}
	var order []string
	for _, e := range events {
		et, ok := schemas.Lookup(e.eventType)
		if !ok {
			t.Fatalf("type %s is not in the catalog", e.eventType)
		}
		rec := map[string]any{}
		for _, f := range et.Fields {
			switch {
			case f.Optional:
				rec[f.Name] = nil
			case f.Type == schemas.String:
				rec[f.Name] = "x"
			case f.Type == schemas.Int:
				rec[f.Name] = 0
			case f.Type == schemas.Long:
				rec[f.Name] = int64(0)
			case f.Type == schemas.Boolean:
				rec[f.Name] = false
			case f.Type == schemas.Float:
				rec[f.Name] = float32(0)
			default:
				rec[f.Name] = []any{}
			}
		}
		for k, v := range e.fields {
			if _, ok := et.Field(k); !ok {
				t.Fatalf("%s has no field %s", e.eventType, k)
			}
			rec[k] = v
		}
		if byType[e.eventType] == nil {
			order = append(order, e.eventType)
		}
		byType[e.eventType] = append(byType[e.eventType], rec)
	}
	for i, typ := range order {
		et, _ := schemas.Lookup(typ)
		var buf bytes.Buffer
		enc, err := ocf.NewEncoder(et.WriterSchema("S3"), &buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range byType[typ] {
			if err := enc.Encode(rec); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		name := "dataexport.prod-03.S3.integration.5f3a9c1e2b7d4a0012345678"
		key := filepath.Join(dir, "currents", name, "event_type="+typ, "date=2026-11-01-10", "512", "us-03",
			fmt.Sprintf("%s+0+%d.avro", name, i))
		if err := os.MkdirAll(filepath.Dir(key), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// ctmRecent is an event time an hour ago: recent, valid, not historical.
func ctmRecent() int { return int(time.Now().Add(-time.Hour).Unix()) }

// ctmUnmappableExport is an export with good and unmappable events of one
// type, and the outcome the default options must give each.
func ctmUnmappableExport(t *testing.T) (dir string, mapped int, dropped map[string]int64) {
	t.Helper()
	dir = t.TempDir()
	ev := func(id string, fields map[string]any) ctmTestExportEvent {
		f := map[string]any{"id": id, "user_id": "5f3a9c1e2b7d4a0012345678", "external_user_id": "user-" + id, "time": ctmRecent()}
		for k, v := range fields {
			f[k] = v
		}
		return ctmTestExportEvent{"users.canvas.Entry", f}
	}
	ctmWriteExport(t, dir, []ctmTestExportEvent{
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd01", nil),
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd02", map[string]any{"time": 0}),
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd03", nil),
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd04", map[string]any{"external_user_id": "user-\xff\xfe-5"}),
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd05", map[string]any{"external_user_id": nil}),
		ev("", nil), // no id: no deduplication key
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd07", map[string]any{"time": -86400}),
		ev("0d2f378f-a910-4ca9-b77e-82348f9bbd08", nil),
	})
	return dir, 3, map[string]int64{"invalid_time": 2, "invalid_identity": 1, "no_identity": 1, "missing_field": 1}
}

// An unmappable event read by the file input is dropped and counted by
// default, whatever the output does with errored messages: nothing loops,
// nothing vanishes without a count, a WARN line names it, and the totals
// logged on close add up.
func TestProcessorUnmappableFileInput(t *testing.T) {
	dir, mapped, dropped := ctmUnmappableExport(t)
	s := newCtmTestStream(t)
	if err := s.b.AddInputYAML(fmt.Sprintf("file:\n  paths: [ %q ]\n  scanner:\n    braze_currents: {}\n", dir+"/**/*.avro")); err != nil {
		t.Fatal(err)
	}
	if err := s.b.AddProcessorYAML(`currents_to_mparticle: {}`); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	// As the mparticle output does, refuse a message that arrives errored.
	if err := s.b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		if err := m.GetError(); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ctmMeta(m, "mparticle_user"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	logs := s.run(t)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != mapped {
		t.Errorf("delivered %v, want the %d mappable events", got, mapped)
	}
	m := s.metrics
	if n := m.sum("currents_mparticle_events_mapped"); n != int64(mapped) {
		t.Errorf("mapped = %d, want %d\n%s", n, mapped, m)
	}
	for reason, want := range dropped {
		if n := m.sum("currents_mparticle_events_dropped", "event_type=users.canvas.Entry", "reason="+reason); n != want {
			t.Errorf("dropped %s = %d, want %d\n%s", reason, n, want, m)
		}
	}
	if n := m.sum("currents_mparticle_events_failed"); n != 0 {
		t.Errorf("failed = %d, want 0: unmappable events are dropped by default\n%s", n, m)
	}
	// Each unmappable event is named once at WARN, with its type, id and reason.
	for _, want := range []string{
		`0d2f378f-a910-4ca9-b77e-82348f9bbd02`, `0d2f378f-a910-4ca9-b77e-82348f9bbd04`, `0d2f378f-a910-4ca9-b77e-82348f9bbd07`,
	} {
		line := ctmLogLine(logs, want)
		if !strings.Contains(line, "level=warning") || !strings.Contains(line, "users.canvas.Entry") || !strings.Contains(line, "reason") {
			t.Errorf("no WARN line naming event %s with its type and reason:\n%s", want, logs)
		}
	}
	if !strings.Contains(logs, "invalid_identity") || strings.Contains(logs, "\xff") {
		t.Errorf("the invalid identity is not reported, or its bytes reached the log:\n%s", logs)
	}
	total := `3 events mapped (unbound: 3), 5 dropped (invalid_identity: 1, invalid_time: 2, missing_field: 1, no_identity: 1), 0 failed`
	if !strings.Contains(logs, total) {
		t.Errorf("totals line %q missing:\n%s", total, logs)
	}
}

// ctmLogLine returns the first log line containing s.
func ctmLogLine(logs, s string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// With unmappable: fail the same events reach the output errored, with
// their input and a reason, counted as failed: a switch on errored() writes
// them to a dead letter, and the run still ends.
func TestProcessorUnmappableFail(t *testing.T) {
	dir, mapped, dropped := ctmUnmappableExport(t)
	dead := filepath.Join(t.TempDir(), "dead.jsonl")
	s := newCtmTestStream(t)
	err := s.b.SetYAML(fmt.Sprintf(`
input:
  file:
    paths: [ %q ]
    scanner:
      braze_currents: {}
pipeline:
  processors:
    - currents_to_mparticle:
        unmappable: fail
output:
  switch:
    cases:
      - check: errored()
        output:
          file:
            path: %q
            codec: lines
          processors:
            - mapping: |
                root.reason = error()
                root.id = @currents_id
      - output:
          drop: {}
`, dir+"/**/*.avro", dead))
	if err != nil {
		t.Fatal(err)
	}
	s.run(t)
	raw, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	unmappable := dropped["invalid_time"] + dropped["invalid_identity"] + dropped["missing_field"]
	if int64(len(lines)) != unmappable {
		t.Fatalf("dead letter has %d lines, want %d:\n%s", len(lines), unmappable, raw)
	}
	for _, want := range []string{`"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02"`, "invalid_time", "field time", "field external_user_id", "not valid UTF-8"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("dead letter lacks %s:\n%s", want, raw)
		}
	}
	m := s.metrics
	for reason, want := range dropped {
		if reason == "no_identity" {
			continue // dropped by missing_identity, not unmappable
		}
		if n := m.sum("currents_mparticle_events_failed", "event_type=users.canvas.Entry", "reason="+reason); n != want {
			t.Errorf("failed %s = %d, want %d\n%s", reason, n, want, m)
		}
	}
	if n := m.sum("currents_mparticle_events_mapped"); n != int64(mapped) {
		t.Errorf("mapped = %d, want %d", n, mapped)
	}
}

// ctmSpecExample is one example of the processor's spec.
type ctmSpecExample struct {
	Title   string `json:"title"`
	Summary string `json:"summary"`
	Config  string `json:"config"`
}

func ctmSpecExamples(t *testing.T) []ctmSpecExample {
	t.Helper()
	var examples []ctmSpecExample
	found := false
	service.GlobalEnvironment().WalkProcessors(func(name string, view *service.ConfigView) {
		if name != "currents_to_mparticle" {
			return
		}
		found = true
		raw, err := view.FormatJSON()
		if err != nil {
			t.Fatal(err)
		}
		var spec struct {
			Examples []ctmSpecExample `json:"examples"`
		}
		if err := json.Unmarshal(raw, &spec); err != nil {
			t.Fatal(err)
		}
		examples = spec.Examples
	})
	if !found || len(examples) == 0 {
		t.Fatal("currents_to_mparticle is not registered or has no example")
	}
	return examples
}

// The events of the examples' export, by what they exercise.
const (
	ctmExKnown    = "5ad85c10-e0ba-4e38-962a-ad5d7b31f601" // an email open of a known user
	ctmExAnon     = "5ad85c10-e0ba-4e38-962a-ad5d7b31f602" // an email open without external_user_id
	ctmExNoTime   = "5ad85c10-e0ba-4e38-962a-ad5d7b31f603" // a canvas entry with time 0: unmappable
	ctmExWebhook  = "5ad85c10-e0ba-4e38-962a-ad5d7b31f604" // a webhook send
	ctmExUninst   = "5ad85c10-e0ba-4e38-962a-ad5d7b31f605" // an uninstall of the examples' iOS app
	ctmExIOSApp   = "3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7"
	ctmExBrazeID  = "5f3a9c1e2b7d4a0012345678"
	ctmExEmail    = "jane@example.com"
	ctmExEmailSHA = "8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"
)

// ctmExampleRun is what an example did with the examples' export.
type ctmExampleRun struct {
	dir     string                    // the working directory it ran in
	sent    map[string]map[string]any // the batch of each event sent (dry run), by event id
	feeds   map[string]string         // the feed of each event sent, by event id
	metrics *ctmTestMetrics
	logs    string
}

// ctmExampleChecks assert, for each example of the spec by title, what its
// summary promises. An example without a check fails TestProcessorSpecExamples.
var ctmExampleChecks = map[string]func(t *testing.T, r ctmExampleRun){
	"Braze's hosted connector": func(t *testing.T, r ctmExampleRun) {
		ctmExpectSent(t, r, ctmExKnown, ctmExWebhook, ctmExUninst)
		if ids := r.sent[ctmExKnown]["user_identities"].(map[string]any); ids["customer_id"] != "user-known" || ids["email"] != ctmExEmail {
			t.Errorf("identities %v", ids)
		}
		if r.feeds[ctmExUninst] != "ios" {
			t.Errorf("uninstall on feed %q, want ios (app_platforms)", r.feeds[ctmExUninst])
		}
		// As Braze's connector: no identity, dropped; no usable time, dropped. Both counted.
		for _, reason := range []string{"no_identity", "invalid_time"} {
			if n := r.metrics.sum("currents_mparticle_events_dropped", "reason="+reason); n != 1 {
				t.Errorf("dropped %s = %d, want 1\n%s", reason, n, r.metrics)
			}
		}
	},
	"Anonymous users and a dead letter": func(t *testing.T, r ctmExampleRun) {
		ctmExpectSent(t, r, ctmExKnown, ctmExAnon, ctmExUninst)
		if ids := r.sent[ctmExAnon]["user_identities"].(map[string]any); ids["other"] != ctmExBrazeID || ids["email"] != ctmExEmailSHA {
			t.Errorf("anonymous user's identities %v, want user_id as other and the email hashed", ids)
		}
		if ids := r.sent[ctmExKnown]["user_identities"].(map[string]any); ids["email"] != ctmExEmailSHA {
			t.Errorf("email identity %v, want it hashed", ids["email"])
		}
		if n := r.metrics.sum("currents_mparticle_events_dropped", "reason=excluded"); n != 1 {
			t.Errorf("webhook sends excluded = %d, want 1", n)
		}
		raw, err := os.ReadFile(filepath.Join(r.dir, "dead-letter", "users.canvas.Entry.jsonl"))
		if err != nil {
			t.Fatalf("no dead letter written: %v\nlogs:\n%s", err, r.logs)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		if len(lines) != 1 {
			t.Fatalf("dead letter has %d lines, want the one unmappable event:\n%s", len(lines), raw)
		}
		var dl struct {
			Reason string         `json:"reason"`
			Event  map[string]any `json:"event"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &dl); err != nil {
			t.Fatalf("dead letter line %s: %v", lines[0], err)
		}
		if !strings.Contains(dl.Reason, "invalid_time") || !strings.Contains(dl.Reason, "field time") || dl.Event["id"] != ctmExNoTime {
			t.Errorf("dead letter %+v, want the event with time 0 and its reason", dl)
		}
	},
}

func ctmExpectSent(t *testing.T, r ctmExampleRun, ids ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		if r.sent[id] == nil {
			t.Errorf("event %s not sent", id)
		}
	}
	for id := range r.sent {
		if !want[id] {
			t.Errorf("event %s sent, want only %v", id, ids)
		}
	}
}

// TestProcessorSpecExamples runs every example of the processor's spec on a
// small export read by the file input (in place of the example's input), its
// mparticle outputs in dry-run mode, in a scratch working directory, and
// checks the outcome its summary promises.
func TestProcessorSpecExamples(t *testing.T) {
	for _, ex := range ctmSpecExamples(t) {
		t.Run(ex.Title, func(t *testing.T) {
			check, ok := ctmExampleChecks[ex.Title]
			if !ok {
				t.Fatalf("example %q has no check in ctmExampleChecks", ex.Title)
			}
			check(t, ctmRunExample(t, ex.Config))
		})
	}
}

func ctmRunExample(t *testing.T, config string) ctmExampleRun {
	t.Helper()
	work := t.TempDir()
	t.Chdir(work) // the examples' relative paths land here
	export := filepath.Join(work, "export")
	email := func(id, ext string) ctmTestExportEvent {
		f := map[string]any{"id": id, "user_id": ctmExBrazeID, "time": ctmRecent(), "email_address": ctmExEmail}
		if ext != "" {
			f["external_user_id"] = ext
		}
		return ctmTestExportEvent{"users.messages.email.Open", f}
	}
	ctmWriteExport(t, export, []ctmTestExportEvent{
		email(ctmExKnown, "user-known"),
		email(ctmExAnon, ""),
		{"users.canvas.Entry", map[string]any{"id": ctmExNoTime, "user_id": ctmExBrazeID, "external_user_id": "user-known", "time": 0}},
		{"users.messages.webhook.Send", map[string]any{"id": ctmExWebhook, "user_id": ctmExBrazeID, "external_user_id": "user-known", "time": ctmRecent()}},
		{"users.behaviors.Uninstall", map[string]any{"id": ctmExUninst, "user_id": ctmExBrazeID, "external_user_id": "user-known", "time": ctmRecent(), "app_id": ctmExIOSApp}},
	})

	// The example's input is replaced by the file input on the export; its
	// mparticle outputs write their requests instead of sending them.
	requests := filepath.Join(work, "requests.jsonl")
	var out []string
	skipping := false
	for _, line := range strings.Split(config, "\n") {
		if strings.HasPrefix(line, "input:") {
			skipping = true
			continue
		}
		if skipping && line != "" && !strings.HasPrefix(line, " ") {
			skipping = false
		}
		if skipping {
			continue
		}
		out = append(out, line)
		if trimmed := strings.TrimLeft(line, " "); trimmed == "mparticle:" {
			indent := strings.Repeat(" ", len(line)-len(trimmed)+2)
			out = append(out, indent+"dry_run: true", fmt.Sprintf("%sdry_run_path: %q", indent, requests))
		}
	}
	yaml := fmt.Sprintf("input:\n  file:\n    paths: [ %q ]\n    scanner:\n      braze_currents: {}\n", export+"/**/*.avro") + strings.Join(out, "\n")

	s := newCtmTestStream(t)
	s.b.SetEnvVarLookupFunc(func(name string) (string, bool) { return "test-" + strings.ToLower(name), true })
	if err := s.b.SetYAML(yaml); err != nil {
		t.Fatalf("example config: %v\n%s", err, yaml)
	}
	r := ctmExampleRun{dir: work, sent: map[string]map[string]any{}, feeds: map[string]string{}, metrics: s.metrics}
	r.logs = s.run(t)

	raw, err := os.ReadFile(requests)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var req struct {
			Feed string           `json:"feed"`
			Body []map[string]any `json:"body"`
		}
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			t.Fatalf("dry-run line %s: %v", line, err)
		}
		for _, b := range req.Body {
			for _, e := range b["events"].([]any) {
				id := e.(map[string]any)["data"].(map[string]any)["source_message_id"].(string)
				r.sent[id], r.feeds[id] = b, req.Feed
			}
		}
	}
	return r
}

// A flood of unmappable events does not flood the log: ctmWarnBurst lines
// name events, each line is bounded however long the id, and the totals on
// close count the events left out.
func TestProcessorUnmappableWarnLimit(t *testing.T) {
	s := newCtmTestStream(t)
	produce, err := s.b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.b.AddProcessorYAML(`currents_to_mparticle: {}`); err != nil {
		t.Fatal(err)
	}
	if err := s.b.AddConsumerFunc(func(context.Context, *service.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	const n = 25
	var batch service.MessageBatch
	for i := 0; i < n; i++ {
		batch = append(batch, ctmTestEvent("users.canvas.Entry", map[string]any{"time": 0, "id": strings.Repeat("x", 10000) + fmt.Sprint(i)}))
	}
	batch = append(batch, ctmTestEvent("", nil)) // not an event at all
	stream := s.build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stream.Run(ctx) }()
	if err := produce(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := stream.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	logs := s.logs(t)

	var named int
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "dropped an unmappable Currents event") {
			named++
			if len(l) > 4*ctmWarnMaxLen+400 {
				t.Errorf("WARN line of %d bytes: the id is not cut", len(l))
			}
		}
	}
	if named != ctmWarnBurst {
		t.Errorf("%d WARN lines name an event, want %d:\n%s", named, ctmWarnBurst, logs)
	}
	want := fmt.Sprintf("0 events mapped, %d dropped (bad_message: 1, invalid_time: %d) (%d unmappable without a WARN line of their own), 0 failed", n+1, n, n+1-ctmWarnBurst)
	if !strings.Contains(logs, want) {
		t.Errorf("totals %q missing:\n%s", want, logs)
	}
	if got := s.metrics.sum("currents_mparticle_events_dropped", "reason=invalid_time"); got != n {
		t.Errorf("dropped invalid_time = %d, want %d", got, n)
	}
}
