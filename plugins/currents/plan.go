package currents

import (
	"fmt"

	"github.com/hamba/avro/v2"
)

// op is what a plan node reads from the wire.
type op uint8

const (
	opNull op = iota
	opBool
	opInt // int and long share the zig-zag varint encoding
	opFloat
	opDouble
	opString
	opBytes
	opFixed
	opEnum
	opUnion
	opArray
	opMap
	opRecord
)

// node is one step of a decoding plan compiled from a writer schema. Walking
// a small tree of nodes with a switch is much cheaper than hamba/avro's
// reflection-driven generic decoding into map[string]any, and lets strings
// point into the block instead of being allocated one by one.
type node struct {
	op       op
	size     int      // fixed size
	symbols  []string // enum symbols
	branches []*node  // union branches
	items    *node    // array items, map values
	fields   []*node  // record fields
	index    *fieldIndex
	name     string // full name of named types, for error messages
	minBytes int    // the fewest bytes one value can take, to bound counts
}

// compileWriterSchema compiles the plan of a writer schema, refusing one that
// nests arrays, maps and records more than maxDepth deep below its top-level
// record, or holds more than maxFields record fields in all.
func compileWriterSchema(s avro.Schema, maxDepth, maxFields int) (*node, error) {
	c := &compiler{memo: map[string]*node{}, maxDepth: maxDepth, maxFields: maxFields}
	// The top-level record is level 0: its fields are the event's, decoded
	// without nesting; an array field is level 1, as the cursor counts.
	return c.compile(s, -1)
}

type compiler struct {
	memo              map[string]*node
	maxDepth          int
	maxFields, fields int
}

// compile turns a parsed schema into a plan. Named types that refer to
// themselves are resolved through memo so recursion terminates. depth is the
// level of the type holding s: an array, map or record s is one level deeper.
func (c *compiler) compile(s avro.Schema, depth int) (*node, error) {
	switch s.(type) {
	case *avro.ArraySchema, *avro.MapSchema, *avro.RecordSchema:
		if depth+1 > c.maxDepth {
			return nil, limitErr(LimitMaxDepth, int64(c.maxDepth), "a writer schema nesting more than %d deep", c.maxDepth)
		}
	}
	switch t := s.(type) {
	case *avro.RefSchema:
		return c.compile(t.Schema(), depth)
	case *avro.NullSchema:
		return &node{op: opNull}, nil
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.Null:
			return &node{op: opNull}, nil
		case avro.Boolean:
			return &node{op: opBool, minBytes: 1}, nil
		case avro.Int, avro.Long:
			return &node{op: opInt, minBytes: 1}, nil
		case avro.Float:
			return &node{op: opFloat, minBytes: 4}, nil
		case avro.Double:
			return &node{op: opDouble, minBytes: 8}, nil
		case avro.String:
			return &node{op: opString, minBytes: 1}, nil
		case avro.Bytes:
			return &node{op: opBytes, minBytes: 1}, nil
		}
		return nil, fmt.Errorf("unsupported primitive type %s", quote(string(t.Type())))
	case *avro.FixedSchema:
		return &node{op: opFixed, size: t.Size(), name: t.FullName(), minBytes: t.Size()}, nil
	case *avro.EnumSchema:
		return &node{op: opEnum, symbols: t.Symbols(), name: t.FullName(), minBytes: 1}, nil
	case *avro.UnionSchema:
		n := &node{op: opUnion, minBytes: 1}
		for _, b := range t.Types() {
			bn, err := c.compile(b, depth)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		return n, nil
	case *avro.ArraySchema:
		items, err := c.compile(t.Items(), depth+1)
		if err != nil {
			return nil, err
		}
		return &node{op: opArray, items: items, minBytes: 1}, nil
	case *avro.MapSchema:
		values, err := c.compile(t.Values(), depth+1)
		if err != nil {
			return nil, err
		}
		return &node{op: opMap, items: values, minBytes: 1}, nil
	case *avro.RecordSchema:
		if n, ok := c.memo[t.FullName()]; ok {
			return n, nil
		}
		if c.fields += len(t.Fields()); c.fields > c.maxFields {
			return nil, limitErr(LimitMaxSchemaFields, int64(c.maxFields), "a writer schema of at least %d fields", c.fields)
		}
		n := &node{op: opRecord, name: t.FullName()}
		c.memo[t.FullName()] = n
		names := make([]string, len(t.Fields()))
		for i, f := range t.Fields() {
			fn, err := c.compile(f.Type(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", quote(f.Name()), err)
			}
			names[i] = f.Name()
			n.fields = append(n.fields, fn)
			n.minBytes += fn.minBytes
		}
		n.index = newFieldIndex(names)
		return n, nil
	}
	return nil, fmt.Errorf("unsupported schema %T", s)
}

// maxSchemaJSONPerLevel is the most JSON nesting one level of types takes: a
// record inside a union is the union's array, the record's object, its fields
// array and a field's object.
const maxSchemaJSONPerLevel = 4

// maxSchemaJSONDepth is the deepest JSON a schema within maxDepth needs.
func maxSchemaJSONDepth(maxDepth int) int {
	return maxSchemaJSONPerLevel * (maxDepth + 2)
}

// jsonDepth returns the deepest nesting of objects and arrays in a JSON text,
// without parsing it: one pass, no allocation.
func jsonDepth(s string) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
			deepest = max(deepest, depth)
		case b == '}' || b == ']':
			depth--
		}
	}
	return deepest
}
