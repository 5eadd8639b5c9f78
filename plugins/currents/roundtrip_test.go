package currents_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/gen"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// generate runs the generator into memory and returns the objects and bodies.
func generate(t testing.TB, cfg gen.Config) (gen.Manifest, map[string][]byte) {
	t.Helper()
	bodies := map[string][]byte{}
	m, err := gen.Generate(cfg, func(key string, body []byte) error {
		bodies[key] = body
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, bodies
}

// decodeAll reads every event of one object.
func decodeAll(key string, body []byte) ([]currents.Event, *currents.Reader, error) {
	r, err := currents.NewReader(bytes.NewReader(body), currents.ReaderOptions{Object: key})
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var out []currents.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, r, nil
		}
		if err != nil {
			return out, r, err
		}
		out = append(out, ev)
	}
}

// sameValue compares a decoded value with what the generator encoded.
func sameValue(got currents.Value, want any) error {
	switch w := want.(type) {
	case nil:
		if !got.IsNull() {
			return fmt.Errorf("got %v (%s), want null", got.Any(), got.Kind())
		}
	case string:
		if got.Kind() != currents.KindString || got.Str() != w {
			return fmt.Errorf("got %v (%s), want string %q", got.Any(), got.Kind(), w)
		}
	case int:
		if got.Kind() != currents.KindInt || got.Int() != int64(w) {
			return fmt.Errorf("got %v (%s), want int %d", got.Any(), got.Kind(), w)
		}
	case int64:
		if got.Kind() != currents.KindInt || got.Int() != w {
			return fmt.Errorf("got %v (%s), want long %d", got.Any(), got.Kind(), w)
		}
	case float32:
		if got.Kind() != currents.KindFloat || float32(got.Float()) != w {
			return fmt.Errorf("got %v (%s), want float %v", got.Any(), got.Kind(), w)
		}
	case bool:
		if got.Kind() != currents.KindBool || got.Bool() != w {
			return fmt.Errorf("got %v (%s), want bool %v", got.Any(), got.Kind(), w)
		}
	case []string:
		items := got.Items()
		if got.Kind() != currents.KindArray || len(items) != len(w) {
			return fmt.Errorf("got %v, want %v", got.Any(), w)
		}
		for i := range w {
			if err := sameValue(items[i], w[i]); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	case []any:
		items := got.Items()
		if got.Kind() != currents.KindArray || len(items) != len(w) {
			return fmt.Errorf("got %v, want %v", got.Any(), w)
		}
		for i := range w {
			if err := sameValue(items[i], w[i]); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	default:
		return fmt.Errorf("test cannot compare %T", want)
	}
	return nil
}

// checkObject asserts that every record the generator wrote decodes equal,
// field by field, under the right event type.
func checkObject(t *testing.T, o gen.Object, body []byte) {
	t.Helper()
	evs, r, err := decodeAll(o.Key, body)
	if err != nil {
		t.Fatalf("%s: %v", o.Key, err)
	}
	if len(evs) != len(o.Records) {
		t.Fatalf("%s: decoded %d events, wrote %d", o.Key, len(evs), len(o.Records))
	}
	if r.EventType() != o.EventType {
		t.Fatalf("%s: event type %q, want %q", o.Key, r.EventType(), o.EventType)
	}
	for i, rec := range o.Records {
		ev := evs[i]
		if ev.Type != o.EventType {
			t.Fatalf("event %d: type %q", i, ev.Type)
		}
		if ev.Len() != len(rec) {
			t.Fatalf("%s event %d: %d fields, wrote %d", o.EventType, i, ev.Len(), len(rec))
		}
		for name, want := range rec {
			got, ok := ev.Get(name)
			if !ok {
				t.Fatalf("%s event %d: field %q missing", o.EventType, i, name)
			}
			if err := sameValue(got, want); err != nil {
				t.Fatalf("%s event %d field %q: %v", o.EventType, i, name, err)
			}
		}
		if ev.ID() != rec["id"] {
			t.Fatalf("ID() = %q, want %v", ev.ID(), rec["id"])
		}
	}
}

func TestEveryReferenceTypeRoundTrips(t *testing.T) {
	names := schemas.Names()
	if len(names) != 55 {
		t.Fatalf("schemas has %d types, want the 55 reference types", len(names))
	}
	for _, codec := range []string{"null", "deflate", "snappy", "zstandard"} {
		t.Run(codec, func(t *testing.T) {
			m, bodies := generate(t, gen.Config{Events: 55 * 40, Users: 300, Codec: codec, BlockEvents: 16, KeepRecords: true, Seed: 7})
			seen := map[string]int{}
			for _, o := range m.Objects {
				checkObject(t, o, bodies[o.Key])
				seen[o.EventType] += o.Events
			}
			for _, n := range names {
				if seen[n] == 0 {
					t.Errorf("type %s was not generated", n)
				}
			}
		})
	}
}

func TestOlderSchemasDecodeByName(t *testing.T) {
	// The older writer schemas lack fields added later, have WhatsApp
	// InboundReceive's user_phone_number required and WhatsApp time as int.
	m, bodies := generate(t, gen.Config{Events: 55 * 10, OlderSchema: []string{"*"}, KeepRecords: true, Seed: 3})
	older := 0
	for _, o := range m.Objects {
		checkObject(t, o, bodies[o.Key])
		if !o.Older {
			continue
		}
		older++
		evs, _, _ := decodeAll(o.Key, body(bodies, o))
		if _, ok := evs[0].Get("app_group_id"); ok {
			t.Errorf("%s: older schema still has app_group_id", o.EventType)
		}
		if o.EventType == "users.messages.whatsapp.Send" {
			if v, _ := evs[0].Get("time"); v.Kind() != currents.KindInt || evs[0].Time() <= 0 {
				t.Errorf("whatsapp time written as int decoded as %v", v.Any())
			}
		}
	}
	if older < 40 {
		t.Fatalf("only %d objects used an older schema", older)
	}
}

func body(bodies map[string][]byte, o gen.Object) []byte { return bodies[o.Key] }
