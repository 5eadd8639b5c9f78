package mparticle

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// propertyAttrs runs addProperties alone and returns the attributes as plain
// Go values (numbers as float64 like JSON, to compare with literals).
func propertyAttrs(t *testing.T, props string, existing ...string) (map[string]any, []string, Counters) {
	t.Helper()
	s, err := (&Options{}).settings()
	if err != nil {
		t.Fatal(err)
	}
	var c Counters
	k := attrSink{s: s, c: &c}
	for _, name := range existing {
		k.add(name, name, StringValue("field"), false)
	}
	k.addProperties(props)
	out := map[string]any{}
	var order []string
	for _, a := range k.attrs {
		switch a.Value.kind {
		case valueString:
			out[a.Name] = a.Value.str
		case valueInt:
			out[a.Name] = float64(int64(a.Value.num))
		case valueFloat:
			out[a.Name] = mustFloat(a.Value)
		case valueBool:
			out[a.Name] = a.Value.num == 1
		}
		order = append(order, a.Name)
	}
	return out, order, c
}

func mustFloat(v Value) float64 {
	f, err := strconv.ParseFloat(string(v.AppendJSON(nil)), 64)
	if err != nil {
		panic(err)
	}
	return f
}

func TestProperties(t *testing.T) {
	for _, c := range []struct {
		name  string
		props string
		want  map[string]any
	}{
		{"empty", "", map[string]any{}},
		{"blank", "  \n", map[string]any{}},
		{"empty object", "{}", map[string]any{}},
		{"scalars", `{"s":"x","i":-12,"f":1.5,"e":2e3,"t":true,"n":false,"z":null}`,
			map[string]any{"s": "x", "i": -12.0, "f": 1.5, "e": 2000.0, "t": true, "n": false}},
		{"whitespace", " {\n \"a\" : 1 ,\t\"b\":\"2\" } ", map[string]any{"a": 1.0, "b": "2"}},
		{"nested objects flatten", `{"a":{"b":{"c":1},"d":"x"},"e":{}}`, map[string]any{"a.b.c": 1.0, "a.d": "x"}},
		{"deep objects stay JSON", `{"a":{"b":{"c":{"d":{"e":1}}}}}`, map[string]any{"a.b.c.d": `{"e":1}`}},
		{"arrays stay JSON", `{"tags":["a", "b"],"m":[{"x":1}],"e":[]}`, map[string]any{"tags": `["a", "b"]`, "m": `[{"x":1}]`, "e": "[]"}},
		{"escapes", `{"q":"say \"hi\"\n","u":"\u00e9\u65e5","s":"\ud83d\ude00","k\u0041":"v","lone":"\ud800x"}`,
			map[string]any{"q": "say \"hi\"\n", "u": "é日", "s": "😀", "kA": "v", "lone": "\uFFFDx"}},
		{"big integer becomes float", `{"n":123456789012345678901234567890}`, map[string]any{"n": 1.2345678901234568e29}},
		{"out of range stays text", `{"n":1e400}`, map[string]any{"n": "1e400"}},
		{"duplicate keys keep the first", `{"a":1,"a":2}`, map[string]any{"a": 1.0}},
		{"not an object", `["a"]`, map[string]any{"properties": `["a"]`}},
		{"bare string", `"x"`, map[string]any{"properties": `"x"`}},
		{"invalid", `{"a":1,}`, map[string]any{"properties": `{"a":1,}`}},
		{"unquoted value", `{"plan": gold}`, map[string]any{"properties": `{"plan": gold}`}},
		{"trailing garbage", `{"a":1} x`, map[string]any{"properties": `{"a":1} x`}},
		{"truncated", `{"a":{"b":`, map[string]any{"properties": `{"a":{"b":`}},
		{"bad escape", `{"a":"\x"}`, map[string]any{"properties": `{"a":"\x"}`}},
		{"control character", "{\"a\":\"x\ty\"}", map[string]any{"properties": "{\"a\":\"x\ty\"}"}},
		{"bad number", `{"a":01}`, map[string]any{"properties": `{"a":01}`}},
		{"bad literal", `{"a":tru}`, map[string]any{"properties": `{"a":tru}`}},
		{"deep nesting is invalid", `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
			map[string]any{"properties": `{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, _ := propertyAttrs(t, c.props)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("addProperties(%s)\n got %v\nwant %v", c.props, got, c.want)
			}
		})
	}
}

func TestPropertiesOrderAndClashes(t *testing.T) {
	got, order, _ := propertyAttrs(t, `{"z":1,"app_id":"prop","a":{"y":2,"b":3}}`, "source_request_id", "app_id")
	if !reflect.DeepEqual(order, []string{"source_request_id", "app_id", "z", "a.y", "a.b"}) {
		t.Errorf("order %v: properties follow the fields, in their own order", order)
	}
	if got["app_id"] != "field" {
		t.Errorf("a property must not overwrite a field: app_id = %v", got["app_id"])
	}
}
