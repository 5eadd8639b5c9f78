// Package jsonstring appends Go strings as JSON strings, fast and without
// allocating: the one escaper of the decoder's event JSON, the mapping's
// hot path, the client and the ledger.
package jsonstring

import "unicode/utf8"

// jsonSafe marks the ASCII bytes that can be copied into a JSON string as they
// are; everything else is escaped (or, from 0x80 up, checked as UTF-8).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// Append appends s to dst as a JSON string. Go's strconv quoting is not JSON
// (it writes \x escapes), and encoding/json reflects and allocates, so the
// hot path has its own escaper. Invalid UTF-8 bytes become U+FFFD, as
// encoding/json does, so the output is always valid JSON whatever the input.
// U+2028 and U+2029 are escaped because JavaScript consumers choke on them.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight plain ASCII bytes at a time: most strings have nothing
		// to escape, and this loop is the encoder's hottest.
		if i+8 <= len(s) {
			if plain8(load64(s, i)) {
				i += 8
				continue
			}
		} else if len(s) >= 8 && plain8(load64(s, len(s)-8)) {
			// The tail: eight bytes ending at the end of s, overlapping
			// bytes already known to be plain.
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// load64 reads eight bytes of s at i, little endian; the compiler merges
// the byte loads into one.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plain8 reports whether none of the eight bytes in x needs attention: no
// control character, quote, backslash or non-ASCII byte. These are the
// classic "has zero byte" / "has byte less than n" bit tricks, exact about
// whether any byte matches.
func plain8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	ctl := (x - lsb*0x20) &^ x
	quote := x ^ lsb*'"'
	quote = (quote - lsb) &^ quote
	bslash := x ^ lsb*'\\'
	bslash = (bslash - lsb) &^ bslash
	return (ctl|quote|bslash|x)&msb == 0
}
