package currents_test

import (
	"bytes"
	"testing"

	"github.com/hamba/avro/v2/ocf"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// encode writes records with hamba/avro's encoder under the given schema.
func encode(t *testing.T, schema string, recs ...map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ocf.NewEncoder(schema, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A type the project has never seen, from a future schema with every Avro
// kind Currents does not use today, decodes untouched.
func TestUnknownTypeWithEveryKind(t *testing.T) {
	schema := `{"type":"record","name":"Click","namespace":"dataexport.GCS.inner.users.messages.line","owner":"@Appboy/line",
	 "fields":[
	  {"name":"id","type":"string"},
	  {"name":"time","type":"long"},
	  {"name":"score","type":"double"},
	  {"name":"raw","type":"bytes"},
	  {"name":"kind","type":{"type":"enum","name":"K","symbols":["A","B"]}},
	  {"name":"fx","type":{"type":"fixed","name":"F","size":3}},
	  {"name":"tags","type":{"type":"map","values":"int"}},
	  {"name":"ctx","type":["null",{"type":"record","name":"Ctx","fields":[{"name":"a","type":"string"},{"name":"n","type":["null","long"]}]}]},
	  {"name":"empty","type":["null","string"]},
	  {"name":"nothing","type":["null","string"]}
	 ]}`
	body := encode(t, schema, map[string]any{
		"id": "e1", "time": int64(1700000000), "score": 2.5, "raw": []byte{0, 1, 2}, "kind": "B",
		"fx": [3]byte{'x', 'y', 'z'}, "tags": map[string]any{"a": 1},
		"ctx":   map[string]any{"dataexport.GCS.inner.users.messages.line.Ctx": map[string]any{"a": "q", "n": int64(9)}},
		"empty": "", "nothing": nil,
	})
	evs, r, err := decodeAll("no/type/here.avro", body)
	if err != nil || len(evs) != 1 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	if r.EventType() != "users.messages.line.Click" {
		t.Fatalf("event type %q", r.EventType())
	}
	ev := evs[0]
	got := ev.Map()
	want := map[string]any{
		"id": "e1", "time": int64(1700000000), "score": 2.5, "raw": []byte{0, 1, 2}, "kind": "B",
		"fx": []byte("xyz"), "tags": map[string]any{"a": int64(1)}, "ctx": map[string]any{"a": "q", "n": int64(9)},
		"empty": "", "nothing": nil,
	}
	for k, w := range want {
		if !equalAny(got[k], w) {
			t.Errorf("field %s = %#v, want %#v", k, got[k], w)
		}
	}
	// null and the empty string stay distinguishable
	if v, _ := ev.Get("empty"); v.IsNull() || v.Kind() != currents.KindString {
		t.Errorf("empty string decoded as %s", v.Kind())
	}
	if v, ok := ev.Get("nothing"); !ok || !v.IsNull() {
		t.Errorf("null decoded as %v, %v", v.Any(), ok)
	}
	if _, ok := ev.Get("absent"); ok {
		t.Errorf("absent field reported present")
	}
}

func equalAny(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalAny(x[k], y[k]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestEventTypeSources(t *testing.T) {
	schema := `{"type":"record","name":"Open","namespace":"dataexport.S3.inner.users.messages.email","fields":[{"name":"id","type":"string"}]}`
	body := encode(t, schema, map[string]any{"id": "x"})
	tests := []struct{ object, override, want string }{
		{"a/b.avro", "", "users.messages.email.Open"},
		{"p/event_type=users.messages.email.Click/date=2026-01-01-00/f.avro", "", "users.messages.email.Click"},
		{"p/event_type=users.messages.email.Click/f.avro", "forced.Type", "forced.Type"},
	}
	for _, tt := range tests {
		r, err := currents.NewReader(bytes.NewReader(body), currents.ReaderOptions{Object: tt.object, EventType: tt.override})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := r.Next()
		if err != nil || ev.Type != tt.want || r.EventType() != tt.want {
			t.Errorf("%q/%q: type %q (%v), want %q", tt.object, tt.override, ev.Type, err, tt.want)
		}
	}
	for name, want := range map[string]string{
		"dataexport.S3.inner.users.messages.pushnotification.Send":    "users.messages.pushnotification.Send",
		"dataexport.AzureBlob.inner.users.canvas.exit.PerformedEvent": "users.canvas.exit.PerformedEvent",
		"users.behaviors.Uninstall":                                   "users.behaviors.Uninstall",
		"com.braze.currents.users.campaigns.Conversion":               "users.campaigns.Conversion",
		"dataexport.S3.inner.custom.Thing":                            "custom.Thing",
		"Thing":                                                       "Thing",
	} {
		if got := currents.EventTypeFromRecordName(name); got != want {
			t.Errorf("EventTypeFromRecordName(%q) = %q, want %q", name, got, want)
		}
	}
}

// The same record name with different fields in two files (schema evolution,
// renamed fields) must decode each file with its own schema.
func TestSameNameOtherFields(t *testing.T) {
	v1 := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.sms","fields":[{"name":"id","type":"string"},{"name":"to_phone","type":"string"}]}`
	v2 := `{"type":"record","name":"Send","namespace":"dataexport.S3.inner.users.messages.sms","fields":[{"name":"id","type":"string"},{"name":"time","type":"int"},{"name":"to_phone_number","type":["null","string"],"default":null}]}`
	a, _, err := decodeAll("a", encode(t, v1, map[string]any{"id": "1", "to_phone": "+1"}))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := decodeAll("b", encode(t, v2, map[string]any{"id": "2", "time": 5, "to_phone_number": "+2"}))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := a[0].StringField("to_phone"); s != "+1" {
		t.Errorf("v1 to_phone = %q", s)
	}
	if s, _ := b[0].StringField("to_phone_number"); s != "+2" || b[0].Time() != 5 {
		t.Errorf("v2 = %v", b[0].Map())
	}
	if _, ok := b[0].Get("to_phone"); ok {
		t.Errorf("v2 has v1's field")
	}
}
