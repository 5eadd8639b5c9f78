package currents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/benthosdev/benthos/v4/public/components/prometheus"
	"github.com/benthosdev/benthos/v4/public/service"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// bciExport is a generated export: its manifest and its objects by key.
type bciExport struct {
	m    gen.Manifest
	objs map[string][]byte
}

func bciGenerate(t testing.TB, cfg gen.Config) bciExport {
	t.Helper()
	e := bciExport{objs: map[string][]byte{}}
	var err error
	e.m, err = gen.Generate(cfg, func(key string, body []byte) error {
		e.objs[key] = body
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writeDir writes the export under dir, each file through a rename so that
// a watching input never lists a half-written file.
func (e bciExport) writeDir(t testing.TB, dir string) {
	t.Helper()
	for k, body := range e.objs {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, ".tmp-"+filepath.Base(p))
		if err := os.WriteFile(tmp, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
}

// ids lists the event ids of the objects kept by keep (all when nil), of
// the events a reader can decode.
func (e bciExport) ids(t testing.TB, keep func(gen.Object) bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range e.m.Objects {
		if keep != nil && !keep(o) {
			continue
		}
		if o.Records == nil && o.Events > 0 {
			t.Fatal("generate with KeepRecords to list ids")
		}
		n := o.Events
		if o.Corrupt != "" {
			n = o.GoodEvents
		}
		for _, r := range o.Records[:n] {
			out[r["id"].(string)] = o.Key
		}
	}
	return out
}

// bciMemEnv returns an environment whose braze_currents input opens mem://
// urls onto an in-memory bucket holding the export's objects.
func bciMemEnv(t testing.TB, e bciExport) *service.Environment {
	t.Helper()
	env := service.NewEnvironment()
	open := func(ctx context.Context, u string) (*blob.Bucket, error) {
		if !strings.HasPrefix(u, "mem:") {
			return export.OpenBucket(ctx, u)
		}
		b := memblob.OpenBucket(nil)
		for k, body := range e.objs {
			if err := b.WriteAll(ctx, k, body, nil); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	if err := env.RegisterBatchInput("braze_currents", brazeCurrentsInputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			return newBrazeCurrentsInputFromParsed(conf, mgr, open)
		}); err != nil {
		t.Fatal(err)
	}
	return env
}

// bciResult is what a stream delivered: successful deliveries by event id,
// metadata by id, and metadata in arrival order.
type bciResult struct {
	mu      sync.Mutex
	count   map[string]int
	meta    map[string]map[string]string
	arrival []map[string]string
	logs    bciLogs
}

// bciLogs reads the log file of a stream: a print logger would drop the
// debug lines the tests look for.
type bciLogs string

func (l bciLogs) String() string {
	b, _ := os.ReadFile(string(l))
	return string(b)
}

func (r *bciResult) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.count)
}

// bciStream describes one stream: the input YAML, cache resources and an
// optional veto that nacks a batch before it is recorded.
type bciStream struct {
	env    *service.Environment
	input  string
	caches []string
	veto   func(service.MessageBatch) error
	mux    *http.ServeMux // when set, Prometheus metrics are served on it
}

func (s bciStream) build(t testing.TB) (*service.Stream, *bciResult) {
	t.Helper()
	var b *service.StreamBuilder
	if s.env != nil {
		b = s.env.NewStreamBuilder()
	} else {
		b = service.NewStreamBuilder()
	}
	logFile := filepath.Join(t.TempDir(), "benthos.log")
	res := &bciResult{count: map[string]int{}, meta: map[string]map[string]string{}, logs: bciLogs(logFile)}
	if err := b.SetLoggerYAML(fmt.Sprintf("level: DEBUG\nformat: logfmt\nfile:\n  path: %s\n  rotate: false", logFile)); err != nil {
		t.Fatal(err)
	}
	if s.mux != nil {
		b.SetHTTPMux(s.mux)
		if err := b.SetMetricsYAML("prometheus: {}"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range s.caches {
		if err := b.AddCacheYAML(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddInputYAML(s.input); err != nil {
		t.Fatal(err)
	}
	if err := b.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		if s.veto != nil {
			if err := s.veto(batch); err != nil {
				return err
			}
		}
		res.mu.Lock()
		defer res.mu.Unlock()
		for _, m := range batch {
			if _, err := m.AsStructured(); err != nil {
				return err
			}
			md := map[string]string{}
			_ = m.MetaWalk(func(k, v string) error { md[k] = v; return nil })
			res.count[md["currents_id"]]++
			res.meta[md["currents_id"]] = md
			res.arrival = append(res.arrival, md)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return strm, res
}

// run runs a one-pass stream to its end.
func (s bciStream) run(t testing.TB) *bciResult {
	t.Helper()
	strm, res := s.build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		t.Fatalf("stream: %v; logs:\n%s", err, res.logs)
	}
	return res
}

// exactlyOnce checks that every wanted id arrived exactly once and nothing else.
func (r *bciResult) exactlyOnce(t testing.TB, want map[string]string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(want) == 0 {
		t.Fatal("the test expects no events; it proves nothing")
	}
	for id, key := range want {
		if n := r.count[id]; n != 1 {
			t.Fatalf("event %s of %s delivered %d times, want once; %d of %d events arrived; logs:\n%s", id, key, n, len(r.count), len(want), r.logs)
		}
	}
	if len(r.count) != len(want) {
		for id := range r.count {
			if _, ok := want[id]; !ok {
				t.Fatalf("event %s (object %s) was not wanted", id, r.meta[id]["currents_object"])
			}
		}
	}
}

func TestInputFileReadsEveryEventWithMetadataOldestFirst(t *testing.T) {
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 55 * 8, Hours: 4, BlockEvents: 7, FileEvents: 9, Codec: "deflate", KeepRecords: true, Seed: 21})
	e.writeDir(t, dir)
	res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  max_concurrent_objects: 1
  max_batch_size: 5
`, dir)}.run(t)
	res.exactlyOnce(t, e.ids(t, nil))
	for _, o := range e.m.Objects {
		for _, rec := range o.Records {
			id := rec["id"].(string)
			md := res.meta[id]
			name := strings.TrimPrefix(o.Key, "currents/")
			for k, v := range map[string]string{
				"currents_event_type":     o.EventType,
				"currents_id":             id,
				"currents_time":           fmt.Sprint(rec["time"]),
				"currents_object":         name,
				"currents_integration_id": "5e1e4d2c9b8a7f6e5d4c3b2a",
				"currents_schema":         "dataexport.S3.inner." + o.EventType,
			} {
				if md[k] != v {
					t.Fatalf("event %s: metadata %s = %q, want %q", id, k, md[k], v)
				}
			}
			if md["currents_date"] == "" || !strings.Contains(o.Key, "/date="+md["currents_date"]+"/") {
				t.Fatalf("event %s: currents_date %q is not its key's", id, md["currents_date"])
			}
		}
	}
	// One object at a time: events arrive by date= hour, oldest first.
	for i := 1; i < len(res.arrival); i++ {
		if res.arrival[i]["currents_date"] < res.arrival[i-1]["currents_date"] {
			t.Fatalf("event %d of hour %s arrived after one of hour %s", i, res.arrival[i]["currents_date"], res.arrival[i-1]["currents_date"])
		}
	}
}

// The in-memory bucket, filtered by type and range: only the selected
// events arrive, with the object's full key as currents_object.
func TestInputMemFiltersTypesAndRange(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e := bciGenerate(t, gen.Config{Events: 3000, Hours: 48, Start: start, KeepRecords: true, Seed: 22,
		EventTypes: []string{"users.messages.email.Open", "users.messages.email.Click", "users.messages.email.Send", "users.canvas.Entry"}})
	res := bciStream{env: bciMemEnv(t, e), input: `
braze_currents:
  url: mem:///currents
  event_types: [ "users.messages.email.*" ]
  exclude_event_types: [ "*.Send" ]
  since: 2026-11-01-12
  until: 2026-11-02T06:00:00Z
`}.run(t)
	res.exactlyOnce(t, e.ids(t, func(o gen.Object) bool {
		h := bciHourOf(o.Key)
		return (o.EventType == "users.messages.email.Open" || o.EventType == "users.messages.email.Click") &&
			h >= "2026-11-01-12" && h < "2026-11-02-06"
	}))
	for id, md := range res.meta {
		if !strings.HasPrefix(md["currents_object"], "currents/dataexport.") {
			t.Fatalf("event %s: currents_object %q is not the full key", id, md["currents_object"])
		}
	}
}

func bciHourOf(key string) string {
	i := strings.Index(key, "/date=")
	return key[i+len("/date=") : i+len("/date=")+13]
}

// A nacked batch makes the object be read again; batches acknowledged in the
// first attempt are not sent again, so every event is recorded once.
func TestInputNackReadsTheObjectAgain(t *testing.T) {
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 400, BlockEvents: 20, KeepRecords: true, Seed: 23,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	e.writeDir(t, dir)
	var mu sync.Mutex
	vetoed := ""
	res := bciStream{
		input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  max_batch_size: 10
  checkpoint_cache: cp
`, dir),
		caches: []string{"label: cp\nmemory: {}"},
		veto: func(batch service.MessageBatch) error {
			mu.Lock()
			defer mu.Unlock()
			obj, _ := batch[0].MetaGet("currents_object")
			if vetoed == "" && strings.Contains(obj, "email.Open") {
				// The third batch of the object, so that some were acked.
				if id, _ := batch[0].MetaGet("currents_id"); id == e.m.Objects[bciObjectIndex(e, "email.Open")].Records[20]["id"] {
					vetoed = obj
					return errors.New("downstream says no")
				}
			}
			return nil
		},
	}.run(t)
	if vetoed == "" {
		t.Fatal("no batch was nacked; the test proves nothing")
	}
	res.exactlyOnce(t, e.ids(t, nil))
	logs := res.logs.String()
	if !strings.Contains(logs, "Reading Braze Currents object "+vetoed+" (attempt 2)") {
		t.Fatalf("object %s was not read again after the nack; logs:\n%s", vetoed, logs)
	}
}

func bciObjectIndex(e bciExport, part string) int {
	for i, o := range e.m.Objects {
		if strings.Contains(o.Key, part) {
			return i
		}
	}
	return -1
}

// Corrupt objects are logged, counted and quarantined; the events before the
// damage arrive; the checkpoint records them as failed, so a second run reads
// nothing again.
func TestInputCorruptObjectsFailOnceAndAreQuarantined(t *testing.T) {
	dir, cpDir, qDir := t.TempDir(), t.TempDir(), t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 300, CorruptFiles: 4, BlockEvents: 10, KeepRecords: true, Seed: 24})
	e.writeDir(t, dir)
	stream := bciStream{
		input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  checkpoint_cache: cp
  quarantine: file://%s
`, dir, qDir),
		caches: []string{fmt.Sprintf("label: cp\nfile:\n  directory: %s", cpDir)},
	}
	res := stream.run(t)
	res.exactlyOnce(t, e.ids(t, nil))
	logs := res.logs.String()
	corrupt := 0
	for _, o := range e.m.Objects {
		name := strings.TrimPrefix(o.Key, "currents/")
		cp := bciReadCheckpoint(t, cpDir, name)
		if o.Corrupt == "" {
			if cp.Status != "completed" || cp.Events != o.Events {
				t.Errorf("object %s: checkpoint %+v, want completed with %d events", name, cp, o.Events)
			}
			continue
		}
		corrupt++
		if cp.Status != "failed" || cp.Events != o.GoodEvents || cp.Error == "" || cp.Class == "" {
			t.Errorf("corrupt object %s (%s): checkpoint %+v, want failed after %d events", name, o.Corrupt, cp, o.GoodEvents)
		}
		if !strings.Contains(logs, "Braze Currents object "+name+" is corrupt") {
			t.Errorf("no error logged for %s", name)
		}
		q, err := os.ReadFile(filepath.Join(qDir, filepath.FromSlash(name)+".error.json"))
		if err != nil {
			t.Fatalf("no quarantine record for %s: %v", name, err)
		}
		var qr bciCheckpoint
		if err := json.Unmarshal(q, &qr); err != nil || qr.Object != name || qr.Status != "failed" || qr.Error != cp.Error {
			t.Errorf("quarantine record of %s: %s (%v)", name, q, err)
		}
	}
	if corrupt != 4 {
		t.Fatalf("%d corrupt objects generated, want 4", corrupt)
	}

	again := stream.run(t)
	if n := again.delivered(); n != 0 {
		t.Fatalf("second run delivered %d events, want none: every object is checkpointed", n)
	}
	if strings.Contains(again.logs.String(), "Reading Braze Currents object") {
		t.Fatalf("second run read objects:\n%s", again.logs)
	}
}

func bciReadCheckpoint(t testing.TB, dir, name string) bciCheckpoint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, bciCheckpointKey("braze_currents_", name)))
	if err != nil {
		t.Fatalf("no checkpoint for %s: %v", name, err)
	}
	var cp bciCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatalf("checkpoint of %s: %q: %v", name, b, err)
	}
	if cp.Object != name {
		t.Fatalf("checkpoint of %s names %s", name, cp.Object)
	}
	return cp
}

// Two instances with shards 0/2 and 1/2 over one tree, at the same time:
// each object is read by one of them, every event arrives once in total.
func TestInputShardsSplitTheExport(t *testing.T) {
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 1500, Hours: 3, FileEvents: 25, KeepRecords: true, Seed: 25,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry", "users.messages.sms.Send"}})
	e.writeDir(t, dir)
	results := make([]*bciResult, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = bciStream{input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  shard: { index: %d, count: 2 }
`, dir, i)}.run(t)
		}()
	}
	wg.Wait()
	union := &bciResult{count: map[string]int{}, meta: map[string]map[string]string{}, logs: results[0].logs}
	objects := []map[string]bool{{}, {}}
	for i, r := range results {
		for id, n := range r.count {
			union.count[id] += n
			union.meta[id] = r.meta[id]
			objects[i][r.meta[id]["currents_object"]] = true
		}
		if len(objects[i]) == 0 {
			t.Fatalf("shard %d read nothing", i)
		}
	}
	for o := range objects[0] {
		if objects[1][o] {
			t.Fatalf("object %s read by both shards", o)
		}
	}
	if len(objects[0])+len(objects[1]) != len(e.m.Objects) {
		t.Fatalf("shards read %d+%d objects, the export has %d", len(objects[0]), len(objects[1]), len(e.m.Objects))
	}
	union.exactlyOnce(t, e.ids(t, nil))
}

// In watch mode the input keeps polling: objects written after the first
// pass arrive, nothing arrives twice.
func TestInputWatchFollowsNewObjects(t *testing.T) {
	dir := t.TempDir()
	old := bciGenerate(t, gen.Config{Events: 200, Hours: 2, KeepRecords: true, Seed: 26,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	old.writeDir(t, dir)
	strm, res := bciStream{input: fmt.Sprintf(`
braze_currents:
  url: file://%s/currents
  watch: true
  poll_interval: 20ms
  min_object_age: 300ms
`, dir)}.build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- strm.Run(ctx) }()

	want := old.ids(t, nil)
	bciWaitFor(t, ctx, res, len(want))
	// New objects of the current hour, from a second integration.
	fresh := bciGenerate(t, gen.Config{Events: 150, Start: time.Now().UTC(), IntegrationID: "77777777777777777777aaaa", KeepRecords: true, Seed: 27,
		EventTypes: []string{"users.messages.email.Open", "users.messages.sms.Send"}})
	fresh.writeDir(t, dir)
	for id, k := range fresh.ids(t, nil) {
		want[id] = k
	}
	bciWaitFor(t, ctx, res, len(want))
	// Three more passes, which must not deliver anything again.
	passes := func() int { return strings.Count(res.logs.String(), "Listed the Braze Currents export") }
	for n := passes() + 3; passes() < n; {
		select {
		case <-ctx.Done():
			t.Fatal("the input stopped polling")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := strm.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	res.exactlyOnce(t, want)
}

// bciWaitFor waits until n distinct events have arrived.
func bciWaitFor(t testing.TB, ctx context.Context, res *bciResult, n int) {
	t.Helper()
	for res.delivered() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d events arrived before the deadline; logs:\n%s", res.delivered(), n, res.logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The metrics count what happened: objects listed, read, completed and
// failed, events by type, bytes, and the lag of the newest hour.
func TestInputMetrics(t *testing.T) {
	dir := t.TempDir()
	e := bciGenerate(t, gen.Config{Events: 500, Hours: 3, FileEvents: 40, CorruptFiles: 2, KeepRecords: true, Seed: 28,
		EventTypes: []string{"users.messages.email.Open", "users.canvas.Entry"}})
	e.writeDir(t, dir)
	mux := http.NewServeMux()
	before := time.Now()
	res := bciStream{mux: mux, input: fmt.Sprintf("braze_currents:\n  url: file://%s/currents\n", dir)}.run(t)
	after := time.Now()
	res.exactlyOnce(t, e.ids(t, nil))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "currents_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		name, value := line[:i], line[i+1:]
		// Keep the labels that matter to the test, drop Benthos's own.
		base, labels, _ := strings.Cut(strings.TrimSuffix(name, "}"), "{")
		for _, l := range strings.Split(labels, ",") {
			if strings.HasPrefix(l, "event_type=") || strings.HasPrefix(l, "class=") {
				base += "{" + l + "}"
			}
		}
		var v float64
		fmt.Sscan(value, &v)
		metrics[base] += v
	}
	var bytes, events float64
	byType := map[string]float64{}
	hours := map[string]bool{}
	newest := ""
	for _, o := range e.m.Objects {
		bytes += float64(o.Size)
		if o.Corrupt == "" {
			events += float64(o.Events)
			byType[o.EventType] += float64(o.Events)
		} else {
			events += float64(o.GoodEvents)
			byType[o.EventType] += float64(o.GoodEvents)
		}
		h := bciHourOf(o.Key)
		hours[h] = true
		newest = max(newest, h)
	}
	n := float64(len(e.m.Objects))
	for name, want := range map[string]float64{
		"currents_objects_listed":    n,
		"currents_objects_read":      n,
		"currents_objects_completed": n - 2,
		"currents_objects_skipped":   0,
		"currents_bytes_read":        bytes,
		"currents_events_read{event_type=\"users.messages.email.Open\"}": byType["users.messages.email.Open"],
		"currents_events_read{event_type=\"users.canvas.Entry\"}":        byType["users.canvas.Entry"],
	} {
		if metrics[name] != want {
			t.Errorf("%s = %v, want %v", name, metrics[name], want)
		}
	}
	failed := 0.0
	for name, v := range metrics {
		if strings.HasPrefix(name, "currents_objects_failed{") {
			failed += v
		}
	}
	if failed != 2 {
		t.Errorf("currents_objects_failed = %v, want 2; metrics: %v", failed, metrics)
	}
	end, _ := time.Parse("2006-01-02-15", newest)
	end = end.Add(time.Hour)
	lag := metrics["currents_lag_seconds"]
	if lag < before.Sub(end).Truncate(time.Second).Seconds() || lag > after.Sub(end).Seconds() {
		t.Errorf("currents_lag_seconds = %v, want the age of the end of hour %s: between %v and %v", lag, newest, before.Sub(end).Seconds(), after.Sub(end).Seconds())
	}
}

func TestInputConfig(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, yaml, err string
	}{
		{"no scheme", `url: /data/currents`, "has no scheme"},
		{"bad glob", "url: mem://\nevent_types: [ 'users.[' ]", "syntax error in pattern"},
		{"empty range", "url: mem://\nsince: 2026-11-02\nuntil: 2026-11-01", "is not before until"},
		{"bad since", "url: mem://\nsince: yesterday", "since"},
		{"watch with until", "url: mem://\nwatch: true\nuntil: 2026-11-01", "cannot be combined"},
		{"shard index", "url: mem://\nshard: { index: 2, count: 2 }", "shard index 2"},
		{"shard count", "url: mem://\nshard: { index: 0, count: 0 }", "shard count 0"},
		{"concurrency", "url: mem://\nmax_concurrent_objects: 0", "want 1 to 256"},
		{"too concurrent", "url: mem://\nmax_concurrent_objects: 1000", "want 1 to 256"},
		{"batch", "url: mem://\nmax_batch_size: 0", "max_batch_size"},
		{"poll", "url: mem://\nwatch: true\npoll_interval: 0s", "poll_interval"},
		{"quarantine", "url: mem://\nquarantine: relative/path", "quarantine"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pc, err := brazeCurrentsInputSpec().ParseYAML(c.yaml, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = bciConfigFromParsed(pc, now)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
	pc, err := brazeCurrentsInputSpec().ParseYAML("url: s3://b/currents?region=eu-west-1\nsince: 72h\ncheckpoint_cache: nope", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bciConfigFromParsed(pc, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.rng.Since.Equal(now.Add(-72*time.Hour)) || c.bucketURL != "s3://b?region=eu-west-1" || c.prefix != "currents/" ||
		c.maxObjects != 4 || c.maxBatch != 500 || c.shard.Count != 1 || c.pollInterval != time.Minute {
		t.Fatalf("parsed %+v", c)
	}
	if _, err := newBrazeCurrentsInputFromParsed(pc, service.MockResources(), blob.OpenBucket); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Fatalf("a missing cache resource gave %v", err)
	}
}

// A checkpoint cache that cannot store anything (a file cache whose folder
// does not exist) refuses the start, with an error that names it: it used
// to be a connect error, retried for ever.
func TestInputRefusesAnUnwritableCheckpointCache(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, gen.Config{Events: 20, Seed: 1})
	b := service.NewStreamBuilder()
	b.SetPrintLogger(&logCapture{})
	if err := b.AddCacheYAML(fmt.Sprintf("label: cp\nfile: { directory: %q }", filepath.Join(dir, "missing"))); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML(fmt.Sprintf("braze_currents: { url: %q, checkpoint_cache: cp }", "file://"+filepath.ToSlash(dir))); err != nil {
		t.Fatal(err)
	}
	if err := b.AddConsumerFunc(func(context.Context, *service.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := strm.Run(ctx); err == nil || !strings.Contains(err.Error(), `checkpoint_cache "cp" cannot store checkpoints`) || ctx.Err() != nil {
		t.Fatalf("running the stream: %v, want the input refused at once with a clear error", err)
	}
}
