package currents

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// bciWithHostile adds one object of every hostile shape (gen.Hostile) to a
// generated export, in its first hour.
func bciWithHostile(t testing.TB, e bciExport, cfg gen.Config) bciExport {
	t.Helper()
	h, err := gen.Hostile(cfg, func(key string, body []byte) error {
		e.objs[key] = body
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.m.Objects = append(e.m.Objects, h.Objects...)
	return e
}

// bciMetrics reads the Prometheus metrics served on mux, keeping the class
// label of the input's counters.
func bciReadMetrics(mux *http.ServeMux) map[string]float64 {
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "currents_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name, value := line[:i], line[i+1:]
		base, labels, _ := strings.Cut(strings.TrimSuffix(name, "}"), "{")
		for _, l := range strings.Split(labels, ",") {
			if strings.HasPrefix(l, "class=") {
				base += "{" + l + "}"
			}
		}
		var v float64
		fmt.Sscan(value, &v)
		out[base] += v
	}
	return out
}

// A file past a decode limit takes the corrupt-object path: logged, counted,
// recorded as failed in the checkpoint and quarantined, with a short reason
// naming the limit; the other objects of the export flow, and a restart with
// the same checkpoint reads none of them again.
func TestInputHostileObjectsFailOnLimitsAndAreNotReadAgain(t *testing.T) {
	dir, cpDir, qDir := t.TempDir(), t.TempDir(), t.TempDir()
	cfg := gen.Config{Events: 400, Hours: 2, BlockEvents: 10, KeepRecords: true, Seed: 31}
	e := bciWithHostile(t, bciGenerate(t, cfg), cfg)
	e.writeDir(t, dir)
	mux := http.NewServeMux()
	stream := bciStream{
		input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  checkpoint_cache: cp
  quarantine: file://%s
`, dir, qDir),
		caches: []string{fmt.Sprintf("label: cp\nfile:\n  directory: %s", cpDir)},
		mux:    mux,
	}
	res := stream.run(t)
	res.exactlyOnce(t, e.ids(t, nil))
	logs := res.logs.String()

	hostile := 0
	for _, o := range e.m.Objects {
		name := strings.TrimPrefix(o.Key, "currents/")
		cp := bciReadCheckpoint(t, cpDir, name)
		if o.Corrupt == "" {
			if cp.Status != "completed" || cp.Events != o.Events {
				t.Errorf("object %s: checkpoint %+v, want completed with %d events", name, cp, o.Events)
			}
			continue
		}
		hostile++
		if cp.Status != "failed" || cp.Events != 0 || cp.Class != decoder.ErrLimitExceeded.Error() ||
			!strings.Contains(cp.Error, " = ") || !strings.Contains(cp.Error, "max_") || len(cp.Error) > 1024 {
			t.Errorf("%s (%s): checkpoint %+v, want failed on a decode limit with a short reason", name, o.Corrupt, cp)
		}
		q, err := os.ReadFile(filepath.Join(qDir, filepath.FromSlash(name)+".error.json"))
		if err != nil {
			t.Fatalf("no quarantine record for %s: %v", name, err)
		}
		var qr bciCheckpoint
		if err := json.Unmarshal(q, &qr); err != nil || qr.Status != "failed" || qr.Error != cp.Error {
			t.Errorf("quarantine record of %s: %s (%v)", name, q, err)
		}
		if !strings.Contains(logs, "Braze Currents object "+name+" is corrupt") {
			t.Errorf("no error logged for %s; logs:\n%s", name, logs)
		}
	}
	if hostile != len(gen.HostileShapes) {
		t.Fatalf("%d hostile objects, want %d", hostile, len(gen.HostileShapes))
	}
	m := bciReadMetrics(mux)
	class := `{class="` + decoder.ErrLimitExceeded.Error() + `"}`
	if m["currents_objects_failed"+class] != float64(hostile) || m["currents_decode_errors"+class] != float64(hostile) {
		t.Errorf("currents_objects_failed%s = %v, currents_decode_errors%s = %v, want %d each",
			class, m["currents_objects_failed"+class], class, m["currents_decode_errors"+class], hostile)
	}

	stream.mux = nil // a second stream cannot register its endpoints on the same mux
	again := stream.run(t)
	if n := again.delivered(); n != 0 {
		t.Fatalf("second run delivered %d events, want none: every object is checkpointed", n)
	}
	if l := again.logs.String(); strings.Contains(l, "Reading Braze Currents object") {
		t.Fatalf("second run read objects:\n%s", l)
	}
}

// decode_limits reaches the input's decoder: with max_block_events below the
// export's blocks every object fails on it; at the block size all arrive.
func TestInputDecodeLimitsConfig(t *testing.T) {
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 60, BlockEvents: 10, KeepRecords: true, Seed: 32,
		EventTypes: []string{"users.messages.email.Open"}})
	e.writeDir(t, dir)
	input := func(limit int) string {
		return fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  decode_limits:
    max_block_events: %d
`, dir, limit)
	}
	res := bciStream{input: input(9)}.run(t)
	if n := res.delivered(); n != 0 || !strings.Contains(res.logs.String(), "max_block_events = 9") {
		t.Fatalf("max_block_events 9: %d events delivered; logs:\n%s", n, res.logs)
	}
	bciStream{input: input(10)}.run(t).exactlyOnce(t, e.ids(t, nil))

	for _, bad := range []string{"max_block_events: 0", "max_depth: -1"} {
		conf, err := brazeCurrentsInputSpec().ParseYAML(fmt.Sprintf("url: file://%s\ndecode_limits:\n  %s\n", dir, bad), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bciConfigFromParsed(conf, time.Now()); err == nil || !strings.Contains(err.Error(), "decode_limits.") {
			t.Errorf("%s: err = %v, want it refused", bad, err)
		}
	}
}
