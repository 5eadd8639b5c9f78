package client

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"line\nfeed\r\ttab", `"line\nfeed\r\ttab"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"é ü 日本", `"é ü 日本"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"bad\xffutf8", `"bad\ufffdutf8"`},
		{"</script>&", `"</script>&"`},
	}
	for _, tt := range tests {
		got := string(jsonstring.Append(nil, tt.in))
		if got != tt.want {
			t.Errorf("jsonstring.Append(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("jsonstring.Append(%q) = %s: not valid JSON: %v", tt.in, got, err)
			continue
		}
		// Invalid UTF-8 becomes U+FFFD; everything else must round-trip.
		if tt.in != "bad\xffutf8" && back != tt.in {
			t.Errorf("round trip of %q gave %q", tt.in, back)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\u2028", "\xff\xfe", "日本\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := jsonstring.Append(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("jsonstring.Append(%q) = %s: invalid JSON: %v", s, out, err)
		}
		// encoding/json decodes to the same string it would have encoded
		// from the input (both turn invalid UTF-8 into U+FFFD).
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("jsonstring.Append(%q) decodes to %q, encoding/json to %q", s, back, wantBack)
		}
	})
}

// membersOf walks obj with objectIter.
func membersOf(obj []byte) map[string]string {
	out := map[string]string{}
	it := newObjectIter(trimSpace(obj))
	for {
		k, v, ok := it.next()
		if !ok {
			return out
		}
		var key string
		if err := json.Unmarshal(k, &key); err != nil {
			return nil
		}
		out[key] = string(v)
	}
}

func FuzzObjectIter(f *testing.F) {
	for _, s := range []string{
		`{}`,
		` { "a" : 1 , "b":[1,2,{"c":"}"}] ,"d":"x\"y", "e":null,"f":true,"g":-1.5e3 } `,
		`{"events":[{"data":{"source_message_id":"x"}}],"k\u0065y":{"nested":{"deep":[[]]}}}`,
		`{"a":"[{"}`,
		`{"dup":1,"dup":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		doc = trimSpace(doc)
		if len(doc) == 0 || doc[0] != '{' || !json.Valid(doc) {
			return // the walkers only ever see valid objects
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal(doc, &want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		got := membersOf(doc)
		if len(got) != len(want) {
			t.Fatalf("objectIter found %d distinct members, encoding/json %d: %s", len(got), len(want), doc)
		}
		for k, v := range want {
			var a, b bytes.Buffer
			_ = json.Compact(&a, v)
			_ = json.Compact(&b, []byte(got[k]))
			if a.String() != b.String() {
				t.Fatalf("member %q: objectIter %s, encoding/json %s", k, got[k], v)
			}
		}
	})
}

func TestArrayIter(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`[]`, nil},
		{`[ ]`, nil},
		{`[1]`, []string{`1`}},
		{`[ {"a":"]"} , [1,[2]] ,"s\"]", null ]`, []string{`{"a":"]"}`, `[1,[2]]`, `"s\"]"`, `null`}},
	}
	for _, tt := range tests {
		var got []string
		it := newArrayIter([]byte(tt.in))
		for {
			e, ok := it.next()
			if !ok {
				break
			}
			got = append(got, string(e))
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: got %q, want %q", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: element %d = %s, want %s", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

func TestKeyIs(t *testing.T) {
	tests := []struct {
		raw, name string
		want      bool
	}{
		{`"events"`, "events", true},
		{`"event"`, "events", false},
		{`"\u0065vents"`, "events", true},
		{`"eve\"nts"`, "events", false},
	}
	for _, tt := range tests {
		if got := keyIs([]byte(tt.raw), tt.name); got != tt.want {
			t.Errorf("keyIs(%s, %q) = %v, want %v", tt.raw, tt.name, got, tt.want)
		}
	}
}

func TestMemberLastDuplicateWins(t *testing.T) {
	v, ok := member([]byte(`{"a":1,"b":2,"a":3}`), "a")
	if !ok || string(v) != "3" {
		t.Fatalf("member a = %s, %v; want 3, true", v, ok)
	}
	if _, ok := member([]byte(`{"a":1}`), "z"); ok {
		t.Fatal("member z found in an object without it")
	}
}

// validJSON agrees with encoding/json.Valid on every document encoding/json
// does not refuse for nesting alone (over 10,000 levels deep), which
// validJSON accepts.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a":[1,2,{"b":"c"}]} `, `{"a":1,}`, `[1,]`, `01`, `-0`, `1e999999`, `"\ud800"`, "\"\xff\"",
		"{}\x00", `"\u00zz"`, `{"a" 1}`, `nul`, `[[[]]]`, `{"events":[{"data":{"source_message_id":"x"}}]}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		got, want := validJSON(doc), json.Valid(doc)
		if got == want {
			return
		}
		if got && !want {
			var v any
			if err := json.Unmarshal(doc, &v); err != nil && strings.Contains(err.Error(), "exceeded max depth") {
				return
			}
		}
		t.Fatalf("validJSON %v, encoding/json %v: %q", got, want, doc)
	})
}

// BenchmarkValidJSON: validJSON against encoding/json.Valid on mapped
// batches, which the output checks one by one.
func BenchmarkValidJSON(b *testing.B) {
	items := benchItems("ios", 0, 100, 1, recentMS)
	for _, bc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"segmentio", validJSON}, {"encoding_json", json.Valid}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(items[0].Batch)))
			for i := 0; i < b.N; i++ {
				if !bc.valid(items[i%len(items)].Batch) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
