// Package e2e drives the real currents-mparticle binary over generated
// Currents exports into the mParticle emulator, and reconciles every event:
// read = delivered + dropped (by reason) + dead-lettered, nothing lost,
// nothing delivered twice after mParticle's deduplication.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/emulator"
)

// binary is the distribution, reportBinary the currents-report command.
var binary, reportBinary string

// TestMain builds the distribution and currents-report once for every test
// of the package, in one go build.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "currents-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "currents-mparticle")
	reportBinary = filepath.Join(dir, "currents-report")
	if runtime.GOOS == "windows" {
		binary += ".exe"
		reportBinary += ".exe"
	}
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../cmd/currents-mparticle", "../cmd/currents-report")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the distribution and currents-report:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var feedCreds = map[string]emulator.Credentials{
	"ios": {Key: "ios-key", Secret: "ios-secret"}, "android": {Key: "android-key", Secret: "android-secret"},
	"web": {Key: "web-key", Secret: "web-secret"}, "unbound": {Key: "unbound-key", Secret: "unbound-secret"},
}

// export is a generated export on disk with every record kept.
type export struct {
	dir      string
	manifest gen.Manifest
}

func newExport(t *testing.T, cfg gen.Config) export {
	t.Helper()
	dir := t.TempDir()
	cfg.KeepRecords = true
	if cfg.Start.IsZero() {
		// Recent enough for the real-time endpoint (the historical one wants
		// events older than 30 days), old enough to be a real backlog.
		cfg.Start = time.Now().UTC().Add(-6 * time.Hour)
	}
	m, err := gen.Generate(cfg, gen.DirSink(dir))
	if err != nil {
		t.Fatal(err)
	}
	return export{dir: dir, manifest: m}
}

// decodable returns every event a reader can decode, by id, with its record.
func (e export) decodable() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, o := range e.manifest.Objects {
		n := len(o.Records)
		if o.Corrupt != "" {
			n = o.GoodEvents
		}
		for _, r := range o.Records[:n] {
			out[r["id"].(string)] = r
		}
	}
	return out
}

// feedsYAML is the feeds block of the mparticle output for the emulator's
// credentials, each line indented by indent.
func feedsYAML(indent string) string {
	var b strings.Builder
	for _, f := range []string{"ios", "android", "web", "unbound"} {
		fmt.Fprintf(&b, "%s%s: { key: %q, secret: %q }\n", indent, f, feedCreds[f].Key, feedCreds[f].Secret)
	}
	return b.String()
}

// deadLetterYAML is the second output of a fallback after the mparticle
// output, indented by indent: what mParticle refuses for good is written to
// path, one JSON line per event with its reason; feed_paused events go back
// to the input, as the shipped configs do.
func deadLetterYAML(path, indent string) string {
	return indent + strings.ReplaceAll(fmt.Sprintf(`- switch:
    cases:
      - check: '@fallback_error.has_prefix("mparticle feed_paused")'
        output:
          reject: '${! @fallback_error }'
      - output:
          file: { path: %q, codec: lines }
          processors:
            - mapping: |
                root.event_id = @mparticle_event_id
                root.reason = @fallback_error`, path), "\n", "\n"+indent)
}

// pipeline is the config under test: the export → mapping → mParticle.
// Events the mapping fails go to <dlq>.mapping, events the output fails go
// to <dlq>.delivery, each line with the event id and the reason.
func pipeline(exportDir, emuURL, dlq, processorOpts, outputOpts string) string {
	feeds := feedsYAML("                  ")
	return fmt.Sprintf(`
input:
  file:
    paths: [ %q ]
    scanner:
      braze_currents:
        max_batch_size: 1
pipeline:
  processors:
    - currents_to_mparticle: {%s}
output:
  switch:
    cases:
      - check: errored()
        output:
          file: { path: %q, codec: lines }
          processors:
            - mapping: |
                root.event_id = @currents_id
                root.reason = error()
      - output:
          fallback:
            - mparticle:
                url: %q
                feeds:
%s                backoff:
                  initial_interval: 20ms
                  max_interval: 300ms
%s
%s
logger:
  level: WARN
  format: logfmt
metrics:
  none: {}
`, filepath.Join(exportDir, "**", "*.avro"), processorOpts, dlq+".mapping", emuURL, feeds, indent(outputOpts, "                "), deadLetterYAML(dlq+".delivery", "            "))
}

func indent(s, pad string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}

// outcome is what one run produced.
type outcome struct {
	delivered    map[string]int             // event id → times recorded by the emulator
	deliveredEvt map[string]json.RawMessage // event id → the mParticle event as recorded
	feedOf       map[string]string          // event id → feed it arrived on
	deadLettered map[string]string          // event id → reason
	stats        emulator.Stats
	logs         string
}

// runPipeline runs the binary to completion on the config, which must exit
// 0, and collects the outcome.
func runPipeline(t *testing.T, emu *emulator.Server, config string) outcome {
	t.Helper()
	return runPipelineExit(t, emu, config, 0)
}

// runPipelineExit is runPipeline for a run that must exit with wantCode.
func runPipelineExit(t *testing.T, emu *emulator.Server, config string, wantCode int) outcome {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-c", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if code := exitCode(t, cmd.Run()); code != wantCode {
		t.Fatalf("pipeline exited %d, want %d:\n%s", code, wantCode, logs.String())
	}
	return collect(t, emu, logs.String())
}

func collect(t *testing.T, emu *emulator.Server, logs string) outcome {
	t.Helper()
	o := outcome{delivered: map[string]int{}, deliveredEvt: map[string]json.RawMessage{}, feedOf: map[string]string{},
		deadLettered: map[string]string{}, stats: emu.Stats(), logs: logs}
	for _, rec := range emu.Batches() {
		var b struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(rec.Batch, &b); err != nil {
			t.Fatalf("emulator holds a batch that is not JSON: %v", err)
		}
		for _, ev := range b.Events {
			var e struct {
				Data struct {
					SourceMessageID string `json:"source_message_id"`
					Attrs           struct {
						SourceRequestID string `json:"source_request_id"`
					} `json:"custom_attributes"`
				} `json:"data"`
			}
			if err := json.Unmarshal(ev, &e); err != nil {
				t.Fatal(err)
			}
			// The Currents id travels as custom attribute source_request_id
			// (the hosted connector's habit); source_message_id is the same
			// id when it is a UUID.
			id := e.Data.Attrs.SourceRequestID
			if id == "" {
				id = e.Data.SourceMessageID
			}
			o.delivered[id]++
			o.deliveredEvt[id] = ev
			o.feedOf[id] = rec.Feed
		}
	}
	return o
}

// readDLQ fills the dead-lettered set from the dead-letter files.
func (o *outcome) readDLQ(t *testing.T, dlq string) {
	t.Helper()
	o.readDLQFile(t, dlq+".mapping")
	o.readDLQFile(t, dlq+".delivery")
}

func (o *outcome) readDLQFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var d struct {
			EventID string `json:"event_id"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		if d.EventID == "" || d.Reason == "" {
			t.Fatalf("dead-letter line without event id or reason: %s", sc.Text())
		}
		o.deadLettered[d.EventID] = d.Reason
	}
}

// reconcile asserts read = delivered + dropped + dead-lettered exactly, and
// that every delivered event was recorded once (after dedup).
func reconcile(t *testing.T, read map[string]map[string]any, dropped map[string]bool, o outcome) {
	t.Helper()
	var lost, twice, unknown, both []string
	for id := range read {
		_, del := o.delivered[id]
		_, dl := o.deadLettered[id]
		switch {
		case dropped[id]:
			if del || dl {
				t.Errorf("event %s should have been dropped, delivered=%v dead-lettered=%v", id, del, dl)
			}
		case del && dl:
			both = append(both, id)
		case !del && !dl:
			lost = append(lost, id)
		}
		if o.delivered[id] > 1 {
			twice = append(twice, id)
		}
	}
	for id := range o.delivered {
		if _, ok := read[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 || len(twice) > 0 || len(unknown) > 0 || len(both) > 0 {
		t.Fatalf("reconciliation failed: %d lost (e.g. %v), %d recorded twice, %d unknown delivered, %d both delivered and dead-lettered\nlogs:\n%s",
			len(lost), first(lost), len(twice), len(unknown), len(both), tail(o.logs, 3000))
	}
	t.Logf("read %d = delivered %d + dropped %d + dead-lettered %d; emulator stats: %+v",
		len(read), len(o.delivered), len(dropped), len(o.deadLettered), o.stats)
	if len(read) != len(o.delivered)+len(dropped)+len(o.deadLettered) {
		t.Fatalf("counts do not add up")
	}
}

func first(ids []string) []string {
	if len(ids) > 3 {
		return ids[:3]
	}
	return ids
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// anonymous returns the ids of events whose user has no external_user_id.
func anonymous(read map[string]map[string]any) map[string]bool {
	out := map[string]bool{}
	for id, r := range read {
		if r["external_user_id"] == nil {
			out[id] = true
		}
	}
	return out
}
