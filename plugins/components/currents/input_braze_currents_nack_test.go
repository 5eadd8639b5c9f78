package currents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
)

// bciFlaky is a batch output that fails the messages a rule picks, each
// with the error the rule returns, and records the ids it delivered.
type bciFlaky struct {
	mu        sync.Mutex
	delivered map[string]int
	attempts  map[string]int
	fail      func(id string, attempt int) error
}

func (f *bciFlaky) Connect(context.Context) error { return nil }
func (f *bciFlaky) Close(context.Context) error   { return nil }
func (f *bciFlaky) WriteBatch(_ context.Context, b service.MessageBatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var berr *service.BatchError
	for i, m := range b {
		id, _ := m.MetaGet("currents_id")
		f.attempts[id]++
		if err := f.fail(id, f.attempts[id]); err != nil {
			if berr == nil {
				berr = service.NewBatchError(b, err)
			}
			berr.Failed(i, err)
			continue
		}
		f.delivered[id]++
	}
	if berr != nil {
		return berr
	}
	return nil
}

// bciFlakyStream runs a one-pass braze_currents stream over dir into the
// output YAML, where FLAKY names a bciFlaky output.
func bciFlakyStream(t *testing.T, dir, inputExtra, output string, fail func(id string, attempt int) error) (*bciFlaky, *bciResult) {
	t.Helper()
	flaky := &bciFlaky{delivered: map[string]int{}, attempts: map[string]int{}, fail: fail}
	env := service.NewEnvironment()
	if err := env.RegisterBatchOutput("bci_flaky", service.NewConfigSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			return flaky, service.BatchPolicy{}, 4, nil
		}); err != nil {
		t.Fatal(err)
	}
	b := env.NewStreamBuilder()
	res := &bciResult{logs: bciLogs(t.TempDir() + "/benthos.log")}
	if err := b.SetLoggerYAML(fmt.Sprintf("level: DEBUG\nformat: logfmt\nfile:\n  path: %s\n  rotate: false", string(res.logs))); err != nil {
		t.Fatal(err)
	}
	if err := b.AddCacheYAML("label: cp\nmemory: {}"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML(fmt.Sprintf("braze_currents:\n  url: file://%s/currents\n  max_batch_size: 10\n  checkpoint_cache: cp\n%s", dir, inputExtra)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(strings.ReplaceAll(output, "FLAKY", "bci_flaky: {}")); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		t.Fatalf("stream: %v; logs:\n%s", err, res.logs)
	}
	return flaky, res
}

// bciPaused is the error the mparticle output gives an event of a feed whose
// credentials are refused for now.
var bciPaused = &client.DeliveryError{Reason: client.ReasonFeedPaused, Feed: "android", Status: 403, Message: "credentials refused"}

func bciExactlyOnce(t *testing.T, flaky *bciFlaky, want map[string]string, logs bciLogs) {
	t.Helper()
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	for id := range want {
		if n := flaky.delivered[id]; n != 1 {
			t.Fatalf("event %s delivered %d times, want once (%d attempts); logs:\n%s", id, n, flaky.attempts[id], logs)
		}
	}
	if len(flaky.delivered) != len(want) {
		t.Fatalf("%d events delivered, want %d", len(flaky.delivered), len(want))
	}
}

func TestInputPartialNackSendsOnlyTheFailedEventsAgain(t *testing.T) {
	// Every third event fails twice (as the output fails an event of a
	// paused feed), directly and behind a fallback whose dead letter refuses
	// such failures. The object is read again for those events only: every
	// event is delivered exactly once, none of the others twice.
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 300, BlockEvents: 25, KeepRecords: true, Seed: 41,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	e.writeDir(t, dir)
	want := e.ids(t, nil)
	pick := map[string]bool{}
	k := 0
	for id := range want {
		if k%3 == 0 {
			pick[id] = true
		}
		k++
	}
	fail := func(id string, attempt int) error {
		if pick[id] && attempt <= 2 {
			return bciPaused
		}
		return nil
	}
	for name, output := range map[string]string{
		"direct": "FLAKY",
		"behind a fallback": `
fallback:
  - FLAKY
  - switch:
      cases:
        - check: '@fallback_error.has_prefix("mparticle feed_paused")'
          output:
            reject: '${! @fallback_error }'
        - output:
            drop: {}
`,
	} {
		t.Run(name, func(t *testing.T) {
			flaky, res := bciFlakyStream(t, dir, "", output, fail)
			bciExactlyOnce(t, flaky, want, res.logs)
			logs := res.logs.String()
			if !strings.Contains(logs, "attempt 3") || strings.Contains(logs, "recorded as failed") {
				t.Errorf("want objects read three times and none failed; logs:\n%s", logs)
			}
		})
	}
}

func TestInputObjectRefusedForGoodFailsAfterMaxAttempts(t *testing.T) {
	// One event can never pass and nothing dead-letters it: the object is
	// read again max_rejected_attempts times (its other events delivered
	// once), then recorded as failed, so the run ends instead of looping.
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 120, BlockEvents: 20, KeepRecords: true, Seed: 42,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	e.writeDir(t, dir)
	want := e.ids(t, nil)
	var bad string
	for id := range want {
		bad = id
		break
	}
	refused := errors.New("mparticle upstream_error (feed \"\"): cannot map the event")
	flaky, res := bciFlakyStream(t, dir, "  max_rejected_attempts: 3\n", "FLAKY", func(id string, _ int) error {
		if id == bad {
			return refused
		}
		return nil
	})
	delete(want, bad)
	bciExactlyOnce(t, flaky, want, res.logs)
	if n := flaky.attempts[bad]; n != 3 {
		t.Errorf("the refused event was sent %d times, want 3", n)
	}
	logs := res.logs.String()
	if !strings.Contains(logs, "kept being refused downstream") || !strings.Contains(logs, bciClassRejected) ||
		!strings.Contains(logs, "cannot map the event") {
		t.Errorf("no failure logged with the reason; logs:\n%s", logs)
	}
}

func TestInputWatchWaitsForAnObjectStillBeingWritten(t *testing.T) {
	// One object is written slowly, in pieces, while a watching input polls:
	// it must be read whole once it has settled, never failed as truncated.
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 300, Start: time.Now().UTC().Add(-time.Hour), KeepRecords: true, Seed: 43,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	var slowKey string
	var slowBody []byte
	for k, body := range e.objs {
		if slowKey == "" || len(body) > len(slowBody) {
			slowKey, slowBody = k, body
		}
	}
	rest := bciExport{m: e.m, objs: map[string][]byte{}}
	for k, body := range e.objs {
		if k != slowKey {
			rest.objs[k] = body
		}
	}
	rest.writeDir(t, dir)
	slowPath := filepath.Join(dir, filepath.FromSlash(slowKey))
	if err := os.MkdirAll(filepath.Dir(slowPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(slowPath, slowBody[:len(slowBody)/3], 0o644); err != nil {
		t.Fatal(err)
	}

	strm, res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  watch: true
  poll_interval: 20ms
  min_object_age: 300ms
`, dir)}.build(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- strm.Run(ctx) }()

	// The writer appends the rest in pieces, slower than the input polls.
	for _, part := range [][]byte{slowBody[len(slowBody)/3 : 2*len(slowBody)/3], slowBody[2*len(slowBody)/3:]} {
		time.Sleep(150 * time.Millisecond)
		f, err := os.OpenFile(slowPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(part); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	want := e.ids(t, nil)
	bciWaitFor(t, ctx, res, len(want))
	if err := strm.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	res.exactlyOnce(t, want)
	if logs := res.logs.String(); strings.Contains(logs, "recorded as failed") {
		t.Fatalf("an object was failed; logs:\n%s", logs)
	}
}
