package currents

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// bciBinary is the currents-mparticle binary TestMain builds once, for the
// tests that kill a real process.
var bciBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "currents-mparticle-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bciBinary = filepath.Join(dir, "currents-mparticle")
	build := exec.Command("go", "build", "-o", bciBinary, "github.com/currents-mparticle/currents-mparticle/cmd/currents-mparticle")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building currents-mparticle:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// The process is killed with SIGKILL twice in the middle of a run and started
// again with the same file checkpoint until it finishes. Every event arrives
// at least once, and objects completed before a kill are never read again:
// the later runs do not log reading them, and their contents were replaced
// by garbage after the kill, which a re-read would have recorded as failed.
func TestInputResumesAfterSIGKILL(t *testing.T) {
	dir, cpDir, work := t.TempDir(), t.TempDir(), t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 1200, Hours: 4, FileEvents: 30, BlockEvents: 10, KeepRecords: true, Seed: 41,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry", "users.messages.sms.Send"}})
	e.writeDir(t, dir)

	completedBefore := map[string]int{} // object → the run it was completed before the kill of
	const kills = 2
	for run := 0; ; run++ {
		if run > kills+3 {
			t.Fatal("the input did not finish after several restarts")
		}
		cfg := filepath.Join(work, fmt.Sprintf("run-%d.yaml", run))
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
http:
  enabled: false
logger:
  level: DEBUG
  format: logfmt
  file:
    path: %[1]s/run-%[2]d.log
    rotate: false
input:
  braze_currents:
    url: file://%[3]s/currents
    checkpoint_cache: checkpoint
    max_concurrent_objects: 2
    max_batch_size: 10
pipeline:
  threads: 1
  processors:
    # Slow enough for a kill to land mid-run: 2ms an event.
    - sleep:
        duration: 2ms
    - mapping: 'root = {"id": meta("currents_id"), "object": meta("currents_object")}'
output:
  file:
    path: %[1]s/events-%[2]d.jsonl
    codec: lines
cache_resources:
  - label: checkpoint
    file:
      directory: %[4]s
`, work, run, dir, cpDir)), 0o644); err != nil {
			t.Fatal(err)
		}
		console, err := os.Create(filepath.Join(work, fmt.Sprintf("console-%d.txt", run)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bciBinary, "-c", cfg)
		cmd.Stdout, cmd.Stderr = console, console
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		if run >= kills {
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("run %d: %v; console:\n%s", run, err, bciRead(work, "console-%d.txt", run))
				}
			case <-time.After(3 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("run %d did not finish; log:\n%s", run, bciRead(work, "run-%d.log", run))
			}
			break
		}

		// Kill once three more objects are checkpointed.
		target := len(bciCheckpoints(t, cpDir)) + 3
		for len(bciCheckpoints(t, cpDir)) < target {
			select {
			case err := <-exited:
				t.Fatalf("run %d ended (%v) before the kill: slow the pipeline down; log:\n%s", run, err, bciRead(work, "run-%d.log", run))
			case <-time.After(5 * time.Millisecond):
			}
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-exited
		cps := bciCheckpoints(t, cpDir)
		if len(cps) >= len(e.m.Objects) {
			t.Fatalf("run %d checkpointed all %d objects before the kill: it did not land mid-run", run, len(cps))
		}
		for name, cp := range cps {
			if cp.Status != "completed" {
				t.Fatalf("object %s: checkpoint %+v", name, cp)
			}
			if _, ok := completedBefore[name]; ok {
				continue
			}
			completedBefore[name] = run
			if err := os.WriteFile(filepath.Join(dir, "currents", filepath.FromSlash(name)), []byte("garbage: must not be read again"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Every event arrived at least once, across the runs.
	got := map[string]bool{}
	for run := 0; run <= kills; run++ {
		f, err := os.Open(filepath.Join(work, fmt.Sprintf("events-%d.jsonl", run)))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var ev struct{ ID, Object string }
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				// A line cut by the kill: its event was never acknowledged.
				continue
			}
			got[ev.ID] = true
		}
		_ = f.Close()
	}
	want := e.ids(t, nil)
	for id, key := range want {
		if !got[id] {
			t.Fatalf("event %s of %s never arrived", id, key)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d distinct events arrived, %d were written", len(got), len(want))
	}

	// Objects completed before a kill were not read by a later run.
	final := bciCheckpoints(t, cpDir)
	if len(final) != len(e.m.Objects) {
		t.Fatalf("%d objects checkpointed, the export has %d", len(final), len(e.m.Objects))
	}
	for name, killedIn := range completedBefore {
		if cp := final[name]; cp.Status != "completed" {
			t.Fatalf("object %s, completed before kill %d, was read again: checkpoint %+v", name, killedIn, cp)
		}
		for run := killedIn + 1; run <= kills; run++ {
			if strings.Contains(bciRead(work, "run-%d.log", run), "Reading Braze Currents object "+name+" (") {
				t.Fatalf("object %s, completed before kill %d, was read again in run %d", name, killedIn, run)
			}
		}
	}
	if len(completedBefore) < 2*3 {
		t.Fatalf("only %d objects completed before the kills", len(completedBefore))
	}
}

func bciRead(dir, pattern string, run int) string {
	b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf(pattern, run)))
	return string(b)
}

// bciCheckpoints reads the checkpoint folder, by object. A file the kill cut
// short is skipped: its object is still checkpointed for the input, but the
// test cannot tell which one it is.
func bciCheckpoints(t testing.TB, dir string) map[string]bciCheckpoint {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bciCheckpoint{}
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			continue
		}
		var cp bciCheckpoint
		if json.Unmarshal(b, &cp) == nil && bciCheckpointKey("braze_currents_", cp.Object) == en.Name() {
			out[cp.Object] = cp
		}
	}
	return out
}
