package currents

import (
	"strconv"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// eventSource is what the scanner and the input know about the object events
// come from; every message of the object carries it as metadata. The values
// are boxed once per object: boxing a string into metadata costs an
// allocation, and these are the same for every event of the object.
type eventSource struct {
	object, schema, date, integration any // nil when unknown
	eventType                         string
	eventTypeAny                      any
}

// newEventSource describes an object: its key or path ("" when unknown), the
// writer schema's record full name, and what its key says.
func newEventSource(object, schema string, key currents.ObjectKey) *eventSource {
	s := &eventSource{schema: schema}
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

// newEventMessage builds the message of one event: its fields as a structured
// object, plus the currents_* metadata documented on the scanner and input.
// Both components build messages here so that the metadata never differs.
func newEventMessage(ev currents.Event, src *eventSource) *service.Message {
	msg := service.NewMessage(nil)
	msg.SetStructuredMut(ev.Map())
	// One file holds one event type: box it once.
	if src.eventTypeAny == nil || ev.Type != src.eventType {
		src.eventType, src.eventTypeAny = ev.Type, ev.Type
	}
	msg.MetaSetMut("currents_event_type", src.eventTypeAny)
	msg.MetaSetMut("currents_id", ev.ID())
	msg.MetaSetMut("currents_time", strconv.FormatInt(ev.Time(), 10))
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
