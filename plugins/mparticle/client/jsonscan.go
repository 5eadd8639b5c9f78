package client

import (
	"encoding/json"

	segjson "github.com/segmentio/encoding/json"
)

// The packer only needs the spans of a batch's top-level members and of its
// events, never a decoded tree, so it walks the bytes itself: decoding every
// mapped batch with encoding/json on the hot path would allocate a map, a
// slice and a string per member. Every walker here assumes its input already
// passed validJSON, which keeps them short.

// validJSON reports whether b is one valid JSON value, as encoding/json.Valid
// does, several times faster: segmentio/encoding's validator, 0.6 µs against
// 4.0 µs for a 1.2 KB mapped push send, 0.26 against 1.3 µs for the small
// batches of BenchmarkValidJSON. Every item the output sends is checked:
// encoding/json's was 18 % of the whole pipeline's CPU in dry run. The one
// difference (FuzzValidJSON): encoding/json refuses nesting deeper than
// 10,000 levels, this accepts it; the walkers here are iterative, so depth
// costs them nothing.
func validJSON(b []byte) bool { return segjson.Valid(b) }

// isJSONSpace reports whether c is insignificant JSON whitespace.
func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string whose opening quote is at
// b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) {
			switch c := b[i]; {
			case c == ',' || c == '}' || c == ']' || isJSONSpace(c):
				return i
			}
			i++
		}
		return i
	}
}

// trimSpace strips insignificant whitespace around a JSON value.
func trimSpace(b []byte) []byte {
	start := skipSpace(b, 0)
	end := len(b)
	for end > start && isJSONSpace(b[end-1]) {
		end--
	}
	return b[start:end]
}

// objectIter walks the members of a JSON object.
type objectIter struct {
	b []byte
	i int
}

// newObjectIter starts a walk over obj, which must be a trimmed JSON object.
func newObjectIter(obj []byte) objectIter {
	return objectIter{b: obj, i: 1}
}

// next returns the next member: its key as raw JSON (quotes included) and its
// raw value. ok is false after the last member.
func (it *objectIter) next() (key, val []byte, ok bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.i = len(b)
		return nil, nil, false
	}
	kEnd := skipString(b, i)
	key = b[i:kEnd]
	i = skipSpace(b, kEnd)
	i = skipSpace(b, i+1) // the colon
	vEnd := skipValue(b, i)
	val = b[i:vEnd]
	it.i = vEnd
	return key, val, true
}

// arrayIter walks the elements of a JSON array.
type arrayIter struct {
	b []byte
	i int
}

// newArrayIter starts a walk over arr, which must be a trimmed JSON array.
func newArrayIter(arr []byte) arrayIter {
	return arrayIter{b: arr, i: 1}
}

// next returns the next raw element; ok is false after the last one.
func (it *arrayIter) next() (elem []byte, ok bool) {
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] == ']' {
		it.i = len(b)
		return nil, false
	}
	end := skipValue(b, i)
	it.i = end
	return b[i:end], true
}

// keyIs reports whether the raw JSON key equals name. Keys written with
// escapes (legal, if odd) are decoded first so that "\u0065vents" still
// means events.
func keyIs(raw []byte, name string) bool {
	if len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name {
		return true
	}
	if !hasBackslash(raw) {
		return false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return false
	}
	return s == name
}

// hasBackslash reports whether b contains a JSON escape.
func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// member finds the value of the member called name in a trimmed JSON object.
func member(obj []byte, name string) ([]byte, bool) {
	if len(obj) == 0 || obj[0] != '{' {
		return nil, false
	}
	it := newObjectIter(obj)
	var found []byte
	ok := false
	for {
		k, v, more := it.next()
		if !more {
			return found, ok
		}
		if keyIs(k, name) {
			// The last duplicate wins, as with encoding/json.
			found, ok = v, true
		}
	}
}
