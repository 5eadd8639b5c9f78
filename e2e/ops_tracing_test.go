package e2e

// The mparticle output's OpenTelemetry spans, under Benthos's tracer config:
// an in-memory exporter registered as a tracer plugin, a stream built in
// process with the project's components, the emulator answering some 503s.

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"

	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/currents"
	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/mparticle"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

func TestMParticleRequestSpans(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 600, Users: 100, Hours: 1, Seed: 7})
	emu, err := emulator.Start("127.0.0.1:0", emulator.Config{Feeds: feedCreds, BatchesPerSecond: -1,
		Faults: emulator.Faults{Seed: 7, ServerErrorRate: 0.3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)

	// A span recorder, not an in-memory exporter: the stream shuts its
	// tracer provider down when it ends, and the exporter forgets its spans then.
	spans := tracetest.NewSpanRecorder()
	env := service.NewEnvironment()
	if err := env.RegisterOtelTracerProvider("in_memory", service.NewConfigSpec(), func(*service.ParsedConfig) (trace.TracerProvider, error) {
		return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)), nil
	}); err != nil {
		t.Fatal(err)
	}
	sb := env.NewStreamBuilder()
	if err := sb.SetYAML(fmt.Sprintf(`
input:
  braze_currents:
    url: %q
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: %q
    feeds:
%s    backoff: { initial_interval: 10ms, max_interval: 50ms }
tracer:
  in_memory: {}
logger: { level: ERROR }
`, "file://"+filepath.ToSlash(exp.dir), emu.URL, feedsYAML("      "))); err != nil {
		t.Fatal(err)
	}
	stream, err := sb.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		t.Fatal(err)
	}

	stats := emu.Stats()
	var requests []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "mparticle.request" {
			requests = append(requests, s)
		}
	}
	if len(requests) != stats.Requests {
		t.Fatalf("%d mparticle.request spans for %d requests the emulator received", len(requests), stats.Requests)
	}
	byStatus, retries, events, feeds := map[int64]int{}, 0, int64(0), map[string]bool{}
	for _, s := range requests {
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span kind %v, want client", s.SpanKind())
		}
		a := map[string]any{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.AsInterface()
		}
		for _, k := range []string{"mparticle.feed", "mparticle.endpoint", "mparticle.batches", "mparticle.events", "mparticle.attempt", "mparticle.retry", "http.response.status_code"} {
			if _, ok := a[k]; !ok {
				t.Fatalf("span without %s: %v", k, a)
			}
		}
		status := a["http.response.status_code"].(int64)
		byStatus[status]++
		if a["mparticle.endpoint"] != "/bulkevents" || a["mparticle.batches"].(int64) < 1 || a["mparticle.events"].(int64) < a["mparticle.batches"].(int64) {
			t.Errorf("span attributes %v", a)
		}
		if a["mparticle.retry"].(bool) != (a["mparticle.attempt"].(int64) > 1) {
			t.Errorf("retry and attempt disagree: %v", a)
		}
		if a["mparticle.retry"].(bool) {
			retries++
		}
		if status == 202 {
			events += a["mparticle.events"].(int64)
		}
		if (status >= 400) != (s.Status().Code.String() == "Error") {
			t.Errorf("status %d with span status %v", status, s.Status())
		}
		feeds[a["mparticle.feed"].(string)] = true
	}
	for status, n := range stats.Statuses {
		if byStatus[int64(status)] != n {
			t.Errorf("%d spans with status %d, the emulator answered %d", byStatus[int64(status)], status, n)
		}
	}
	if retries == 0 || byStatus[503] == 0 {
		t.Errorf("no retried span (503s: %d)", byStatus[503])
	}
	if events < int64(stats.Events) {
		t.Errorf("accepted spans carry %d events, the emulator recorded %d", events, stats.Events)
	}
	var fl []string
	for f := range feeds {
		fl = append(fl, f)
	}
	sort.Strings(fl)
	t.Logf("%d mparticle.request spans = the emulator's %d requests (statuses %v), %d retries, feeds %v, %d events in accepted requests (emulator recorded %d)",
		len(requests), stats.Requests, byStatus, retries, fl, events, stats.Events)
}
