package currents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
	"weak"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
)

// stdJSON encodes as Benthos encodes a structured message: encoding/json
// without HTML escaping.
func stdJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// Every scalar is written byte for byte as encoding/json writes its Any().
func TestValueJSONMatchesEncodingJSON(t *testing.T) {
	values := []currents.Value{
		currents.Null, currents.BoolValue(true), currents.BoolValue(false),
		currents.IntValue(0), currents.IntValue(-1), currents.IntValue(math.MaxInt64), currents.IntValue(math.MinInt64),
		currents.BytesValue("\x00\xffraw"),
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1.5, 0.1, 1e-6, 1e-7, 9.999e-7, 1e20, 1e21, 1.5e300, -2.5e-300, math.SmallestNonzeroFloat64, math.MaxFloat64, float64(float32(0.1))} {
		values = append(values, currents.FloatValue(f))
	}
	for _, s := range []string{"", "plain", `q"uote\back`, "<html>&", "\x00\x01\b\f\n\r\t\x1f\x7f", "é€😀", "bad\xffutf8\xc3", "\u2028\u2029", "\xed\xa0\x80", strings.Repeat("long ", 100)} {
		values = append(values, currents.StringValue(s))
	}
	for _, v := range values {
		got := string(v.AppendJSON(nil))
		if want := stdJSON(t, v.Any()); got != want {
			t.Errorf("%s %v: wrote %s, encoding/json writes %s", v.Kind(), v.Any(), got, want)
		}
	}
	// JSON has no NaN or infinity: null, where encoding/json fails.
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := string(currents.FloatValue(f).AppendJSON(nil)); got != "null" {
			t.Errorf("%v: wrote %s, want null", f, got)
		}
	}
}

// An event's JSON holds its fields in writer-schema order, nested values
// included, and parses to what encoding/json makes of its Map().
func TestEventJSON(t *testing.T) {
	ev := currents.NewEvent("users.messages.email.Open", []currents.Entry{
		{Name: "zeta", Value: currents.StringValue("z")},
		{Name: "id", Value: currents.StringValue("e1")},
		{Name: "time", Value: currents.IntValue(1700000000)},
		{Name: "alpha", Value: currents.Null},
		{Name: "list", Value: currents.ArrayValue([]currents.Value{currents.StringValue("a"), currents.IntValue(2), currents.Null})},
		{Name: "rec", Value: currents.RecordValue([]currents.Entry{{Name: "k", Value: currents.FloatValue(2.5)}, {Name: "b", Value: currents.BoolValue(true)}})},
		{Name: "empty", Value: currents.MapValue(nil)},
	})
	got := string(ev.AppendJSON([]byte("prefix")))
	want := `prefix{"zeta":"z","id":"e1","time":1700000000,"alpha":null,"list":["a",2,null],"rec":{"k":2.5,"b":true},"empty":{}}`
	if got != want {
		t.Fatalf("wrote\n%s\nwant\n%s", got, want)
	}
	if got := string(currents.NewEvent("x", nil).AppendJSON(nil)); got != "{}" {
		t.Fatalf("no fields: %s", got)
	}
}

// The JSON of every generated event, all 55 types, means what the map
// Benthos held before does: the same fields with the same values.
func TestEventJSONGenerated(t *testing.T) {
	m, bodies := generate(t, gen.Config{Events: 55 * 40, Seed: 5})
	n := 0
	for _, o := range m.Objects {
		evs, _, err := decodeAll(o.Key, bodies[o.Key])
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			var got, want map[string]any
			if err := json.Unmarshal(ev.AppendJSON(nil), &got); err != nil {
				t.Fatalf("%s: %v\n%s", o.Key, err, ev.AppendJSON(nil))
			}
			if err := json.Unmarshal([]byte(stdJSON(t, ev.Map())), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: JSON means\n%v\nthe map means\n%v", o.Key, got, want)
			}
			n++
		}
	}
	if n != m.Events() {
		t.Fatalf("checked %d of %d events", n, m.Events())
	}
}

// TakeEventJSON gives the event once, and the event is unchanged only for
// the very slice written: not for another slice with the same bytes, nor a
// shorter one of the same array.
func TestTakeEventJSON(t *testing.T) {
	ev := currents.NewEvent("t", []currents.Entry{{Name: "id", Value: currents.StringValue("e1")}})
	text := ev.AppendJSON(nil)
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "parent value")
	carriers := currents.NewEventJSONs(1)
	ctx := carriers.Set(0, parent, ev, text)
	// Wrapped, as Benthos's tracing wraps a message's context.
	ctx = context.WithValue(ctx, struct{ k int }{1}, 1)
	if ctx.Value(key{}) != "parent value" {
		t.Fatal("the parent's values are lost")
	}
	got, ok := currents.TakeEventJSON(ctx)
	if !ok || got.Event.ID() != "e1" {
		t.Fatalf("took %v %v", got, ok)
	}
	if !got.Unchanged(text) {
		t.Fatal("the very slice written is taken for changed")
	}
	if got.Unchanged(append([]byte(nil), text...)) {
		t.Fatal("a copy of the text was taken for the written slice")
	}
	if got.Unchanged(text[:len(text)-1]) || got.Unchanged(nil) {
		t.Fatal("another slice was taken for the written slice")
	}
	if _, ok := currents.TakeEventJSON(ctx); ok {
		t.Fatal("a taken event was given twice")
	}
	if _, ok := currents.TakeEventJSON(context.Background()); ok {
		t.Fatal("a context without an event gave one")
	}
}

// A released carrier lets go of its event: Benthos keeps every message of a
// batch (and so their shared carriers) until the output acknowledges it, and
// an event still held would keep its whole Avro block alive.
func TestTakeEventJSONLetsGoOfTheEvent(t *testing.T) {
	block := make([]byte, 1<<20) // stands for a decoded Avro block
	copy(block, "e1")
	alive := weak.Make(&block[0])
	ev := currents.NewEvent("t", []currents.Entry{{Name: "id", Value: currents.StringValue(unsafe.String(&block[0], 2))}})
	text := ev.AppendJSON(nil)
	carriers := currents.NewEventJSONs(2)
	ctx := carriers.Set(0, context.Background(), ev, text)
	other := carriers.Set(1, context.Background(), currents.NewEvent("t", nil), []byte("{}"))
	block, ev = nil, currents.Event{}
	runtime.GC()
	if alive.Value() == nil {
		t.Fatal("the event was collected while carried")
	}
	currents.TakeEventJSON(ctx)
	runtime.GC()
	if alive.Value() != nil {
		t.Fatal("a released carrier still keeps its event's block alive")
	}
	// The other carriers of the batch are untouched.
	if _, ok := currents.TakeEventJSON(other); !ok {
		t.Fatal("releasing one carrier released another")
	}
	runtime.KeepAlive(ctx)
	runtime.KeepAlive(other)
}

func BenchmarkEventJSON(b *testing.B) {
	m, bodies := generate(b, gen.Config{Events: 20000, Seed: 42})
	var evs []currents.Event
	for _, o := range m.Objects {
		e, _, err := decodeAll(o.Key, bodies[o.Key])
		if err != nil {
			b.Fatal(err)
		}
		evs = append(evs, e...)
	}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = evs[i%len(evs)].AppendJSON(buf[:0])
	}
}

// Every byte, at every position of strings around the eight-byte steps of
// the escaper, is written as encoding/json writes it.
func TestStringJSONEveryByte(t *testing.T) {
	for c := 0; c < 256; c++ {
		for n := 7; n <= 17; n++ {
			for pos := 0; pos < n; pos++ {
				b := []byte(strings.Repeat("abcdefgh", 3)[:n])
				b[pos] = byte(c)
				v := currents.StringValue(string(b))
				if got, want := string(v.AppendJSON(nil)), stdJSON(t, string(b)); got != want {
					t.Fatalf("%q: wrote %s, encoding/json writes %s", b, got, want)
				}
			}
		}
	}
}
