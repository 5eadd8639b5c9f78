package mparticle

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// generatedApps are the app ids the generator gives each platform's users.
var generatedApps = map[string]string{
	"3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7": "ios", "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d": "android",
	"c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f": "web", "d4c3b2a1-f6e5-4d8c-9b0a-1f2e3d4c5b6a": "tvos",
	"e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a8b": "kindle", "f0e1d2c3-b4a5-4968-8776-a5b4c3d2e1f0": "roku",
}

// decodedEvents writes a realistic export with the project's generator (every
// catalog type, older schema versions, anonymous users) and decodes it with
// the real Avro reader, so the mapping sees events exactly as in production.
func decodedEvents(t testing.TB, n int) []currents.Event {
	t.Helper()
	objects := map[string][]byte{}
	_, err := gen.Generate(gen.Config{Events: n, Hours: 2, Seed: 7, OlderSchema: []string{"*"}},
		func(key string, body []byte) error { objects[key] = body; return nil })
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(objects))
	for k := range objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var events []currents.Event
	for _, key := range keys {
		r, err := currents.NewReader(bytes.NewReader(objects[key]), currents.ReaderOptions{Object: key})
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			events = append(events, ev)
		}
	}
	return events
}

// TestDecodedExport maps every event of a generated, decoded export: each
// one is mapped to a valid batch or dropped for lack of identity, never
// failed, under the default options and with the app map.
func TestDecodedExport(t *testing.T) {
	events := decodedEvents(t, 3000)
	m, err := New(Options{AppPlatforms: generatedApps})
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	types := map[string]bool{}
	for _, ev := range events {
		types[ev.Type] = true
		outcomes[checkOutcome(t, m, ev)]++
	}
	t.Logf("%d events of %d types: %v", len(events), len(types), outcomes)
	if outcomes["mapped"]+outcomes["dropped:no_identity"] != len(events) || outcomes["mapped"] == 0 {
		t.Errorf("outcomes %v: every generated event must map or lack an identity", outcomes)
	}
	if len(types) != len(catalogRows) {
		t.Errorf("the export has %d types, want all %d", len(types), len(catalogRows))
	}
}

// BenchmarkMapDecoded maps events as the Avro reader decodes them, the
// production case: every type, realistic values, shared field indexes.
func BenchmarkMapDecoded(b *testing.B) {
	events := decodedEvents(b, 20000)
	m, err := New(Options{AppPlatforms: generatedApps})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 16<<10)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	// In sessions of 500 events, as the currents_to_mparticle processor
	// maps a message batch of the scanner's default size.
	se := m.Session()
	for i := 0; i < b.N; i++ {
		if i%500 == 0 {
			se.Close()
			se = m.Session()
		}
		if _, _, err := se.AppendBatch(buf[:0], events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
	se.Close()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu)
}
