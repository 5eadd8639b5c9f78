// Package ids checks and derives the UUIDs mParticle's schema asks for:
// source_message_id, source_request_id, session_uuid and device ids.
package ids

import (
	"crypto/sha1"
	"encoding/hex"
)

// IsUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, the only
// form mParticle's schema accepts for ids typed as UUIDs. It runs several
// times per event, hence the table and the unrolled groups.
func IsUUID(s string) bool {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return allHex(s[0:8]) && allHex(s[9:13]) && allHex(s[14:18]) && allHex(s[19:23]) && allHex(s[24:36])
}

func allHex(s string) bool {
	var bad byte
	for i := 0; i < len(s); i++ {
		bad |= notHex[s[i]]
	}
	return bad == 0
}

// notHex is 1 for every byte that is not a hex digit.
var notHex = func() (t [256]byte) {
	for c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			t[c] = 1
		}
	}
	return t
}()

// AppendV5 appends the name-based UUID (RFC 9562 version 5, SHA-1) of a
// name, in lowercase 8-4-4-4-12 form. namespacedName is the 16 namespace
// bytes followed by the name, so callers build it in a buffer they reuse.
func AppendV5(dst, namespacedName []byte) []byte {
	sum := sha1.Sum(namespacedName)
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], sum[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], sum[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], sum[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], sum[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], sum[10:16])
	return append(dst, out[:]...)
}
