package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// killPipeline reads the export with the braze_currents input and a file
// checkpoint cache, so a restarted process resumes instead of starting over.
func killPipeline(exportDir, checkpointDir, emuURL string) string {
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
    file: { directory: %q }
http: { enabled: false }
logger: { level: WARN, format: logfmt }
metrics: { none: {} }
`, "file://"+filepath.ToSlash(exportDir), emuURL, feeds, checkpointDir)
}

// TestKillAndResume SIGKILLs the pipeline three times mid-run, then lets a
// fourth run finish: every event must reach mParticle at least once, and
// the runs after a kill must not start over.
func TestKillAndResume(t *testing.T) {
	exp := newExport(t, gen.Config{Events: 6000, Users: 800, Hours: 6, BlockEvents: 50, Seed: 107})
	// Latency on every request slows the run down enough to kill it mid-way.
	emu := startEmulator(t, -1, emulator.Faults{Latency: 30 * time.Millisecond})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	checkpoints := filepath.Join(dir, "checkpoint")
	if err := os.Mkdir(checkpoints, 0o755); err != nil { // the file cache does not create it
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(killPipeline(exp.dir, checkpoints, emu.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	read := exp.decodable()
	anon := anonymous(read)
	want := len(read) - len(anon)

	var logs bytes.Buffer
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
	reconcile(t, read, anon, dedup(o))
	if strings.Contains(logs.String()+o.logs, "Checkpointing Braze Currents object") {
		t.Fatalf("checkpoints failed:\n%s", tail(logs.String()+o.logs, 2000))
	}
	t.Logf("final run recorded %d events; %d events were recorded more than once across the kills (at-least-once: objects in flight at a kill are read again)", lastRun, dupes)
	if lastRun >= want {
		t.Fatalf("the run after three kills re-sent %d events, the whole export is %d: the checkpoint was not used", lastRun, want)
	}
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
