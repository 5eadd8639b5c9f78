package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// hostilePipeline reads the export with the braze_currents input, its
// default max_concurrent_objects, a file checkpoint cache and a quarantine
// folder, into the emulator.
func hostilePipeline(exportDir, checkpointDir, quarantineDir, emuURL string) string {
	feeds := feedsYAML("      ")
	return fmt.Sprintf(`
input:
  braze_currents:
    url: %q
    checkpoint_cache: checkpoint
    quarantine: %q
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: %q
    feeds:
%s    backoff: { initial_interval: 20ms, max_interval: 300ms }
cache_resources:
  - label: checkpoint
    file: { directory: %q }
http: { enabled: false }
logger: { level: INFO, format: logfmt }
metrics: { none: {} }
`, "file://"+filepath.ToSlash(exportDir), "file://"+filepath.ToSlash(quarantineDir), emuURL, feeds, checkpointDir)
}

// measuredRun is one run of the binary to its end, with its peak RSS.
type measuredRun struct {
	logs   string
	peakKB int64
}

// runMeasured runs the binary on a config to its end, without GOMEMLIMIT
// (a memory limit would hide what the process asks for), and reads its peak
// resident set from the kernel's accounting of the child.
func runMeasured(t *testing.T, config string, wantCode int) measuredRun {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-c", cfgPath)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if code := exitCode(t, cmd.Run()); code != wantCode {
		t.Fatalf("pipeline exited %d, want %d\n%s", code, wantCode, tail(logs.String(), 3000))
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the child")
	}
	return measuredRun{logs: logs.String(), peakKB: ru.Maxrss}
}

// hostileCheckpoint is the part of a checkpoint record the test reads.
type hostileCheckpoint struct {
	Status string `json:"status"`
	Object string `json:"object"`
	Events int    `json:"events"`
	Error  string `json:"error"`
	Class  string `json:"class"`
}

// readJSON reads a checkpoint or quarantine record.
func readJSON(t *testing.T, path string) hostileCheckpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no record: %v", err)
	}
	var cp hostileCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("%s: %q: %v", path, b, err)
	}
	return cp
}

// TestHostileFilesAmongARealExport mixes every hostile shape (gen.Hostile)
// into a generated export and runs the real binary over it: the process
// ends cleanly, every good event reaches mParticle, every hostile object is
// recorded as failed and quarantined, a second run reads none of them again,
// and the peak RSS stays within 256 MB of the binary's on a trivial export.
func TestHostileFilesAmongARealExport(t *testing.T) {
	const budgetKB = 256 << 10
	start := time.Now().UTC().Add(-6 * time.Hour)
	emu := startEmulator(t, -1, emulator.Faults{})

	// Idle: the same pipeline over an export of a few events.
	idleExp := newExport(t, gen.Config{Events: 20, Seed: 201, Start: start,
		EventTypes: []string{"users.messages.email.Open"}})
	idleDir := t.TempDir()
	idle := runMeasured(t, hostilePipeline(idleExp.dir, mkdir(t, idleDir, "checkpoint"), mkdir(t, idleDir, "quarantine"), emu.URL), 0)

	cfg := gen.Config{Events: 4000, Users: 600, Hours: 2, BlockEvents: 50, Seed: 202, Start: start}
	exp := newExport(t, cfg)
	h, err := gen.Hostile(cfg, gen.DirSink(exp.dir))
	if err != nil {
		t.Fatal(err)
	}
	hostileBytes := 0
	for _, o := range h.Objects {
		hostileBytes += o.Size
	}
	dir := t.TempDir()
	checkpoints, quarantine := mkdir(t, dir, "checkpoint"), mkdir(t, dir, "quarantine")
	config := hostilePipeline(exp.dir, checkpoints, quarantine, emu.URL)
	before := emu.Stats().Events
	first := runMeasured(t, config, runstatus.ExitObjectsFailed)

	// Every good event arrived once; users without external_user_id are
	// dropped by the mapping (the default).
	read := exp.decodable()
	o := collect(t, emu, first.logs)
	for id := range idleExp.decodable() {
		delete(o.delivered, id)
	}
	reconcile(t, read, anonymous(read), o)

	for _, obj := range h.Objects {
		name := obj.Key // a file:// url at the export's root: the key is the name
		sum := sha256.Sum256([]byte(name))
		cp := readJSON(t, filepath.Join(checkpoints, "braze_currents_"+hex.EncodeToString(sum[:])))
		if cp.Status != "failed" || cp.Object != name || cp.Class != "decode limit exceeded" || len(cp.Error) > 1024 {
			t.Errorf("%s: checkpoint %+v, want failed on a decode limit", obj.Corrupt, cp)
		}
		q := readJSON(t, filepath.Join(quarantine, filepath.FromSlash(name)+".error.json"))
		if q.Status != "failed" || q.Error != cp.Error {
			t.Errorf("%s: quarantine record %+v", obj.Corrupt, q)
		}
		t.Logf("%s (%d bytes): %s", obj.Corrupt, obj.Size, cp.Error)
	}
	wantSummary := fmt.Sprintf("objects completed, %d failed, 0 skipped as checkpointed", len(h.Objects))
	if !strings.Contains(first.logs, wantSummary) {
		t.Errorf("first run's summary lacks %q:\n%s", wantSummary, tail(first.logs, 3000))
	}
	if n := longestLine(first.logs); n > 4096 {
		t.Errorf("the first run logged a line of %d bytes", n)
	}

	// The second run skips every object, the hostile ones included.
	recorded := emu.Stats().Events
	second := runMeasured(t, config, 0)
	if n := emu.Stats().Events - recorded; n != 0 {
		t.Errorf("the second run sent %d events, want none", n)
	}
	wantSummary = fmt.Sprintf("0 objects completed, 0 failed, %d skipped as checkpointed", len(exp.manifest.Objects)+len(h.Objects))
	if !strings.Contains(second.logs, wantSummary) {
		t.Errorf("second run's summary lacks %q:\n%s", wantSummary, tail(second.logs, 3000))
	}

	t.Logf("peak RSS: idle (20 events) %d MB; with %d hostile objects (%d KB) among %d objects, %d events: %d MB (+%d MB); second run %d MB; %d events recorded",
		idle.peakKB>>10, len(h.Objects), hostileBytes>>10, len(exp.manifest.Objects), len(read),
		first.peakKB>>10, (first.peakKB-idle.peakKB)>>10, second.peakKB>>10, recorded-before)
	if first.peakKB > idle.peakKB+budgetKB {
		t.Fatalf("peak RSS %d MB, want at most idle %d MB + %d MB", first.peakKB>>10, idle.peakKB>>10, budgetKB>>10)
	}
}

func mkdir(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o755); err != nil { // the file cache does not create it
		t.Fatal(err)
	}
	return p
}

func longestLine(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, len(l))
	}
	return n
}
