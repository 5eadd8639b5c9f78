package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cexport "github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/internal/store"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// killPipeline reads the export with the braze_currents input and a file
// checkpoint cache, so a restarted process resumes instead of starting over.
func killPipeline(exportDir, cacheYAML, emuURL string) string {
	feeds := feedsYAML("      ")
	return fmt.Sprintf(`
input:
  braze_currents:
    url: %q
    checkpoint_cache: checkpoint
    max_concurrent_objects: 2
    max_batch_size: 50
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: %q
    feeds:
%s    max_in_flight: 16
    backoff: { initial_interval: 20ms, max_interval: 300ms }
cache_resources:
  - label: checkpoint
    %s
http: { enabled: false }
logger: { level: WARN, format: logfmt }
metrics: { none: {} }
`, "file://"+filepath.ToSlash(exportDir), emuURL, feeds, cacheYAML)
}

// TestKillAndResume SIGKILLs the pipeline three times mid-run, then lets a
// fourth run finish: every event must reach mParticle at least once, and
// the runs after a kill must not start over. Objects checkpointed as
// completed before a kill are never read again: after each kill their files
// are replaced by garbage, which a re-read would record as failed.
func TestKillAndResume(t *testing.T) {
	// Benthos's file cache: a checkpoint a kill cut short is an empty file.
	t.Run("file", func(t *testing.T) {
		killAndResume(t, func(dir string) string {
			if err := os.Mkdir(dir, 0o755); err != nil { // the file cache does not create it
				t.Fatal(err)
			}
			return fmt.Sprintf("file: { directory: %q }", dir)
		}, fileCheckpoints)
	})
	// The currents_state cache: every checkpoint whole, fsynced.
	t.Run("currents_state", func(t *testing.T) {
		killAndResume(t, func(dir string) string { return fmt.Sprintf("currents_state: { path: %q }", dir) }, stateCheckpoints)
	})
}

// killAndResume is TestKillAndResume on the cache that cacheYAML(dir)
// configures, whose checkpoints killCheckpoints(t, dir, exp) returns.
func killAndResume(t *testing.T, cacheYAML func(dir string) string, killCheckpoints func(*testing.T, string, export) map[string]string) {
	exp := newExport(t, gen.Config{Events: 6000, Users: 800, Hours: 6, BlockEvents: 50, Seed: 107})
	// Latency on every request slows the run down enough to kill it mid-way.
	emu := startEmulator(t, -1, emulator.Faults{Latency: 30 * time.Millisecond})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	checkpoints := filepath.Join(dir, "checkpoint")
	if err := os.WriteFile(cfgPath, []byte(killPipeline(exp.dir, cacheYAML(checkpoints), emu.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	decodable := exp.decodable()
	anon := anonymous(decodable)
	want := len(decodable) - len(anon)

	var logs bytes.Buffer
	completedBefore := map[string]int{} // object → the kill it was completed before
	cutShort := 0                       // checkpoint writes a kill cut short, seen after the kills
	for kill := 1; kill <= 3; kill++ {
		before := emu.Stats().Events
		cmd := exec.Command(binary, "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill once this run has delivered a slice of the export.
		deadline := time.Now().Add(2 * time.Minute)
		for emu.Stats().Events < before+want/8 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", kill, err)
		}
		_ = cmd.Wait()
		got := unique(t, emu)
		t.Logf("after kill %d: %d of %d events delivered (%d recorded in all)", kill, got, want, emu.Stats().Events)
		if got >= want {
			t.Fatalf("kill %d landed after the run had delivered everything; slow the run down", kill)
		}
		for name, status := range killCheckpoints(t, checkpoints, exp) {
			if status == "" {
				cutShort++
				continue // settled, but the test cannot say how: left as it is
			}
			if status != "completed" {
				t.Fatalf("after kill %d: object %s checkpointed %s", kill, name, status)
			}
			if _, ok := completedBefore[name]; ok {
				continue
			}
			completedBefore[name] = kill
			if err := os.WriteFile(filepath.Join(exp.dir, filepath.FromSlash(name)), []byte("garbage: must not be read again"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(completedBefore) == 0 {
		t.Fatal("no object was completed before a kill: the resume proves nothing")
	}
	recordedBeforeLast := emu.Stats().Events
	o := runPipeline(t, emu, string(mustRead(t, cfgPath)))
	lastRun := o.stats.Events - recordedBeforeLast
	dupes := 0
	for _, n := range o.delivered {
		if n > 1 {
			dupes += n - 1
		}
	}
	reconcile(t, decodable, anon, dedup(o))
	if strings.Contains(logs.String()+o.logs, "Checkpointing Braze Currents object") {
		t.Fatalf("checkpoints failed:\n%s", tail(logs.String()+o.logs, 2000))
	}
	t.Logf("final run recorded %d events; %d events were recorded more than once across the kills (at-least-once: objects in flight at a kill are read again)", lastRun, dupes)
	if lastRun >= want {
		t.Fatalf("the run after three kills re-sent %d events, the whole export is %d: the checkpoint was not used", lastRun, want)
	}
	final := killCheckpoints(t, checkpoints, exp)
	if len(final) != len(exp.manifest.Objects) {
		t.Fatalf("%d objects checkpointed, the export has %d", len(final), len(exp.manifest.Objects))
	}
	for name, killed := range completedBefore {
		if final[name] != "completed" {
			t.Fatalf("object %s, completed before kill %d, was read again: checkpointed %s", name, killed, final[name])
		}
	}
	t.Logf("%d of %d objects were completed before a kill and not read again; %d checkpoint writes were cut short by a kill", len(completedBefore), len(exp.manifest.Objects), cutShort)
}

// fileCheckpoints reads the file cache's folder: each checkpointed object's
// status, by name. A file the kill cut short (the file cache truncates,
// then writes) is a checkpoint all the same: the input treats its object as
// settled, as it was when the write began; its status is "" here, and the
// test tells which object it is by its key. The input's connect-time probe
// is left out.
func fileCheckpoints(t *testing.T, dir string, exp export) map[string]string {
	t.Helper()
	byKey := map[string]string{}
	for _, o := range exp.manifest.Objects {
		byKey[cexport.CheckpointKey("braze_currents_", o.Key)] = o.Key
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, en := range entries {
		name, ok := byKey[en.Name()]
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, en.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var cp struct{ Status, Object string }
		if json.Unmarshal(b, &cp) == nil && cp.Object != "" {
			out[name] = cp.Status
		} else {
			out[name] = "" // cut short
		}
	}
	return out
}

// stateCheckpoints reads the currents_state cache's store (the pipeline is
// not running): each checkpointed object's status, by name.
func stateCheckpoints(t *testing.T, dir string, exp export) map[string]string {
	t.Helper()
	s, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]string{}
	for _, o := range exp.manifest.Objects {
		v, found, err := s.Get([]byte(cexport.CheckpointKey("braze_currents_", o.Key)))
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			continue
		}
		cp, err := cexport.ParseCheckpoint(v)
		if err != nil {
			t.Fatalf("object %s: a checkpoint of the store is not whole: %v", o.Key, err)
		}
		out[o.Key] = cp.Status
	}
	return out
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unique counts the distinct events the emulator holds.
func unique(t *testing.T, emu *emulator.Server) int {
	return len(collect(t, emu, "").delivered)
}

// dedup keeps one recording of each event: after a SIGKILL delivery is at
// least once, and an object read again may be packed into other batches
// (so mParticle's source_request_id dedup does not catch it).
func dedup(o outcome) outcome {
	for id := range o.delivered {
		o.delivered[id] = 1
	}
	return o
}
