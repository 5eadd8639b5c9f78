package currents

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// BenchmarkInput reads the same export with the braze_currents input (one
// and four objects at a time) and with the file input + scanner. Each op
// reads the whole export into structured messages; compare events/s.
func BenchmarkInput(b *testing.B) {
	dir := b.TempDir()
	m := writeTree(b, dir, gen.Config{
		Events: 100_000, Users: 10_000, BlockEvents: 4000, FileEvents: 5000,
		EventTypes: []string{"users.messages.email.Send", "users.messages.email.Open", "users.messages.pushnotification.Send", "users.canvas.Entry", "users.messages.sms.Delivery"},
		Seed:       9,
	})
	for _, c := range []struct{ name, input string }{
		{"input_1_object", fmt.Sprintf("braze_currents:\n  url: file://%s/currents\n  max_concurrent_objects: 1\n", dir)},
		{"input_4_objects", fmt.Sprintf("braze_currents:\n  url: file://%s/currents\n  max_concurrent_objects: 4\n", dir)},
		{"file_scanner", fmt.Sprintf("file:\n  paths: [ %q ]\n  scanner:\n    braze_currents: {}\n", filepath.Join(dir, "**", "*.avro"))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if n := readAll(b, c.input); n != int64(m.Events()) {
					b.Fatalf("%s read %d events, want %d", c.name, n, m.Events())
				}
			}
			b.ReportMetric(float64(m.Events()*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkEventMessage is the per-event cost shared by the scanner and the
// input: the message (JSON content, the event carried beside it) and its
// seven metadata values.
func BenchmarkEventMessage(b *testing.B) {
	var body []byte
	if _, err := gen.Generate(gen.Config{Events: 500, EventTypes: []string{"users.messages.email.Open"}, Seed: 3},
		func(_ string, bb []byte) error { body = bb; return nil }); err != nil {
		b.Fatal(err)
	}
	key := "currents/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a/event_type=users.messages.email.Open/date=2026-11-01-00/112/us-03/dataexport.prod-03.S3.integration.5e1e4d2c9b8a7f6e5d4c3b2a+0+1.avro"
	dec, err := decoder.NewReader(bytes.NewReader(body), decoder.ReaderOptions{Object: key})
	if err != nil {
		b.Fatal(err)
	}
	evs, err := dec.NextBlock()
	if err != nil {
		b.Fatal(err)
	}
	k, _ := decoder.ParseObjectKey(key)
	src := newEventSource(key, dec.RecordName(), k)
	b.ReportAllocs()
	b.ResetTimer()
	// In batches of the block's events, as the scanner and input build them;
	// figures are per event.
	for i := 0; i < b.N; {
		n := min(len(evs), b.N-i)
		msgs := newEventMessages(evs[:n], src)
		for j, ev := range evs[:n] {
			_ = msgs.message(j, ev)
		}
		i += n
	}
}
