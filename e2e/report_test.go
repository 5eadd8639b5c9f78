package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cexport "github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// reportPipeline reads the export with the braze_currents input, a Redis
// checkpoint cache and a quarantine folder, into the emulator. The
// mParticle credentials and the Redis url come from the environment, as in
// the shipped configs: the report needs the latter, never the former.
func reportPipeline(exportDir, quarantineDir, emuURL string) string {
	return fmt.Sprintf(`
input:
  braze_currents:
    url: %q
    checkpoint_cache: checkpoint
    checkpoint_prefix: report_e2e_
    quarantine: %q
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    url: %q
    feeds:
      unbound: { key: "${REPORT_E2E_UNBOUND_KEY}", secret: "${REPORT_E2E_UNBOUND_SECRET}" }
    fallback_feed: unbound
    backoff: { initial_interval: 20ms, max_interval: 300ms }
cache_resources:
  - label: checkpoint
    redis:
      url: ${REPORT_E2E_REDIS_URL:redis://localhost:1}
http: { enabled: false }
logger: { level: INFO, format: logfmt }
metrics: { none: {} }
`, "file://"+filepath.ToSlash(exportDir), "file://"+filepath.ToSlash(quarantineDir), emuURL)
}

// runTool runs a binary to its end and returns its stdout and stderr.
func runTool(t *testing.T, env []string, wantCode int, bin string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != wantCode {
		t.Fatalf("%s %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), code, wantCode, tail(stdout.String(), 3000), tail(stderr.String(), 3000))
	}
	return stdout.String(), stderr.String()
}

// reportJSON is the part of `currents-report -json` the test reads.
type reportJSON struct {
	Rows []struct {
		Hour      string `json:"hour"`
		EventType string `json:"event_type"`
		cexport.Counts
	} `json:"rows"`
	Warnings          []string       `json:"warnings"`
	Total             cexport.Counts `json:"total"`
	OldestPendingHour *string        `json:"oldest_pending_hour"`
	Failed            []struct {
		Object      string `json:"object"`
		Class       string `json:"class"`
		Quarantined bool   `json:"quarantined"`
	} `json:"failed"`
}

// TestReportAndRequeueAfterARealRun runs the distribution over an export
// with corrupt and hostile objects (a Redis checkpoint, a quarantine
// folder), then currents-report on the same config: its counts per hour and
// event type are the export's, every damaged object failed and quarantined.
// Re-queueing one deletes its checkpoint and quarantine record, the report
// shows it pending from its hour, and a second run reads that object alone,
// fails it again and quarantines it again.
func TestReportAndRequeueAfterARealRun(t *testing.T) {
	redisURL := startRedis(t)
	emu := startEmulator(t, -1, emulator.Faults{})
	cfg := gen.Config{Events: 900, Users: 150, Hours: 3, BlockEvents: 50, FileEvents: 120, CorruptFiles: 2, Seed: 301,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send", "users.messages.pushnotification.Send"}}
	exp := newExport(t, cfg)

	// One hostile object, named like Braze's in the first object's hour and
	// folder (partition 7, which gen never uses).
	shape := gen.HostileArrayNull10K
	hostileType, body, err := gen.HostileBody(shape)
	if err != nil {
		t.Fatal(err)
	}
	first := exp.manifest.Objects[0]
	hostile := strings.Replace(first.Key, "event_type="+first.EventType+"/", "event_type="+hostileType+"/", 1)
	cut := strings.LastIndex(hostile, "+")
	hostile = hostile[:strings.LastIndex(hostile[:cut], "+")] + "+7+1.avro"
	if err := gen.DirSink(exp.dir)(hostile, body); err != nil {
		t.Fatal(err)
	}
	objects := append(append([]gen.Object(nil), exp.manifest.Objects...), gen.Object{Key: hostile, EventType: hostileType, Corrupt: shape})

	// What the report must say, from the generated keys.
	type cell struct{ hour, eventType string }
	want := map[cell]cexport.Counts{}
	var total cexport.Counts
	damaged := map[string]bool{}
	for _, o := range objects {
		k, err := currents.ParseObjectKey(o.Key)
		if err != nil {
			t.Fatal(err)
		}
		c := want[cell{k.DateHour, k.EventType}]
		c.Objects++
		total.Objects++
		if o.Corrupt != "" {
			c.Failed++
			c.Quarantined++
			total.Failed++
			total.Quarantined++
			damaged[o.Key] = true
		} else {
			c.Completed++
			total.Completed++
		}
		want[cell{k.DateHour, k.EventType}] = c
	}
	if len(damaged) != 3 {
		t.Fatalf("%d damaged objects, want 3 (2 corrupt, 1 hostile)", len(damaged))
	}

	quarantine := mkdir(t, t.TempDir(), "quarantine")
	cfgPath := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(reportPipeline(exp.dir, quarantine, emu.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	var reportEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REPORT_E2E_") {
			reportEnv = append(reportEnv, kv)
		}
	}
	reportEnv = append(reportEnv, "REPORT_E2E_REDIS_URL="+redisURL)
	runEnv := append(append([]string(nil), reportEnv...),
		"REPORT_E2E_UNBOUND_KEY="+feedCreds["unbound"].Key, "REPORT_E2E_UNBOUND_SECRET="+feedCreds["unbound"].Secret)
	report := func() reportJSON {
		t.Helper()
		out, _ := runTool(t, reportEnv, 0, reportBinary, "-c", cfgPath, "-json")
		var r reportJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("report: %v\n%s", err, out)
		}
		return r
	}

	stdout, stderr := runTool(t, runEnv, runstatus.ExitObjectsFailed, binary, "-c", cfgPath)
	logs := stdout + stderr
	summary := fmt.Sprintf("%d objects completed, 3 failed, 0 skipped as checkpointed", total.Completed)
	if !strings.Contains(logs, summary) {
		t.Fatalf("the run's summary lacks %q:\n%s", summary, tail(logs, 3000))
	}

	r := report()
	if r.Total != total || len(r.Warnings) != 0 {
		t.Errorf("total %+v, want %+v; warnings %q", r.Total, total, r.Warnings)
	}
	if len(r.Rows) != len(want) {
		t.Errorf("%d rows, want %d (hours × event types)", len(r.Rows), len(want))
	}
	for i, row := range r.Rows {
		if row.Counts != want[cell{row.Hour, row.EventType}] {
			t.Errorf("%s %s: %+v, want %+v", row.Hour, row.EventType, row.Counts, want[cell{row.Hour, row.EventType}])
		}
		if i > 0 && row.Hour < r.Rows[i-1].Hour {
			t.Errorf("row %s %s after hour %s: not oldest first", row.Hour, row.EventType, r.Rows[i-1].Hour)
		}
	}
	if r.OldestPendingHour != nil {
		t.Errorf("oldest pending hour %q, want none", *r.OldestPendingHour)
	}
	for _, f := range r.Failed {
		if !damaged[f.Object] || !f.Quarantined || f.Class == "" {
			t.Errorf("failed object %+v: not a damaged one, or not quarantined, or no class", f)
		}
	}
	if len(r.Failed) != len(damaged) {
		t.Errorf("%d failed objects listed, want %d", len(r.Failed), len(damaged))
	}
	text, _ := runTool(t, reportEnv, 0, reportBinary, "-c", cfgPath)
	t.Logf("currents-report -c pipeline.yaml after the first run:\n%s", text)

	// Re-queue the hostile object.
	out, _ := runTool(t, reportEnv, 0, reportBinary, "-c", cfgPath, "requeue", hostile)
	t.Logf("currents-report -c pipeline.yaml requeue <hostile object>:\n%s", out)
	cpKey := cexport.CheckpointKey("report_e2e_", hostile)
	if !strings.Contains(out, "Re-queued "+hostile) || !strings.Contains(out, cpKey) || !strings.Contains(out, "was failed, decode limit exceeded") {
		t.Errorf("requeue printed:\n%s", out)
	}
	if reply, err := redisCommand(strings.TrimPrefix(redisURL, "redis://"), "EXISTS "+cpKey); err != nil || reply != ":0" {
		t.Errorf("checkpoint %s still in Redis: %q %v", cpKey, reply, err)
	}
	qPath := filepath.Join(quarantine, filepath.FromSlash(cexport.QuarantineKey(hostile)))
	if _, err := os.Stat(qPath); !os.IsNotExist(err) {
		t.Errorf("quarantine record %s: %v, want it deleted", qPath, err)
	}

	text, _ = runTool(t, reportEnv, 0, reportBinary, "-c", cfgPath)
	t.Logf("currents-report -c pipeline.yaml after the requeue:\n%s", text)
	r = report()
	hostileHour := hourOf(t, hostile)
	pendingTotal := total
	pendingTotal.Failed--
	pendingTotal.Quarantined--
	pendingTotal.Pending++
	if r.Total != pendingTotal || r.OldestPendingHour == nil || *r.OldestPendingHour != hostileHour || len(r.Failed) != 2 {
		t.Errorf("after the requeue: total %+v, oldest pending %v, %d failed; want %+v, %s, 2", r.Total, r.OldestPendingHour, len(r.Failed), pendingTotal, hostileHour)
	}

	// The second run reads the re-queued object alone, and fails it again.
	stdout, stderr = runTool(t, runEnv, runstatus.ExitObjectsFailed, binary, "-c", cfgPath)
	logs = stdout + stderr
	summary = fmt.Sprintf("0 objects completed, 1 failed, %d skipped as checkpointed", total.Objects-1)
	if !strings.Contains(logs, summary) {
		t.Fatalf("the second run's summary lacks %q:\n%s", summary, tail(logs, 3000))
	}
	if _, err := os.Stat(qPath); err != nil {
		t.Errorf("the second run did not quarantine %s again: %v", hostile, err)
	}
	if r = report(); r.Total != total || r.OldestPendingHour != nil {
		t.Errorf("after the second run: total %+v, oldest pending %v; want %+v, none", r.Total, r.OldestPendingHour, total)
	}
}

func hourOf(t *testing.T, key string) string {
	t.Helper()
	k, err := currents.ParseObjectKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.DateHour
}
