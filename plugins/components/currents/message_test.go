package currents

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"
	"weak"

	"github.com/benthosdev/benthos/v4/public/service"

	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// Once its event is released (the currents_to_mparticle processor releases
// each event it maps), a message keeps nothing of the event's Avro block:
// the event's strings point into the block's decoded bytes, and Benthos
// holds the message until the output acknowledges it, so metadata cut from
// them would keep megabytes alive per batch in flight.
func TestMessagesDoNotKeepTheEventsBlockAlive(t *testing.T) {
	block := make([]byte, 1<<20) // stands for the decoded bytes of an Avro block
	alive := weak.Make(&block[0])
	evs := make([]decoder.Event, 3)
	at := 0
	for i := range evs {
		id := fmt.Sprintf("0d2f378f-a910-4ca9-b77e-82348f9b%04d", i)
		n := copy(block[at:], id)
		evs[i] = decoder.NewEvent("users.messages.email.Open", []decoder.Entry{
			{Name: "id", Value: decoder.StringValue(unsafe.String(&block[at], n))},
			{Name: "time", Value: decoder.IntValue(1764547200)},
		})
		at += n
	}
	key, _ := decoder.ParseObjectKey("")
	msgs := newEventMessages(evs, newEventSource("object.avro", "schema", key))
	out := make([]*service.Message, len(evs))
	for i, ev := range evs {
		m := msgs.message(i, ev)
		decoder.TakeEventJSON(m.Context()) // as the processor does
		out[i] = m
	}
	block, evs = nil, nil
	runtime.GC()
	if alive.Value() != nil {
		t.Fatal("the messages keep their events' block alive")
	}
	for i, m := range out {
		if id, _ := m.MetaGet("currents_id"); id != fmt.Sprintf("0d2f378f-a910-4ca9-b77e-82348f9b%04d", i) {
			t.Errorf("message %d: currents_id %q", i, id)
		}
	}
}
