package mparticle

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

// appendString appends s as a JSON string (see jsonstring.Append).
func appendString(dst []byte, s string) []byte { return jsonstring.Append(dst, s) }

// appendFloat appends f as a JSON number. A value that is exactly a float32
// (Braze's Avro "float", e.g. a purchase price) is written with float32
// precision, so 9.99f reads 9.99 rather than 9.989999771118164; other values
// keep full precision. NaN and infinities have no JSON form: callers check
// finite() first.
func appendFloat(dst []byte, f float64) []byte {
	bits := 64
	if float64(float32(f)) == f {
		bits = 32
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// finite reports whether f can be written as a JSON number.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// truncateRunes cuts s to at most max characters (Unicode code points, as
// mParticle documents its limits; an invalid byte counts as one, since it is
// written as U+FFFD). It cuts on a UTF-8 boundary and reports whether it cut.
func truncateRunes(s string, max int) (string, bool) {
	if len(s) <= max { // fewer bytes than the limit: fewer runes too
		return s, false
	}
	n := 0
	for i := 0; i < len(s); {
		if n == max {
			return s[:i], true
		}
		if s[i] < utf8.RuneSelf {
			i++
		} else {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		n++
	}
	return s, false
}
