package currents

import (
	"context"
	"encoding/base64"
	"math"
	"strconv"
	"sync"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

// AppendJSON appends the event's fields to dst as one JSON object, in writer
// schema order, and returns the extended slice. It writes what encoding/json
// writes (with HTML escaping off, as Benthos encodes structured messages) for
// the map of Event.Map, except for the order of the names: strings with
// invalid UTF-8 get U+FFFD, bytes are base64, and a float that JSON cannot
// hold (NaN, ±Inf) is written as null. It costs no allocation beyond the
// growth of dst.
func (e Event) AppendJSON(dst []byte) []byte {
	if e.fields == nil {
		return append(dst, "{}"...)
	}
	keys := e.fields.jsonKeys()
	dst = append(dst, '{')
	for i, v := range e.values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, keys[i]...)
		dst = appendJSONValue(dst, v)
	}
	return append(dst, '}')
}

// jsonKeys returns the names as JSON strings followed by a colon, made once
// per writer schema.
func (f *fieldIndex) jsonKeys() []string {
	f.keysOnce.Do(func() {
		var all []byte
		ends := make([]int, len(f.names))
		for i, n := range f.names {
			all = jsonstring.Append(all, n)
			all = append(all, ':')
			ends[i] = len(all)
		}
		text := string(all)
		f.keys = make([]string, len(f.names))
		start := 0
		for i, end := range ends {
			f.keys[i], start = text[start:end], end
		}
	})
	return f.keys
}

// AppendJSON appends v as JSON; see Event.AppendJSON.
func (v Value) AppendJSON(dst []byte) []byte { return appendJSONValue(dst, v) }

func appendJSONValue(dst []byte, v Value) []byte {
	switch v.kind {
	case KindString:
		return jsonstring.Append(dst, v.str)
	case KindInt:
		return strconv.AppendInt(dst, int64(v.num), 10)
	case KindFloat:
		return appendJSONFloat(dst, math.Float64frombits(v.num))
	case KindBool:
		if v.num == 1 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, []byte(v.str))
		return append(dst, '"')
	case KindArray:
		dst = append(dst, '[')
		for i, it := range v.Items() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONValue(dst, it)
		}
		return append(dst, ']')
	case KindMap, KindRecord:
		// Map() keeps the last of two entries with one name, and a JSON
		// parser does the same with the text written here.
		dst = append(dst, '{')
		for i, e := range v.Entries() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonstring.Append(dst, e.Name)
			dst = append(dst, ':')
			dst = appendJSONValue(dst, e.Value)
		}
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

// appendJSONFloat formats as encoding/json does (ES6 number to string).
func appendJSONFloat(dst []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// EventJSON is an event together with the JSON text written for it, carried
// as a context beside a message whose content is that text. A consumer that
// finds the message's content to be the very slice written (CarriedJSON.Unchanged)
// knows the content is unchanged and may use the event instead of parsing
// the text.
//
// An EventJSON is a context.Context whose values are its parent's plus
// itself. Make them with EventJSONs, one per message of a batch, in one
// allocation per batch.
//
// The event is held in the carrier itself, under a lock, so that
// TakeEventJSON really lets go of it: every message derived from the
// first shares this context, and Benthos keeps the input's messages until
// the output acknowledges them, so an event left here would keep its whole
// Avro block alive for as long as any message of the batch is in flight.
type EventJSON struct {
	context.Context
	mu   sync.Mutex
	item eventText
}

type eventText struct {
	ev   Event
	text []byte // nil once released
}

type eventJSONKey struct{}

// EventJSONs are the carriers of one message batch.
type EventJSONs struct {
	ctxs []EventJSON
}

// NewEventJSONs returns carriers for n messages.
func NewEventJSONs(n int) *EventJSONs {
	return &EventJSONs{ctxs: make([]EventJSON, n)}
}

// Set makes the i-th carrier carry ev and the text written for it, on top of
// parent, and returns it as the message's context.
func (b *EventJSONs) Set(i int, parent context.Context, ev Event, text []byte) context.Context {
	c := &b.ctxs[i]
	c.mu.Lock()
	c.Context = parent
	c.item = eventText{ev: ev, text: text}
	c.mu.Unlock()
	return c
}

// Value returns c for its own key, else the parent's value.
func (c *EventJSON) Value(key any) any {
	if key == (eventJSONKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// CarriedJSON is what a carrier held: an event and the JSON text written
// for it.
type CarriedJSON struct {
	Event Event
	text  []byte
}

// Unchanged reports whether text is the very slice written for the event
// (the same array and length): a message whose content is that slice was
// changed by no processor, and its event may be used instead of parsing the
// content. Any other slice is not, even with the same bytes.
func (c CarriedJSON) Unchanged(text []byte) bool {
	return len(text) > 0 && len(c.text) == len(text) && &c.text[0] == &text[0]
}

// TakeEventJSON returns what ctx carries and makes it carry nothing any
// more, in one step; ok is false when ctx carries nothing, or nothing any
// more. Released, the event no longer keeps its block alive through the
// messages derived from the one it came with (which share its context);
// later readers of the same context parse the message instead. The event's
// writer-schema field order applies even when a processor changed the
// content.
func TakeEventJSON(ctx context.Context) (c CarriedJSON, ok bool) {
	e, found := ctx.Value(eventJSONKey{}).(*EventJSON)
	if !found {
		return CarriedJSON{}, false
	}
	e.mu.Lock()
	it := e.item
	e.item = eventText{}
	e.mu.Unlock()
	return CarriedJSON{Event: it.ev, text: it.text}, it.text != nil
}
