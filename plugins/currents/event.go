package currents

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync"
)

// Kind is the Avro kind a decoded Value carries.
type Kind uint8

// The kinds a Value can hold. Int covers Avro int and long (always int64);
// Float covers float and double (always float64). Record and Map values hold
// named entries, Array values hold items; Currents types have none of them
// today, but a future writer schema may, and the decoder must not lose them.
const (
	KindNull Kind = iota
	KindString
	KindInt
	KindFloat
	KindBool
	KindBytes
	KindArray
	KindMap
	KindRecord
)

var kindNames = [...]string{"null", "string", "int", "float", "bool", "bytes", "array", "map", "record"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one decoded Avro value. Scalars are held inline, so a Value costs
// no allocation; strings point into the block they were decoded from.
type Value struct {
	kind Kind
	num  uint64 // int64 bits, float64 bits or 0/1 for bools
	str  string // string, bytes (as a string), enum symbol, fixed
	more *composite
}

// composite holds the rarely used nested kinds, kept out of line so that the
// common scalar Value stays small.
type composite struct {
	items   []Value // array items
	entries []Entry // map entries or record fields, in order
}

// Entry is one named value of a map or record.
type Entry struct {
	Name  string
	Value Value
}

// Null is the null value.
var Null = Value{}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// IntValue returns an integer Value (Avro int or long).
func IntValue(n int64) Value { return Value{kind: KindInt, num: uint64(n)} }

// FloatValue returns a floating point Value (Avro float or double).
func FloatValue(f float64) Value { return Value{kind: KindFloat, num: math.Float64bits(f)} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// BytesValue returns a bytes Value; the bytes are held as a string.
func BytesValue(b string) Value { return Value{kind: KindBytes, str: b} }

// ArrayValue returns an array Value.
func ArrayValue(items []Value) Value {
	return Value{kind: KindArray, more: &composite{items: items}}
}

// MapValue returns a map Value with entries in decoding order.
func MapValue(entries []Entry) Value {
	return Value{kind: KindMap, more: &composite{entries: entries}}
}

// RecordValue returns a record Value with its fields in schema order.
func RecordValue(fields []Entry) Value {
	return Value{kind: KindRecord, more: &composite{entries: fields}}
}

// Kind reports the kind of v.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is the Avro null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Str returns the string of a string, bytes, enum or fixed value, else "".
func (v Value) Str() string { return v.str }

// Int returns the integer of an int value, else 0.
func (v Value) Int() int64 {
	if v.kind == KindInt {
		return int64(v.num)
	}
	return 0
}

// Float returns the number of a float value (or an int value as float), else 0.
func (v Value) Float() float64 {
	switch v.kind {
	case KindFloat:
		return math.Float64frombits(v.num)
	case KindInt:
		return float64(int64(v.num))
	}
	return 0
}

// Bool returns the boolean of a bool value, else false.
func (v Value) Bool() bool { return v.kind == KindBool && v.num == 1 }

// Items returns the items of an array value.
func (v Value) Items() []Value {
	if v.more == nil {
		return nil
	}
	return v.more.items
}

// Entries returns the entries of a map or record value.
func (v Value) Entries() []Entry {
	if v.more == nil {
		return nil
	}
	return v.more.entries
}

// Any converts v to the plain Go value a JSON encoder or a Benthos structured
// message expects: nil, string, int64, float64, bool, []byte, []any or map[string]any.
func (v Value) Any() any {
	switch v.kind {
	case KindString:
		return v.str
	case KindInt:
		return int64(v.num)
	case KindFloat:
		return math.Float64frombits(v.num)
	case KindBool:
		return v.num == 1
	case KindBytes:
		return []byte(v.str)
	case KindArray:
		items := v.Items()
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = it.Any()
		}
		return out
	case KindMap, KindRecord:
		entries := v.Entries()
		out := make(map[string]any, len(entries))
		for _, e := range entries {
			out[e.Name] = e.Value.Any()
		}
		return out
	}
	return nil
}

// Event is one decoded Currents event: its type and every field of its
// writer schema, by name, in schema order.
//
// An Event from a Reader shares memory with the block it came from; it stays
// valid for as long as it is referenced.
type Event struct {
	// Type is the Currents event type, e.g. "users.messages.email.Open".
	Type   string
	fields *fieldIndex
	values []Value
}

// NewEvent builds an Event from named values, for tests and for adapters that
// receive events in another form (e.g. a structured Benthos message).
func NewEvent(eventType string, entries []Entry) Event {
	names := make([]string, len(entries))
	values := make([]Value, len(entries))
	for i, e := range entries {
		names[i] = e.Name
		values[i] = e.Value
	}
	return Event{Type: eventType, fields: newFieldIndex(names), values: values}
}

// Get returns the value of the named field. ok is false when the writer schema
// has no such field; a field that is present but null returns Null and true.
func (e Event) Get(name string) (v Value, ok bool) {
	if e.fields == nil {
		return Null, false
	}
	i, ok := e.fields.lookup(name)
	if !ok {
		return Null, false
	}
	return e.values[i], true
}

// StringField returns the named field's text when it is a non-null string.
// (Named so as not to read as a fmt.Stringer.)
func (e Event) StringField(name string) (string, bool) {
	v, ok := e.Get(name)
	if !ok || v.kind != KindString {
		return "", false
	}
	return v.str, true
}

// ID returns the event's globally unique id (the only deduplication key).
func (e Event) ID() string {
	if e.fields == nil || uint(e.fields.id) >= uint(len(e.values)) {
		return ""
	}
	if v := e.values[e.fields.id]; v.kind == KindString {
		return v.str
	}
	return ""
}

// Time returns the event time in Unix seconds, whether the writer used int or long.
func (e Event) Time() int64 {
	if e.fields == nil || uint(e.fields.time) >= uint(len(e.values)) {
		return 0
	}
	return e.values[e.fields.time].Int()
}

// Len returns the number of fields in the event's writer schema.
func (e Event) Len() int { return len(e.values) }

// Field returns the name and value of the i-th field, in writer schema order.
func (e Event) Field(i int) (string, Value) { return e.fields.names[i], e.values[i] }

// Names returns the field names in writer schema order, and Values the values
// in the same order: a loop over both reads every field without copying a
// Value. Both slices are shared with other events of the same block and
// schema, so callers must not modify them.
func (e Event) Names() []string { return e.fields.names[:len(e.values):len(e.values)] }

// Values returns the field values in writer schema order; see Names.
func (e Event) Values() []Value { return e.values[:len(e.values):len(e.values)] }

// Map converts the event's fields to a map, for structured messages.
func (e Event) Map() map[string]any {
	out := make(map[string]any, len(e.values))
	for i, v := range e.values {
		out[e.fields.names[i]] = v.Any()
	}
	return out
}

// fieldIndex maps field names to positions. It is built once per writer
// schema and shared by every event decoded with it.
type fieldIndex struct {
	names []string
	pos   map[string]int
	// id and time are the positions of the fields every event has, or -1.
	id, time int
	// keysOnce makes keys: each name as a JSON string and a colon, for
	// Event.AppendJSON.
	keysOnce sync.Once
	keys     []string
}

// linearLookupMax is the field count up to which a linear scan beats a map
// hash: the ~25 short names of a Currents record are found faster by scan.
const linearLookupMax = 32

func newFieldIndex(names []string) *fieldIndex {
	idx := &fieldIndex{names: names, id: -1, time: -1}
	idx.id = slices.Index(names, "id")
	idx.time = slices.Index(names, "time")
	if len(names) > linearLookupMax {
		idx.pos = make(map[string]int, len(names))
		for i, n := range names {
			idx.pos[n] = i
		}
	}
	return idx
}

func (f *fieldIndex) lookup(name string) (int, bool) {
	if f.pos == nil {
		for i, n := range f.names {
			if n == name {
				return i, true
			}
		}
		return 0, false
	}
	i, ok := f.pos[name]
	return i, ok
}

// EventFromMap builds an Event from a structured message (the form the
// braze_currents scanner emits), so that a mapping can run on messages that
// went through other processors. Fields are ordered by name, since a map has
// no order; values are converted back to Avro kinds (JSON numbers that are
// whole become Int, as Currents has no float field that would be hurt).
func EventFromMap(eventType string, fields map[string]any) Event {
	return EventFromMapOrdered(eventType, fields, nil)
}

// EventFromMapOrdered is EventFromMap with the fields that order names first,
// in that order, and the others after them by name. Given the names of the
// event the map was made from (its writer schema order), the event keeps
// that order through a processor that changed, added or removed fields, so
// that what depends on the order (which custom attributes fall beyond
// mParticle's limit) is as for the event decoded.
func EventFromMapOrdered(eventType string, fields map[string]any, order []string) Event {
	names := make([]string, 0, len(fields))
	for _, n := range order {
		if _, ok := fields[n]; ok {
			names = append(names, n)
		}
	}
	if known := len(names); known < len(fields) {
		for n := range fields {
			if known == 0 || !slices.Contains(names[:known], n) {
				names = append(names, n)
			}
		}
		sort.Strings(names[known:])
	}
	values := make([]Value, len(names))
	for i, n := range names {
		values[i] = valueOf(fields[n])
	}
	return Event{Type: eventType, fields: newFieldIndex(names), values: values}
}

func valueOf(x any) Value {
	switch t := x.(type) {
	case nil:
		return Null
	case string:
		return StringValue(t)
	case []byte:
		return BytesValue(string(t))
	case bool:
		return BoolValue(t)
	case int:
		return IntValue(int64(t))
	case int32:
		return IntValue(int64(t))
	case int64:
		return IntValue(t)
	case uint64:
		return IntValue(int64(t))
	case float32:
		return FloatValue(float64(t))
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return IntValue(int64(t))
		}
		return FloatValue(t)
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return IntValue(n)
		}
		f, _ := t.Float64()
		return FloatValue(f)
	case []any:
		items := make([]Value, len(t))
		for i, it := range t {
			items[i] = valueOf(it)
		}
		return ArrayValue(items)
	case []string:
		items := make([]Value, len(t))
		for i, it := range t {
			items[i] = StringValue(it)
		}
		return ArrayValue(items)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		entries := make([]Entry, len(keys))
		for i, k := range keys {
			entries[i] = Entry{Name: k, Value: valueOf(t[k])}
		}
		return MapValue(entries)
	}
	return StringValue(fmt.Sprint(x))
}
