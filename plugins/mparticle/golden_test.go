package mparticle

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// goldenOptions are the options of the per-type golden cases: the defaults,
// the fixed clock, and the fixtures' app known as an iOS app.
func goldenOptions() Options {
	return Options{AppPlatforms: map[string]string{fxAppID: "ios"}, Now: fixedNow}
}

type goldenCase struct {
	name  string // golden file name without .json
	opts  Options
	event func(t testing.TB) currents.Event
}

func goldenCases() []goldenCase {
	var cases []goldenCase
	for _, typ := range schemas.Names() {
		cases = append(cases, goldenCase{name: typ, opts: goldenOptions(),
			event: func(t testing.TB) currents.Event { return fixtureEvent(t, typ, nil) }})
	}
	with := func(o func(*Options)) Options {
		opts := goldenOptions()
		o(&opts)
		return opts
	}
	return append(cases,
		goldenCase{"users.messages.email.Open-minimal", goldenOptions(),
			func(t testing.TB) currents.Event { return minimalEvent(t, "users.messages.email.Open") }},
		goldenCase{"users.behaviors.Purchase-minimal", goldenOptions(),
			func(t testing.TB) currents.Event { return minimalEvent(t, "users.behaviors.Purchase") }},
		goldenCase{"users.messages.pushnotification.Send-android", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.pushnotification.Send",
					map[string]any{"platform": "android", "ad_id_type": "google_ad_id", "ad_tracking_enabled": false})
			}},
		goldenCase{"users.messages.inappmessage.Click-web", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.inappmessage.Click",
					map[string]any{"platform": "web", "ad_id": nil, "ad_id_type": nil, "ad_tracking_enabled": nil})
			}},
		goldenCase{"users.behaviors.Uninstall-unmapped-app", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.behaviors.Uninstall", map[string]any{"app_id": "an-app-nobody-mapped"})
			}},
		// Braze's own sample files use placeholders for ids.
		goldenCase{"users.messages.pushnotification.Open-placeholder-ids", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.pushnotification.Open",
					map[string]any{"id": "id", "device_id": "device_id", "ad_id": "ad_id"})
			}},
		goldenCase{"users.messages.email.Open-future-fields", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.email.Open", nil,
					currents.Entry{Name: "ai_summary", Value: currents.StringValue("opened twice")},
					currents.Entry{Name: "open_count", Value: currents.IntValue(2)},
					currents.Entry{Name: "labels", Value: currents.ArrayValue([]currents.Value{currents.StringValue("x")})},
					currents.Entry{Name: "geo", Value: currents.MapValue([]currents.Entry{
						{Name: "city", Value: currents.StringValue("Boston")},
						{Name: "lat", Value: currents.FloatValue(42.36)}})})
			}},
		goldenCase{"users.messages.line.Click-unknown-type", goldenOptions(),
			func(t testing.TB) currents.Event {
				return currents.NewEvent("users.messages.line.Click", []currents.Entry{
					{Name: "id", Value: currents.StringValue(fixtureID("line"))},
					{Name: "user_id", Value: currents.StringValue(fxUserID)},
					{Name: "external_user_id", Value: currents.StringValue(fxExternalID)},
					{Name: "time", Value: currents.IntValue(eventTime)},
					{Name: "platform", Value: currents.StringValue("android")},
					{Name: "device_id", Value: currents.StringValue(fxDeviceID)},
					{Name: "to_phone_number", Value: currents.StringValue(fxPhone)},
					{Name: "email_address", Value: currents.StringValue(fxEmail)},
					{Name: "campaign_id", Value: currents.StringValue(fixtureHex("line/campaign"))},
					{Name: "line_user_id", Value: currents.StringValue("U4af4980629")},
					{Name: "url", Value: currents.StringValue("https://example.com/line")},
				})
			}},
		goldenCase{"users.messages.email.Click-hash-remove",
			with(func(o *Options) {
				o.Attributes = AttributeOptions{
					Hash:   []string{"email_address", "external_user_id", "url"},
					Remove: []string{"user_agent", "campaign_name", "device_model"},
				}
			}),
			func(t testing.TB) currents.Event { return fixtureEvent(t, "users.messages.email.Click", nil) }},
		goldenCase{"users.messages.whatsapp.InboundReceive-user_id-identity",
			with(func(o *Options) { o.MissingIdentity = "user_id:other" }),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.whatsapp.InboundReceive", map[string]any{"external_user_id": nil})
			}},
		goldenCase{"users.behaviors.CustomEvent-invalid-properties", goldenOptions(),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.behaviors.CustomEvent", map[string]any{"properties": `{"plan": gold}`})
			}},
		goldenCase{"users.behaviors.app.SessionStart-android-by_platform",
			with(func(o *Options) { o.DeviceIDMapping = DeviceIDByPlatform }),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.behaviors.app.SessionStart", map[string]any{"platform": "android"})
			}},
		goldenCase{"users.messages.pushnotification.Send-tvos-development-other_id_2",
			with(func(o *Options) {
				o.Environment = Development
				o.IdentityKey = "other_id_2"
				o.PlatformFeeds = map[string]Feed{"tvos": FeedUnbound}
			}),
			func(t testing.TB) currents.Event {
				return fixtureEvent(t, "users.messages.pushnotification.Send", map[string]any{"platform": "tvos"})
			}},
		goldenCase{"users.campaigns.Conversion-app_id-feed",
			with(func(o *Options) {
				o.AppPlatforms = map[string]string{fxAppID: "android"}
				o.AppIDFeedTypes = []string{"users.campaigns.*"}
			}),
			func(t testing.TB) currents.Event { return fixtureEvent(t, "users.campaigns.Conversion", nil) }},
	)
}

// TestGolden maps one realistic event per case and compares the exact batch
// with testdata/golden/<case>.json (stored indented for review; compared
// byte for byte once compacted). go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			ev := c.event(t)
			got, res, err := m.AppendBatch(nil, ev)
			if err != nil {
				t.Fatalf("map: %v", err)
			}
			if res.Dropped != "" {
				t.Fatalf("dropped: %s", res.Dropped)
			}
			checkBatch(t, got)
			seen[c.name+".json"] = true

			file := filepath.Join("testdata", "golden", c.name+".json")
			if *update {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, got, "", "  "); err != nil {
					t.Fatal(err)
				}
				pretty.WriteByte('\n')
				if err := os.WriteFile(file, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it, then review it)", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, want); err != nil {
				t.Fatalf("golden %s: %v", file, err)
			}
			if !bytes.Equal(got, compact.Bytes()) {
				t.Errorf("batch differs from %s\n got: %s\nwant: %s", file, got, compact.Bytes())
			}
		})
	}
	// A golden file nobody produces any more is a stale review artefact.
	entries, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] && !t.Failed() {
			t.Errorf("testdata/golden/%s has no test case", e.Name())
		}
	}
}

// checkBatch asserts what every produced batch must be: valid JSON and valid
// under mParticle's rules.
func checkBatch(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var batch map[string]any
	if err := json.Unmarshal(raw, &batch); err != nil {
		t.Fatalf("batch is not valid JSON: %v\n%s", err, raw)
	}
	if err := validate.Batch(raw); err != nil {
		t.Fatalf("batch breaks mParticle's rules: %v\n%s", err, raw)
	}
	return batch
}

// TestCatalogFacts checks, for every catalog type mapped with the defaults,
// the facts docs/mapping.md states, independently of the golden files.
func TestCatalogFacts(t *testing.T) {
	for _, typ := range schemas.Names() {
		t.Run(typ, func(t *testing.T) {
			ev := fixtureEvent(t, typ, nil)
			m, err := New(goldenOptions())
			if err != nil {
				t.Fatal(err)
			}
			raw, res, err := m.AppendBatch(nil, ev)
			if err != nil {
				t.Fatal(err)
			}
			b := checkBatch(t, raw)
			id := ev.ID()

			if b["schema_version"] != 2.0 || b["environment"] != "production" {
				t.Errorf("envelope: schema_version %v environment %v", b["schema_version"], b["environment"])
			}
			if b["source_request_id"] != id {
				t.Errorf("source_request_id = %v, want the event id %s", b["source_request_id"], id)
			}
			ids := b["user_identities"].(map[string]any)
			if ids["customer_id"] != fxExternalID {
				t.Errorf("customer_id = %v", ids["customer_id"])
			}
			_, hasEmail := ev.StringField("email_address")
			wantEmail := hasEmail && (strings.HasPrefix(typ, "users.messages.email.") ||
				strings.HasPrefix(typ, "users.behaviors.subscription"))
			if got := ids["email"] != nil; got != wantEmail {
				t.Errorf("email identity present = %v, want %v", got, wantEmail)
			}
			if wantEmail && ids["email"] != fxEmail {
				t.Errorf("email identity = %v", ids["email"])
			}
			if len(ids) != 1+btoi(wantEmail) {
				t.Errorf("identities %v", ids)
			}

			_, hasTo := ev.StringField("to_phone_number")
			_, hasUser := ev.StringField("user_phone_number")
			messaging := strings.HasPrefix(typ, "users.messages.sms.") || strings.HasPrefix(typ, "users.messages.whatsapp.")
			wantMobile := messaging && (hasTo || hasUser)
			ua, _ := b["user_attributes"].(map[string]any)
			if got := ua["$mobile"] != nil; got != wantMobile {
				t.Errorf("$mobile present = %v, want %v", got, wantMobile)
			}
			if wantMobile && ua["$mobile"] != fxPhone {
				t.Errorf("$mobile = %v", ua["$mobile"])
			}

			events := b["events"].([]any)
			if len(events) != 1 {
				t.Fatalf("%d events", len(events))
			}
			e := events[0].(map[string]any)
			data := e["data"].(map[string]any)
			wantType := EventTypeCustom
			if rt, ok := richTypes[typ]; ok {
				wantType = rt
			} else if typ == "users.behaviors.Uninstall" {
				wantType = EventTypeUninstall
			}
			if e["event_type"] != string(wantType) {
				t.Errorf("event_type = %v, want %s", e["event_type"], wantType)
			}
			if name, hosted := hostedTypes[typ]; hosted && name != "" {
				if data["event_name"] != name || data["custom_event_type"] != "other" {
					t.Errorf("event_name %v custom_event_type %v, want %q other", data["event_name"], data["custom_event_type"], name)
				}
			}
			if wantType != EventTypeCustom && data["event_name"] != nil {
				t.Errorf("%s has event_name %v", wantType, data["event_name"])
			}
			if data["timestamp_unixtime_ms"] != float64(eventTime*1000) {
				t.Errorf("timestamp_unixtime_ms = %v", data["timestamp_unixtime_ms"])
			}
			if data["source_message_id"] != id {
				t.Errorf("source_message_id = %v, want %s", data["source_message_id"], id)
			}

			attrs := data["custom_attributes"].(map[string]any)
			if attrs["source_request_id"] != id {
				t.Errorf("custom attribute source_request_id = %v, want %s", attrs["source_request_id"], id)
			}
			for _, f := range excludedFields {
				if _, ok := attrs[f]; ok {
					t.Errorf("excluded field %s is a custom attribute", f)
				}
			}
			if _, ok := attrs["content_card_id"]; ok {
				t.Error("content_card_id not renamed")
			}
			ct, _ := schemas.Lookup(typ)
			for _, f := range ct.Fields {
				name := f.Name
				if name == "content_card_id" {
					name = "card_id"
				}
				_, sent := attrs[name]
				want := !slices.Contains(excludedFields, f.Name) && !slices.Contains(catalogIndex[typ].consumed, roleOf(f.Name))
				if sent != want {
					t.Errorf("field %s sent as custom attribute = %v, want %v", f.Name, sent, want)
				}
			}

			di, _ := b["device_info"].(map[string]any)
			if _, ok := ev.StringField("device_id"); ok && di["ios_idfv"] != fxDeviceID {
				t.Errorf("ios_idfv = %v, want device_id", di["ios_idfv"])
			}
			wantFeed := FeedUnbound
			if _, ok := ev.StringField("platform"); ok {
				wantFeed = FeedIOS
				if di["platform"] != "iOS" {
					t.Errorf("device_info.platform = %v", di["platform"])
				}
			}
			if typ == "users.behaviors.Uninstall" {
				wantFeed = FeedIOS // the fixture app is mapped to ios
			}
			if res.Feed != wantFeed {
				t.Errorf("feed = %s, want %s", res.Feed, wantFeed)
			}
			if _, ok := ev.StringField("ad_id"); ok {
				if di["ios_advertising_id"] != fxAdID || di["limit_ad_tracking"] != false {
					t.Errorf("ad id %v limit_ad_tracking %v", di["ios_advertising_id"], di["limit_ad_tracking"])
				}
			}
			if res.User != fxExternalID || res.Identity != CustomerID || res.Historical || res.SourceMessageID != id {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCatalogCoversContract checks the catalog against the hosted connector's table and the richer mappings of doc.go
// and the reference field lists: every hosted type with its name, the rich
// types, and a platform feed rule exactly where the type has a platform field.
func TestCatalogCoversContract(t *testing.T) {
	if len(catalogRows) != len(hostedTypes)+len(richTypes) {
		t.Errorf("catalog has %d rows, want %d", len(catalogRows), len(hostedTypes)+len(richTypes))
	}
	for typ, name := range hostedTypes {
		e, ok := catalogIndex[typ]
		if !ok {
			t.Errorf("%s missing", typ)
			continue
		}
		if e.name != name || EventName(typ) != name {
			t.Errorf("%s: name %q, want %q", typ, e.name, name)
		}
	}
	for _, e := range catalogRows {
		ct, ok := schemas.Lookup(e.eventType)
		if !ok {
			t.Errorf("%s is not a known Currents type", e.eventType)
			continue
		}
		_, hasPlatform := ct.Field("platform")
		if (e.feed == byPlatform) != hasPlatform {
			t.Errorf("%s: feed rule %d, platform field %v", e.eventType, e.feed, hasPlatform)
		}
		_, hasEmail := ct.Field("email_address")
		if e.email != hasEmail {
			t.Errorf("%s: email identity %v, email_address field %v", e.eventType, e.email, hasEmail)
		}
	}
}
