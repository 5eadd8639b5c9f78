// Package schemas is the project's own list of Braze Currents event types and
// their fields, used to generate realistic export files. Decoding never
// depends on it: every file is decoded with the writer schema in its header.
package schemas

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// FieldType is the Avro type of a Currents field.
type FieldType string

// The field types Currents schemas use.
const (
	String              FieldType = "string"
	Int                 FieldType = "int"
	Long                FieldType = "long"
	Boolean             FieldType = "boolean"
	Float               FieldType = "float"
	StringArray         FieldType = "array<string>"
	NullableStringArray FieldType = "array<string?>"
)

var typeCodes = map[string]FieldType{
	"s": String, "i": Int, "l": Long, "b": Boolean, "f": Float, "as": StringArray, "an": NullableStringArray,
}

// Field is one field of an event type.
type Field struct {
	Name     string
	Type     FieldType
	Optional bool // a union with null, default null
}

// EventType is one Currents event type and its current fields.
type EventType struct {
	Name   string // e.g. "users.messages.email.Open"
	Owner  string // the Braze team owning the schema, e.g. "email"
	Fields []Field
}

// laterFields were added to existing types over time; an older writer schema
// lacks them (plugins/currents/evolution_test.go decodes both).
var laterFields = map[string]bool{
	"app_group_id": true, "locale_key": true, "is_suspected_bot_click": true,
	"suspected_bot_click_reason": true, "is_sms_fallback": true, "flow_id": true,
	"template_name": true, "message_id": true, "bsuid": true,
}

var all = func() []EventType {
	out := make([]EventType, 0, len(builtin))
	for _, b := range builtin {
		t := EventType{Name: b.name, Owner: b.owner}
		for _, spec := range strings.Fields(b.fields) {
			name, code, _ := strings.Cut(spec, ":")
			f := Field{Name: name}
			if rest, ok := strings.CutPrefix(code, "?"); ok {
				f.Optional, code = true, rest
			}
			ft, ok := typeCodes[code]
			if !ok {
				panic(fmt.Sprintf("schemas: %s.%s: unknown type code %q", b.name, name, code))
			}
			f.Type = ft
			t.Fields = append(t.Fields, f)
		}
		out = append(out, t)
	}
	return out
}()

// Names returns the names of every built-in event type, sorted.
func Names() []string {
	names := make([]string, len(all))
	for i, t := range all {
		names[i] = t.Name
	}
	sort.Strings(names)
	return names
}

// Lookup returns the built-in event type of that name.
func Lookup(name string) (EventType, bool) {
	for _, t := range all {
		if t.Name == name {
			return t, true
		}
	}
	return EventType{}, false
}

// Field returns the named field.
func (t EventType) Field(name string) (Field, bool) {
	for _, f := range t.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Older returns the type as an earlier writer schema had it: without the
// fields Braze added later, with WhatsApp InboundReceive's user_phone_number
// still required, and with a WhatsApp `time` written as int rather than long
// (exercising int/long tolerance). ok is false when no change applies.
func (t EventType) Older() (older EventType, ok bool) {
	older = EventType{Name: t.Name, Owner: t.Owner}
	for _, f := range t.Fields {
		switch {
		case laterFields[f.Name]:
			ok = true
			continue
		case t.Name == "users.messages.whatsapp.InboundReceive" && f.Name == "user_phone_number":
			f.Optional, ok = false, true
		case f.Name == "time" && f.Type == Long:
			f.Type, ok = Int, true
		}
		older.Fields = append(older.Fields, f)
	}
	return older, ok
}

// WriterSchema returns the Avro writer schema JSON Braze would embed for this
// type, with the record named "dataexport.<connection>.inner.<type>"
// (connection "S3", "GCS" or "AzureBlob").
func (t EventType) WriterSchema(connection string) string {
	ns, name := t.Name, t.Name
	if i := strings.LastIndex(t.Name, "."); i >= 0 {
		ns, name = t.Name[:i], t.Name[i+1:]
	}
	type field struct {
		Name string `json:"name"`
		Type any    `json:"type"`
	}
	type optionalField struct {
		Name    string `json:"name"`
		Type    any    `json:"type"`
		Default any    `json:"default"` // always written: null
	}
	fields := make([]json.RawMessage, 0, len(t.Fields))
	for _, f := range t.Fields {
		var typ any = string(f.Type)
		switch f.Type {
		case StringArray:
			typ = map[string]any{"type": "array", "items": "string"}
		case NullableStringArray:
			typ = map[string]any{"type": "array", "items": []any{"null", "string"}}
		}
		var b []byte
		if f.Optional {
			b, _ = json.Marshal(optionalField{Name: f.Name, Type: []any{"null", typ}})
		} else {
			b, _ = json.Marshal(field{Name: f.Name, Type: typ})
		}
		fields = append(fields, b)
	}
	schema, _ := json.Marshal(map[string]any{
		"type":      "record",
		"name":      name,
		"namespace": "dataexport." + connection + ".inner." + ns,
		"fields":    fields,
		"owner":     "@Appboy/" + t.Owner,
	})
	return string(schema)
}
