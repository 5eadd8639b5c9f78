package currents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// maxDepth bounds nesting so a hostile schema/data pair cannot exhaust the stack.
const maxDepth = 64

var errShort = errors.New("unexpected end of block data")

// cursor reads Avro binary values out of one decompressed block. The block is
// held as a string so that decoded strings are substrings of it: no copy and
// no allocation per string. The first error sticks; callers check err once
// per record instead of after every field.
type cursor struct {
	data  string
	pos   int
	err   error
	depth int
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
				c.fail(fmt.Errorf("enum %s index %d out of range", n.name, i))
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
	if c.depth > maxDepth {
		c.fail(errors.New("values nested too deep"))
		return Null
	}
	switch n.op {
	case opArray:
		var items []Value
		c.blocks(n.items, func() { items = append(items, c.value(n.items)) })
		return ArrayValue(items)
	case opMap:
		var entries []Entry
		c.blocks(n.items, func() {
			k := c.str()
			entries = append(entries, Entry{Name: k, Value: c.value(n.items)})
		})
		return MapValue(entries)
	case opRecord:
		fields := make([]Entry, len(n.fields))
		for i, f := range n.fields {
			fields[i] = Entry{Name: n.index.names[i], Value: c.value(f)}
		}
		return RecordValue(fields)
	}
	c.fail(fmt.Errorf("unknown plan op %d", n.op))
	return Null
}

// blocks walks Avro's blocked encoding of arrays and maps: a count, items,
// repeated until a zero count; a negative count is followed by a byte size.
func (c *cursor) blocks(item *node, each func()) {
	for c.err == nil {
		n := c.long()
		if n == 0 {
			return
		}
		if n < 0 {
			n = -n
			c.long() // byte size of the block, not needed to decode it
		}
		// Every item takes at least one byte unless it is null; bound the
		// count by what is left so a corrupt count cannot loop for ever.
		minBytes := item.minBytes
		if minBytes < 1 {
			minBytes = 1
		}
		if n > int64(len(c.data)-c.pos)/int64(minBytes)+1 {
			c.fail(fmt.Errorf("item count %d exceeds the data left", n))
			return
		}
		for i := int64(0); i < n && c.err == nil; i++ {
			each()
		}
	}
}
