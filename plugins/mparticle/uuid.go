package mparticle

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/internal/ids"
)

// isUUID reports whether s is a UUID in mParticle's 8-4-4-4-12 form.
func isUUID(s string) bool { return ids.IsUUID(s) }

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
	var out [36]byte
	return string(ids.AppendV5(out[:0], b))
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
