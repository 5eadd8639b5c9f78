package e2e

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// allTypes is an export with every reference type and many repeat users.
func allTypes(t *testing.T, corrupt int, seed uint64) export {
	return newExport(t, gen.Config{Events: 4000, Users: 600, Hours: 3, BlockEvents: 50, CorruptFiles: corrupt, Seed: seed})
}

func startEmulator(t *testing.T, rate float64, faults emulator.Faults) *emulator.Server {
	t.Helper()
	emu, err := emulator.Start("127.0.0.1:0", emulator.Config{Feeds: feedCreds, BatchesPerSecond: rate, Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu
}

// runScenario runs the pipeline over the export into the emulator, reads
// the dead-letter files, and reconciles every decodable event, the events
// of users without external_user_id being dropped (the default).
func runScenario(t *testing.T, exp export, emu *emulator.Server, processorOpts, outputOpts string) (map[string]map[string]any, outcome) {
	t.Helper()
	dlq := filepath.Join(t.TempDir(), "dlq.jsonl")
	// A run with a corrupt object ends by saying so.
	want := 0
	for _, obj := range exp.manifest.Objects {
		if obj.Corrupt != "" {
			want = runstatus.ExitObjectsFailed
		}
	}
	o := runPipelineExit(t, emu, pipeline(exp.dir, emu.URL, dlq, processorOpts, outputOpts), want)
	o.readDLQ(t, dlq)
	read := exp.decodable()
	reconcile(t, read, anonymous(read), o)
	return read, o
}

// checkMapping asserts that each delivered event is exactly the event the
// mapping makes of the generated record, on the feed the mapping chose.
func checkMapping(t *testing.T, read map[string]map[string]any, o outcome) {
	t.Helper()
	m, err := mparticle.New(mparticle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	types := eventTypes(read)
	checked := 0
	for id, got := range o.deliveredEvt {
		rec := read[id]
		ev := currents.EventFromMap(types[id], rec)
		batch, res, err := m.AppendBatch(nil, ev)
		if err != nil || res.Dropped != "" {
			t.Fatalf("event %s: mapping says %v / dropped %q, yet it was delivered", id, err, res.Dropped)
		}
		var b struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(batch, &b); err != nil || len(b.Events) != 1 {
			t.Fatalf("event %s: mapped batch %s: %v", id, batch, err)
		}
		var want, have any
		_ = json.Unmarshal(b.Events[0], &want)
		_ = json.Unmarshal(got, &have)
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("event %s (%s) delivered as\n%s\nmapping makes\n%s", id, types[id], got, b.Events[0])
		}
		if string(res.Feed) != o.feedOf[id] {
			t.Fatalf("event %s delivered on feed %q, mapping says %q", id, o.feedOf[id], res.Feed)
		}
		checked++
	}
	t.Logf("%d delivered events equal their mapping", checked)
}

// eventTypes recovers each event's type from its id, which only the
// manifest knows (records carry no type).
var typeIndex = map[string]string{}

func eventTypes(read map[string]map[string]any) map[string]string { return typeIndex }

func (e export) indexTypes() {
	for _, o := range e.manifest.Objects {
		for _, r := range o.Records {
			typeIndex[r["id"].(string)] = o.EventType
		}
	}
}

func TestCleanRun(t *testing.T) {
	exp := allTypes(t, 0, 101)
	exp.indexTypes()
	emu := startEmulator(t, -1, emulator.Faults{})
	read, o := runScenario(t, exp, emu, "", "")
	if len(o.deadLettered) != 0 {
		t.Fatalf("%d events dead-lettered in a clean run", len(o.deadLettered))
	}
	checkMapping(t, read, o)
	feeds := map[string]int{}
	for _, f := range o.feedOf {
		feeds[f]++
	}
	for _, f := range []string{"ios", "android", "web", "unbound"} {
		if feeds[f] == 0 {
			t.Errorf("no event arrived on feed %s: %v", f, feeds)
		}
	}
	if o.stats.Batches >= len(o.delivered) {
		t.Errorf("%d batches for %d events: events of one user were not packed", o.stats.Batches, len(o.delivered))
	}
}

func TestMissingIdentityToDeadLetter(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 800, Users: 100, NoExternalIDShare: 0.3, Seed: 102})
	emu := startEmulator(t, -1, emulator.Faults{})
	dlq := filepath.Join(t.TempDir(), "dlq.jsonl")
	o := runPipeline(t, emu, pipeline(exp.dir, emu.URL, dlq, " missing_identity: fail ", ""))
	o.readDLQ(t, dlq)
	read := exp.decodable()
	anon := anonymous(read)
	reconcile(t, read, nil, o)
	for id := range anon {
		if !strings.Contains(o.deadLettered[id], "no_identity") && !strings.Contains(o.deadLettered[id], "external_user_id") {
			t.Fatalf("anonymous event %s dead-lettered with reason %q", id, o.deadLettered[id])
		}
	}
	if len(anon) == 0 {
		t.Fatal("the export has no anonymous users")
	}
}

func TestRateLimitStorm(t *testing.T) {
	// 270 batches/s is mParticle's default; under a quarter of it with this many
	// users keeps the emulator answering 429 for most of the run.
	exp := newExport(t, gen.Config{Events: 1500, Users: 400, Hours: 2, BlockEvents: 50, Seed: 103})
	emu := startEmulator(t, 60, emulator.Faults{})
	_, o := runScenario(t, exp, emu, "", "")
	if len(o.deadLettered) != 0 {
		t.Fatalf("%d events dead-lettered under throttling", len(o.deadLettered))
	}
	if o.stats.Statuses[429] == 0 {
		t.Fatalf("the emulator never throttled: %+v", o.stats)
	}
}

func TestServerErrorsAndResets(t *testing.T) {
	exp := allTypes(t, 0, 104)
	emu := startEmulator(t, -1, emulator.Faults{Seed: 7, ServerErrorRate: 0.2, ResetRate: 0.1, ResetAfterAcceptRate: 0.1})
	_, o := runScenario(t, exp, emu, "", "")
	if len(o.deadLettered) != 0 {
		t.Fatalf("%d events dead-lettered by transient faults", len(o.deadLettered))
	}
	if o.stats.Statuses[503] == 0 || o.stats.Resets == 0 {
		t.Fatalf("faults were not injected: %+v", o.stats)
	}
}

func TestForbiddenPastTheWindow(t *testing.T) {
	exp := allTypes(t, 0, 105)
	exp.indexTypes()
	emu := startEmulator(t, -1, emulator.Faults{Forbidden: true, ForbiddenFeeds: []string{"ios"}})
	_, o := runScenario(t, exp, emu, "", "auth_failure_window: 1s")
	if len(o.deadLettered) == 0 {
		t.Fatal("no event dead-lettered although the ios feed was forbidden")
	}
	for id, reason := range o.deadLettered {
		if !strings.Contains(reason, "auth_window_expired") {
			t.Fatalf("event %s dead-lettered with %q, want auth_window_expired", id, reason)
		}
	}
	for id, feed := range o.feedOf {
		if feed == "ios" {
			t.Fatalf("event %s arrived on the forbidden ios feed", id)
		}
	}
}

func TestCorruptFilesMixedIn(t *testing.T) {
	exp := allTypes(t, 4, 106)
	emu := startEmulator(t, -1, emulator.Faults{})
	_, o := runScenario(t, exp, emu, "", "")
	for _, obj := range exp.manifest.Objects {
		if obj.Corrupt != "" && !strings.Contains(o.logs, filepath.Base(obj.Key)) {
			t.Errorf("corrupt object %s (%s) not named in the logs", obj.Key, obj.Corrupt)
		}
	}
}
