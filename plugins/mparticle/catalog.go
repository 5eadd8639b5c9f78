package mparticle

import (
	"strings"
)

// This file is the one table that says how each Currents event type becomes
// an mParticle event (docs/mapping.md, generated from this table). Everything per type lives in a row;
// the Mapper reads the row and never switches on type names.

// eventKind is the shape of mParticle event a Currents type becomes.
type eventKind uint8

const (
	// kindCustom: a custom_event named by the catalog row.
	kindCustom eventKind = iota
	// kindUninstall: an uninstall event (no name).
	kindUninstall
	// kindNamedCustom: a custom_event named by the event's `name` field, its
	// `properties` JSON expanded into attributes (users.behaviors.CustomEvent).
	kindNamedCustom
	// kindPurchase: a commerce_event with a purchase product_action.
	kindPurchase
	// kindSessionStart and kindSessionEnd: mParticle session events.
	kindSessionStart
	kindSessionEnd
)

// feedRule is the default feed decision of Braze's table (the feed column of docs/mapping.md).
// Whatever the rule, an event's own platform field wins when it has one, and
// the app_id map applies to byAppID types and to those the AppIDFeedTypes
// option names.
type feedRule uint8

const (
	// The zero rule, unbound: campaign, canvas, email, SMS, WhatsApp,
	// webhook... events.
	_ feedRule = iota
	// byPlatform: the event's platform field picks the feed.
	byPlatform
	// byAppID: the app_id → platform map picks the feed (uninstalls).
	byAppID
)

// role is the part a Currents field plays in the mapping. Every event's
// fields are read once, by name, into their roles; the mapping then works on
// roles, not on repeated lookups by name.
type role uint8

const (
	roleNone role = iota // an ordinary field: a custom attribute

	// Fields that never become custom attributes (the opening paragraph of docs/mapping.md): identities,
	// time, device data written to device_info, contact data written as
	// identities or user attributes.
	roleID
	roleUserID
	roleExternalUserID
	roleTime
	roleTimezone
	rolePlatform
	roleOSVersion
	roleDeviceModel
	roleAdID
	roleAdIDType
	roleAdTracking
	roleEmailAddress
	roleToPhoneNumber
	roleUserPhoneNumber

	// Fields that are custom attributes too, unless a rich mapping consumes them.
	roleDeviceID
	roleAppID
	roleName
	roleProperties
	roleProductID
	rolePrice
	roleCurrency
	roleSessionID
	roleDuration

	roleCount
)

// roleFields are the Currents field names of the roles.
var roleFields = [roleCount]string{
	roleID: "id", roleUserID: "user_id", roleExternalUserID: "external_user_id",
	roleTime: "time", roleTimezone: "timezone", rolePlatform: "platform",
	roleOSVersion: "os_version", roleDeviceModel: "device_model", roleAdID: "ad_id",
	roleAdIDType: "ad_id_type", roleAdTracking: "ad_tracking_enabled",
	roleEmailAddress: "email_address", roleToPhoneNumber: "to_phone_number",
	roleUserPhoneNumber: "user_phone_number", roleDeviceID: "device_id", roleAppID: "app_id",
	roleName: "name", roleProperties: "properties", roleProductID: "product_id",
	rolePrice: "price", roleCurrency: "currency", roleSessionID: "session_id",
	roleDuration: "duration",
}

// field returns the Currents field name of r.
func (r role) field() string { return roleFields[r] }

// excluded reports the roles whose fields are never custom attributes.
func (r role) excluded() bool { return r >= roleID && r <= roleUserPhoneNumber }

// roleOf returns the role of a field name; it runs for every field of every
// event. A switch rather than a map: Go compiles it to a search on length
// and content, a few times faster than a map lookup, and a name listed twice
// does not compile. Its names must be those of roleFields, which
// TestRoleOf checks.
func roleOf(name string) role {
	switch name {
	case "id":
		return roleID
	case "user_id":
		return roleUserID
	case "external_user_id":
		return roleExternalUserID
	case "time":
		return roleTime
	case "timezone":
		return roleTimezone
	case "platform":
		return rolePlatform
	case "os_version":
		return roleOSVersion
	case "device_model":
		return roleDeviceModel
	case "ad_id":
		return roleAdID
	case "ad_id_type":
		return roleAdIDType
	case "ad_tracking_enabled":
		return roleAdTracking
	case "email_address":
		return roleEmailAddress
	case "to_phone_number":
		return roleToPhoneNumber
	case "user_phone_number":
		return roleUserPhoneNumber
	case "device_id":
		return roleDeviceID
	case "app_id":
		return roleAppID
	case "name":
		return roleName
	case "properties":
		return roleProperties
	case "product_id":
		return roleProductID
	case "price":
		return rolePrice
	case "currency":
		return roleCurrency
	case "session_id":
		return roleSessionID
	case "duration":
		return roleDuration
	}
	return roleNone
}

// attrSourceRequestID is the custom attribute Braze's hosted connector
// writes with the event id; kept for compatibility (the opening paragraph of docs/mapping.md).
const attrSourceRequestID = "source_request_id"

// rename is a field that travels under another attribute name.
type rename struct{ from, to string }

// cardID: Braze's connector sends content_card_id as card_id (the opening paragraph of docs/mapping.md).
var cardID = []rename{{"content_card_id", "card_id"}}

// catalogEntry is one row of the catalog.
type catalogEntry struct {
	eventType string
	// name is the mParticle event_name ("" for events written without one).
	name string
	kind eventKind
	feed feedRule
	// email: email_address becomes the email identity (the email identity column of docs/mapping.md).
	email bool
	// mobile lists the fields whose first non-null value becomes the
	// $mobile user attribute, in order of preference.
	mobile []role
	// renames are fields that become custom attributes under another name.
	renames []rename
	// consumed are fields a rich mapping turns into event data; they are not
	// repeated as custom attributes.
	consumed []role
}

var (
	toPhone   = []role{roleToPhoneNumber}
	userPhone = []role{roleUserPhoneNumber}
)

// catalogRows lists the types of Braze's hosted mParticle connector
// (docs/mapping.md, names verbatim), then the richer mappings the package
// doc lists (doc.go), from hostedRows on.
var catalogRows = append(hostedRows[:len(hostedRows):len(hostedRows)], richerRows...)

// hostedRows are the types Braze's hosted connector maps.
var hostedRows = []catalogEntry{
	{eventType: "users.behaviors.Uninstall", kind: kindUninstall, feed: byAppID},
	{eventType: "users.behaviors.subscription.GlobalStateChange", name: "Global Subscription State Changes", email: true},
	{eventType: "users.behaviors.subscriptiongroup.StateChange", name: "Subscription Group State Changes", email: true},
	{eventType: "users.campaigns.Abort", name: "Campaign Aborts"},
	{eventType: "users.campaigns.Conversion", name: "Campaign Conversions"},
	{eventType: "users.campaigns.EnrollInControl", name: "Campaign Control Group Enrollments"},
	{eventType: "users.canvas.Abort", name: "Canvas Aborts"},
	{eventType: "users.canvas.Conversion", name: "Canvas Conversions"},
	{eventType: "users.canvas.Entry", name: "Canvas Entries"},
	{eventType: "users.canvas.exit.MatchedAudience", name: "Exit Matched Audiences"},
	{eventType: "users.canvas.exit.PerformedEvent", name: "Exit Performed Events"},
	{eventType: "users.canvas.experimentstep.Conversion", name: "Experiment Step Conversions"},
	{eventType: "users.canvas.experimentstep.SplitEntry", name: "Experiment Split Entries"},
	{eventType: "users.messages.contentcard.Abort", name: "Content Card Aborts", renames: cardID},
	{eventType: "users.messages.contentcard.Click", name: "Content Card Clicks", feed: byPlatform, renames: cardID},
	{eventType: "users.messages.contentcard.Dismiss", name: "Content Card Dismisses", feed: byPlatform, renames: cardID},
	{eventType: "users.messages.contentcard.Impression", name: "Content Card Impressions", feed: byPlatform, renames: cardID},
	{eventType: "users.messages.contentcard.Send", name: "Content Card Sends", renames: cardID},
	{eventType: "users.messages.email.Abort", name: "Email Aborts", email: true},
	{eventType: "users.messages.email.Bounce", name: "Email Bounces", email: true},
	{eventType: "users.messages.email.Click", name: "Email Clicks", email: true},
	{eventType: "users.messages.email.Delivery", name: "Email Deliveries", email: true},
	{eventType: "users.messages.email.MarkAsSpam", name: "Email Marks As Spam", email: true},
	{eventType: "users.messages.email.Open", name: "Email Opens", email: true},
	{eventType: "users.messages.email.Send", name: "Email Sends", email: true},
	{eventType: "users.messages.email.SoftBounce", name: "Email Soft Bounces", email: true},
	{eventType: "users.messages.email.Unsubscribe", name: "Email Unsubscribes", email: true},
	{eventType: "users.messages.inappmessage.Abort", name: "In-App Message Aborts", feed: byPlatform},
	{eventType: "users.messages.inappmessage.Click", name: "In-App Message Clicks", feed: byPlatform},
	{eventType: "users.messages.inappmessage.Impression", name: "In-App Message Impressions", feed: byPlatform},
	{eventType: "users.messages.pushnotification.Abort", name: "Push Notification Aborts", feed: byPlatform},
	{eventType: "users.messages.pushnotification.Bounce", name: "Push Notification Bounces", feed: byPlatform},
	{eventType: "users.messages.pushnotification.Open", name: "Push Notification Opens", feed: byPlatform},
	{eventType: "users.messages.pushnotification.Send", name: "Push Notification Sends", feed: byPlatform},
	{eventType: "users.messages.sms.Abort", name: "SMS Aborts", mobile: toPhone},
	{eventType: "users.messages.sms.CarrierSend", name: "SMS Carrier Sends", mobile: toPhone},
	{eventType: "users.messages.sms.Delivery", name: "SMS Deliveries", mobile: toPhone},
	{eventType: "users.messages.sms.DeliveryFailure", name: "SMS Delivery Failures", mobile: toPhone},
	{eventType: "users.messages.sms.InboundReceive", name: "SMS Inbound Received", mobile: userPhone},
	{eventType: "users.messages.sms.Rejection", name: "SMS Rejections", mobile: toPhone},
	{eventType: "users.messages.sms.Send", name: "SMS Sends", mobile: toPhone},
	{eventType: "users.messages.sms.ShortLinkClick", name: "SMS Short Link Clicks", mobile: userPhone},
	{eventType: "users.messages.webhook.Abort", name: "Webhook Aborts"},
	{eventType: "users.messages.webhook.Send", name: "Webhook Sends"},
	{eventType: "users.messages.whatsapp.Abort", name: "WhatsApp Aborts", mobile: toPhone},
	{eventType: "users.messages.whatsapp.Delivery", name: "WhatsApp Deliveries", mobile: toPhone},
	{eventType: "users.messages.whatsapp.Failure", name: "WhatsApp Failures", mobile: toPhone},
	{eventType: "users.messages.whatsapp.InboundReceive", name: "WhatsApp Inbound Received", mobile: userPhone},
	{eventType: "users.messages.whatsapp.Read", name: "WhatsApp Reads", mobile: toPhone},
	{eventType: "users.messages.whatsapp.Send", name: "WhatsApp Sends", mobile: toPhone},
}

// richerRows are the mappings beyond the hosted connector (listed in doc.go).
var richerRows = []catalogEntry{
	// These are SDK events: the platform field picks the feed.
	{eventType: "users.behaviors.CustomEvent", kind: kindNamedCustom, feed: byPlatform,
		consumed: []role{roleName, roleProperties}},
	{eventType: "users.behaviors.Purchase", kind: kindPurchase, feed: byPlatform,
		consumed: []role{roleProductID, rolePrice, roleCurrency, roleProperties}},
	{eventType: "users.behaviors.app.SessionStart", kind: kindSessionStart, feed: byPlatform},
	{eventType: "users.behaviors.app.SessionEnd", kind: kindSessionEnd, feed: byPlatform,
		consumed: []role{roleDuration}},
	// A first session is sent as a custom event rather than mParticle's
	// first_run: first_run means "app installed" to mParticle's install
	// attribution, which a Braze-observed session must not trigger twice
	// when mParticle's own SDK already reported the install.
	{eventType: "users.behaviors.app.FirstSession", name: "First Sessions", feed: byPlatform},
}

// catalogIndex finds a row by event type; built once, never written.
var catalogIndex = func() map[string]*catalogEntry {
	idx := make(map[string]*catalogEntry, len(catalogRows))
	for i := range catalogRows {
		idx[catalogRows[i].eventType] = &catalogRows[i]
	}
	return idx
}()

// genericEntry returns the row of a type the catalog does not know: a custom
// event with a derived name, and the roles any field may play (an email
// address is the email identity, a phone number the $mobile attribute, a
// content_card_id the card_id), so a new Braze type maps like its siblings.
func genericEntry(eventType string) catalogEntry {
	return catalogEntry{
		eventType: eventType,
		name:      derivedName(eventType),
		email:     true,
		mobile:    []role{roleToPhoneNumber, roleUserPhoneNumber},
		renames:   cardID,
	}
}

// EventName returns the mParticle event_name a Currents event type maps to:
// the catalog's name (e.g. "Email Opens"), or for a type outside the catalog
// a name derived from the type (see derivedName). It returns "" for the types
// mParticle receives without a fixed name: users.behaviors.Uninstall
// (an uninstall event), users.behaviors.app.SessionStart and SessionEnd
// (session events), users.behaviors.Purchase (a commerce event) and
// users.behaviors.CustomEvent (named by each event's own `name` field).
func EventName(eventType string) string {
	if e, ok := catalogIndex[eventType]; ok {
		return e.name
	}
	return derivedName(eventType)
}

// channelNames spells the type segments that plain title-casing would get
// wrong, so derived names read like the catalog's ("SMS", "In-App Message").
var channelNames = map[string]string{
	"sms": "SMS", "whatsapp": "WhatsApp", "pushnotification": "Push Notification",
	"inappmessage": "In-App Message", "contentcard": "Content Card",
	"newsfeedcard": "News Feed Card", "rcs": "RCS", "line": "LINE",
	"subscriptiongroup": "Subscription Group", "experimentstep": "Experiment Step",
	"campaigns": "Campaign", "featureflags": "Feature Flag",
}

// derivedName makes a readable event name from a type outside the catalog:
// the leading "users", "messages" and "behaviors" segments are dropped, the
// middle segments spelled as channel names (or title-cased), and the last
// one split at its capitals. Names are singular, unlike the catalog's:
//
//	users.messages.line.Click            → "LINE Click"
//	users.behaviors.location.NewLocation → "Location New Location"
//	users.messages.rcs.InboundReceive    → "RCS Inbound Receive"
//
// A type without dots is split at its capitals; an empty type gives
// "Unknown Event".
func derivedName(eventType string) string {
	segs := strings.Split(eventType, ".")
	for len(segs) > 1 && (segs[0] == "users" || segs[0] == "messages" || segs[0] == "behaviors") {
		segs = segs[1:]
	}
	var b strings.Builder
	for i, s := range segs {
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if i == len(segs)-1 {
			splitCamel(&b, s)
			continue
		}
		if n, ok := channelNames[strings.ToLower(s)]; ok {
			b.WriteString(n)
			continue
		}
		splitCamel(&b, strings.ToUpper(s[:1])+s[1:])
	}
	if b.Len() == 0 {
		return "Unknown Event"
	}
	return b.String()
}

// splitCamel writes s with a space before each capital that starts a word
// ("ShortLinkClick" → "Short Link Click", "SMSSend" → "SMS Send").
func splitCamel(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i > 0 && isUpper(c) && (!isUpper(s[i-1]) || (i+1 < len(s) && isLower(s[i+1]))) {
			b.WriteByte(' ')
		}
		if i == 0 && isLower(c) {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
