// Package strchunk copies short strings into shared, append-only chunks.
//
// The decoder's strings point into the decoded bytes of their whole Avro
// block (plugins/currents/reader.go), so a string kept beyond the event, as
// message metadata for instance, keeps that block alive: megabytes for a
// 36-byte event id, for as long as the message is in flight. Copying it
// into a chunk shared by the strings of one message batch pins kilobytes
// instead, at the cost of one allocation per chunk rather than one per
// string.
package strchunk

import "unsafe"

// Chunks hands out copies of strings, written one after the other into a
// chunk that is never written again where a copy was handed out. The zero
// value is ready; it is not safe for concurrent use.
type Chunks struct {
	buf []byte
	// Size is the capacity of a new chunk (at least the string's length);
	// zero means 4 KiB.
	Size int
}

// Clone returns a copy of s that shares its chunk with the copies made
// before and after it.
func (c *Chunks) Clone(s string) string {
	if len(s) == 0 {
		return ""
	}
	if cap(c.buf)-len(c.buf) < len(s) {
		size := c.Size
		if size <= 0 {
			size = 4 << 10
		}
		c.buf = make([]byte, 0, max(size, len(s)))
	}
	start := len(c.buf)
	c.buf = append(c.buf, s...)
	// Never written again: later copies append after it or go to a new
	// chunk.
	return unsafe.String(&c.buf[start], len(s))
}
