package mparticle

import (
	"math"
	"strconv"
)

// SchemaVersion is the Events API batch schema version every batch declares.
const SchemaVersion = 2

// Limits mParticle documents for the Events API; the Mapper keeps every batch
// within them.
const (
	// MaxBatchBytes is the largest batch mParticle accepts (128 KB).
	MaxBatchBytes = 128 * 1024
	// MaxCustomAttributes is the most custom attributes one event may carry.
	MaxCustomAttributes = 100
	// MaxNameLength bounds event and attribute names, in characters.
	MaxNameLength = 256
	// MaxValueLength bounds attribute values, in characters.
	MaxValueLength = 4096
)

// Environment is a batch's environment.
type Environment string

// The environments mParticle accepts from this project.
const (
	Production  Environment = "production"
	Development Environment = "development"
)

// IdentityType names a user identity, e.g. customer_id or email.
type IdentityType string

// The identity types this package writes itself; any name of
// IdentityTypes is accepted where an option names one.
const (
	CustomerID IdentityType = "customer_id"
	Email      IdentityType = "email"
	Other      IdentityType = "other"
)

// identityTypes lists every user_identities key mParticle accepts (its JSON
// Schema and its OpenAPI file together).
var identityTypes = []IdentityType{
	"other", "customer_id", "facebook", "twitter", "google", "microsoft", "yahoo",
	"email", "alias", "facebook_custom_audience_id",
	"other_id_2", "other_id_3", "other_id_4", "other_id_5", "other_id_6",
	"other_id_7", "other_id_8", "other_id_9", "other_id_10",
	"mobile_number", "phone_number_2", "phone_number_3",
}

// IdentityTypes returns every identity type mParticle accepts.
func IdentityTypes() []IdentityType {
	return append([]IdentityType(nil), identityTypes...)
}

// Valid reports whether t is an identity type mParticle accepts.
func (t IdentityType) Valid() bool {
	for _, v := range identityTypes {
		if v == t {
			return true
		}
	}
	return false
}

// EventType is an mParticle event_type.
type EventType string

// The event types the mapping produces.
const (
	EventTypeCustom       EventType = "custom_event"
	EventTypeUninstall    EventType = "uninstall"
	EventTypeSessionStart EventType = "session_start"
	EventTypeSessionEnd   EventType = "session_end"
	EventTypeCommerce     EventType = "commerce_event"
)

// CustomEventTypeOther is the custom_event_type of every custom event the
// mapping writes: Braze's events have no better category, and "other" is the
// one value every mParticle source accepts.
const CustomEventTypeOther = "other"

// Batch is one mParticle batch: one user, their device, and events.
type Batch struct {
	Environment     Environment
	UserIdentities  []Identity  // written in order; empty: omitted
	UserAttributes  []Attribute // written in order; empty: omitted
	DeviceInfo      DeviceInfo  // zero: omitted
	SourceRequestID string      // empty: omitted
	Events          []Event
}

// Identity is one user identity.
type Identity struct {
	Type  IdentityType
	Value string
}

// Attribute is one custom or user attribute.
type Attribute struct {
	Name  string
	Value Value
}

// DeviceInfo is the subset of mParticle's device_info the mapping fills.
// Empty strings are omitted.
type DeviceInfo struct {
	Platform               string // iOS, Android, web, tvOS, roku
	OSVersion              string
	DeviceModel            string
	IOSIDFV                string // UUID
	AndroidUUID            string
	IOSAdvertisingID       string // UUID
	AndroidAdvertisingID   string // UUID
	MicrosoftAdvertisingID string
	RokuAdvertisingID      string // UUID
	LimitAdTracking        bool
	HasLimitAdTracking     bool // LimitAdTracking is known and written
}

func (d *DeviceInfo) empty() bool { return *d == DeviceInfo{} }

// Event is one event of a batch.
type Event struct {
	EventType EventType
	Data      EventData
}

// EventData is an event's data object. Zero numbers and empty strings are
// omitted, except the fields mParticle requires for the event type
// (session_id on session events, session_duration_ms on session_end).
type EventData struct {
	EventName              string // custom events
	CustomEventType        string // custom and commerce events
	TimestampUnixtimeMS    int64
	SourceMessageID        string // UUID
	SessionID              int64
	SessionUUID            string // UUID
	SessionStartUnixtimeMS int64
	SessionDurationMS      int64         // session_end
	CurrencyCode           string        // commerce events
	ProductAction          ProductAction // commerce events; empty Action: omitted
	CustomAttributes       []Attribute
}

// ProductAction is a commerce event's product_action.
type ProductAction struct {
	Action        string // e.g. "purchase"
	TransactionID string
	TotalAmount   float64
	Products      []Product
}

// Product is one product of a product action.
type Product struct {
	ID       string
	Name     string
	Price    float64
	Quantity float64
}

// Value is a custom or user attribute value: a string, an integer, a number
// or a boolean (mParticle's "String" type accepts all four). The zero Value
// is the empty string.
type Value struct {
	kind valueKind
	str  string
	num  uint64
}

type valueKind uint8

const (
	valueString valueKind = iota
	valueInt
	valueFloat
	valueBool
)

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{kind: valueString, str: s} }

// IntValue returns an integer Value.
func IntValue(n int64) Value { return Value{kind: valueInt, num: uint64(n)} }

// FloatValue returns a number Value. NaN and infinities have no JSON form
// and are written as null.
func FloatValue(f float64) Value { return Value{kind: valueFloat, num: math.Float64bits(f)} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value {
	v := Value{kind: valueBool}
	if b {
		v.num = 1
	}
	return v
}

// AppendJSON appends v as JSON.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case valueInt:
		return strconv.AppendInt(dst, int64(v.num), 10)
	case valueFloat:
		f := math.Float64frombits(v.num)
		if !finite(f) {
			return append(dst, "null"...)
		}
		return appendFloat(dst, f)
	case valueBool:
		if v.num == 1 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	}
	return appendString(dst, v.str)
}

// AppendJSON appends the batch as JSON, fields in a fixed order so that equal
// batches are equal bytes (the client packs batches whose envelopes match
// byte for byte, and golden tests compare bytes).
func (b *Batch) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"schema_version":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, `,"environment":`...)
	dst = appendString(dst, string(b.Environment))
	if len(b.UserIdentities) > 0 {
		dst = append(dst, `,"user_identities":{`...)
		for i, id := range b.UserIdentities {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, string(id.Type))
			dst = append(dst, ':')
			dst = appendString(dst, id.Value)
		}
		dst = append(dst, '}')
	}
	if len(b.UserAttributes) > 0 {
		dst = append(dst, `,"user_attributes":`...)
		dst = appendAttributes(dst, b.UserAttributes)
	}
	if !b.DeviceInfo.empty() {
		dst = append(dst, `,"device_info":`...)
		dst = b.DeviceInfo.appendJSON(dst)
	}
	if b.SourceRequestID != "" {
		dst = append(dst, `,"source_request_id":`...)
		dst = appendString(dst, b.SourceRequestID)
	}
	dst = append(dst, `,"events":[`...)
	for i := range b.Events {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = b.Events[i].appendJSON(dst)
	}
	return append(dst, "]}"...)
}

func appendAttributes(dst []byte, attrs []Attribute) []byte {
	dst = append(dst, '{')
	for i, a := range attrs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, a.Name)
		dst = append(dst, ':')
		if a.Value.kind == valueString {
			dst = appendString(dst, a.Value.str)
		} else {
			dst = a.Value.AppendJSON(dst)
		}
	}
	return append(dst, '}')
}

// fieldWriter writes the members of one JSON object, placing the commas.
type fieldWriter struct {
	dst   []byte
	first bool
}

func (w *fieldWriter) key(k string) {
	if !w.first {
		w.dst = append(w.dst, ',')
	}
	w.first = false
	w.dst = append(w.dst, '"')
	w.dst = append(w.dst, k...) // keys are constants that need no escaping
	w.dst = append(w.dst, '"', ':')
}

func (w *fieldWriter) str(k, v string) {
	if v != "" {
		w.key(k)
		w.dst = appendString(w.dst, v)
	}
}

func (w *fieldWriter) int(k string, v int64) {
	w.key(k)
	w.dst = strconv.AppendInt(w.dst, v, 10)
}

func (w *fieldWriter) number(k string, f float64) {
	w.key(k)
	if finite(f) {
		w.dst = appendFloat(w.dst, f)
	} else {
		w.dst = append(w.dst, "null"...)
	}
}

func (d *DeviceInfo) appendJSON(dst []byte) []byte {
	w := fieldWriter{dst: append(dst, '{'), first: true}
	w.str("platform", d.Platform)
	w.str("os_version", d.OSVersion)
	w.str("device_model", d.DeviceModel)
	w.str("ios_idfv", d.IOSIDFV)
	w.str("android_uuid", d.AndroidUUID)
	w.str("ios_advertising_id", d.IOSAdvertisingID)
	w.str("android_advertising_id", d.AndroidAdvertisingID)
	w.str("microsoft_advertising_id", d.MicrosoftAdvertisingID)
	w.str("roku_advertising_id", d.RokuAdvertisingID)
	if d.HasLimitAdTracking {
		w.key("limit_ad_tracking")
		w.dst = strconv.AppendBool(w.dst, d.LimitAdTracking)
	}
	return append(w.dst, '}')
}

func (e *Event) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_type":`...)
	dst = appendString(dst, string(e.EventType))
	dst = append(dst, `,"data":`...)
	w := fieldWriter{dst: append(dst, '{'), first: true}
	d := &e.Data
	w.str("event_name", d.EventName)
	w.str("custom_event_type", d.CustomEventType)
	if d.TimestampUnixtimeMS != 0 {
		w.int("timestamp_unixtime_ms", d.TimestampUnixtimeMS)
	}
	w.str("source_message_id", d.SourceMessageID)
	if d.SessionID != 0 || e.EventType == EventTypeSessionStart || e.EventType == EventTypeSessionEnd {
		w.int("session_id", d.SessionID)
	}
	w.str("session_uuid", d.SessionUUID)
	if d.SessionStartUnixtimeMS != 0 {
		w.int("session_start_unixtime_ms", d.SessionStartUnixtimeMS)
	}
	if d.SessionDurationMS != 0 || e.EventType == EventTypeSessionEnd {
		w.int("session_duration_ms", d.SessionDurationMS)
	}
	w.str("currency_code", d.CurrencyCode)
	if d.ProductAction.Action != "" {
		w.key("product_action")
		w.dst = d.ProductAction.appendJSON(w.dst)
	}
	if len(d.CustomAttributes) > 0 {
		w.key("custom_attributes")
		w.dst = appendAttributes(w.dst, d.CustomAttributes)
	}
	return append(w.dst, '}', '}')
}

func (p *ProductAction) appendJSON(dst []byte) []byte {
	w := fieldWriter{dst: append(dst, '{'), first: true}
	w.str("action", p.Action)
	w.str("transaction_id", p.TransactionID)
	w.number("total_amount", p.TotalAmount)
	w.key("products")
	w.dst = append(w.dst, '[')
	for i := range p.Products {
		if i > 0 {
			w.dst = append(w.dst, ',')
		}
		pr := &p.Products[i]
		pw := fieldWriter{dst: append(w.dst, '{'), first: true}
		pw.str("id", pr.ID)
		pw.str("name", pr.Name)
		pw.number("price", pr.Price)
		pw.number("quantity", pr.Quantity)
		w.dst = append(pw.dst, '}')
	}
	w.dst = append(w.dst, ']')
	return append(w.dst, '}')
}
