package mparticle

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
)

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form, the only
// form mParticle's schema accepts for ids typed as UUIDs. It runs three
// times per event, hence the table and the unrolled groups.
func isUUID(s string) bool {
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
		if !isHex(byte(c)) {
			t[c] = 1
		}
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Namespaces of the name-based (version 5) UUIDs this package derives. They
// are fixed forever: changing one changes every derived id, and mParticle
// would no longer recognise replayed events as duplicates.
var (
	// eventNamespace derives source_message_id from an event id that is not a UUID.
	eventNamespace = [16]byte{0x5b, 0x0e, 0x3f, 0x61, 0x2a, 0x7c, 0x4d, 0x1e, 0x9b, 0x53, 0xc8, 0x04, 0x6e, 0x21, 0xfa, 0x97}
	// sessionNamespace derives session_uuid from a Braze session_id that is not a UUID.
	sessionNamespace = [16]byte{0xa4, 0x19, 0x62, 0xd0, 0x0b, 0x3e, 0x4f, 0x85, 0x87, 0x2c, 0x51, 0xe9, 0x3a, 0x70, 0xc6, 0x0d}
)

// uuidV5 returns the name-based UUID (RFC 9562 version 5, SHA-1) of name in
// namespace ns, in lowercase 8-4-4-4-12 form.
func uuidV5(ns [16]byte, name string) string {
	// A stack buffer keeps the common short names from allocating.
	var buf [128]byte
	b := append(buf[:0], ns[:]...)
	b = append(b, name...)
	sum := sha1.Sum(b)
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
	return string(out[:])
}

// uuidPrefix63 returns the first 64 bits of a UUID string shifted to a
// positive int64: mParticle's session_id is an integer, and the session
// events of one Braze session must agree on it.
func uuidPrefix63(u string) int64 {
	var n uint64
	for i := 0; i < len(u) && i < 18; i++ {
		c := u[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			continue // the hyphens
		}
		n = n<<4 | uint64(d)
	}
	return int64(n >> 1)
}

// sha256Hex returns the lowercase hex SHA-256 of s: the form the hash
// attribute option sends.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
