package mparticle

import (
	"crypto/sha1"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/schemas"
)

// Fixed clock of the tests: events happen at eventTime, an hour before now.
const eventTime = 1793527200 // 2026-11-01T10:00:00Z

var testNow = time.Unix(eventTime+3600, 0)

func fixedNow() time.Time { return testNow }

// Realistic values of the fixtures, shared by the assertions.
const (
	fxUserID     = "5f3a9c1e2b7d4a0012345678"
	fxExternalID = "user-000123"
	fxEmail      = "jane.doe@example.com"
	fxPhone      = "+15555550123"
	fxDeviceID   = "c5a1e0f2-7b3d-4e8a-9f61-2d4c8b7a9e03"
	fxAdID       = "8d4f2a61-3c5b-4e7d-a9f0-1b2c3d4e5f60"
	fxAppID      = "3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7"
	fxAppGroupID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	fxSessionID  = "0b6f2c1d-9e8a-4b7c-8d6e-5f4a3b2c1d0e"
	fxProperties = `{"plan":"gold","seats":3,"trial":false,"ratio":0.25,"address":{"city":"Berlin","zip":"10115"},"tags":["a","b"],"note":null}`
)

// fixtureID is a stable UUID per fixture, shaped like Braze's event ids.
func fixtureID(seed string) string {
	sum := sha1.Sum([]byte(seed))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// fixtureHex is a stable 24-hex id per name, shaped like Braze's object ids.
func fixtureHex(seed string) string {
	sum := sha1.Sum([]byte(seed))
	return fmt.Sprintf("%x", sum[:12])
}

// fixtureValue is a realistic value of a field, chosen by its name the way
// Braze fills it.
func fixtureValue(eventType string, f schemas.Field) currents.Value {
	switch f.Name {
	case "id":
		return currents.StringValue(fixtureID(eventType))
	case "user_id":
		return currents.StringValue(fxUserID)
	case "external_user_id":
		return currents.StringValue(fxExternalID)
	case "time":
		return currents.IntValue(eventTime)
	case "timezone":
		return currents.StringValue("America/New_York")
	case "email_address":
		return currents.StringValue(fxEmail)
	case "to_phone_number", "user_phone_number", "phone_number":
		return currents.StringValue(fxPhone)
	case "from_phone_number":
		return currents.StringValue("+15555550199")
	case "inbound_phone_number":
		return currents.StringValue("+15555550100")
	case "platform":
		return currents.StringValue("ios")
	case "os_version":
		return currents.StringValue("iOS 17.4")
	case "device_model":
		return currents.StringValue("iPhone15,2")
	case "device_id":
		return currents.StringValue(fxDeviceID)
	case "ad_id":
		return currents.StringValue(fxAdID)
	case "ad_id_type":
		return currents.StringValue("ios_idfa")
	case "ad_tracking_enabled":
		return currents.BoolValue(true)
	case "app_id":
		return currents.StringValue(fxAppID)
	case "app_group_id":
		return currents.StringValue(fxAppGroupID)
	case "session_id":
		return currents.StringValue(fxSessionID)
	case "name":
		return currents.StringValue("Added To Cart")
	case "properties":
		if strings.HasSuffix(eventType, "Purchase") {
			return currents.StringValue(`{"color":"red","gift":true}`)
		}
		return currents.StringValue(fxProperties)
	case "product_id":
		return currents.StringValue("sku-1042")
	case "price":
		return currents.FloatValue(float64(float32(9.99))) // Avro float
	case "currency":
		return currents.StringValue("USD")
	case "duration":
		return currents.FloatValue(float64(float32(312.5)))
	case "url":
		return currents.StringValue("https://example.com/spring?utm_source=braze")
	case "short_url":
		return currents.StringValue("https://brz.ai/x1y2z3")
	case "user_agent":
		return currents.StringValue("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)")
	case "sending_ip":
		return currents.StringValue("192.0.2.10")
	case "message_extras":
		return currents.StringValue(`{"offer":"SPRING20"}`)
	case "abort_log":
		return currents.StringValue("user not subscribed")
	case "abort_type":
		return currents.StringValue("not_subscribed")
	case "subscription_status":
		return currents.StringValue("Subscribed")
	case "language":
		return currents.StringValue("en")
	case "country":
		return currents.StringValue("US")
	case "gender":
		return currents.StringValue("F")
	case "channel":
		return currents.StringValue("email")
	case "action":
		return currents.StringValue("Received")
	case "message_body":
		return currents.StringValue("YES")
	case "bounce_reason":
		return currents.StringValue("550 5.1.1 mailbox unavailable")
	case "esp":
		return currents.StringValue("sendgrid")
	case "from_domain":
		return currents.StringValue("mail.example.com")
	case "version":
		return currents.StringValue("3")
	case "resolution":
		return currents.StringValue("1170x2532")
	case "carrier":
		return currents.StringValue("Example Mobile")
	case "browser":
		return currents.StringValue("Safari")
	case "bsuid":
		return currents.StringValue("US.13491208655302741918")
	case "button_action_type":
		return currents.StringValue("URI")
	case "button_string":
		return currents.StringValue("Shop now")
	case "category":
		return currents.StringValue("marketing")
	case "channel_identifier":
		return currents.StringValue(fxEmail)
	case "conversion_behavior":
		return currents.StringValue(`{"type":"opens_app"}`)
	case "device_class":
		return currents.StringValue("mobile")
	case "device_os":
		return currents.StringValue("iOS")
	case "error":
		return currents.StringValue("Unreachable destination handset")
	case "flow_response_json":
		return currents.StringValue(`{"rating":"5"}`)
	case "in_reply_to":
		return currents.StringValue("wamid.HBgLMTU1NTU1NTAxMjM=")
	case "ip_pool":
		return currents.StringValue("marketing")
	case "link_alias":
		return currents.StringValue("hero_cta")
	case "locale_key":
		return currents.StringValue("en-US")
	case "machine_open":
		return currents.StringValue("true")
	case "mailbox_provider":
		return currents.StringValue("Gmail")
	case "provider_error_code":
		return currents.StringValue("30003")
	case "provider_error_title":
		return currents.StringValue("Message undeliverable")
	case "push_token":
		return currents.StringValue("f0e1d2c3b4a5968778695a4b3c2d1e0f")
	case "quick_reply_text":
		return currents.StringValue("Yes please")
	case "sdk_version":
		return currents.StringValue("10.2.0")
	case "state_change_source":
		return currents.StringValue("SDK")
	}
	switch f.Type {
	case schemas.Int, schemas.Long:
		return currents.IntValue(2)
	case schemas.Boolean:
		return currents.BoolValue(false)
	case schemas.Float:
		return currents.FloatValue(1.5)
	case schemas.StringArray, schemas.NullableStringArray:
		return currents.ArrayValue([]currents.Value{currents.StringValue("https://example.com/a.jpg")})
	}
	switch {
	case strings.HasSuffix(f.Name, "_name"):
		return currents.StringValue("Spring Sale " + strings.TrimSuffix(f.Name, "_name"))
	case strings.HasSuffix(f.Name, "_id"):
		return currents.StringValue(fixtureHex(eventType + "/" + f.Name))
	}
	return currents.StringValue(f.Name + " value")
}

// fixtureEvent builds a realistic event of a catalog type with every field
// populated, in writer schema order; edit changes fields (nil deletes the
// value to null), extra appends fields a future schema might add.
func fixtureEvent(t testing.TB, eventType string, edit map[string]any, extra ...currents.Entry) currents.Event {
	t.Helper()
	ct, ok := schemas.Lookup(eventType)
	if !ok {
		t.Fatalf("catalog has no type %s", eventType)
	}
	entries := make([]currents.Entry, 0, len(ct.Fields)+len(extra))
	for _, f := range ct.Fields {
		v := fixtureValue(eventType, f)
		if x, ok := edit[f.Name]; ok {
			v = anyValue(x)
		}
		entries = append(entries, currents.Entry{Name: f.Name, Value: v})
	}
	entries = append(entries, extra...)
	return currents.NewEvent(eventType, entries)
}

// minimalEvent keeps only the required fields of a type (and external_user_id):
// every optional field is null.
func minimalEvent(t testing.TB, eventType string) currents.Event {
	t.Helper()
	ct, _ := schemas.Lookup(eventType)
	edit := map[string]any{}
	for _, f := range ct.Fields {
		if f.Optional && f.Name != "external_user_id" {
			edit[f.Name] = nil
		}
	}
	return fixtureEvent(t, eventType, edit)
}

func anyValue(x any) currents.Value {
	switch v := x.(type) {
	case nil:
		return currents.Null
	case currents.Value:
		return v
	case string:
		return currents.StringValue(v)
	case int:
		return currents.IntValue(int64(v))
	case int64:
		return currents.IntValue(v)
	case float64:
		return currents.FloatValue(v)
	case bool:
		return currents.BoolValue(v)
	}
	panic(fmt.Sprintf("fixture value %T", x))
}

// hostedTypes is docs/mapping.md's hosted-connector rows, written out again here (not read from the
// catalog) so the tests check the catalog against the contract.
var hostedTypes = map[string]string{
	"users.behaviors.Uninstall":                      "",
	"users.behaviors.subscription.GlobalStateChange": "Global Subscription State Changes",
	"users.behaviors.subscriptiongroup.StateChange":  "Subscription Group State Changes",
	"users.campaigns.Abort":                          "Campaign Aborts",
	"users.campaigns.Conversion":                     "Campaign Conversions",
	"users.campaigns.EnrollInControl":                "Campaign Control Group Enrollments",
	"users.canvas.Abort":                             "Canvas Aborts",
	"users.canvas.Conversion":                        "Canvas Conversions",
	"users.canvas.Entry":                             "Canvas Entries",
	"users.canvas.exit.MatchedAudience":              "Exit Matched Audiences",
	"users.canvas.exit.PerformedEvent":               "Exit Performed Events",
	"users.canvas.experimentstep.Conversion":         "Experiment Step Conversions",
	"users.canvas.experimentstep.SplitEntry":         "Experiment Split Entries",
	"users.messages.contentcard.Abort":               "Content Card Aborts",
	"users.messages.contentcard.Click":               "Content Card Clicks",
	"users.messages.contentcard.Dismiss":             "Content Card Dismisses",
	"users.messages.contentcard.Impression":          "Content Card Impressions",
	"users.messages.contentcard.Send":                "Content Card Sends",
	"users.messages.email.Abort":                     "Email Aborts",
	"users.messages.email.Bounce":                    "Email Bounces",
	"users.messages.email.Click":                     "Email Clicks",
	"users.messages.email.Delivery":                  "Email Deliveries",
	"users.messages.email.MarkAsSpam":                "Email Marks As Spam",
	"users.messages.email.Open":                      "Email Opens",
	"users.messages.email.Send":                      "Email Sends",
	"users.messages.email.SoftBounce":                "Email Soft Bounces",
	"users.messages.email.Unsubscribe":               "Email Unsubscribes",
	"users.messages.inappmessage.Abort":              "In-App Message Aborts",
	"users.messages.inappmessage.Click":              "In-App Message Clicks",
	"users.messages.inappmessage.Impression":         "In-App Message Impressions",
	"users.messages.pushnotification.Abort":          "Push Notification Aborts",
	"users.messages.pushnotification.Bounce":         "Push Notification Bounces",
	"users.messages.pushnotification.Open":           "Push Notification Opens",
	"users.messages.pushnotification.Send":           "Push Notification Sends",
	"users.messages.sms.Abort":                       "SMS Aborts",
	"users.messages.sms.CarrierSend":                 "SMS Carrier Sends",
	"users.messages.sms.Delivery":                    "SMS Deliveries",
	"users.messages.sms.DeliveryFailure":             "SMS Delivery Failures",
	"users.messages.sms.InboundReceive":              "SMS Inbound Received",
	"users.messages.sms.Rejection":                   "SMS Rejections",
	"users.messages.sms.Send":                        "SMS Sends",
	"users.messages.sms.ShortLinkClick":              "SMS Short Link Clicks",
	"users.messages.webhook.Abort":                   "Webhook Aborts",
	"users.messages.webhook.Send":                    "Webhook Sends",
	"users.messages.whatsapp.Abort":                  "WhatsApp Aborts",
	"users.messages.whatsapp.Delivery":               "WhatsApp Deliveries",
	"users.messages.whatsapp.Failure":                "WhatsApp Failures",
	"users.messages.whatsapp.InboundReceive":         "WhatsApp Inbound Received",
	"users.messages.whatsapp.Read":                   "WhatsApp Reads",
	"users.messages.whatsapp.Send":                   "WhatsApp Sends",
}

// richTypes are the richer mappings of doc.go and the mParticle event type each becomes.
var richTypes = map[string]EventType{
	"users.behaviors.CustomEvent":      EventTypeCustom,
	"users.behaviors.Purchase":         EventTypeCommerce,
	"users.behaviors.app.SessionStart": EventTypeSessionStart,
	"users.behaviors.app.SessionEnd":   EventTypeSessionEnd,
	"users.behaviors.app.FirstSession": EventTypeCustom,
}

// excludedFields is the list in docs/mapping.md's opening paragraph of fields never sent as custom attributes.
var excludedFields = []string{
	"id", "user_id", "external_user_id", "time", "timezone", "platform", "os_version",
	"device_model", "ad_id", "ad_id_type", "ad_tracking_enabled", "email_address",
	"to_phone_number", "user_phone_number", "media_urls", "suspected_bot_click_reason",
}
