package currents

import (
	"context"
	"strconv"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/strchunk"
	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// eventSource is what the scanner and the input know about the object events
// come from; every message of the object carries it as metadata. The values
// are boxed once per object: boxing a string into metadata costs an
// allocation, and these are the same for every event of the object.
type eventSource struct {
	// parent is the context every message of the object is built on
	// (internal/redelivery marks the input's).
	parent                            context.Context
	object, schema, date, integration any // nil when unknown
	eventType                         string
	eventTypeAny                      any
	// jsonEvents and jsonBytes count the events of the object written so
	// far and their JSON bytes: buffers are sized by their mean.
	jsonEvents, jsonBytes int
}

// meanJSON is the mean JSON size of the object's events written so far,
// rounded up; eventJSONGuess before the first.
func (s *eventSource) meanJSON() int {
	if s.jsonEvents == 0 {
		return eventJSONGuess
	}
	return s.jsonBytes/s.jsonEvents + 1
}

// newEventSource describes an object: its key or path ("" when unknown), the
// writer schema's record full name, and what its key says.
func newEventSource(object, schema string, key decoder.ObjectKey) *eventSource {
	s := &eventSource{parent: context.Background(), schema: schema}
	if object != "" {
		s.object = object
	}
	if key.DateHour != "" {
		s.date = key.DateHour
	}
	if key.IntegrationID != "" {
		s.integration = key.IntegrationID
	}
	return s
}

// eventMessages builds the messages of a run of events (one message batch),
// sharing what can be shared between them:
//
//   - the content of each message is the event as a JSON object, written
//     straight from the decoded Avro values (decoder.Event.AppendJSON) into
//     one buffer per batch, so Benthos parses it only where a user asks for
//     structure (`this.x`, a mapping) and an output writes it as it is;
//   - each message carries the decoded event beside its content, in its
//     context (decoder.EventJSON, one slice per batch), so that the
//     currents_to_mparticle processor maps the event itself while the
//     content is the very slice written here, and parses the content
//     otherwise;
//   - the currents_time values of the batch are cut from one string.
type eventMessages struct {
	src   *eventSource
	buf   []byte              // the current JSON buffer; each message holds a capped slice of it
	ctxs  *decoder.EventJSONs // one per event of the batch
	n     int                 // events of the batch
	times string              // the batch's currents_time values, end to end
	ends  []int32             // ends[i]: end of event i's time in times
	// ids holds copies of the events' ids: an event's own id points into
	// its whole Avro block, which the metadata would keep alive for as
	// long as the message is in flight (internal/strchunk).
	ids strchunk.Chunks
}

// eventIDBytes is the length of Braze's event ids (UUIDs), to size the
// chunk the ids of a batch are copied into.
const eventIDBytes = 36

// eventJSONGuess is a guess of one event's JSON size, to size the first
// buffer of a batch before any event was written.
const eventJSONGuess = 768

// newEventMessages prepares the messages of evs; message(i) builds the i-th,
// in any subset, each at most once.
func newEventMessages(evs []decoder.Event, src *eventSource) *eventMessages {
	m := &eventMessages{src: src, ctxs: decoder.NewEventJSONs(len(evs)), n: len(evs), ends: make([]int32, len(evs)),
		ids: strchunk.Chunks{Size: len(evs) * eventIDBytes}}
	var digits []byte
	if len(evs) > 0 {
		digits = make([]byte, 0, len(evs)*11)
	}
	for i, ev := range evs {
		digits = strconv.AppendInt(digits, ev.Time(), 10)
		m.ends[i] = int32(len(digits))
	}
	m.times = string(digits)
	// Sized by the mean of the object's events so far, with an eighth to
	// spare: a buffer too large is allocated and zeroed for nothing, one
	// too small costs a second buffer (see message).
	m.buf = make([]byte, 0, len(evs)*src.meanJSON()*9/8+eventJSONGuess)
	return m
}

// message builds the message of evs[i]: its fields as a JSON object (in
// writer schema order), plus the currents_* metadata documented on the
// scanner and input. Both components build messages here so that the
// metadata never differs.
func (m *eventMessages) message(i int, ev decoder.Event) *service.Message {
	start := len(m.buf)
	if cap(m.buf)-start < eventJSONGuess {
		// A new buffer rather than a grown one: the messages written so
		// far keep the old one, and nothing is copied. Sized for the
		// events left at the mean size of those written.
		m.buf, start = make([]byte, 0, max((m.n-i)*m.src.meanJSON()*5/4, 4*eventJSONGuess)), 0
	}
	m.buf = ev.AppendJSON(m.buf)
	m.src.jsonEvents++
	m.src.jsonBytes += len(m.buf) - start
	// Capped: nothing appended to this message's content may reach the
	// next message's in the shared buffer.
	text := m.buf[start:len(m.buf):len(m.buf)]
	msg := service.NewMessage(text).WithContext(m.ctxs.Set(i, m.src.parent, ev, text))
	src := m.src
	// One file holds one event type: box it once.
	if src.eventTypeAny == nil || ev.Type != src.eventType {
		src.eventType, src.eventTypeAny = ev.Type, ev.Type
	}
	msg.MetaSetMut("currents_event_type", src.eventTypeAny)
	msg.MetaSetMut("currents_id", m.ids.Clone(ev.ID()))
	from := int32(0)
	if i > 0 {
		from = m.ends[i-1]
	}
	msg.MetaSetMut("currents_time", m.times[from:m.ends[i]])
	msg.MetaSetMut("currents_schema", src.schema)
	if src.object != nil {
		msg.MetaSetMut("currents_object", src.object)
	}
	if src.date != nil {
		msg.MetaSetMut("currents_date", src.date)
	}
	if src.integration != nil {
		msg.MetaSetMut("currents_integration_id", src.integration)
	}
	return msg
}
