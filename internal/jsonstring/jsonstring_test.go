package jsonstring

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestPlain8(t *testing.T) {
	// Exhaustive over one unsafe byte at every position of otherwise plain chunks.
	for c := 0; c < 256; c++ {
		unsafe := c < 0x20 || c == '"' || c == '\\' || c >= 0x80
		for pos := 0; pos < 8; pos++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			if got := plain8(load64(string(b), 0)); got == unsafe {
				t.Fatalf("plain8 of byte %#x at %d = %v", c, pos, got)
			}
		}
	}
}

// Every string, valid UTF-8 or not, becomes JSON that decodes to it (with
// each invalid byte as U+FFFD).
func TestAppendRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain ascii text", "quote\" back\\slash", "tab\tnew\nline\r", "\x00\x1f ctl",
		"héllo wörld ✓ 日本", "\u2028line\u2029sep", "bad \xff\xfe bytes", "eightchr", "seven!!", "0123456789abcdef\"x"} {
		var got string
		if err := json.Unmarshal(Append(nil, s), &got); err != nil {
			t.Fatalf("%q: %s is not JSON: %v", s, Append(nil, s), err)
		}
		// Each invalid byte becomes one U+FFFD, as []rune conversion does.
		if want := string([]rune(s)); got != want {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
}

// Append writes what encoding/json writes with HTML escaping off, byte for
// byte, for every ASCII character and the two JavaScript line separators.
func TestAppendMatchesEncodingJSON(t *testing.T) {
	var in []string
	for c := 0; c < 0x80; c++ {
		in = append(in, string(rune(c)), "abcdefgh"+string(rune(c))+"ijklmnop")
	}
	in = append(in, "a\u2028b\u2029c")
	for _, s := range in {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		if got := Append(nil, s); !bytes.Equal(got, want) {
			t.Errorf("Append(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}
