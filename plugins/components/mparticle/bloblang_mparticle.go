package mparticle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/benthosdev/benthos/v4/public/bloblang"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	mapping "github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
)

// The Bloblang side of the mapping: the same Mapper as the
// currents_to_mparticle processor, for mappings that need the mParticle
// batch, the event name or the feed of a Currents event as a value.

const bloblMPParamEventType = "event_type"

// bloblMPExampleEvent is a small users.messages.email.Open event of the examples.
const bloblMPExampleEvent = `{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_id":"5f3a9c1e2b7d4a0012345678","external_user_id":"user-123","time":1793527200,"email_address":"jane@example.com","campaign_name":"Spring Sale","is_amp":false,"timezone":"Europe/Berlin"}`

func bloblMPToMparticleSpec() *bloblang.PluginSpec {
	spec := bloblang.NewPluginSpec().
		Beta().
		Category("Object & Array Manipulation").
		Version("0.1.0").
		Description("Maps a Braze Currents event (an object of its fields, as the `braze_currents` scanner emits it) to the mParticle batch the `currents_to_mparticle` processor would send, as an object; `null` when the event is dropped (no identity, excluded or unknown type). The parameters after `event_type` are the processor's options, with the same names and defaults but one: `unmappable` defaults to `fail` here, since a mapping has no metric or log to count a drop in. So an event that cannot be mapped (reasons as in the processor: `invalid_time`, `invalid_identity`, `missing_field`...) is a mapping error that names the event, the field and the reason, for `catch` to handle; with `unmappable: \"drop\"` it gives `null`.").
		Param(bloblang.NewStringParam(bloblMPParamEventType).Description("The Currents event type, e.g. `users.messages.email.Open` (the `currents_event_type` metadata of the scanner)."))
	spec = bloblMPOptionParams(spec, true).
		Example("Map an email open as Braze's hosted connector does.",
			`root = this.currents_to_mparticle(event_type: "users.messages.email.Open")`,
			[2]string{bloblMPExampleEvent,
				`{"environment":"production","events":[{"data":{"custom_attributes":{"campaign_name":"Spring Sale","is_amp":false,"source_request_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02"},"custom_event_type":"other","event_name":"Email Opens","source_message_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","timestamp_unixtime_ms":1793527200000},"event_type":"custom_event"}],"schema_version":2,"source_request_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_identities":{"customer_id":"user-123","email":"jane@example.com"}}`},
		).
		Example("Hash the email address and send to the development environment; an event without identity gives null.",
			`root = this.currents_to_mparticle(event_type: "users.messages.email.Open", environment: "development", attributes: {"hash": ["email_address"], "remove": ["campaign_name"]})`,
			[2]string{bloblMPExampleEvent,
				`{"environment":"development","events":[{"data":{"custom_attributes":{"is_amp":false,"source_request_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02"},"custom_event_type":"other","event_name":"Email Opens","source_message_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","timestamp_unixtime_ms":1793527200000},"event_type":"custom_event"}],"schema_version":2,"source_request_id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","user_identities":{"customer_id":"user-123","email":"8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"}}`},
			[2]string{`{"id":"e3b0c442-98fc-4c14-9afb-f4c8996fb924","user_id":"5f3a9c1e2b7d4a0012345678","time":1793527200,"email_address":"anon@example.com"}`, `null`},
		).
		Example("An event that cannot be mapped, here one without a usable time, is an error that `catch` can turn into a dead-letter record; `unmappable: \"drop\"` gives `null` instead.",
			`root = this.currents_to_mparticle(event_type: "users.canvas.Entry").catch(err -> {"dead_letter": err})`,
			[2]string{`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","external_user_id":"user-123","time":0}`,
				`{"dead_letter":"currents event users.canvas.Entry id \"0d2f378f-a910-4ca9-b77e-82348f9bbd02\": field time: is 0: no time after 1970 in Unix seconds (reason invalid_time)"}`},
		).
		Example("",
			`root = this.currents_to_mparticle(event_type: "users.canvas.Entry", unmappable: "drop")`,
			[2]string{`{"id":"0d2f378f-a910-4ca9-b77e-82348f9bbd02","external_user_id":"user-123","time":0}`, `null`},
		)
	return spec
}

func bloblMPFeedSpec() *bloblang.PluginSpec {
	spec := bloblang.NewPluginSpec().
		Beta().
		Category("Object & Array Manipulation").
		Version("0.1.0").
		Description("Returns the mParticle feed (`ios`, `android`, `web` or `unbound`) of a Braze Currents event, an object of its fields, as the `currents_to_mparticle` processor decides it: the event's `platform` field, else for uninstalls and the `app_id_feed_types` the platform of its app in `app_platforms`, else `unbound`. It does not check identity or type filters.").
		Param(bloblang.NewStringParam(bloblMPParamEventType).Description("The Currents event type."))
	spec = bloblMPOptionParams(spec, false).
		Example("The platform field picks the feed; tvOS goes to the iOS feed by default.",
			`root.feed = this.mparticle_feed(event_type: "users.messages.pushnotification.Send")`,
			[2]string{`{"platform":"android"}`, `{"feed":"android"}`},
			[2]string{`{"platform":"tvos"}`, `{"feed":"ios"}`},
			[2]string{`{"platform":null}`, `{"feed":"unbound"}`},
		).
		Example("Uninstalls take the platform of their app.",
			`root.feed = this.mparticle_feed(event_type: "users.behaviors.Uninstall", app_platforms: {"ios-app-id": "ios", "roku-app-id": "roku"})`,
			[2]string{`{"app_id":"ios-app-id"}`, `{"feed":"ios"}`},
			[2]string{`{"app_id":"roku-app-id"}`, `{"feed":"unbound"}`},
			[2]string{`{"app_id":"some-other-app"}`, `{"feed":"unbound"}`},
		)
	return spec
}

func bloblMPEventNameSpec() *bloblang.PluginSpec {
	return bloblang.NewPluginSpec().
		Beta().
		Category("String Manipulation").
		Version("0.1.0").
		Description("Returns the mParticle event name of a Braze Currents event type: Braze's name for the "+strconv.Itoa(mapping.HostedTypes())+" types of its hosted connector, `First Sessions` for first sessions, a name derived from the type for types outside the catalog, and an empty string for the types sent without a fixed name (uninstalls, session starts and ends, purchases, and custom events, which are named by their own `name` field).").
		Example("",
			`root.name = this.type.currents_event_name()`,
			[2]string{`{"type":"users.messages.email.Open"}`, `{"name":"Email Opens"}`},
			[2]string{`{"type":"users.messages.sms.ShortLinkClick"}`, `{"name":"SMS Short Link Clicks"}`},
			[2]string{`{"type":"users.messages.line.Click"}`, `{"name":"LINE Click"}`},
			[2]string{`{"type":"users.behaviors.Uninstall"}`, `{"name":""}`},
		)
}

func init() {
	for _, m := range []struct {
		name string
		spec *bloblang.PluginSpec
		ctor bloblang.MethodConstructorV2
	}{
		{"currents_to_mparticle", bloblMPToMparticleSpec(), bloblMPToMparticle},
		{"mparticle_feed", bloblMPFeedSpec(), bloblMPFeed},
		{"currents_event_name", bloblMPEventNameSpec(), bloblMPEventName},
	} {
		if err := bloblang.RegisterMethodV2(m.name, m.spec, m.ctor); err != nil {
			panic(err)
		}
	}
}

// bloblMPMapper reads the event_type parameter and builds the Mapper of the
// other parameters, as both object methods need.
func bloblMPMapper(args *bloblang.ParsedParams, all bool) (string, *mapping.Mapper, error) {
	eventType, err := args.GetString(bloblMPParamEventType)
	if err != nil {
		return "", nil, err
	}
	opts, err := bloblMPOptions(args, all)
	if err != nil {
		return "", nil, err
	}
	mapper, err := mapping.New(opts)
	return eventType, mapper, err
}

func bloblMPToMparticle(args *bloblang.ParsedParams) (bloblang.Method, error) {
	eventType, mapper, err := bloblMPMapper(args, true)
	if err != nil {
		return nil, err
	}
	return bloblang.ObjectMethod(func(fields map[string]any) (any, error) {
		raw, res, err := mapper.AppendBatch(nil, currents.EventFromMap(eventType, fields))
		if err != nil || res.Dropped != "" {
			return nil, err
		}
		return bloblMPDecode(raw)
	}), nil
}

func bloblMPFeed(args *bloblang.ParsedParams) (bloblang.Method, error) {
	eventType, mapper, err := bloblMPMapper(args, false)
	if err != nil {
		return nil, err
	}
	return bloblang.ObjectMethod(func(fields map[string]any) (any, error) {
		feed, err := mapper.Feed(currents.EventFromMap(eventType, fields))
		return string(feed), err
	}), nil
}

func bloblMPEventName(*bloblang.ParsedParams) (bloblang.Method, error) {
	return bloblang.StringMethod(func(eventType string) (any, error) {
		return mapping.EventName(eventType), nil
	}), nil
}

// bloblMPDecode turns batch JSON into the values Bloblang works with:
// integers as int64 and other numbers as float64, so that timestamps stay
// exact.
func bloblMPDecode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("mparticle batch is not valid JSON: %w", err)
	}
	return bloblMPNumbers(v)
}

func bloblMPNumbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n, nil
		}
		f, err := t.Float64()
		if err != nil {
			return nil, errors.New("mparticle batch holds a number out of range: " + t.String())
		}
		return f, nil
	case map[string]any:
		for k, x := range t {
			n, err := bloblMPNumbers(x)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
	case []any:
		for i, x := range t {
			n, err := bloblMPNumbers(x)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
	}
	return v, nil
}
