package currents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

var errShort = errors.New("unexpected end of block data")

// cursor reads Avro binary values out of one decompressed block. The block is
// held as a string so that decoded strings are substrings of it: no copy and
// no allocation per string. The first error sticks; callers check err once
// per record instead of after every field.
//
// Nested values allocate, and a few bytes can claim millions of them, so
// every count is checked against the limits before anything is allocated:
// maxItems per array or map, budget for the values left to the block (of
// maxValues in all), maxDepth for nesting.
type cursor struct {
	data      string
	pos       int
	err       error
	depth     int
	maxDepth  int
	maxItems  int
	maxValues int
	budget    int
}

func (c *cursor) fail(err error) {
	if c.err == nil {
		c.err = fmt.Errorf("at block byte %d: %w", c.pos, err)
	}
	c.pos = len(c.data)
}

// long reads a zig-zag varint (Avro int and long).
func (c *cursor) long() int64 {
	var u uint64
	var shift uint
	for i := 0; i < 10; i++ {
		if c.pos >= len(c.data) {
			c.fail(errShort)
			return 0
		}
		b := c.data[c.pos]
		c.pos++
		u |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int64(u>>1) ^ -int64(u&1)
		}
		shift += 7
	}
	c.fail(errors.New("varint longer than 10 bytes"))
	return 0
}

// length reads a non-negative length that must fit in the remaining data.
func (c *cursor) length() int {
	n := c.long()
	if n < 0 || n > int64(len(c.data)-c.pos) {
		if c.err == nil {
			c.fail(fmt.Errorf("length %d exceeds the %d bytes left", n, len(c.data)-c.pos))
		}
		return 0
	}
	return int(n)
}

func (c *cursor) str() string {
	n := c.length()
	s := c.data[c.pos : c.pos+n]
	c.pos += n
	return s
}

func (c *cursor) fixed(n int) string {
	if n > len(c.data)-c.pos {
		c.fail(errShort)
		return ""
	}
	s := c.data[c.pos : c.pos+n]
	c.pos += n
	return s
}

// value reads one value according to plan node n.
func (c *cursor) value(n *node) Value {
	switch n.op {
	case opNull:
		return Null
	case opString:
		return Value{kind: KindString, str: c.str()}
	case opInt:
		return Value{kind: KindInt, num: uint64(c.long())}
	case opUnion:
		i := c.long()
		if i < 0 || i >= int64(len(n.branches)) {
			if c.err == nil {
				c.fail(fmt.Errorf("union branch %d out of range (%d branches)", i, len(n.branches)))
			}
			return Null
		}
		return c.value(n.branches[i])
	case opBool:
		if c.pos >= len(c.data) {
			c.fail(errShort)
			return Null
		}
		b := c.data[c.pos]
		c.pos++
		if b > 1 {
			c.fail(fmt.Errorf("boolean byte %d", b))
			return Null
		}
		return Value{kind: KindBool, num: uint64(b)}
	case opFloat:
		s := c.fixed(4)
		if len(s) < 4 {
			return Null
		}
		f := math.Float32frombits(binary.LittleEndian.Uint32([]byte(s)))
		return FloatValue(float64(f))
	case opDouble:
		s := c.fixed(8)
		if len(s) < 8 {
			return Null
		}
		return Value{kind: KindFloat, num: binary.LittleEndian.Uint64([]byte(s))}
	case opBytes:
		return Value{kind: KindBytes, str: c.str()}
	case opFixed:
		return Value{kind: KindBytes, str: c.fixed(n.size)}
	case opEnum:
		i := c.long()
		if i < 0 || i >= int64(len(n.symbols)) {
			if c.err == nil {
				c.fail(fmt.Errorf("enum %s index %d out of range", quote(n.name), i))
			}
			return Null
		}
		return Value{kind: KindString, str: n.symbols[i]}
	}
	return c.composite(n)
}

// composite reads the nested kinds, which Currents does not use today.
func (c *cursor) composite(n *node) Value {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > c.maxDepth {
		c.fail(limitErr(LimitMaxDepth, int64(c.maxDepth), "values nested more than %d deep", c.maxDepth))
		return Null
	}
	switch n.op {
	case opArray:
		var items []Value
		total := 0
		for k := c.blockCount(n.items.minBytes, &total); k > 0; k = c.blockCount(n.items.minBytes, &total) {
			items = slices.Grow(items, k)
			for i := 0; i < k && c.err == nil; i++ {
				items = append(items, c.value(n.items))
			}
		}
		if len(items) == 0 {
			// Items() of an array without them is nil either way: no
			// allocation for the common empty array.
			return Value{kind: KindArray}
		}
		return ArrayValue(items)
	case opMap:
		var entries []Entry
		total := 0
		// An entry is a key of at least one byte and its value.
		for k := c.blockCount(1+n.items.minBytes, &total); k > 0; k = c.blockCount(1+n.items.minBytes, &total) {
			entries = slices.Grow(entries, k)
			for i := 0; i < k && c.err == nil; i++ {
				key := c.str()
				entries = append(entries, Entry{Name: key, Value: c.value(n.items)})
			}
		}
		return MapValue(entries)
	case opRecord:
		if !c.spend(len(n.fields)) {
			return Null
		}
		fields := make([]Entry, len(n.fields))
		for i, f := range n.fields {
			fields[i] = Entry{Name: n.index.names[i], Value: c.value(f)}
		}
		return RecordValue(fields)
	}
	c.fail(fmt.Errorf("unknown plan op %d", n.op))
	return Null
}

// blockCount reads the count of the next block of Avro's blocked encoding of
// arrays and maps (a count, items, repeated until a zero count; a negative
// count is followed by a byte size) and returns it, or 0 at the end or on an
// error. total is the items of this array or map so far. The count is
// checked before any item is allocated: items of at least minBytes bytes
// cannot outnumber the bytes left; items of no bytes (null, an empty record)
// can, and only the limits bound them.
func (c *cursor) blockCount(minBytes int, total *int) int {
	if c.err != nil {
		return 0
	}
	n := c.long()
	if n == 0 || c.err != nil {
		return 0
	}
	if n < 0 {
		n = -n
		c.long() // byte size of the block, not needed to decode it
		if n < 0 {
			c.fail(fmt.Errorf("item count %d", n))
			return 0
		}
	}
	if minBytes > 0 && n > int64(len(c.data)-c.pos)/int64(minBytes) {
		c.fail(fmt.Errorf("item count %d exceeds the data left", n))
		return 0
	}
	if n > int64(c.maxItems-*total) {
		c.fail(limitErr(LimitMaxItems, int64(c.maxItems), "an array or map of at least %d items", int64(*total)+n))
		return 0
	}
	if !c.spend(int(n)) {
		return 0
	}
	*total += int(n)
	return int(n)
}

// spend takes n values from the block's budget, or fails.
func (c *cursor) spend(n int) bool {
	if n > c.budget {
		c.fail(limitErr(LimitMaxBlockValues, int64(c.maxValues), "a block of more than %d values", c.maxValues-c.budget+n))
		return false
	}
	c.budget -= n
	return true
}
