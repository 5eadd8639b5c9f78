package currents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// writeTree generates an export under dir and returns its manifest.
func writeTree(t testing.TB, dir string, cfg gen.Config) gen.Manifest {
	t.Helper()
	m, err := gen.Generate(cfg, gen.DirSink(dir))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type received struct {
	mu     sync.Mutex
	events map[string]map[string]any // by currents_id
	meta   map[string]map[string]string
}

// runStream runs a stream from YAML input config to a consumer that records
// every message, until the input ends; it returns what arrived and the logs.
func runStream(t testing.TB, inputYAML string) (*received, string) {
	t.Helper()
	b := service.NewStreamBuilder()
	logs := &logCapture{}
	b.SetPrintLogger(logs)
	if err := b.AddInputYAML(inputYAML); err != nil {
		t.Fatal(err)
	}
	rec := &received{events: map[string]map[string]any{}, meta: map[string]map[string]string{}}
	if err := b.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, m := range batch {
			s, err := m.AsStructured()
			if err != nil {
				return err
			}
			id, _ := m.MetaGet("currents_id")
			if _, dup := rec.events[id]; dup {
				return fmt.Errorf("event %s delivered twice", id)
			}
			rec.events[id] = s.(map[string]any)
			md := map[string]string{}
			_ = m.MetaWalk(func(k, v string) error { md[k] = v; return nil })
			rec.meta[id] = md
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	strm, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return rec, logs.String()
}

// logCapture is a service.PrintLogger that keeps what the stream logs.
type logCapture struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *logCapture) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.sb, format+"\n", v...)
}

func (l *logCapture) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.sb, v...)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.String()
}

func TestScannerReadsEveryEventWithMetadata(t *testing.T) {
	dir := t.TempDir()
	m := writeTree(t, dir, gen.Config{Events: 55 * 20, Hours: 3, BlockEvents: 7, Codec: "snappy", KeepRecords: true, Seed: 11})
	rec, logs := runStream(t, fmt.Sprintf(`
file:
  paths: [ %q ]
  scanner:
    braze_currents:
      max_batch_size: 5
`, filepath.Join(dir, "**", "*.avro")))
	if len(rec.events) != m.Events() {
		t.Fatalf("received %d events, wrote %d; logs:\n%s", len(rec.events), m.Events(), logs)
	}
	for _, o := range m.Objects {
		for _, want := range o.Records {
			id := want["id"].(string)
			got, ok := rec.events[id]
			if !ok {
				t.Fatalf("event %s of %s missing", id, o.Key)
			}
			if len(got) != len(want) || got["user_id"] != want["user_id"] {
				t.Fatalf("event %s: got %v, want %v", id, got, want)
			}
			md := rec.meta[id]
			checks := map[string]string{
				"currents_event_type":     o.EventType,
				"currents_id":             id,
				"currents_time":           fmt.Sprint(want["time"]),
				"currents_object":         filepath.Join(dir, filepath.FromSlash(o.Key)),
				"currents_integration_id": "5e1e4d2c9b8a7f6e5d4c3b2a",
				"currents_schema":         "dataexport.S3.inner." + o.EventType,
			}
			for k, v := range checks {
				if md[k] != v {
					t.Fatalf("event %s: metadata %s = %q, want %q", id, k, md[k], v)
				}
			}
			if !strings.Contains(o.Key, "date="+md["currents_date"]+"/") || md["currents_date"] == "" {
				t.Fatalf("currents_date %q not the key's", md["currents_date"])
			}
		}
	}
}

// Corrupt files are loud: an error naming the object is logged, the events
// before the damage arrive, and the other files are read in full.
func TestScannerCorruptFilesAreLoud(t *testing.T) {
	dir := t.TempDir()
	m := writeTree(t, dir, gen.Config{Events: 300, CorruptFiles: 4, BlockEvents: 10, Seed: 12})
	rec, logs := runStream(t, fmt.Sprintf(`
file:
  paths: [ %q ]
  scanner:
    braze_currents: {}
`, filepath.Join(dir, "**", "*.avro")))
	if len(rec.events) != m.GoodEvents() {
		t.Fatalf("received %d events, want the %d decodable ones", len(rec.events), m.GoodEvents())
	}
	for _, o := range m.Objects {
		if o.Corrupt == "" {
			continue
		}
		if !strings.Contains(logs, filepath.Join(dir, filepath.FromSlash(o.Key))) {
			t.Errorf("no error logged for corrupt object %s (%s); logs:\n%s", o.Key, o.Corrupt, logs)
		}
	}
}

// Hostile files (gen.Hostile) among good ones: each is refused on a decode
// limit with an error naming it, cheaply, and every good event arrives.
func TestScannerHostileFilesAreRefusedOnLimits(t *testing.T) {
	dir := t.TempDir()
	m := writeTree(t, dir, gen.Config{Events: 200, BlockEvents: 10, Seed: 13})
	h, err := gen.Hostile(gen.Config{}, gen.DirSink(dir))
	if err != nil {
		t.Fatal(err)
	}
	rec, logs := runStream(t, fmt.Sprintf(`
file:
  paths: [ %q ]
  scanner:
    braze_currents: {}
`, filepath.Join(dir, "**", "*.avro")))
	if len(rec.events) != m.Events() {
		t.Fatalf("received %d events, want the %d good ones; logs:\n%s", len(rec.events), m.Events(), logs)
	}
	for _, o := range h.Objects {
		path := filepath.Join(dir, filepath.FromSlash(o.Key))
		found := false
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, path) && strings.Contains(line, "decode limit exceeded") {
				found = true
				if len(line) > 2048 {
					t.Errorf("%s: log line of %d bytes", o.Corrupt, len(line))
				}
			}
		}
		if !found {
			t.Errorf("%s: no limit error logged for %s; logs:\n%s", o.Corrupt, path, logs)
		}
	}
}

// decode_limits reaches the decoder: files with blocks of 10 events fail on
// max_block_events: 9 and decode with 10.
func TestScannerDecodeLimitsConfig(t *testing.T) {
	dir := t.TempDir()
	m := writeTree(t, dir, gen.Config{Events: 100, BlockEvents: 10, EventTypes: []string{"users.messages.email.Open"}, Seed: 14})
	input := func(limit int) string {
		return fmt.Sprintf(`
file:
  paths: [ %q ]
  scanner:
    braze_currents:
      decode_limits:
        max_block_events: %d
`, filepath.Join(dir, "**", "*.avro"), limit)
	}
	rec, logs := runStream(t, input(9))
	if len(rec.events) != 0 || !strings.Contains(logs, "max_block_events = 9") {
		t.Fatalf("max_block_events 9: %d events arrived; logs:\n%s", len(rec.events), logs)
	}
	if rec, logs = runStream(t, input(10)); len(rec.events) != m.Events() {
		t.Fatalf("max_block_events 10: %d of %d events arrived; logs:\n%s", len(rec.events), m.Events(), logs)
	}
	conf, err := brazeCurrentsScannerSpec().ParseYAML("decode_limits:\n  max_block_events: 0\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := brazeCurrentsScannerFromParsed(conf, service.MockResources()); err == nil || !strings.Contains(err.Error(), "decode_limits.max_block_events") {
		t.Fatalf("max_block_events: 0: err = %v, want it refused", err)
	}
}

// blockingReader gives its bytes, then blocks until closed: a source whose
// next read is still on its way when the scanner is closed.
type blockingReader struct {
	data    []byte
	closed  chan struct{}
	waiting chan struct{} // closed when a read first blocks
	once    sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.once.Do(func() { close(r.waiting) })
	<-r.closed
	return 0, errors.New("read on a closed source")
}

func (r *blockingReader) Close() error { close(r.closed); return nil }

// The scanner decodes ahead in a goroutine. Closed while that goroutine
// waits on the source, it stops it, and logs and counts no decode error:
// the error is the closed source's, not the file's.
func TestScannerCloseStopsDecodingAhead(t *testing.T) {
	dir := t.TempDir()
	m := writeTree(t, dir, gen.Config{Events: 30, EventTypes: []string{"users.messages.email.Open"}, BlockEvents: 5, Seed: 3})
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(m.Objects[0].Key)))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := brazeCurrentsScannerSpec().ParseYAML(`max_batch_size: 5`, nil)
	if err != nil {
		t.Fatal(err)
	}
	creator, err := brazeCurrentsScannerFromParsed(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	var logged atomic.Int64
	creator.fails = func() { logged.Add(1) }
	// All of the file but its last byte: the goroutine blocks for it.
	src := &blockingReader{data: data[:len(data)-1], closed: make(chan struct{}), waiting: make(chan struct{})}
	scanner := &brazeCurrentsScanner{creator: creator, rdr: src, object: "object.avro"}
	// Five batches of five: the goroutine then waits for the last block.
	for i := range 5 {
		batch, err := scanner.NextBatch(context.Background())
		if err != nil || len(batch) != 5 {
			t.Fatalf("batch %d: %d messages, %v", i, len(batch), err)
		}
	}
	<-src.waiting
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := scanner.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := logged.Load(); n != 0 {
		t.Fatalf("%d decode errors logged for a closed source", n)
	}
	select {
	case <-scanner.done:
	default:
		t.Fatal("Close returned while the decoding goroutine still runs")
	}
}
