package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// objectPipeline is the production shape: the braze_currents input (input
// batches of many events), the mapping, and the mparticle output behind a
// fallback whose dead letter keeps each refused event with its reason and
// sends feed_paused events back to the input, as configs/s3.yaml does.
func objectPipeline(exportDir, emuURL, dlq, outputOpts string) string {
	feeds := feedsYAML("          ")
	return fmt.Sprintf(`
input:
  braze_currents:
    url: %q
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  fallback:
    - mparticle:
        url: %q
        feeds:
%s        backoff: { initial_interval: 20ms, max_interval: 300ms }
%s
%s
http: { enabled: false }
logger: { level: WARN, format: logfmt }
metrics: { none: {} }
`, "file://"+filepath.ToSlash(exportDir), emuURL, feeds, indent(outputOpts, "        "), deadLetterYAML(dlq, "    "))
}

// startPipeline starts the binary on config; wait returns its logs once it
// has ended by itself.
func startPipeline(t *testing.T, config string) (wait func() string) {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	cmd := exec.CommandContext(ctx, binary, "-c", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return func() string {
		err := cmd.Wait()
		cancel()
		if err != nil {
			t.Fatalf("pipeline failed: %v\n%s", err, tail(logs.String(), 3000))
		}
		return logs.String()
	}
}

func TestForbiddenFeedDoesNotStallTheOthers(t *testing.T) {
	// android answers 403 for the first 15 s of the run; max_in_flight is 2.
	// The other feeds must be delivered in full while android is refused,
	// then android's events once its credentials work again: every event
	// once, nothing dead-lettered. (Before, every feed stalled with android.)
	exp := allTypes(t, 0, 201)
	read := exp.decodable()
	outage := 15 * time.Second
	start := time.Now()
	emu := startEmulator(t, -1, emulator.Faults{ForbiddenFrom: start, ForbiddenUntil: start.Add(outage), ForbiddenFeeds: []string{"android"}})
	dlq := filepath.Join(t.TempDir(), "dlq.jsonl")
	wait := startPipeline(t, objectPipeline(exp.dir, emu.URL, dlq, "max_in_flight: 2\nauth_failure_window: 1h"))

	// The final tally tells how many events each feed gets.
	logs := wait()
	o := collect(t, emu, logs)
	o.readDLQFile(t, dlq)
	reconcile(t, read, anonymous(read), o)
	if len(o.deadLettered) != 0 {
		t.Fatalf("%d events dead-lettered; want none", len(o.deadLettered))
	}
	if o.stats.Feeds["android"].Statuses[403] == 0 {
		t.Fatalf("android was never refused: %+v", o.stats.Feeds["android"])
	}
	// When did the other feeds get their events? The emulator keeps arrival
	// order and times.
	lastOther, firstAndroid := time.Time{}, time.Time{}
	for _, rec := range emu.Batches() {
		if rec.Feed == "android" {
			if firstAndroid.IsZero() || rec.Received.Before(firstAndroid) {
				firstAndroid = rec.Received
			}
			continue
		}
		if rec.Received.After(lastOther) {
			lastOther = rec.Received
		}
	}
	if lastOther.IsZero() || firstAndroid.IsZero() {
		t.Fatal("no events on android or on the other feeds: the test proves nothing")
	}
	t.Logf("other feeds complete %v after the start; android's first event %v after the start (outage %v)",
		lastOther.Sub(start).Round(time.Millisecond), firstAndroid.Sub(start).Round(time.Millisecond), outage)
	if !lastOther.Before(start.Add(outage)) {
		t.Fatalf("the other feeds finished %v after the start, after android's %v outage: they waited for it", lastOther.Sub(start), outage)
	}
	if firstAndroid.Before(start.Add(outage)) {
		t.Fatalf("android accepted events during its outage")
	}
	// The output's own lines about what was not delivered: at most one per
	// feed and reason a minute, and the count left at the end (they were
	// one per write, 166 in a 10 s outage on the 1,000-event demo).
	if n := strings.Count(logs, "events not delivered"); n == 0 || n > 2 {
		t.Fatalf("%d lines about events not delivered for a %v outage of one feed, want 1 or 2:\n%s", n, outage, tail(logs, 3000))
	}
}

func TestDeadLetterHoldsExactlyTheRefusedEvents(t *testing.T) {
	// 2% of batches fail inside 202 answers; input batches hold many events.
	// The dead letter must hold exactly the refused events, none of them
	// delivered, each with its own reason: replaying it delivers nothing
	// twice. (Before, whole input batches were dead-lettered, delivered
	// events included.)
	exp := allTypes(t, 0, 202)
	read := exp.decodable()
	emu := startEmulator(t, -1, emulator.Faults{Seed: 7, BatchErrorRate: 0.02})
	dlq := filepath.Join(t.TempDir(), "dlq.jsonl")
	logs := startPipeline(t, objectPipeline(exp.dir, emu.URL, dlq, ""))()
	o := collect(t, emu, logs)
	o.readDLQFile(t, dlq)
	reconcile(t, read, anonymous(read), o) // fails on an event both delivered and dead-lettered
	if len(o.deadLettered) == 0 {
		t.Fatal("nothing dead-lettered: the fault was not injected")
	}
	for id, reason := range o.deadLettered {
		if !strings.HasPrefix(reason, "mparticle rejected") {
			t.Fatalf("event %s dead-lettered with %q, want rejected", id, reason)
		}
	}
	t.Logf("%d of %d events dead-lettered, all refused by the emulator", len(o.deadLettered), len(read))
}
