package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/internal/ids"
)

// Batch checks one batch (the body of POST /v2/events) against mParticle's rules.
// It returns nil when the batch is valid and a *Error listing every violation
// otherwise.
func Batch(raw []byte) error {
	var c checker
	c.batch("", raw)
	return c.err()
}

// BulkRequest checks a bulk request (the body of POST /v2/bulkevents or
// /v2/bulkevents/historical): a JSON array of at most MaxBatchesPerRequest valid
// batches, smaller than MaxRequestBytes in total. Violations inside the batch at
// index i carry the path prefix "[i]".
func BulkRequest(raw []byte) error {
	var c checker
	if len(raw) >= MaxRequestBytes {
		c.add("", CodeLimit, "Request is %d bytes; it must be smaller than %d bytes.", len(raw), MaxRequestBytes)
	}
	batches, err := SplitBulk(raw)
	switch {
	case errors.Is(err, ErrNotArray):
		c.add("", CodeMalformed, "Bulk request must be a JSON array of batches.")
		return c.err()
	case err != nil:
		c.add("", CodeMalformed, "Unable to parse JSON bulk request: %s.", errors.Unwrap(err))
		return c.err()
	}
	switch {
	case len(batches) == 0:
		c.add("", CodeRequired, "Bulk request contains no batch.")
	case len(batches) > MaxBatchesPerRequest:
		c.add("", CodeLimit, "Bulk request has %d batches; the limit is %d.", len(batches), MaxBatchesPerRequest)
	}
	for i, b := range batches {
		c.batch("["+strconv.Itoa(i)+"]", b)
	}
	return c.err()
}

// ErrNotArray is returned by SplitBulk when the body is valid JSON but not an array.
var ErrNotArray = errors.New("bulk request is not a JSON array of batches")

// SplitBulk splits a bulk request into its batches without validating them. It
// fails only when the body is not a JSON array. The batches are copies, so they
// stay valid when raw is reused.
func SplitBulk(raw []byte) ([]json.RawMessage, error) {
	var batches []json.RawMessage
	if err := decodeStrict(raw, &batches); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, ErrNotArray
		}
		return nil, fmt.Errorf("parse bulk request: %w", err)
	}
	return batches, nil
}

// decodeStrict decodes exactly one JSON value from raw, keeping numbers as
// json.Number so integers can be told from fractions, and rejects trailing data.
func decodeStrict(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("body is empty")
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// checker accumulates violations.
type checker struct {
	violations []Violation
	omitted    int
}

func (c *checker) add(path string, code Code, format string, args ...any) {
	if len(c.violations) >= MaxViolations {
		c.omitted++
		return
	}
	c.violations = append(c.violations, Violation{Path: path, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.violations) == 0 {
		return nil
	}
	return &Error{Violations: c.violations, Omitted: c.omitted}
}

// batch checks one batch's raw bytes at path.
func (c *checker) batch(path string, raw []byte) {
	if len(raw) > MaxBatchBytes {
		c.add(path, CodeLimit, "Batch is %d bytes; the limit is %d bytes.", len(raw), MaxBatchBytes)
	}
	var doc any
	if err := decodeStrict(raw, &doc); err != nil {
		c.add(path, CodeMalformed, "Unable to parse JSON batch: %s.", err.Error())
		return
	}
	if _, ok := doc.(map[string]any); !ok {
		c.add(path, CodeMalformed, "Batch must be a JSON object, got %s.", typeName(doc))
		return
	}
	c.check(path, doc, batchRule)
}

// check applies rule r to value v found at path.
func (c *checker) check(path string, v any, r *rule) {
	if v == nil {
		if r.kind == kindString {
			c.add(path, CodeType, "Field %s must be a string, got null.", fieldName(path))
		}
		// Every other kind admits null, as mParticle's schema does.
		return
	}
	switch r.kind {
	case kindScalar:
		switch v.(type) {
		case string, json.Number, bool:
		default:
			c.add(path, CodeType, "Field %s must be a string, number or boolean, got %s.", fieldName(path), typeName(v))
			return
		}
	case kindString:
		if _, ok := v.(string); !ok {
			c.add(path, CodeType, "Field %s must be a string, got %s.", fieldName(path), typeName(v))
			return
		}
	case kindInteger:
		n, ok := v.(json.Number)
		switch {
		case !ok:
			c.add(path, CodeType, "Field %s must be an integer, got %s.", fieldName(path), typeName(v))
		case !isInteger(n):
			c.add(path, CodeType, "Field %s must be an integer, got a fraction.", fieldName(path))
		}
		return
	case kindNumber:
		if _, ok := v.(json.Number); !ok {
			c.add(path, CodeType, "Field %s must be a number, got %s.", fieldName(path), typeName(v))
		}
		return
	case kindBoolean:
		if _, ok := v.(bool); !ok {
			c.add(path, CodeType, "Field %s must be a boolean, got %s.", fieldName(path), typeName(v))
		}
		return
	case kindUUID:
		s, ok := v.(string)
		if !ok {
			c.add(path, CodeType, "Field %s must be a UUID string, got %s.", fieldName(path), typeName(v))
		} else if !IsUUID(s) {
			c.add(path, CodeFormat, "Field %s must be a UUID (8-4-4-4-12 hexadecimal digits).", fieldName(path))
		}
		return
	case kindIP:
		s, ok := v.(string)
		if !ok {
			c.add(path, CodeType, "Field %s must be an IP address string, got %s.", fieldName(path), typeName(v))
		} else if _, err := netip.ParseAddr(s); err != nil {
			c.add(path, CodeFormat, "Field %s must be an IPv4 or IPv6 address.", fieldName(path))
		}
		return
	case kindStringOrArray:
		c.stringOrArray(path, v)
		return
	case kindArray:
		items, ok := v.([]any)
		if !ok {
			c.add(path, CodeType, "Field %s must be an array, got %s.", fieldName(path), typeName(v))
			return
		}
		if r.items != nil {
			for i, item := range items {
				c.check(path+"["+strconv.Itoa(i)+"]", item, r.items)
			}
		}
	case kindObject:
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(path, CodeType, "Field %s must be an object, got %s.", fieldName(path), typeName(v))
			return
		}
		c.object(path, obj, r)
	}
	if r.enum != nil {
		if s, ok := v.(string); ok && !slices.Contains(r.enum, s) {
			c.add(path, CodeEnum, "Field %s has invalid value %q; expected one of: %s.",
				fieldName(path), clip(s, 64), strings.Join(r.enum, ", "))
		}
	}
	if r.check != nil {
		r.check(c, path, v)
	}
}

// object checks required and known properties of obj, in key order so that
// messages come out in a stable order.
func (c *checker) object(path string, obj map[string]any, r *rule) {
	for _, name := range r.required {
		v, present := obj[name]
		if s, isString := v.(string); !present || (isString && s == "") || (v == nil && !nullable(r.fields[name])) {
			c.add(join(path, name), CodeRequired, "Required %s field %q is missing or empty.", nounOf(r), name)
		}
	}
	for _, name := range sortedKeys(obj) {
		v := obj[name]
		if s, isString := v.(string); v == nil || (isString && s == "") {
			// Already reported above when required; an optional empty value is fine.
			if slices.Contains(r.required, name) {
				continue
			}
		}
		sub, known := r.fields[name]
		if !known {
			sub = r.values
		}
		if sub == nil {
			if r.closed {
				c.add(join(path, name), CodeUnknownField, "Unknown %s field %q is not allowed.", nounOf(r), name)
			}
			continue
		}
		c.check(join(path, name), v, sub)
	}
}

// nullable reports whether a rule admits JSON null (a missing rule admits anything).
func nullable(r *rule) bool { return r == nil || r.kind != kindString }

// stringOrArray checks a user attribute value: a scalar, or a list of scalars.
func (c *checker) stringOrArray(path string, v any) {
	switch t := v.(type) {
	case string, json.Number, bool:
	case []any:
		for i, item := range t {
			switch item.(type) {
			case string, json.Number, bool, nil:
			default:
				c.add(path+"["+strconv.Itoa(i)+"]", CodeType, "List entries must be strings, numbers or booleans, got %s.", typeName(item))
			}
		}
	default:
		c.add(path, CodeType, "Field %s must be a string or an array of strings, got %s.", fieldName(path), typeName(v))
	}
}

// checkEvent validates one events[] element: event_type first, then its data
// against the rules of that event type.
func checkEvent(c *checker, path string, v any) {
	ev := v.(map[string]any) // kindObject already checked the type.
	et, present := ev["event_type"]
	name, isString := et.(string)
	switch {
	case !present || et == nil || (isString && name == ""):
		c.add(join(path, "event_type"), CodeRequired, "Required event field \"event_type\" is missing or empty.")
		return
	case !isString:
		c.add(join(path, "event_type"), CodeType, "Field \"event_type\" must be a string, got %s.", typeName(et))
		return
	}
	def, ok := eventDefs[name]
	if !ok {
		c.add(join(path, "event_type"), CodeEnum, "Field \"event_type\" has invalid value %q; expected one of: %s.",
			clip(name, 64), strings.Join(eventTypeNames, ", "))
		return
	}
	if def.closed {
		for _, k := range sortedKeys(ev) {
			if k != "event_type" && k != "data" {
				c.add(join(path, k), CodeUnknownField, "Unknown event field %q is not allowed.", k)
			}
		}
	}
	data, present := ev["data"]
	if !present || data == nil {
		c.add(join(path, "data"), CodeRequired, "Required event field \"data\" is missing or empty.")
		return
	}
	c.check(join(path, "data"), data, eventDataRules[name])
}

// checkEventCount enforces mParticle's advice of at most MaxEventsPerBatch events.
func checkEventCount(c *checker, path string, v any) {
	if n := len(v.([]any)); n > MaxEventsPerBatch {
		c.add(path, CodeLimit, "Batch has %d events; the limit is %d.", n, MaxEventsPerBatch)
	}
}

// checkName enforces the name length limit on event and screen names.
func checkName(c *checker, path string, v any) {
	if s, ok := v.(string); ok {
		if n := utf8.RuneCountInString(s); n > MaxNameLength {
			c.add(path, CodeLimit, "Name is %d characters; the limit is %d.", n, MaxNameLength)
		}
	}
}

// checkCustomAttributes enforces the per-event attribute limits.
func checkCustomAttributes(c *checker, path string, v any) {
	attrs := v.(map[string]any)
	if len(attrs) > MaxCustomAttributes {
		c.add(path, CodeLimit, "Event has %d custom attributes; the limit is %d.", len(attrs), MaxCustomAttributes)
	}
	for _, name := range sortedKeys(attrs) {
		c.attributeName(join(path, name), name)
		if s, ok := attrs[name].(string); ok {
			c.valueLength(join(path, name), s, MaxValueLength)
		}
	}
}

// checkUserAttributes enforces the per-batch user attribute limits.
func checkUserAttributes(c *checker, path string, v any) {
	attrs := v.(map[string]any)
	if len(attrs) > MaxUserAttributes {
		c.add(path, CodeLimit, "Batch has %d user attributes; the limit is %d.", len(attrs), MaxUserAttributes)
	}
	for _, name := range sortedKeys(attrs) {
		p := join(path, name)
		c.attributeName(p, name)
		switch t := attrs[name].(type) {
		case string:
			c.valueLength(p, t, MaxValueLength)
		case []any:
			if len(t) > MaxUserAttributeListEntries {
				c.add(p, CodeLimit, "User attribute list has %d entries; the limit is %d.", len(t), MaxUserAttributeListEntries)
			}
			for i, item := range t {
				if s, ok := item.(string); ok {
					c.valueLength(p+"["+strconv.Itoa(i)+"]", s, MaxUserAttributeListEntryLength)
				}
			}
		}
	}
}

func (c *checker) attributeName(path, name string) {
	if n := utf8.RuneCountInString(name); n > MaxNameLength {
		c.add(path, CodeLimit, "Attribute name is %d characters; the limit is %d.", n, MaxNameLength)
	} else if name == "" {
		c.add(path, CodeRequired, "Attribute name is empty.")
	}
}

func (c *checker) valueLength(path, s string, limit int) {
	if n := utf8.RuneCountInString(s); n > limit {
		c.add(path, CodeLimit, "Value is %d characters; the limit is %d.", n, limit)
	}
}

// IsUUID reports whether s has the textual UUID form mParticle's schema requires:
// 8-4-4-4-12 hexadecimal digits (any version, either case).
func IsUUID(s string) bool { return ids.IsUUID(s) }

// isInteger reports whether n is integral, as JSON Schema defines it (1.0 counts).
func isInteger(n json.Number) bool {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		return true
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == math.Trunc(f) && !math.IsInf(f, 0)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// join appends an object key to a path, quoting keys that are not plain names
// (custom attribute names may hold spaces, dots or quotes).
func join(path, key string) string {
	if !plainKey(key) {
		q, _ := json.Marshal(key)
		return path + "[" + string(q) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if !(ch == '_' || ch == '$' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || i > 0 && '0' <= ch && ch <= '9') {
			return false
		}
	}
	return true
}

// fieldName renders the last path element for messages, quoted like mParticle's.
func fieldName(path string) string {
	if path == "" {
		return "value"
	}
	i := strings.LastIndexAny(path, ".[")
	last := path[i+1:]
	if i >= 0 && path[i] == '[' {
		last = strings.TrimSuffix(last, "]")
		if uq, err := strconv.Unquote(last); err == nil {
			last = uq
		} else {
			// An array index: name the array instead.
			return fieldName(path[:i]) + " entry " + last
		}
	}
	return strconv.Quote(last)
}

func nounOf(r *rule) string {
	if r.noun == "" {
		return "object"
	}
	return r.noun
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
