package currents

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// BenchmarkFileInput compares, on the same export files in the same run, the
// `file` input with our scanner against the stock `avro-ocf:marshaler=goavro`
// codec a user would otherwise reach for. Each op reads the whole export into
// structured messages; compare the events/s figures.
func BenchmarkFileInput(b *testing.B) {
	dir := b.TempDir()
	m := writeTree(b, dir, gen.Config{
		Events: 100_000, Users: 10_000, BlockEvents: 4000,
		EventTypes: []string{"users.messages.email.Send", "users.messages.email.Open", "users.messages.pushnotification.Send", "users.canvas.Entry", "users.messages.sms.Delivery"},
		Seed:       9,
	})
	glob := filepath.Join(dir, "**", "*.avro")
	for _, c := range []struct{ name, input string }{
		{"braze_currents", fmt.Sprintf("file:\n  paths: [ %q ]\n  scanner:\n    braze_currents: {}\n", glob)},
		{"stock_avro_ocf_goavro", fmt.Sprintf("file:\n  paths: [ %q ]\n  codec: avro-ocf:marshaler=goavro\n", glob)},
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

// readAll runs the input to its end, touching each message's structure as a
// processor would, and counts the messages.
func readAll(b *testing.B, input string) int64 {
	sb := service.NewStreamBuilder()
	if err := sb.SetLoggerYAML("level: NONE"); err != nil {
		b.Fatal(err)
	}
	if err := sb.AddInputYAML(input); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	if err := sb.AddBatchConsumerFunc(func(_ context.Context, batch service.MessageBatch) error {
		for _, msg := range batch {
			if _, err := msg.AsStructured(); err != nil {
				return err
			}
		}
		n.Add(int64(len(batch)))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	strm, err := sb.Build()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := strm.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return n.Load()
}
