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

// compilePlan turns a parsed writer schema into a plan. Named types that
// refer to themselves are resolved through memo so recursion terminates.
func compilePlan(s avro.Schema, memo map[string]*node) (*node, error) {
	switch t := s.(type) {
	case *avro.RefSchema:
		return compilePlan(t.Schema(), memo)
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
		return nil, fmt.Errorf("unsupported primitive type %q", t.Type())
	case *avro.FixedSchema:
		return &node{op: opFixed, size: t.Size(), name: t.FullName(), minBytes: t.Size()}, nil
	case *avro.EnumSchema:
		return &node{op: opEnum, symbols: t.Symbols(), name: t.FullName(), minBytes: 1}, nil
	case *avro.UnionSchema:
		n := &node{op: opUnion, minBytes: 1}
		for _, b := range t.Types() {
			bn, err := compilePlan(b, memo)
			if err != nil {
				return nil, err
			}
			n.branches = append(n.branches, bn)
		}
		return n, nil
	case *avro.ArraySchema:
		items, err := compilePlan(t.Items(), memo)
		if err != nil {
			return nil, err
		}
		return &node{op: opArray, items: items, minBytes: 1}, nil
	case *avro.MapSchema:
		values, err := compilePlan(t.Values(), memo)
		if err != nil {
			return nil, err
		}
		return &node{op: opMap, items: values, minBytes: 1}, nil
	case *avro.RecordSchema:
		if n, ok := memo[t.FullName()]; ok {
			return n, nil
		}
		n := &node{op: opRecord, name: t.FullName()}
		memo[t.FullName()] = n
		names := make([]string, len(t.Fields()))
		for i, f := range t.Fields() {
			fn, err := compilePlan(f.Type(), memo)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name(), err)
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
