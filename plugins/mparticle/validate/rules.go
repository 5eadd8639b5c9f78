package validate

// This file holds mParticle's batch rules as Go tables: which fields exist, what
// JSON type each takes, which are required and which values an enum accepts. It is
// written from mParticle's published JSON Schema and OpenAPI file (see the package
// doc for where they disagree and what is accepted then).

// Limits from mParticle's Events API documentation and default service limits.
const (
	// MaxBatchBytes is the largest batch mParticle accepts (128 KB).
	MaxBatchBytes = 128 * 1024
	// MaxRequestBytes bounds a request: it must be strictly smaller (256 KB).
	MaxRequestBytes = 256 * 1024
	// MaxBatchesPerRequest is the most batches one bulk request may carry.
	MaxBatchesPerRequest = 100
	// MaxEventsPerBatch is mParticle's advice for events in one batch.
	MaxEventsPerBatch = 100
	// MaxCustomAttributes is the most custom attributes one event may carry.
	MaxCustomAttributes = 100
	// MaxUserAttributes is the most user attributes one batch may carry.
	MaxUserAttributes = 100
	// MaxNameLength bounds event names and attribute names, in characters.
	MaxNameLength = 256
	// MaxValueLength bounds attribute values, in characters.
	MaxValueLength = 4096
	// MaxUserAttributeListEntries bounds a list-valued user attribute.
	MaxUserAttributeListEntries = 1000
	// MaxUserAttributeListEntryLength bounds one entry of such a list, in characters.
	MaxUserAttributeListEntryLength = 512
)

// kind is the JSON shape a rule accepts.
type kind uint8

const (
	// kindScalar is mParticle's "String" definition: a string, number, boolean or null.
	kindScalar kind = iota
	// kindString is a JSON string; null is not allowed.
	kindString
	// kindInteger is an integral number or null.
	kindInteger
	// kindNumber is any number or null.
	kindNumber
	// kindBoolean is a boolean or null.
	kindBoolean
	// kindUUID is a UUID string (8-4-4-4-12 hex digits) or null.
	kindUUID
	// kindIP is an IPv4 or IPv6 address string or null.
	kindIP
	// kindObject is an object or null.
	kindObject
	// kindArray is an array or null.
	kindArray
	// kindStringOrArray is a scalar or an array of scalars (user attribute values).
	kindStringOrArray
)

// rule describes one JSON value.
type rule struct {
	kind kind
	// enum, when set, lists the accepted string values.
	enum []string
	// noun names the object in "Required <noun> field" messages.
	noun string
	// fields are an object's known properties.
	fields map[string]*rule
	// values, when set, applies to properties not in fields (maps).
	values *rule
	// closed rejects properties that are neither in fields nor covered by values.
	closed bool
	// required lists properties that must be present (and non-empty strings).
	required []string
	// items applies to each element of an array.
	items *rule
	// check, when set, runs after the generic checks for extra rules (limits,
	// event dispatch by event_type).
	check func(c *checker, path string, v any)
}

var (
	scalarRule  = &rule{kind: kindScalar}
	stringRule  = &rule{kind: kindString}
	integerRule = &rule{kind: kindInteger}
	numberRule  = &rule{kind: kindNumber}
	booleanRule = &rule{kind: kindBoolean}
	uuidRule    = &rule{kind: kindUUID}
	objectRule  = &rule{kind: kindObject}
	// scalarMapRule is an object whose values are all mParticle "String"s.
	scalarMapRule = &rule{kind: kindObject, values: scalarRule}
)

func enumRule(values ...string) *rule { return &rule{kind: kindString, enum: values} }

func fieldsOf(r *rule, names ...string) map[string]*rule {
	m := make(map[string]*rule, len(names))
	for _, n := range names {
		m[n] = r
	}
	return m
}

func merge(maps ...map[string]*rule) map[string]*rule {
	out := map[string]*rule{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// customEventTypes is the union of the custom_event_type lists of the JSON Schema
// (which adds "media") and the OpenAPI file.
var customEventTypes = []string{
	"navigation", "location", "search", "transaction", "user_content",
	"user_preference", "social", "other", "media",
}

// commerceEventTypes is the union of the commerce custom_event_type lists.
var commerceEventTypes = append(append([]string{}, customEventTypes...),
	"add_to_cart", "remove_from_cart", "checkout", "checkout_option", "click",
	"view_detail", "purchase", "refund", "promotion_view", "promotion_click",
	"add_to_wishlist", "remove_from_wishlist", "impression", "attribution",
	"consent_granted", "consent_denied",
)

// identityTypes are the user_identities keys (JSON Schema ∪ OpenAPI).
var identityTypes = []string{
	"other", "customer_id", "facebook", "twitter", "google", "microsoft", "yahoo",
	"email", "alias", "facebook_custom_audience_id",
	"other_id_2", "other_id_3", "other_id_4", "other_id_5", "other_id_6",
	"other_id_7", "other_id_8", "other_id_9", "other_id_10",
	"mobile_number", "phone_number_2", "phone_number_3",
}

var deviceInfoRule = &rule{
	kind:   kindObject,
	noun:   "device_info",
	closed: true,
	fields: merge(
		fieldsOf(scalarRule,
			"brand", "product", "device", "android_uuid", "device_manufacturer",
			"os_version", "device_model", "device_country", "locale_language",
			"locale_country", "network_country", "network_carrier", "network_code",
			"network_mobile_country_code", "build_identifier", "http_header_user_agent",
			"push_token", "cpu_architecture", "radio_access_technology",
			"bluetooth_version", "build_version_release", "amp_id",
			"microsoft_advertising_id", "microsoft_publisher_id"),
		fieldsOf(uuidRule,
			"ios_advertising_id", "ios_idfv", "android_advertising_id",
			"roku_advertising_id", "roku_publisher_id", "fire_advertising_id"),
		fieldsOf(integerRule, "screen_height", "screen_width", "screen_dpi", "timezone_offset"),
		// The OpenAPI file types att_timestamp_unixtime_ms as a number.
		fieldsOf(numberRule, "att_timestamp_unixtime_ms"),
		fieldsOf(booleanRule,
			"is_tablet", "push_notification_sound_enabled",
			"push_notification_vibrate_enabled", "supports_telephony", "has_nfc",
			"bluetooth_enabled", "limit_ad_tracking", "is_dst"),
		map[string]*rule{
			"platform": enumRule("iOS", "Android", "web", "desktop", "tvOS", "roku",
				"out_of_band", "alexa", "smart_tv", "fire_tv", "xbox"),
			"att_authorization_status": enumRule("authorized", "denied", "not_determined", "restricted"),
		},
	),
}

var applicationInfoRule = &rule{
	kind:   kindObject,
	noun:   "application_info",
	closed: true,
	fields: merge(
		fieldsOf(scalarRule, "application_name", "application_version",
			"application_build_number", "install_referrer", "package"),
		map[string]*rule{
			"os": {kind: kindScalar, enum: []string{"Unknown", "IOS", "Android",
				"WindowsPhone", "MobileWeb", "UnityIOS", "UnityAndroid", "Desktop", "TVOS",
				"Roku", "OutOfBand", "Alexa", "SmartTV", "FireTV", "Xbox"}},
			"apple_search_ads_attributes": {kind: kindObject, values: scalarMapRule},
		},
	),
}

var batchContextRule = &rule{
	kind: kindObject,
	noun: "context",
	fields: map[string]*rule{
		"data_plan": {
			kind:     kindObject,
			noun:     "data_plan",
			required: []string{"plan_id"},
			fields:   map[string]*rule{"plan_id": stringRule, "plan_version": integerRule},
		},
	},
}

// batchRule is the batch object (the body of /v2/events, an element of a bulk request).
var batchRule = &rule{
	kind:     kindObject,
	noun:     "batch",
	closed:   true,
	required: []string{"environment"},
	fields: merge(
		fieldsOf(scalarRule, "source_request_id", "api_key", "partner_identity",
			"sdk_version", "job_id"),
		fieldsOf(integerRule, "timestamp_unixtime_ms", "batch_id", "mpid",
			"origin_mpid", "schema_version"),
		map[string]*rule{
			"environment":             enumRule("development", "production", "unknown"),
			"events":                  {kind: kindArray, items: eventRule, check: checkEventCount},
			"device_info":             deviceInfoRule,
			"application_info":        applicationInfoRule,
			"user_attributes":         {kind: kindObject, values: &rule{kind: kindStringOrArray}, check: checkUserAttributes},
			"deleted_user_attributes": {kind: kindArray, items: stringRule},
			"user_identities":         {kind: kindObject, noun: "user_identities", closed: true, fields: fieldsOf(scalarRule, identityTypes...)},
			"api_keys":                {kind: kindArray, items: stringRule},
			"ip":                      {kind: kindIP},
			"integration_attributes":  {kind: kindObject, values: scalarMapRule},
			"context":                 batchContextRule,
			"batch_context":           batchContextRule,
			"source_info": {
				kind: kindObject, noun: "source_info", closed: true, required: []string{"channel"},
				fields: merge(
					fieldsOf(scalarRule, "partner", "replay_request_id", "replay_job_id"),
					map[string]*rule{
						"channel":       enumRule("native", "javascript", "pixel", "desktop", "partner", "server_to_server"),
						"is_historical": booleanRule,
					}),
			},
			"mp_deviceid": uuidRule,
			"attribution_info": {
				kind: kindObject, noun: "attribution_info", closed: true,
				required: []string{"service_provider", "publisher", "campaign"},
				fields:   fieldsOf(scalarRule, "service_provider", "publisher", "campaign"),
			},
			"consent_state": objectRule,
		},
	),
}

// eventRule is one element of events[]: the generic checks see an object, and
// checkEvent dispatches on event_type to the matching data rules.
var eventRule = &rule{kind: kindObject, check: checkEvent}

// commonDataFields are EventData's fields, shared by every event type.
var commonDataFields = merge(
	fieldsOf(integerRule, "timestamp_unixtime_ms", "event_id", "session_id",
		"session_start_unixtime_ms", "event_start_unixtime_ms", "event_num"),
	fieldsOf(uuidRule, "source_message_id", "session_uuid"),
	fieldsOf(booleanRule, "is_goal_defined", "is_main_thread"),
	fieldsOf(scalarRule, "lifetime_value_attribute_name", "data_connection_type",
		"view_controller", "canonical_name"),
	fieldsOf(objectRule, "device_current_state", "event_system_notification_info"),
	map[string]*rule{
		"lifetime_value_change": numberRule,
		"custom_attributes":     {kind: kindObject, values: scalarRule, check: checkCustomAttributes},
		"location": {
			kind: kindObject, noun: "location", closed: true,
			required: []string{"latitude", "longitude"},
			fields:   fieldsOf(numberRule, "latitude", "longitude", "accuracy"),
		},
	},
)

// eventDef is what one event_type adds to the common event data.
type eventDef struct {
	// closed: the event object may hold only event_type and data (the JSON Schema
	// sets additionalProperties false on these event types only).
	closed   bool
	required []string
	fields   map[string]*rule
}

var userIdentityRule = &rule{
	kind: kindObject, noun: "user identity", closed: true,
	required: []string{"identity_type", "identity", "timestamp_unixtime_ms"},
	fields: map[string]*rule{
		"identity_type":         enumRule(identityTypes...),
		"identity":              scalarRule,
		"timestamp_unixtime_ms": integerRule,
		"created_this_batch":    booleanRule,
	},
}

// eventDefs maps every accepted event_type to its data rules.
var eventDefs = map[string]eventDef{
	"custom_event": {
		closed:   true,
		required: []string{"event_name", "custom_event_type"},
		fields: map[string]*rule{
			"event_name":        {kind: kindString, check: checkName},
			"custom_event_type": enumRule(customEventTypes...),
			"custom_flags":      scalarMapRule,
		},
	},
	"session_start": {required: []string{"session_id"}},
	"session_end": {
		required: []string{"session_duration_ms"},
		fields:   map[string]*rule{"session_duration_ms": integerRule},
	},
	"screen_view": {
		required: []string{"screen_name"},
		fields: map[string]*rule{
			"screen_name":   {kind: kindString, check: checkName},
			"activity_type": scalarRule,
			"custom_flags":  scalarMapRule,
		},
	},
	"crash_report": {
		fields: merge(
			fieldsOf(scalarRule, "class_name", "severity", "message", "stack_trace",
				"topmost_context", "pl_crash_report_file_base64"),
			fieldsOf(integerRule, "ios_image_base_address", "ios_image_size", "session_number"),
			map[string]*rule{
				"exception_handled": booleanRule,
				"breadcrumbs":       {kind: kindArray},
			}),
	},
	"opt_out": {
		required: []string{"is_opted_out"},
		fields:   map[string]*rule{"is_opted_out": booleanRule},
	},
	"first_run": {closed: true},
	"push_registration": {
		required: []string{"register", "registration_token"},
		fields:   map[string]*rule{"register": booleanRule, "registration_token": stringRule},
	},
	"application_state_transition": {
		closed:   true,
		required: []string{"application_transition_type"},
		fields: merge(
			fieldsOf(booleanRule, "successfully_closed", "is_first_run", "is_upgrade"),
			fieldsOf(scalarRule, "push_notification_payload", "launch_referral"),
			map[string]*rule{
				"application_transition_type": enumRule("application_initialized",
					"application_exit", "application_background", "application_foreground"),
			}),
	},
	"push_message": {
		required: []string{"push_message_token", "push_message_type", "push_notification_payload"},
		fields: merge(
			fieldsOf(scalarRule, "push_message_token", "message", "network",
				"push_notification_payload", "action_identifier"),
			map[string]*rule{
				"push_message_type":     enumRule("sent", "received", "action"),
				"application_state":     {kind: kindScalar, enum: []string{"not_running", "background", "foreground"}},
				"push_message_behavior": {kind: kindScalar, enum: []string{"Received", "DirectOpen", "Read", "InfluencedOpen", "Displayed"}},
			}),
	},
	"network_performance": {
		required: []string{"url", "response_code"},
		fields: merge(
			fieldsOf(integerRule, "time_elapsed", "bytes_in", "bytes_out", "response_code"),
			map[string]*rule{"http_verb": stringRule, "url": stringRule, "data": scalarRule}),
	},
	"breadcrumb": {
		closed:   true,
		required: []string{"label"},
		fields:   map[string]*rule{"label": stringRule, "session_number": integerRule},
	},
	"profile": {
		required: []string{"previous_mpid", "current_mpid", "profile_event_type"},
		fields: map[string]*rule{
			"previous_mpid":      integerRule,
			"current_mpid":       integerRule,
			"profile_event_type": enumRule("signup", "login", "logout", "update", "delete"),
		},
	},
	"commerce_event": {
		closed: true,
		fields: merge(
			fieldsOf(objectRule, "product_action", "promotion_action", "shopping_cart"),
			fieldsOf(scalarRule, "currency_code", "screen_name"),
			map[string]*rule{
				"event_name":          {kind: kindScalar, check: checkName},
				"product_impressions": {kind: kindArray},
				"is_non_interactive":  booleanRule,
				"custom_event_type":   enumRule(commerceEventTypes...),
				"custom_flags":        scalarMapRule,
			}),
	},
	"user_attribute_change": {
		required: []string{"user_attribute_name", "new", "old"},
		fields: map[string]*rule{
			"user_attribute_name": stringRule,
			"new":                 {kind: kindStringOrArray},
			"old":                 {kind: kindStringOrArray},
			"deleted":             booleanRule,
			"is_new_attribute":    booleanRule,
		},
	},
	"user_identity_change": {
		required: []string{"new", "old"},
		fields:   map[string]*rule{"new": userIdentityRule, "old": userIdentityRule},
	},
	"uninstall": {},
	// In the EventType enum without an event definition: common data only.
	"pre_attribution": {},
	"push_reaction":   {},
}

// eventDataRules is eventDefs turned into ready data rules, built once.
var eventDataRules = func() map[string]*rule {
	out := make(map[string]*rule, len(eventDefs))
	for name, def := range eventDefs {
		out[name] = &rule{
			kind:     kindObject,
			noun:     "event data",
			required: def.required,
			fields:   merge(commonDataFields, def.fields),
		}
	}
	return out
}()

// eventTypeNames is the accepted event_type list, for enum messages.
var eventTypeNames = []string{
	"session_start", "session_end", "screen_view", "custom_event", "crash_report",
	"opt_out", "first_run", "pre_attribution", "push_registration",
	"application_state_transition", "push_message", "network_performance",
	"breadcrumb", "profile", "push_reaction", "commerce_event",
	"user_attribute_change", "user_identity_change", "uninstall",
}
