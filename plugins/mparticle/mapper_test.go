package mparticle

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
)

// mapOne maps ev with opts (the fixed clock unless opts sets one) and
// decodes the batch; it fails the test on an error.
func mapOne(t *testing.T, opts Options, ev currents.Event) (map[string]any, Result) {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, res, err := m.AppendBatch(nil, ev)
	if err != nil {
		t.Fatalf("map: %v", err)
	}
	if res.Dropped != "" {
		t.Fatalf("dropped: %s", res.Dropped)
	}
	return checkBatch(t, raw), res
}

func eventData(b map[string]any) map[string]any {
	return b["events"].([]any)[0].(map[string]any)["data"].(map[string]any)
}

func customAttrs(b map[string]any) map[string]any {
	a, _ := eventData(b)["custom_attributes"].(map[string]any)
	return a
}

func TestOptionsValidation(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   Options
		option string // the option the error must name; "" = valid
	}{
		{"defaults", Options{}, ""},
		{"everything", Options{
			Environment: Development, IdentityKey: "other_id_3", MissingIdentity: "user_id:other",
			AppPlatforms:   map[string]string{"a": "ios", "b": "Android", "c": "roku"},
			PlatformFeeds:  map[string]Feed{"tvos": FeedUnbound, "kindle": FeedWeb, "roku": FeedAndroid},
			AppIDFeedTypes: []string{"users.campaigns.*"}, DeviceIDMapping: DeviceIDByPlatform,
			EventTypes: []string{"users.*"}, ExcludeEventTypes: []string{"users.messages.email.[A-M]*"},
			UnknownTypes: UnknownFail, Unmappable: UnmappableFail, Attributes: AttributeOptions{Remove: []string{"campaign_name"}, Hash: []string{"email_address", "external_user_id"}},
		}, ""},
		{"environment", Options{Environment: "staging"}, "environment"},
		{"identity", Options{IdentityKey: "customerid"}, "identity"},
		{"missing identity policy", Options{MissingIdentity: "skip"}, "missing_identity"},
		{"missing identity type", Options{MissingIdentity: "user_id:braze"}, "missing_identity"},
		{"missing identity same as identity", Options{MissingIdentity: "user_id:customer_id"}, "missing_identity"},
		{"app platform", Options{AppPlatforms: map[string]string{"a": "windows"}}, "app_platforms"},
		{"platform feed key", Options{PlatformFeeds: map[string]Feed{"ios": FeedWeb}}, "platform_feeds"},
		{"platform feed value", Options{PlatformFeeds: map[string]Feed{"roku": "tv"}}, "platform_feeds"},
		{"app id feed glob", Options{AppIDFeedTypes: []string{"users.[campaigns"}}, "app_id_feed_types"},
		{"event types glob", Options{EventTypes: []string{"["}}, "event_types"},
		{"exclude glob", Options{ExcludeEventTypes: []string{""}}, "exclude_event_types"},
		{"device id mapping", Options{DeviceIDMapping: "idfa"}, "device_id_mapping"},
		{"unknown types", Options{UnknownTypes: "ignore"}, "unknown_event_types"},
		{"unmappable", Options{Unmappable: "skip"}, "unmappable"},
		{"remove id", Options{Attributes: AttributeOptions{Remove: []string{"id"}}}, "attributes.remove"},
		{"hash time", Options{Attributes: AttributeOptions{Hash: []string{"time"}}}, "attributes.hash"},
		{"remove identity", Options{Attributes: AttributeOptions{Remove: []string{"external_user_id"}}}, "attributes.remove"},
		{"both lists", Options{Attributes: AttributeOptions{Remove: []string{"url"}, Hash: []string{"url"}}}, "attributes.hash"},
		{"empty name", Options{Attributes: AttributeOptions{Hash: []string{""}}}, "attributes.hash"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.opts)
			switch {
			case c.option == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.option != "" && err == nil:
				t.Fatalf("no error, want one naming %s", c.option)
			case c.option != "" && !strings.Contains(err.Error(), c.option+":"):
				t.Fatalf("error %q does not name option %s", err, c.option)
			}
		})
	}
}

func TestDrops(t *testing.T) {
	noExt := fixtureEvent(t, "users.messages.email.Open", map[string]any{"external_user_id": nil})
	emptyExt := fixtureEvent(t, "users.messages.email.Open", map[string]any{"external_user_id": ""})
	inbound := fixtureEvent(t, "users.messages.sms.InboundReceive", map[string]any{"external_user_id": nil, "user_id": nil})
	unknown := retype(fixtureEvent(t, "users.messages.webhook.Send", nil), "users.messages.line.Send")
	for _, c := range []struct {
		name string
		opts Options
		ev   currents.Event
		want DropReason
	}{
		{"no external_user_id", Options{}, noExt, DropNoIdentity},
		{"empty external_user_id", Options{}, emptyExt, DropNoIdentity},
		{"no user_id either", Options{MissingIdentity: "user_id:other"}, inbound, DropNoIdentity},
		{"user_id removed", Options{MissingIdentity: "user_id:other", Attributes: AttributeOptions{Remove: []string{"user_id"}}}, noExt, DropNoIdentity},
		{"excluded by glob", Options{ExcludeEventTypes: []string{"users.messages.email.*"}}, noExt, DropExcluded},
		{"not in allow list", Options{EventTypes: []string{"users.messages.sms.*", "users.canvas.*"}}, noExt, DropExcluded},
		{"unknown dropped", Options{UnknownTypes: UnknownDrop}, unknown, DropUnknownType},
		{"unknown excluded first", Options{UnknownTypes: UnknownFail, ExcludeEventTypes: []string{"*.line.*"}}, unknown, DropExcluded},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, res, err := m.AppendBatch([]byte("prefix"), c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != c.want || string(out) != "prefix" {
				t.Fatalf("dropped %q, output %q; want %q and nothing appended", res.Dropped, out, c.want)
			}
		})
	}
}

// retype rebuilds an event under another type, same fields.
func retype(ev currents.Event, eventType string) currents.Event {
	entries := make([]currents.Entry, ev.Len())
	for i := range entries {
		entries[i].Name, entries[i].Value = ev.Field(i)
	}
	return currents.NewEvent(eventType, entries)
}

func TestErrors(t *testing.T) {
	typ := "users.messages.email.Open"
	for _, c := range []struct {
		name   string
		opts   Options
		ev     currents.Event
		field  string
		reason string
	}{
		{"missing id", Options{}, fixtureEvent(t, typ, map[string]any{"id": nil}), "id", ReasonMissingField},
		{"empty id", Options{}, fixtureEvent(t, typ, map[string]any{"id": ""}), "id", ReasonMissingField},
		{"id of wrong kind", Options{}, fixtureEvent(t, typ, map[string]any{"id": 42}), "id", ReasonWrongKind},
		{"missing time", Options{}, fixtureEvent(t, typ, map[string]any{"time": nil}), "time", ReasonInvalidTime},
		{"time as string", Options{}, fixtureEvent(t, typ, map[string]any{"time": "1793527200"}), "time", ReasonWrongKind},
		{"negative time", Options{}, fixtureEvent(t, typ, map[string]any{"time": -5}), "time", ReasonInvalidTime},
		{"zero time", Options{}, fixtureEvent(t, typ, map[string]any{"time": 0}), "time", ReasonInvalidTime},
		{"time in milliseconds", Options{}, fixtureEvent(t, typ, map[string]any{"time": int64(1793527200000)}), "time", ReasonInvalidTime},
		{"external id not UTF-8", Options{}, fixtureEvent(t, typ, map[string]any{"external_user_id": "a\xffb"}), "external_user_id", ReasonInvalidIdentity},
		{"id not UTF-8", Options{}, fixtureEvent(t, typ, map[string]any{"id": "a\xffb"}), "id", ReasonInvalidValue},
		{"external id of wrong kind", Options{}, fixtureEvent(t, typ, map[string]any{"external_user_id": 7}), "external_user_id", ReasonWrongKind},
		{"no identity, fail", Options{MissingIdentity: MissingIdentityFail}, fixtureEvent(t, typ, map[string]any{"external_user_id": nil}), "external_user_id", ReasonNoIdentity},
		{"email of wrong kind", Options{}, fixtureEvent(t, typ, map[string]any{"email_address": true}), "email_address", ReasonWrongKind},
		{"platform of wrong kind", Options{}, fixtureEvent(t, "users.messages.pushnotification.Send", map[string]any{"platform": 1}), "platform", ReasonWrongKind},
		{"ad tracking of wrong kind", Options{}, fixtureEvent(t, "users.messages.pushnotification.Send", map[string]any{"ad_tracking_enabled": "yes"}), "ad_tracking_enabled", ReasonWrongKind},
		{"purchase without product", Options{}, fixtureEvent(t, "users.behaviors.Purchase", map[string]any{"product_id": nil}), "product_id", ReasonMissingField},
		{"purchase price NaN", Options{}, fixtureEvent(t, "users.behaviors.Purchase", map[string]any{"price": currents.FloatValue(nan())}), "price", ReasonInvalidValue},
		{"purchase price string", Options{}, fixtureEvent(t, "users.behaviors.Purchase", map[string]any{"price": "9.99"}), "price", ReasonWrongKind},
		{"session without id", Options{}, fixtureEvent(t, "users.behaviors.app.SessionStart", map[string]any{"session_id": nil}), "session_id", ReasonMissingField},
		{"negative duration", Options{}, fixtureEvent(t, "users.behaviors.app.SessionEnd", map[string]any{"duration": -1.0}), "duration", ReasonInvalidValue},
		{"unknown type, fail", Options{UnknownTypes: UnknownFail}, currents.NewEvent("users.messages.line.Send", nil), "", ReasonUnknownType},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Unmappable, c.opts.Now = UnmappableFail, fixedNow
			m, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := m.AppendBatch([]byte("prefix"), c.ev)
			var me *Error
			if !errors.As(err, &me) || !errors.Is(err, ErrMapping) {
				t.Fatalf("error %v (%T), want *Error wrapping ErrMapping", err, err)
			}
			if me.Field != c.field || me.Reason != c.reason || me.EventType != c.ev.Type {
				t.Fatalf("error %+v, want field %q reason %q", me, c.field, c.reason)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.ev.Type) || (c.field != "" && !strings.Contains(msg, "field "+c.field)) {
				t.Errorf("message %q does not name the event type and field", msg)
			}
			if v, ok := c.ev.StringField("id"); ok && v != "" && !strings.Contains(msg, strconv.Quote(v)) {
				t.Errorf("message %q does not name the event id", msg)
			}
			if string(out) != "prefix" {
				t.Errorf("output changed on error: %q", out)
			}
		})
	}
}

func nan() float64 {
	var zero float64
	return zero / zero
}

func TestFeed(t *testing.T) {
	push := "users.messages.pushnotification.Send"
	apps := map[string]string{fxAppID: "android", "tv-app": "tvos", "roku-app": "roku"}
	for _, c := range []struct {
		name     string
		opts     Options
		ev       currents.Event
		feed     Feed
		platform string // device_info.platform, "" = absent
	}{
		{"ios", Options{}, fixtureEvent(t, push, map[string]any{"platform": "ios"}), FeedIOS, "iOS"},
		{"android", Options{}, fixtureEvent(t, push, map[string]any{"platform": "android"}), FeedAndroid, "Android"},
		{"web", Options{}, fixtureEvent(t, push, map[string]any{"platform": "web"}), FeedWeb, "web"},
		{"upper case", Options{}, fixtureEvent(t, push, map[string]any{"platform": "IOS"}), FeedIOS, "iOS"},
		{"tvos default", Options{}, fixtureEvent(t, push, map[string]any{"platform": "tvos"}), FeedIOS, "tvOS"},
		{"kindle default", Options{}, fixtureEvent(t, push, map[string]any{"platform": "kindle"}), FeedAndroid, "Android"},
		{"roku default", Options{}, fixtureEvent(t, push, map[string]any{"platform": "roku"}), FeedUnbound, "roku"},
		{"roku option", Options{PlatformFeeds: map[string]Feed{"roku": FeedWeb}}, fixtureEvent(t, push, map[string]any{"platform": "roku"}), FeedWeb, "roku"},
		{"unknown platform", Options{}, fixtureEvent(t, push, map[string]any{"platform": "windows"}), FeedUnbound, ""},
		{"platform wins over app", Options{AppPlatforms: apps}, fixtureEvent(t, push, map[string]any{"platform": "ios"}), FeedIOS, "iOS"},
		{"uninstall by app", Options{AppPlatforms: apps}, fixtureEvent(t, "users.behaviors.Uninstall", nil), FeedAndroid, "Android"},
		{"uninstall tvos app", Options{AppPlatforms: apps}, fixtureEvent(t, "users.behaviors.Uninstall", map[string]any{"app_id": "tv-app"}), FeedIOS, "tvOS"},
		{"uninstall roku app", Options{AppPlatforms: apps}, fixtureEvent(t, "users.behaviors.Uninstall", map[string]any{"app_id": "roku-app"}), FeedUnbound, "roku"},
		{"uninstall unknown app", Options{AppPlatforms: apps}, fixtureEvent(t, "users.behaviors.Uninstall", map[string]any{"app_id": "x"}), FeedUnbound, ""},
		{"uninstall no map", Options{}, fixtureEvent(t, "users.behaviors.Uninstall", nil), FeedUnbound, ""},
		{"campaign ignores app by default", Options{AppPlatforms: apps}, fixtureEvent(t, "users.campaigns.Conversion", nil), FeedUnbound, ""},
		{"campaign app option", Options{AppPlatforms: apps, AppIDFeedTypes: []string{"users.campaigns.Conversion"}}, fixtureEvent(t, "users.campaigns.Conversion", nil), FeedAndroid, "Android"},
		{"email unbound", Options{AppPlatforms: apps}, fixtureEvent(t, "users.messages.email.Open", nil), FeedUnbound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, res := mapOne(t, c.opts, c.ev)
			if res.Feed != c.feed {
				t.Errorf("feed %s, want %s", res.Feed, c.feed)
			}
			di, _ := b["device_info"].(map[string]any)
			if got, _ := di["platform"].(string); got != c.platform {
				t.Errorf("device_info.platform %q, want %q", got, c.platform)
			}
			m, _ := New(c.opts)
			if f, err := m.Feed(c.ev); err != nil || f != c.feed {
				t.Errorf("Feed() = %s, %v; want %s", f, err, c.feed)
			}
		})
	}
}

func TestDeviceIDMapping(t *testing.T) {
	typ := "users.messages.pushnotification.Send"
	for _, c := range []struct {
		mapping        DeviceIDMapping
		platform, slot string // slot: the device_info field holding device_id, "" = none
	}{
		{DeviceIDBraze, "ios", "ios_idfv"},
		{DeviceIDBraze, "android", "ios_idfv"},
		{DeviceIDBraze, "web", "ios_idfv"},
		{DeviceIDByPlatform, "ios", "ios_idfv"},
		{DeviceIDByPlatform, "tvos", "ios_idfv"},
		{DeviceIDByPlatform, "android", "android_uuid"},
		{DeviceIDByPlatform, "kindle", "android_uuid"},
		{DeviceIDByPlatform, "web", ""},
		{DeviceIDByPlatform, "roku", ""},
	} {
		t.Run(string(c.mapping)+"/"+c.platform, func(t *testing.T) {
			b, _ := mapOne(t, Options{DeviceIDMapping: c.mapping}, fixtureEvent(t, typ, map[string]any{"platform": c.platform}))
			di := b["device_info"].(map[string]any)
			for _, slot := range []string{"ios_idfv", "android_uuid"} {
				if got := di[slot] == fxDeviceID; got != (slot == c.slot) {
					t.Errorf("%s = %v", slot, di[slot])
				}
			}
			if customAttrs(b)["device_id"] != fxDeviceID {
				t.Error("device_id custom attribute missing")
			}
		})
	}
}

func TestAdIDs(t *testing.T) {
	typ := "users.messages.pushnotification.Send"
	for _, c := range []struct{ adType, slot string }{
		{"ios_idfa", "ios_advertising_id"},
		{"google_ad_id", "android_advertising_id"},
		{"windows_ad_id", "microsoft_advertising_id"},
		{"roku_ad_id", "roku_advertising_id"},
		{"fire_ad_id", ""},
	} {
		t.Run(c.adType, func(t *testing.T) {
			b, res := mapOne(t, Options{}, fixtureEvent(t, typ, map[string]any{"ad_id_type": c.adType, "ad_tracking_enabled": false}))
			di := b["device_info"].(map[string]any)
			for _, slot := range []string{"ios_advertising_id", "android_advertising_id", "microsoft_advertising_id", "roku_advertising_id"} {
				if got := di[slot] == fxAdID; got != (slot == c.slot) {
					t.Errorf("%s = %v", slot, di[slot])
				}
			}
			if di["limit_ad_tracking"] != true {
				t.Errorf("limit_ad_tracking = %v, want true (tracking disabled)", di["limit_ad_tracking"])
			}
			if res.NonUUIDDeviceIDs != 0 {
				t.Errorf("non-UUID count %d", res.NonUUIDDeviceIDs)
			}
		})
	}
}

func TestNonUUIDIDs(t *testing.T) {
	ev := fixtureEvent(t, "users.messages.pushnotification.Open",
		map[string]any{"id": "id", "device_id": "device_id", "ad_id": "ad_id"})
	b, res := mapOne(t, Options{}, ev)
	if res.NonUUIDDeviceIDs != 2 || res.NonUUIDEventIDs != 1 {
		t.Errorf("counters %+v, want 2 device ids and 1 event id", res.Counters)
	}
	di := b["device_info"].(map[string]any)
	if di["ios_idfv"] != nil || di["ios_advertising_id"] != nil {
		t.Errorf("non-UUID ids in device_info: %v", di)
	}
	smid := eventData(b)["source_message_id"].(string)
	if !isUUID(smid) || smid != res.SourceMessageID || smid != uuidV5(eventNamespace, "id") {
		t.Errorf("source_message_id %q", smid)
	}
	if b["source_request_id"] != "id" || customAttrs(b)["source_request_id"] != "id" || customAttrs(b)["device_id"] != "device_id" {
		t.Errorf("the raw ids must still travel: %v", b)
	}
	// Derived ids are stable: a replay must produce the same id.
	_, res2 := mapOne(t, Options{}, ev)
	if res2.SourceMessageID != smid {
		t.Error("derived source_message_id is not deterministic")
	}
}

func TestUUIDv5KnownAnswer(t *testing.T) {
	// RFC 9562 appendix A.4: the DNS namespace and "www.example.com".
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got := uuidV5(dns, "www.example.com"); got != "2ed6657d-e927-568b-95e1-2665a8aea6a2" {
		t.Fatalf("uuidV5 = %s", got)
	}
	long := strings.Repeat("x", 500) // past the stack buffer
	if got := uuidV5(dns, long); !isUUID(got) || got != uuidV5(dns, long) {
		t.Fatalf("long name: %s", got)
	}
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		fxDeviceID:                               true,
		strings.ToUpper(fxDeviceID):              true,
		"c5a1e0f27b3d4e8a9f612d4c8b7a9e03":       false,
		"c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e0g":   false,
		"c5a1e0f2-7b3d-4e8a-9f61_2d4c8b7a9e03":   false,
		"{c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e03}": false,
		"":                                       false,
	} {
		if isUUID(s) != want {
			t.Errorf("isUUID(%q) != %v", s, want)
		}
	}
}

func TestHistorical(t *testing.T) {
	m, err := New(Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		age  time.Duration
		want bool
	}{
		{time.Hour, false},
		{29 * 24 * time.Hour, false},
		{eventsapi.HistoricalAge, false},
		{eventsapi.HistoricalAge + time.Second, true},
		{400 * 24 * time.Hour, true},
	} {
		ev := fixtureEvent(t, "users.messages.email.Open", map[string]any{"time": testNow.Add(-c.age).Unix()})
		_, res, err := m.AppendBatch(nil, ev)
		if err != nil || res.Historical != c.want {
			t.Errorf("age %v: historical %v (%v), want %v", c.age, res.Historical, err, c.want)
		}
	}
}

func TestIdentityOptions(t *testing.T) {
	typ := "users.messages.email.Open"
	t.Run("identity key", func(t *testing.T) {
		b, res := mapOne(t, Options{IdentityKey: "other_id_4"}, fixtureEvent(t, typ, nil))
		ids := b["user_identities"].(map[string]any)
		if ids["other_id_4"] != fxExternalID || ids["customer_id"] != nil || ids["email"] != fxEmail || res.Identity != "other_id_4" {
			t.Errorf("identities %v result %+v", ids, res)
		}
	})
	t.Run("email as identity key keeps external id", func(t *testing.T) {
		b, _ := mapOne(t, Options{IdentityKey: Email}, fixtureEvent(t, typ, nil))
		ids := b["user_identities"].(map[string]any)
		if len(ids) != 1 || ids["email"] != fxExternalID {
			t.Errorf("identities %v", ids)
		}
	})
	t.Run("user_id fallback", func(t *testing.T) {
		b, res := mapOne(t, Options{MissingIdentity: "user_id:other"}, fixtureEvent(t, typ, map[string]any{"external_user_id": nil}))
		ids := b["user_identities"].(map[string]any)
		if ids["other"] != fxUserID || ids["customer_id"] != nil || res.Identity != Other || res.User != fxUserID {
			t.Errorf("identities %v result %+v", ids, res)
		}
	})
	t.Run("user_id fallback not used when external id exists", func(t *testing.T) {
		b, _ := mapOne(t, Options{MissingIdentity: "user_id:other"}, fixtureEvent(t, typ, nil))
		ids := b["user_identities"].(map[string]any)
		if ids["other"] != nil || ids["customer_id"] != fxExternalID {
			t.Errorf("identities %v", ids)
		}
	})
	t.Run("development", func(t *testing.T) {
		b, _ := mapOne(t, Options{Environment: Development}, fixtureEvent(t, typ, nil))
		if b["environment"] != "development" {
			t.Errorf("environment %v", b["environment"])
		}
	})
}

func TestAttributeOptions(t *testing.T) {
	typ := "users.messages.sms.Delivery"
	opts := Options{Attributes: AttributeOptions{
		Hash:   []string{"to_phone_number", "external_user_id", "campaign_id", "is_sms_fallback"},
		Remove: []string{"campaign_name", "source_request_id"},
	}}
	ev := fixtureEvent(t, typ, map[string]any{"is_sms_fallback": true})
	b, res := mapOne(t, opts, ev)
	attrs := customAttrs(b)
	if _, ok := attrs["campaign_name"]; ok {
		t.Error("campaign_name not removed")
	}
	if _, ok := attrs["source_request_id"]; ok {
		t.Error("source_request_id attribute not removed")
	}
	if b["source_request_id"] != ev.ID() {
		t.Error("the batch source_request_id is routing, not an attribute: it must stay")
	}
	campaign, _ := ev.StringField("campaign_id")
	if attrs["campaign_id"] != sha256Hex(campaign) {
		t.Errorf("campaign_id = %v, want its SHA-256", attrs["campaign_id"])
	}
	if attrs["is_sms_fallback"] != sha256Hex("true") {
		t.Errorf("is_sms_fallback = %v, want SHA-256 of true", attrs["is_sms_fallback"])
	}
	ua := b["user_attributes"].(map[string]any)
	if ua["$mobile"] != sha256Hex(fxPhone) {
		t.Errorf("$mobile = %v, want hashed", ua["$mobile"])
	}
	ids := b["user_identities"].(map[string]any)
	if ids["customer_id"] != sha256Hex(fxExternalID) || res.User != sha256Hex(fxExternalID) {
		t.Errorf("customer_id = %v, result user %s; want hashed", ids["customer_id"], res.User)
	}
	if sha256Hex("abc") != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Error("sha256Hex is not lowercase hex SHA-256")
	}

	t.Run("device fields", func(t *testing.T) {
		b, _ := mapOne(t, Options{Attributes: AttributeOptions{
			Hash: []string{"device_id", "os_version"}, Remove: []string{"ad_id", "platform", "ad_tracking_enabled", "device_model"},
		}}, fixtureEvent(t, "users.messages.pushnotification.Open", nil))
		di := b["device_info"].(map[string]any)
		want := map[string]any{"os_version": sha256Hex("iOS 17.4")}
		if len(di) != len(want) || di["os_version"] != want["os_version"] {
			t.Errorf("device_info %v, want %v", di, want)
		}
		if customAttrs(b)["device_id"] != sha256Hex(fxDeviceID) {
			t.Error("device_id attribute not hashed")
		}
	})
	t.Run("remove email", func(t *testing.T) {
		b, _ := mapOne(t, Options{Attributes: AttributeOptions{Remove: []string{"email_address"}}}, fixtureEvent(t, "users.messages.email.Open", nil))
		if ids := b["user_identities"].(map[string]any); ids["email"] != nil {
			t.Errorf("email identity sent: %v", ids)
		}
	})
	t.Run("renamed attribute by either name", func(t *testing.T) {
		for _, name := range []string{"card_id", "content_card_id"} {
			b, _ := mapOne(t, Options{Attributes: AttributeOptions{Remove: []string{name}}}, fixtureEvent(t, "users.messages.contentcard.Send", nil))
			if _, ok := customAttrs(b)["card_id"]; ok {
				t.Errorf("remove %s left card_id", name)
			}
		}
	})
	t.Run("property names", func(t *testing.T) {
		b, _ := mapOne(t, Options{Attributes: AttributeOptions{Remove: []string{"address.zip"}, Hash: []string{"plan"}}},
			fixtureEvent(t, "users.behaviors.CustomEvent", nil))
		attrs := customAttrs(b)
		if _, ok := attrs["address.zip"]; ok || attrs["plan"] != sha256Hex("gold") || attrs["address.city"] != "Berlin" {
			t.Errorf("attributes %v", attrs)
		}
	})
}

func TestLimits(t *testing.T) {
	typ := "users.messages.webhook.Send"
	long := strings.Repeat("é", MaxValueLength+10) // 2 bytes per character
	longName := strings.Repeat("n", MaxNameLength+1)
	var extra []currents.Entry
	extra = append(extra, currents.Entry{Name: longName, Value: currents.StringValue("x")})
	for i := 0; i < 120; i++ {
		extra = append(extra, currents.Entry{Name: "future_" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Value: currents.IntValue(int64(i))})
	}
	ev := fixtureEvent(t, typ, map[string]any{"message_extras": long, "to_phone_number": nil}, extra...)
	b, res := mapOne(t, Options{}, ev)
	attrs := customAttrs(b)
	if len(attrs) != MaxCustomAttributes {
		t.Errorf("%d custom attributes, want %d", len(attrs), MaxCustomAttributes)
	}
	fields := 0
	for i := 0; i < ev.Len(); i++ {
		if name, v := ev.Field(i); !v.IsNull() && roleOf(name) == roleNone {
			fields++
		}
	}
	if want := fields + 1 - MaxCustomAttributes; res.AttributesTrimmed != want {
		t.Errorf("trimmed %d, want %d", res.AttributesTrimmed, want)
	}
	got := attrs["message_extras"].(string)
	if utf8.RuneCountInString(got) != MaxValueLength || !strings.HasPrefix(long, got) || res.ValuesTruncated != 1 {
		t.Errorf("message_extras: %d characters, truncations %d", utf8.RuneCountInString(got), res.ValuesTruncated)
	}
	if _, ok := attrs[longName[:MaxNameLength]]; !ok || res.NamesTruncated != 1 {
		t.Errorf("long name not truncated to %d (names truncated %d)", MaxNameLength, res.NamesTruncated)
	}
	// The first attributes in emission order are kept: source_request_id,
	// then the schema's fields.
	if attrs["source_request_id"] != ev.ID() || attrs["campaign_id"] == nil || attrs["future_ea"] != nil {
		t.Error("trimming did not keep the first attributes")
	}

	t.Run("event name", func(t *testing.T) {
		ev := fixtureEvent(t, "users.behaviors.CustomEvent", map[string]any{"name": strings.Repeat("N", 300)})
		b, res := mapOne(t, Options{}, ev)
		if n := len(eventData(b)["event_name"].(string)); n != MaxNameLength || res.NamesTruncated != 1 {
			t.Errorf("event_name %d characters, names truncated %d", n, res.NamesTruncated)
		}
	})
	t.Run("batch too large", func(t *testing.T) {
		var big []currents.Entry
		for i := 0; i < 60; i++ {
			big = append(big, currents.Entry{Name: "blob_" + string(rune('a'+i/26)) + string(rune('a'+i%26)), Value: currents.StringValue(strings.Repeat("\x01", 4000))})
		}
		m, _ := New(Options{Unmappable: UnmappableFail, Now: fixedNow})
		out, _, err := m.AppendBatch(nil, fixtureEvent(t, typ, nil, big...))
		var me *Error
		if !errors.As(err, &me) || me.Reason != ReasonTooLarge || len(out) != 0 {
			t.Fatalf("error %v, output %d bytes; want too_large and nothing", err, len(out))
		}
	})
}

func TestTruncateRunes(t *testing.T) {
	for _, c := range []struct {
		s    string
		max  int
		want string
		cut  bool
	}{
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"héllo", 2, "hé", true},
		{"日本語テキスト", 3, "日本語", true},
		{"a\xffb\xfec", 3, "a\xffb", true},
		{"😀😀😀😀", 4, "😀😀😀😀", false},
		{"😀😀😀😀", 3, "😀😀😀", true},
	} {
		got, cut := truncateRunes(c.s, c.max)
		if got != c.want || cut != c.cut {
			t.Errorf("truncateRunes(%q, %d) = %q, %v; want %q, %v", c.s, c.max, got, cut, c.want, c.cut)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "tab\tnewline\nreturn\rbell\x07nul\x00del\x7f",
		"ünïcödé 日本 😀", "bad \xff\xfe utf8 \xc3", "line sep \u2028 para sep \u2029",
		"<script>&</script>", strings.Repeat("0123456789abcdef", 9) + "\"", "1234567\"", "12345678\\9",
	} {
		out := appendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Errorf("%q encodes to invalid JSON %s: %v", s, out, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// Each bad byte becomes its own U+FFFD, as encoding/json decodes.
			var b strings.Builder
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				b.WriteRune(r)
				i += n
			}
			want = b.String()
		}
		if got != want {
			t.Errorf("%q round-trips to %q", s, got)
		}
	}
}

func TestEventName(t *testing.T) {
	for typ, want := range map[string]string{
		"users.messages.email.Open":              "Email Opens",
		"users.behaviors.Uninstall":              "",
		"users.behaviors.CustomEvent":            "",
		"users.behaviors.app.FirstSession":       "First Sessions",
		"users.messages.line.Click":              "LINE Click",
		"users.messages.sms.ShortLinkClick2":     "SMS Short Link Click2",
		"users.behaviors.location.NewLocation":   "Location New Location",
		"users.messages.rcs.InboundReceive":      "RCS Inbound Receive",
		"users.messages.newsfeedcard.Click":      "News Feed Card Click",
		"users.canvas.exit.MatchedAudience2":     "Canvas Exit Matched Audience2",
		"users.behaviors.app.NewsFeedImpression": "App News Feed Impression",
		"users.messages.email.AMPClick":          "Email AMP Click",
		"SingleSegment":                          "Single Segment",
		"users":                                  "Users",
		"":                                       "Unknown Event",
		"...":                                    "Unknown Event",
	} {
		if got := EventName(typ); got != want {
			t.Errorf("EventName(%q) = %q, want %q", typ, got, want)
		}
	}
}

func TestSessions(t *testing.T) {
	start, _ := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.app.SessionStart", nil))
	end, _ := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.app.SessionEnd", nil))
	sd, ed := eventData(start), eventData(end)
	if sd["session_id"] != ed["session_id"] || sd["session_uuid"] != fxSessionID || ed["session_uuid"] != fxSessionID {
		t.Errorf("start %v / end %v do not agree on the session", sd, ed)
	}
	if ed["session_duration_ms"] != 312500.0 || ed["session_start_unixtime_ms"] != float64(eventTime*1000-312500) {
		t.Errorf("end %v", ed)
	}
	if customAttrs(start)["session_id"] != fxSessionID {
		t.Error("Braze's session_id must stay as a custom attribute")
	}
	// A session id that is not a UUID gets a derived, stable one.
	odd, _ := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.app.SessionStart", map[string]any{"session_id": "sess-42"}))
	if u := eventData(odd)["session_uuid"].(string); !isUUID(u) || u != uuidV5(sessionNamespace, "sess-42") {
		t.Errorf("session_uuid %q", u)
	}
	// Unknown duration: session_duration_ms is required, so 0, and no start time.
	nodur, _ := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.app.SessionEnd", map[string]any{"duration": nil}))
	if d := eventData(nodur); d["session_duration_ms"] != 0.0 || d["session_start_unixtime_ms"] != nil {
		t.Errorf("no duration: %v", d)
	}
}

func TestCustomEventName(t *testing.T) {
	b, res := mapOne(t, Options{}, fixtureEvent(t, "users.behaviors.CustomEvent", map[string]any{"name": ""}))
	if eventData(b)["event_name"] != "Custom Event" || res.EventName != "Custom Event" {
		t.Errorf("empty name: %v", eventData(b)["event_name"])
	}
}

func TestConcurrentUse(t *testing.T) {
	m, err := New(Options{Now: fixedNow, AppPlatforms: map[string]string{fxAppID: "ios"}})
	if err != nil {
		t.Fatal(err)
	}
	types := []string{"users.messages.email.Open", "users.behaviors.CustomEvent", "users.messages.sms.Send", "users.behaviors.Uninstall"}
	want := map[string]string{}
	for _, typ := range types {
		out, _, err := m.AppendBatch(nil, fixtureEvent(t, typ, nil))
		if err != nil {
			t.Fatal(err)
		}
		want[typ] = string(out)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var buf []byte
			for i := 0; i < 200; i++ {
				typ := types[(g+i)%len(types)]
				out, _, err := m.AppendBatch(buf[:0], fixtureEvent(t, typ, nil))
				if err != nil || string(out) != want[typ] {
					t.Errorf("goroutine %d: %s differs under concurrency (%v)", g, typ, err)
					return
				}
				buf = out
				// Unknown types exercise the shared plan cache.
				if _, res, _ := m.AppendBatch(nil, currents.NewEvent("users.messages.x"+string(rune('a'+i%20))+".Send", nil)); res.Unmapped == nil {
					t.Error("an empty event must be unmappable")
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestRoleOf(t *testing.T) {
	for r := roleID; r < roleCount; r++ {
		if got := roleOf(roleFields[r]); got != r {
			t.Errorf("roleOf(%q) = %d, want %d", roleFields[r], got, r)
		}
	}
	for _, name := range []string{"", "i", "ids", "campaign_id", "Id", "user_ID", "card_id", "app_group_id", "times", "phone_number", "device_id_", "\xff"} {
		if got := roleOf(name); got != roleNone {
			t.Errorf("roleOf(%q) = %s, want none", name, roleFields[got])
		}
	}
}

// TestAppendStringPositions puts each kind of special byte at every position
// of strings around the 8-byte chunk size, where the fast paths hand over.
func TestAppendStringPositions(t *testing.T) {
	for n := 1; n <= 20; n++ {
		for p := 0; p < n; p++ {
			for _, special := range []string{`"`, `\`, "\n", "\x01", "é", "\u2028"} {
				s := strings.Repeat("a", p) + special + strings.Repeat("b", n-p-1)
				var got string
				if err := json.Unmarshal(appendString(nil, s), &got); err != nil || got != s {
					t.Fatalf("%q: round trip %q, %v", s, got, err)
				}
			}
			bad := strings.Repeat("a", p) + "\xff" + strings.Repeat("b", n-p-1)
			var got string
			if err := json.Unmarshal(appendString(nil, bad), &got); err != nil || got != strings.ToValidUTF8(bad, "\uFFFD") {
				t.Fatalf("%q: round trip %q, %v", bad, got, err)
			}
		}
	}
}
