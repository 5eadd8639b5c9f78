package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 5, 12, 30, 0, 0, time.UTC)
	t.Setenv("REPORT_TEST_URL", "s3://bucket/currents?region=us-east-1")

	direct := writeFile(t, dir, "direct.yaml", `
input:
  braze_currents:
    url: ${REPORT_TEST_URL}
    since: 2026-11-01
    until: 24h
    event_types: [ "users.messages.email.*" ]
    checkpoint_cache: ${REPORT_TEST_CACHE:checkpoint}
pipeline:
  processors:
    - currents_to_mparticle: {}
output:
  mparticle:
    pod: us1
    feeds:
      unbound: { key: "${REPORT_TEST_UNSET_KEY}", secret: "${REPORT_TEST_UNSET_SECRET}" }
    fallback_feed: unbound
cache_resources:
  - label: checkpoint
    redis: { url: redis://localhost:6379 }
`)
	s, err := loadSettings(direct, nil, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if s.url != "s3://bucket/currents?region=us-east-1" || s.checkpointCache != "checkpoint" || s.checkpointPrefix != "braze_currents_" ||
		s.shard != (export.Shard{Index: 0, Count: 1}) || s.quarantine != "" || !strings.Contains(s.cacheYAML, "redis") {
		t.Fatalf("settings %+v", s)
	}
	if !s.rng.Since.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || !s.rng.Until.Equal(now.Add(-24*time.Hour)) {
		t.Fatalf("range %+v", s.rng)
	}
	if !s.types.Match("users.messages.email.Open") || s.types.Match("users.messages.pushnotification.Send") {
		t.Fatalf("types %+v", s.types)
	}

	// Inside a broker, with a resources file: two inputs need -label.
	brokered := writeFile(t, dir, "broker.yaml", `
input:
  broker:
    inputs:
      - label: live
        braze_currents:
          url: gs://bucket/currents
          checkpoint_cache: checkpoint
          checkpoint_prefix: live_
          quarantine: gs://bucket/quarantine
          shard: { index: ${REPORT_TEST_SHARD:2}, count: 3 }
      - label: replay
        braze_currents:
          url: gs://bucket/currents
          shard: { index: ${REPORT_TEST_UNSET_SHARD}, count: 3 }
output:
  drop: {}
`)
	resources := writeFile(t, dir, "resources.yaml", `
cache_resources:
  - label: checkpoint
    file: { directory: ./checkpoints }
`)
	if _, err := loadSettings(brokered, []string{resources}, "", now); err == nil || !strings.Contains(err.Error(), `"live", "replay"`) {
		t.Fatalf("two inputs without -label: %v", err)
	}
	s, err = loadSettings(brokered, []string{resources}, "live", now)
	if err != nil {
		t.Fatal(err)
	}
	if s.label != "live" || s.checkpointPrefix != "live_" || s.shard != (export.Shard{Index: 2, Count: 3}) ||
		s.quarantine != "gs://bucket/quarantine" || !strings.Contains(s.cacheYAML, "./checkpoints") {
		t.Fatalf("settings %+v", s)
	}
	_, err = loadSettings(brokered, []string{resources}, "replay", now)
	if err == nil || !strings.Contains(err.Error(), `"replay"`) || !strings.Contains(err.Error(), "field 'shard': field 'index'") ||
		!strings.Contains(err.Error(), "REPORT_TEST_UNSET_SHARD") {
		t.Fatalf("unset shard index: %v, want an error naming the input, the field and the variable", err)
	}
	if _, err := loadSettings(brokered, nil, "live", now); err == nil || !strings.Contains(err.Error(), `checkpoint_cache: cache resource "checkpoint" not found`) {
		t.Fatalf("missing cache resource: %v", err)
	}
	if _, err := loadSettings(brokered, nil, "nope", now); err == nil || !strings.Contains(err.Error(), `labelled "nope"`) {
		t.Fatalf("unknown label: %v", err)
	}
	none := writeFile(t, dir, "none.yaml", "input: { generate: { mapping: 'root = 1' } }\noutput: { drop: {} }\n")
	if _, err := loadSettings(none, nil, "", now); err == nil || !strings.Contains(err.Error(), "has no braze_currents input") {
		t.Fatalf("no input: %v", err)
	}
	bad := writeFile(t, dir, "bad.yaml", "input: { braze_currents: { url: file:///x, since: yesterday } }\noutput: { drop: {} }\n")
	if _, err := loadSettings(bad, nil, "", now); err == nil || !strings.Contains(err.Error(), "since:") {
		t.Fatalf("bad since: %v", err)
	}
}

// fixture is an export on disk with checkpoints and quarantine records
// written the way the input writes them.
type fixture struct {
	config, checkpoints, quarantine string
	objects                         []string // full keys, in manifest order
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	exp, cps, q := filepath.Join(dir, "export"), filepath.Join(dir, "checkpoints"), filepath.Join(dir, "quarantine")
	for _, d := range []string{exp, cps, q} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m, err := gen.Generate(gen.Config{Events: 300, Hours: 2, FileEvents: 60, Seed: 5,
		Start:      time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Send"}}, gen.DirSink(exp))
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{checkpoints: cps, quarantine: q}
	for _, o := range m.Objects {
		f.objects = append(f.objects, o.Key)
	}
	f.config = writeFile(t, dir, "pipeline.yaml", `
input:
  braze_currents:
    url: file://`+filepath.ToSlash(exp)+`
    checkpoint_cache: checkpoint
    quarantine: file://`+filepath.ToSlash(q)+`
output:
  drop: {}
cache_resources:
  - label: checkpoint
    file: { directory: "`+cps+`" }
`)
	return f
}

func (f fixture) record(t *testing.T, object, status string, quarantine bool) {
	t.Helper()
	cp := export.Checkpoint{Status: status, Object: object, Events: 10, At: "2026-11-01T12:00:00Z"}
	if status == export.StatusFailed {
		cp.Class, cp.Error = "bad sync marker", "block 2: bad sync marker"
	}
	b, _ := json.Marshal(cp)
	writeFile(t, f.checkpoints, export.CheckpointKey("braze_currents_", object), string(b))
	if quarantine {
		p := filepath.Join(f.quarantine, filepath.FromSlash(export.QuarantineKey(object)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), string(b))
	}
}

func runReport(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(context.Background(), args, &out, &errs)
	return out.String(), errs.String(), code
}

func TestReportAndRequeue(t *testing.T) {
	f := newFixture(t)
	if len(f.objects) < 4 {
		t.Fatalf("%d objects generated, want at least 4", len(f.objects))
	}
	failed, completed, pending := f.objects[0], f.objects[1:len(f.objects)-1], f.objects[len(f.objects)-1]

	// Before the input ever ran against the cache, the report says so.
	out, errs, code := runReport(t, "-c", f.config, "-json")
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.Warnings) != 1 ||
		!strings.Contains(r.Warnings[0], "braze_currents_probe") || r.Total.Pending != len(f.objects) {
		t.Fatalf("a cache the input never wrote to: exit %d, %v, %+v %s", code, err, r, errs)
	}
	writeFile(t, f.checkpoints, export.ProbeKey("braze_currents_"), `{"status":"probe"}`)
	f.record(t, failed, export.StatusFailed, true)
	for _, o := range completed {
		f.record(t, o, export.StatusCompleted, false)
	}

	out, errs, code = runReport(t, "-c", f.config, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	r = jsonReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := export.Counts{Objects: len(f.objects), Completed: len(completed), Failed: 1, Quarantined: 1, Pending: 1}
	if r.Total != want || len(r.Warnings) != 0 {
		t.Fatalf("total %+v, want %+v; warnings %q\n%s", r.Total, want, r.Warnings, out)
	}
	sum := export.Counts{}
	for _, row := range r.Rows {
		if row.Hour == "" || row.EventType == "" {
			t.Errorf("row %+v lacks its hour or type", row)
		}
		sum.Objects += row.Objects
		sum.Pending += row.Pending
	}
	if sum.Objects != want.Objects || sum.Pending != 1 {
		t.Errorf("rows add up to %+v", sum)
	}
	if len(r.Failed) != 1 || r.Failed[0].Object != failed || !r.Failed[0].Quarantined || r.Failed[0].Class != "bad sync marker" {
		t.Errorf("failed %+v", r.Failed)
	}
	if r.OldestPendingHour == nil || !strings.Contains(pending, "date="+*r.OldestPendingHour+"/") {
		t.Errorf("oldest pending hour %v, want that of %s", r.OldestPendingHour, pending)
	}

	text, _, code := runReport(t, "-c", f.config)
	if code != 0 || !strings.Contains(text, "total") || !strings.Contains(text, failed) || !strings.Contains(text, "Oldest pending hour: 20") {
		t.Fatalf("text report (exit %d):\n%s", code, text)
	}
	t.Logf("report:\n%s", text)

	// Refused: a completed object without -force, a pending one, one not in
	// the export; nothing is deleted.
	for _, c := range []struct{ object, want string }{
		{completed[0], "-force"},
		{pending, "pending already"},
		{"dataexport/nope.avro", "not in the export"},
	} {
		_, errs, code := runReport(t, "-c", f.config, "requeue", failed, c.object)
		if code != 1 || !strings.Contains(errs, c.object) || !strings.Contains(errs, c.want) {
			t.Errorf("requeue %s: exit %d, %q; want an error naming it and %q", c.object, code, errs, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(f.checkpoints, export.CheckpointKey("braze_currents_", failed))); err != nil {
		t.Fatalf("a refused requeue deleted the checkpoint of %s: %v", failed, err)
	}

	out, errs, code = runReport(t, "-c", f.config, "requeue", failed)
	if code != 0 || !strings.Contains(out, "Re-queued "+failed) || !strings.Contains(out, "was failed, bad sync marker") || !strings.Contains(out, "quarantine record") ||
		!strings.Contains(out, "the 10 read before it failed, bad sync marker included") || !strings.Contains(out, "ledger") {
		t.Fatalf("requeue: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = runReport(t, "-c", f.config, "-json")
	r = jsonReport{}
	_ = json.Unmarshal([]byte(out), &r)
	if want := (export.Counts{Objects: len(f.objects), Completed: len(completed), Pending: 2}); r.Total != want || len(r.Failed) != 0 {
		t.Fatalf("after requeue: total %+v, failed %v; want %+v", r.Total, r.Failed, want)
	}

	out, errs, code = runReport(t, "-c", f.config, "requeue", "-force", completed[0])
	if code != 0 || !strings.Contains(out, "was completed") {
		t.Fatalf("requeue -force: exit %d\n%s%s", code, out, errs)
	}
}

func TestUsage(t *testing.T) {
	if _, errs, code := runReport(t); code != 2 || !strings.Contains(errs, "-c <pipeline config> is required") {
		t.Errorf("no -c: exit %d, %q", code, errs)
	}
	if _, errs, code := runReport(t, "-c", "x.yaml", "requeue"); code != 2 || !strings.Contains(errs, "at least one object") {
		t.Errorf("requeue without objects: exit %d, %q", code, errs)
	}
	if _, errs, code := runReport(t, "-c", "x.yaml", "frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errs)
	}
	if _, errs, code := runReport(t, "-c", filepath.Join(t.TempDir(), "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("missing config: exit %d, %q", code, errs)
	}
}

// A checkpoint a kill cut short (the file cache leaves a 0-byte file) is
// listed as unreadable, settled as the input sees it, and the report of the
// rest of the export goes on: it used to abort with exit 1 and print
// nothing.
func TestReportListsAnUnreadableCheckpoint(t *testing.T) {
	f := newFixture(t)
	writeFile(t, f.checkpoints, export.ProbeKey("braze_currents_"), `{"status":"probe"}`)
	cut := f.objects[0]
	writeFile(t, f.checkpoints, export.CheckpointKey("braze_currents_", cut), "")
	f.record(t, f.objects[1], export.StatusCompleted, false)

	out, errs, code := runReport(t, "-c", f.config, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r jsonReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := export.Counts{Objects: len(f.objects), Completed: 1, Unreadable: 1, Pending: len(f.objects) - 2}
	if r.Total != want || len(r.Unreadable) != 1 || r.Unreadable[0].Object != cut || !strings.Contains(r.Unreadable[0].Error, "not a checkpoint record") {
		t.Fatalf("total %+v, want %+v; unreadable %+v", r.Total, want, r.Unreadable)
	}
	text, _, code := runReport(t, "-c", f.config)
	if code != 0 || !strings.Contains(text, "Unreadable checkpoints") || !strings.Contains(text, cut) {
		t.Fatalf("text report (exit %d):\n%s", code, text)
	}
}
