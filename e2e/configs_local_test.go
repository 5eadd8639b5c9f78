package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// sampleApps are the app_platforms of demo.yaml and emulator.yaml.
var sampleApps = map[string]string{
	"3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7": "ios",
	"7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d": "android",
	"c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f": "web",
}

// sampleExport decodes the built-in sample export (configs/sample/) and
// tells, with the mapping itself, what the shipped demo configs must do
// with each event: its feed, or that it is dropped.
func sampleExport(t *testing.T) (read map[string]map[string]any, feed map[string]string, dropped map[string]bool) {
	t.Helper()
	m, err := mparticle.New(mparticle.Options{AppPlatforms: sampleApps})
	if err != nil {
		t.Fatal(err)
	}
	read, feed, dropped = map[string]map[string]any{}, map[string]string{}, map[string]bool{}
	root := filepath.Join("..", "configs", "sample")
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".avro") {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, _ := filepath.Rel(root, p)
		r, err := currents.NewReader(f, currents.ReaderOptions{Object: filepath.ToSlash(rel)})
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			id := ev.ID()
			read[id] = ev.Map()
			_, res, err := m.AppendBatch(nil, ev)
			if err != nil || res.Dropped != "" {
				dropped[id] = true
			} else {
				feed[id] = string(res.Feed)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) == 0 {
		t.Fatal("the sample export holds no event")
	}
	return read, feed, dropped
}

// sampleWorkDir is a working directory in which ./configs/sample resolves
// to the repository's sample export, as when a user runs the README's
// commands from the repository root; what a config writes stays in it.
func sampleWorkDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	configs, err := filepath.Abs(filepath.Join("..", "configs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(configs, filepath.Join(dir, "configs")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkFeeds asserts each delivered event arrived on the feed the mapping picks.
func checkFeeds(t *testing.T, feedOf, want map[string]string) {
	t.Helper()
	for id, f := range feedOf {
		if want[id] != f {
			t.Fatalf("event %s on feed %q, the mapping picks %q", id, f, want[id])
		}
	}
}

// TestConfigDemo runs configs/demo.yaml (dry run, no network): the requests
// it writes hold exactly the sample events the mapping keeps, each once, on
// its feed; the others are dropped and counted.
func TestConfigDemo(t *testing.T) {
	read, feed, dropped := sampleExport(t)
	work := sampleWorkDir(t)
	logs := runShipped(t, "demo.yaml", shippedConfig(t, "demo.yaml"), work, nil).wait(t, 2*time.Minute)
	f, err := os.Open(filepath.Join(work, "demo-requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := outcome{delivered: map[string]int{}, feedOf: map[string]string{}, deadLettered: map[string]string{}, logs: logs}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	requests := 0
	for sc.Scan() {
		var req struct {
			URL  string `json:"url"`
			Feed string `json:"feed"`
			Body []struct {
				Events []struct {
					Data struct {
						SourceMessageID string `json:"source_message_id"`
						Attrs           struct {
							SourceRequestID string `json:"source_request_id"`
						} `json:"custom_attributes"`
					} `json:"data"`
				} `json:"events"`
			} `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(req.URL, "https://s2s.us1.mparticle.com/v2/") {
			t.Fatalf("request to %s, want pod us1", req.URL)
		}
		requests++
		for _, b := range req.Body {
			for _, e := range b.Events {
				id := e.Data.Attrs.SourceRequestID
				if id == "" {
					id = e.Data.SourceMessageID
				}
				o.delivered[id]++
				o.feedOf[id] = req.Feed
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	reconcile(t, read, dropped, o)
	checkFeeds(t, o.feedOf, feed)
	// The closing line counts the events mapped per feed, as delivered.
	perFeed := map[string]int{}
	for _, f := range o.feedOf {
		perFeed[f]++
	}
	var feeds []string
	for f, n := range perFeed {
		feeds = append(feeds, fmt.Sprintf("%s: %d", f, n))
	}
	sort.Strings(feeds)
	tally := fmt.Sprintf("%d events mapped (%s), %d dropped", len(o.delivered), strings.Join(feeds, ", "), len(dropped))
	if !strings.Contains(logs, tally) {
		t.Fatalf("the run's tally does not say %q:\n%s", tally, tail(logs, 3000))
	}
	t.Logf("configs/demo.yaml (dry run, no server: %d requests written): read %d = delivered %d + dropped %d + dead-lettered 0, duplicates 0",
		requests, len(read), len(o.delivered), len(dropped))
}

// TestConfigEmulator runs configs/emulator.yaml against the emulator: the
// sample events the mapping keeps arrive, each once, on their feeds.
func TestConfigEmulator(t *testing.T) {
	emu, o, read, dropped := runEmulatorConfig(t, emulator.Faults{})
	t.Logf("configs/emulator.yaml against the emulator (%s): read %d = delivered %d + dropped %d + dead-lettered 0, duplicates 0; %d requests",
		emu.URL, len(read), len(o.delivered), len(dropped), o.stats.Requests)
}

// runEmulatorConfig runs configs/emulator.yaml as shipped over the sample
// export into an emulator with faults, until it ends by itself, and checks
// that every event arrived once, on its feed.
func runEmulatorConfig(t *testing.T, faults emulator.Faults) (*emulator.Server, outcome, map[string]map[string]any, map[string]bool) {
	t.Helper()
	read, feed, dropped := sampleExport(t)
	emu := startEmulator(t, -1, faults)
	work := sampleWorkDir(t)
	env := append(emulatorEnv(emu), "HTTP_ADDRESS="+freeAddr(t))
	logs := runShipped(t, "emulator.yaml", shippedConfig(t, "emulator.yaml"), work, env).wait(t, 2*time.Minute)
	o := collect(t, emu, logs)
	reconcile(t, read, dropped, o)
	checkFeeds(t, o.feedOf, feed)
	return emu, o, read, dropped
}

// TestConfigReplayRange runs configs/replay-range.yaml over a file://
// export five days old: exactly the email and push events (no aborts) of the
// selected date= hours arrive, and the run ends by itself; run again with
// the same checkpoint folder, it sends nothing.
func TestConfigReplayRange(t *testing.T) {
	start := time.Now().UTC().Add(-5 * 24 * time.Hour).Truncate(time.Hour)
	exp := newExport(t, gen.Config{Events: 3000, Users: 300, Hours: 6, BlockEvents: 50, Start: start, Seed: 321,
		EventTypes: []string{"users.messages.email.Send", "users.messages.email.Open", "users.messages.email.Abort",
			"users.messages.pushnotification.Send", "users.messages.pushnotification.Abort", "users.canvas.Entry",
			"users.messages.sms.Delivery"}})
	since, until := start.Add(1*time.Hour), start.Add(4*time.Hour)
	hour := func(tm time.Time) string { return tm.Format("2006-01-02-15") }
	read := map[string]map[string]any{}
	selected := 0
	for _, o := range exp.manifest.Objects {
		email, push := strings.HasPrefix(o.EventType, "users.messages.email."), strings.HasPrefix(o.EventType, "users.messages.pushnotification.")
		if (!email && !push) || strings.HasSuffix(o.EventType, ".Abort") {
			continue
		}
		i := strings.Index(o.Key, "/date=")
		d := o.Key[i+len("/date=") : i+len("/date=")+len("2006-01-02-15")]
		if d < hour(since) || d >= hour(until) {
			continue
		}
		selected++
		for _, r := range o.Records {
			read[r["id"].(string)] = r
		}
	}
	if selected == 0 || selected == len(exp.manifest.Objects) {
		t.Fatalf("%d of %d objects selected: the range selects nothing or everything", selected, len(exp.manifest.Objects))
	}
	emu := startEmulator(t, -1, emulator.Faults{})
	work := t.TempDir()
	env := append(emulatorEnv(emu), "CURRENTS_URL=file://"+path.Join(filepath.ToSlash(exp.dir), "currents"),
		"REPLAY_SINCE="+hour(since), "REPLAY_UNTIL="+hour(until))
	cfg := shippedConfig(t, "replay-range.yaml")
	logs := runShipped(t, "replay-range.yaml", cfg, work, env).wait(t, 2*time.Minute)
	o := collect(t, emu, logs)
	anon := anonymous(read)
	reconcile(t, read, anon, o) // fails on any event delivered outside the selection
	t.Logf("configs/replay-range.yaml against a file:// export and the emulator: %d of %d objects in [%s, %s) of the selected types; read %d = delivered %d + dropped %d + dead-lettered 0, duplicates 0",
		selected, len(exp.manifest.Objects), hour(since), hour(until), len(read), len(o.delivered), len(anon))

	before := emu.Stats()
	runShipped(t, "replay-range.yaml (again)", cfg, work, env).wait(t, 2*time.Minute)
	if after := emu.Stats(); after.Requests != before.Requests {
		t.Fatalf("the rerun sent %d requests; the checkpoint folder should make it skip everything", after.Requests-before.Requests)
	}
	t.Logf("configs/replay-range.yaml rerun with the same checkpoint folder: 0 requests")
}
