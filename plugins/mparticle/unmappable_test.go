package mparticle

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// outcome maps ev and says how it ended: "mapped", or the reason of its
// drop or error.
func outcome(t *testing.T, m *Mapper, ev currents.Event) string {
	t.Helper()
	out, res, err := m.AppendBatch([]byte("prefix"), ev)
	var me *Error
	switch {
	case errors.As(err, &me):
		return "error:" + me.Reason
	case err != nil:
		t.Fatalf("error %v is not an *Error", err)
	case res.Dropped != "":
		if string(out) != "prefix" {
			t.Fatalf("a dropped event appended %q", out)
		}
		return "dropped:" + string(res.Dropped)
	}
	return "mapped"
}

// An event without a usable time is unmappable, reason invalid_time: sent
// with time 0 it would carry no timestamp_unixtime_ms, and mParticle would
// date it when it arrives.
func TestUnusableTime(t *testing.T) {
	m, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	typ := "users.messages.email.Open"
	now := testNow.Unix()
	for _, c := range []struct {
		name string
		time any
		want string
	}{
		{"missing", nil, "dropped:invalid_time"},
		{"zero", 0, "dropped:invalid_time"},
		{"negative", -5, "dropped:invalid_time"},
		{"a year ahead", now + 365*24*3600, "dropped:invalid_time"},
		{"milliseconds", now * 1000, "dropped:invalid_time"},
		{"a day and a second ahead", now + 24*3600 + 1, "dropped:invalid_time"},
		{"a day ahead (clock skew)", now + 24*3600, "mapped"},
		{"one second after 1970", 1, "mapped"},
		{"of the wrong kind", "1793527200", "dropped:wrong_kind"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := outcome(t, m, fixtureEvent(t, typ, map[string]any{"time": c.time})); got != c.want {
				t.Errorf("time %v: %s, want %s", c.time, got, c.want)
			}
		})
	}
}

// Identities are sent as Braze has them or not at all: bytes that are not
// UTF-8 would be sent as U+FFFD, another user's key (or every such user's).
func TestInvalidUTF8Identity(t *testing.T) {
	bad := "user-\xff\xfe-1"
	for _, c := range []struct {
		name   string
		opts   Options
		typ    string
		fields map[string]any
		want   string
	}{
		{"external_user_id", Options{}, "users.messages.email.Open", map[string]any{"external_user_id": bad}, "dropped:invalid_identity"},
		{"external_user_id hashed", Options{Attributes: AttributeOptions{Hash: []string{"external_user_id"}}}, "users.messages.email.Open", map[string]any{"external_user_id": bad}, "dropped:invalid_identity"},
		{"email identity", Options{}, "users.messages.email.Open", map[string]any{"email_address": "jane\xc3@example.com"}, "dropped:invalid_identity"},
		{"email removed, not sent", Options{Attributes: AttributeOptions{Remove: []string{"email_address"}}}, "users.messages.email.Open", map[string]any{"email_address": "jane\xc3@example.com"}, "mapped"},
		{"user_id fallback", Options{MissingIdentity: "user_id:other"}, "users.messages.email.Open", map[string]any{"external_user_id": nil, "user_id": bad}, "dropped:invalid_identity"},
		{"user_id not used", Options{}, "users.messages.email.Open", map[string]any{"user_id": bad}, "mapped"},
		{"$mobile phone", Options{}, "users.messages.sms.Delivery", map[string]any{"to_phone_number": "+1555\xff"}, "dropped:invalid_identity"},
		{"inbound phone", Options{}, "users.messages.sms.InboundReceive", map[string]any{"user_phone_number": "+1555\xff"}, "dropped:invalid_identity"},
		{"event id", Options{}, "users.messages.email.Open", map[string]any{"id": "0d2f378f-\xff"}, "dropped:invalid_value"},
		// Not identities: sent with U+FFFD, as any text mParticle's JSON must carry.
		{"device id (not a UUID, a custom attribute)", Options{}, "users.messages.pushnotification.Send", map[string]any{"device_id": "dev\xff"}, "mapped"},
		{"custom attribute", Options{}, "users.messages.email.Open", map[string]any{"campaign_name": "Spring\xff"}, "mapped"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Now = fixedNow
			m, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := outcome(t, m, fixtureEvent(t, c.typ, c.fields)); got != c.want {
				t.Errorf("%s, want %s", got, c.want)
			}
		})
	}
}

// The unmappable option: drop (default) returns the error in Result.Unmapped
// and appends nothing; fail returns it. Failures a policy asks for are
// errors either way.
func TestUnmappableOption(t *testing.T) {
	typ := "users.messages.email.Open"
	secret := "jane\xc3@example.com"
	noTime := fixtureEvent(t, typ, map[string]any{"time": 0})
	badEmail := fixtureEvent(t, typ, map[string]any{"email_address": secret})
	drop, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	fail, err := New(Options{Now: fixedNow, Unmappable: UnmappableFail})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ev            currents.Event
		reason, field string
	}{{noTime, ReasonInvalidTime, "time"}, {badEmail, ReasonInvalidIdentity, "email_address"}} {
		out, res, err := drop.AppendBatch([]byte("x"), c.ev)
		u := res.Unmapped
		if err != nil || string(out) != "x" || string(res.Dropped) != c.reason || u == nil {
			t.Fatalf("drop: %q, %+v, %v; want dropped %s with its error", out, res, err, c.reason)
		}
		if u.Reason != c.reason || u.Field != c.field || u.EventType != typ || u.EventID != fixtureID(typ) || !errors.Is(u, ErrMapping) {
			t.Errorf("unmapped error %+v", u)
		}
		if strings.Contains(u.Error(), "jane") {
			t.Errorf("error %q holds the identity, personal data", u)
		}
		_, res, err = fail.AppendBatch(nil, c.ev)
		var me *Error
		if !errors.As(err, &me) || me.Reason != c.reason || res.Dropped != "" {
			t.Errorf("fail: %+v, %v; want the error", res, err)
		}
	}
	policy, err := New(Options{Now: fixedNow, MissingIdentity: MissingIdentityFail, UnknownTypes: UnknownFail})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []currents.Event{
		fixtureEvent(t, typ, map[string]any{"external_user_id": nil}),
		retype(fixtureEvent(t, typ, nil), "users.messages.line.Send"),
	} {
		if _, res, err := policy.AppendBatch(nil, ev); err == nil || res.Dropped != "" {
			t.Errorf("%s: %+v, %v; a policy set to fail must fail under unmappable: drop", ev.Type, res, err)
		}
	}
	// The time bound follows the Mapper's clock.
	later, err := New(Options{Now: func() time.Time { return testNow.Add(400 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	future := fixtureEvent(t, typ, map[string]any{"time": testNow.Add(300 * 24 * time.Hour).Unix()})
	if got := outcome(t, drop, future); got != "dropped:invalid_time" {
		t.Errorf("300 days ahead: %s", got)
	}
	if got := outcome(t, later, future); got != "mapped" {
		t.Errorf("300 days ahead, mapped 100 days later: %s", got)
	}
}

// Text that is not an identity is sent with U+FFFD for bad bytes, as
// mParticle only takes valid JSON: an attribute value, a property, an event
// name, a device id that travels as an attribute.
func TestInvalidUTF8ElsewhereIsReplaced(t *testing.T) {
	b, _ := mapOne(t, Options{}, fixtureEvent(t, "users.messages.email.Open", map[string]any{"campaign_name": "Spring\xffSale"}))
	if got := customAttrs(b)["campaign_name"]; got != "Spring\uFFFDSale" {
		t.Errorf("campaign_name %q", got)
	}
	b, res := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.CustomEvent", map[string]any{
		"name": "Added\xfeTo Cart", "properties": `{"plan":"g` + "\xff" + `old"}`,
	}))
	if res.EventName != "Added\xfeTo Cart" || eventData(b)["event_name"] != "Added\uFFFDTo Cart" {
		t.Errorf("event name %q sent as %q", res.EventName, eventData(b)["event_name"])
	}
	if got := customAttrs(b)["plan"]; got != "g\uFFFDold" {
		t.Errorf("property plan %q", got)
	}
	b, _ = mapOne(t, Options{}, fixtureEvent(t, "users.messages.pushnotification.Send", map[string]any{"device_id": "dev\xff"}))
	if got := customAttrs(b)["device_id"]; got != "dev\uFFFD" {
		t.Errorf("device_id attribute %q", got)
	}
}
