package currents_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hamba/avro/v2/ocf"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// benchExport is a realistic mixed export: every reference type, the skewed
// mix of the generator, Braze-sized blocks.
func benchExport(b *testing.B, codec string) (gen.Manifest, map[string][]byte, int) {
	m, bodies := generate(b, gen.Config{Events: 200_000, Users: 20_000, Codec: codec, BlockEvents: 4000, Seed: 42})
	size := 0
	for _, body := range bodies {
		size += len(body)
	}
	return m, bodies, size
}

// BenchmarkDecode decodes the export into the event model; events/s and
// allocs/event are the figures that matter.
func BenchmarkDecode(b *testing.B) {
	for _, codec := range []string{"null", "snappy", "deflate", "zstandard"} {
		b.Run(codec, func(b *testing.B) {
			m, bodies, size := benchExport(b, codec)
			events := m.Events()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				n := 0
				for _, o := range m.Objects {
					r, err := currents.NewReader(bytes.NewReader(bodies[o.Key]), currents.ReaderOptions{Object: o.Key})
					if err != nil {
						b.Fatal(err)
					}
					for {
						evs, err := r.NextBlock()
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						n += len(evs)
					}
					r.Close()
				}
				if n != events {
					b.Fatalf("decoded %d of %d", n, events)
				}
			}
			b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*b.N), "ns/event")
		})
	}
}

// BenchmarkDecodeHambaGeneric is the baseline: hamba/avro's own OCF decoder
// into map[string]any, the way a generic Avro reader does it.
func BenchmarkDecodeHambaGeneric(b *testing.B) {
	m, bodies, size := benchExport(b, "null")
	events := m.Events()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		for _, o := range m.Objects {
			dec, err := ocf.NewDecoder(bytes.NewReader(bodies[o.Key]))
			if err != nil {
				b.Fatal(err)
			}
			for dec.HasNext() {
				var rec map[string]any
				if err := dec.Decode(&rec); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		if n != events {
			b.Fatalf("decoded %d of %d", n, events)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events*b.N), "ns/event")
}
