package currents_test

import (
	"encoding/json"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

func TestEventFromMap(t *testing.T) {
	ev := currents.EventFromMap("users.messages.email.Open", map[string]any{
		"id": "e1", "time": json.Number("1700000000"), "n": 3, "f": 2.5, "whole": 4.0, "b": true,
		"nothing": nil, "urls": []string{"a", "b"}, "any": []any{"x", nil}, "obj": map[string]any{"k": int64(1)}, "raw": []byte("r"),
	})
	if ev.Type != "users.messages.email.Open" || ev.ID() != "e1" || ev.Time() != 1700000000 {
		t.Fatalf("type/id/time = %q %q %d", ev.Type, ev.ID(), ev.Time())
	}
	checks := map[string]currents.Kind{
		"n": currents.KindInt, "f": currents.KindFloat, "whole": currents.KindInt, "b": currents.KindBool,
		"nothing": currents.KindNull, "urls": currents.KindArray, "any": currents.KindArray, "obj": currents.KindMap, "raw": currents.KindBytes,
	}
	for name, kind := range checks {
		v, ok := ev.Get(name)
		if !ok || v.Kind() != kind {
			t.Errorf("%s: kind %s (present %v), want %s", name, v.Kind(), ok, kind)
		}
	}
	if v, _ := ev.Get("urls"); len(v.Items()) != 2 || v.Items()[1].Str() != "b" {
		t.Errorf("urls = %v", v.Any())
	}
	if v, _ := ev.Get("f"); v.Float() != 2.5 {
		t.Errorf("f = %v", v.Float())
	}
	if ev.Len() != len(checks)+2 {
		t.Errorf("Len = %d", ev.Len())
	}
}
