package mparticle

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
)

// Feed is one of the four mParticle feed inputs of the Braze integration;
// each has its own server-to-server key and secret.
type Feed string

// The feeds, as package eventsapi names them.
const (
	FeedIOS     Feed = eventsapi.FeedIOS
	FeedAndroid Feed = eventsapi.FeedAndroid
	FeedWeb     Feed = eventsapi.FeedWeb
	FeedUnbound Feed = eventsapi.FeedUnbound
)

func parseFeed(s string) (Feed, bool) {
	if eventsapi.IsFeed(s) {
		return Feed(s), true
	}
	return "", false
}

// MissingIdentity policies: what happens to an event without
// external_user_id. Besides these two, "user_id:<identity type>" maps Braze's
// own user_id to that identity (e.g. "user_id:other").
const (
	MissingIdentityDrop = "drop"
	MissingIdentityFail = "fail"
	// MissingIdentityUserIDPrefix starts the third form, "user_id:<identity type>".
	MissingIdentityUserIDPrefix = "user_id:"
)

// DeviceIDMapping says where a Braze device_id goes in device_info.
type DeviceIDMapping string

// The device id mappings.
const (
	// DeviceIDBraze writes device_id as ios_idfv whatever the platform, as
	// Braze's hosted connector does.
	DeviceIDBraze DeviceIDMapping = "braze"
	// DeviceIDByPlatform writes it as ios_idfv on iOS and tvOS, android_uuid
	// on Android and Kindle, and leaves it out elsewhere.
	DeviceIDByPlatform DeviceIDMapping = "by_platform"
)

// UnknownTypes says what happens to event types outside the catalog.
type UnknownTypes string

// The unknown type policies.
const (
	// UnknownGeneric sends a custom event named from the type (see EventName).
	UnknownGeneric UnknownTypes = "generic"
	// UnknownDrop drops the event (reason unknown_type).
	UnknownDrop UnknownTypes = "drop"
	// UnknownFail fails the event with an error.
	UnknownFail UnknownTypes = "fail"
)

// Unmappable says what happens to an event that cannot be mapped: its data
// is at fault (a required field missing, of the wrong kind or invalid, no
// usable time, an identity that is not valid UTF-8, a batch over 128 KB).
// Failures a policy asks for (MissingIdentityFail, UnknownFail) are errors
// whatever this says.
type Unmappable string

// The unmappable policies.
const (
	// UnmappableDrop drops the event, its error's reason as the drop reason
	// (Result.Dropped) and the error in Result.Unmapped, for the caller to
	// count and log: one damaged event must not stop or loop a pipeline.
	UnmappableDrop Unmappable = "drop"
	// UnmappableFail returns the error, for callers that route failures to
	// a dead letter.
	UnmappableFail Unmappable = "fail"
)

// AttributeOptions lists fields to remove or hash before sending.
//
// Names are Currents field names (email_address, device_id...), custom
// attribute names as sent (card_id, source_request_id) or, for CustomEvent and
// Purchase, property names as flattened ("plan", "address.city"). An option
// applies wherever the value is sent: a custom attribute, an identity
// (external_user_id, email_address, user_id), the $mobile user attribute
// (to_phone_number, user_phone_number) or device_info (device_id,
// device_model, os_version, ad_id, platform, ad_tracking_enabled). Routing
// is never affected: the feed and the historical decision still see the
// original values.
type AttributeOptions struct {
	// Remove: these values are not sent at all (config: attributes.remove).
	Remove []string
	// Hash: these values are sent as the lowercase hex SHA-256 of their text
	// (config: attributes.hash). A hashed identity stays a stable key;
	// device_info fields that must be UUIDs, enums or booleans (device_id,
	// ad_id, platform, ad_tracking_enabled) are left out of device_info
	// instead, since a hash is none of those.
	Hash []string
}

// Options configure a Mapper. The zero Options are the defaults, which
// reproduce Braze's hosted connector. Each field names its config field.
type Options struct {
	// Environment of every batch (environment): production (default) or development.
	Environment Environment
	// IdentityKey is the identity external_user_id fills (identity); default
	// customer_id. Any of IdentityTypes.
	IdentityKey IdentityType
	// MissingIdentity (missing_identity): "drop" (default; the event is
	// dropped with reason no_identity), "fail" (an error) or
	// "user_id:<identity type>" (Braze's user_id becomes that identity; an
	// event with neither is dropped).
	MissingIdentity string
	// AppPlatforms maps a Braze app_id to its platform (app_platforms): ios,
	// android, web, tvos, kindle or roku. Used for uninstalls and the types
	// of AppIDFeedTypes, which carry app_id but no platform.
	AppPlatforms map[string]string
	// PlatformFeeds routes the platforms without a feed of their own
	// (platform_feeds): keys tvos, kindle, roku; values ios, android, web,
	// unbound. Defaults: tvos→ios, kindle→android, roku→unbound.
	PlatformFeeds map[string]Feed
	// AppIDFeedTypes are glob patterns (path.Match syntax, e.g.
	// "users.campaigns.*") of the types besides users.behaviors.Uninstall
	// that may take their feed from AppPlatforms (app_id_feed_types).
	AppIDFeedTypes []string
	// DeviceIDMapping (device_id_mapping): braze (default) or by_platform.
	DeviceIDMapping DeviceIDMapping
	// EventTypes, when not empty, keeps only the types matching one of these
	// glob patterns (event_types); others are dropped with reason excluded.
	EventTypes []string
	// ExcludeEventTypes drops the types matching one of these glob patterns
	// (exclude_event_types) with reason excluded.
	ExcludeEventTypes []string
	// UnknownTypes (unknown_event_types): generic (default), drop or fail.
	UnknownTypes UnknownTypes
	// Unmappable (unmappable): drop (default) or fail.
	Unmappable Unmappable
	// Attributes removes or hashes values before sending (attributes).
	Attributes AttributeOptions
	// Now returns the current time, for the historical decision; default time.Now.
	Now func() time.Time
}

// MaxFutureSkew is how far past the Mapper's clock an event time may be.
// Events happen before Braze exports them, so a later time is a wrong clock
// or a wrong unit (milliseconds); a day admits any time zone mistake and
// device clock skew. A time beyond it has reason invalid_time.
const MaxFutureSkew = 24 * time.Hour

// platform is a Braze platform value.
type platform uint8

const (
	platformNone platform = iota
	platformIOS
	platformAndroid
	platformWeb
	platformTVOS
	platformKindle
	platformRoku
	platformCount
)

// platformNames are Braze's spellings, indexed by platform.
var platformNames = [platformCount]string{"", "ios", "android", "web", "tvos", "kindle", "roku"}

// devicePlatforms are mParticle's device_info.platform values (the feed column of docs/mapping.md; doc.go states the rule).
var devicePlatforms = [platformCount]string{"", "iOS", "Android", "web", "tvOS", "Android", "roku"}

// parsePlatform reads a Braze platform value, ignoring ASCII case.
func parsePlatform(s string) platform {
	for p := platformIOS; p < platformCount; p++ {
		if strings.EqualFold(s, platformNames[p]) {
			return p
		}
	}
	return platformNone
}

// fieldPolicy is what the attribute options say about one name.
type fieldPolicy uint8

const (
	policyKeep fieldPolicy = iota
	policyRemove
	policyHash
)

// settings are validated Options.
type settings struct {
	env             Environment
	identity        IdentityType
	missing         string // MissingIdentityDrop or MissingIdentityFail, "" with userIDIdentity
	userIDIdentity  IdentityType
	appPlatforms    map[string]platform
	platformFeeds   [platformCount]Feed
	appIDFeedTypes  currents.TypePatterns
	deviceIDMapping DeviceIDMapping
	types           currents.TypeFilter
	unknown         UnknownTypes
	unmappable      Unmappable
	policies        map[string]fieldPolicy // nil when no attribute option is set
	now             func() time.Time
}

func (o *Options) settings() (*settings, error) {
	s := &settings{
		env:             o.Environment,
		identity:        o.IdentityKey,
		deviceIDMapping: o.DeviceIDMapping,
		unknown:         o.UnknownTypes,
		unmappable:      o.Unmappable,
		now:             o.Now,
	}
	if s.env == "" {
		s.env = Production
	}
	if s.env != Production && s.env != Development {
		return nil, fmt.Errorf("environment: %q is not production or development", o.Environment)
	}
	if s.identity == "" {
		s.identity = CustomerID
	}
	if !s.identity.Valid() {
		return nil, fmt.Errorf("identity: %q is not an mParticle identity type (%s)", o.IdentityKey, identityList())
	}
	switch m := o.MissingIdentity; {
	case m == "" || m == MissingIdentityDrop:
		s.missing = MissingIdentityDrop
	case m == MissingIdentityFail:
		s.missing = MissingIdentityFail
	case strings.HasPrefix(m, MissingIdentityUserIDPrefix):
		s.userIDIdentity = IdentityType(strings.TrimPrefix(m, MissingIdentityUserIDPrefix))
		if !s.userIDIdentity.Valid() {
			return nil, fmt.Errorf("missing_identity: %q names no mParticle identity type after %q (%s)",
				m, MissingIdentityUserIDPrefix, identityList())
		}
		if s.userIDIdentity == s.identity {
			return nil, fmt.Errorf("missing_identity: %q maps user_id to %s, which external_user_id already fills (identity)", m, s.identity)
		}
	default:
		return nil, fmt.Errorf("missing_identity: %q is not drop, fail or user_id:<identity type>", m)
	}

	s.appPlatforms = make(map[string]platform, len(o.AppPlatforms))
	for app, name := range o.AppPlatforms {
		p := parsePlatform(name)
		if p == platformNone {
			return nil, fmt.Errorf("app_platforms: app %q: %q is not ios, android, web, tvos, kindle or roku", app, name)
		}
		s.appPlatforms[app] = p
	}

	s.platformFeeds = [platformCount]Feed{
		platformIOS: FeedIOS, platformAndroid: FeedAndroid, platformWeb: FeedWeb,
		platformTVOS: FeedIOS, platformKindle: FeedAndroid, platformRoku: FeedUnbound,
	}
	for name, feed := range o.PlatformFeeds {
		p := parsePlatform(name)
		if p != platformTVOS && p != platformKindle && p != platformRoku {
			return nil, fmt.Errorf("platform_feeds: %q is not tvos, kindle or roku (ios, android and web have their own feeds)", name)
		}
		f, ok := parseFeed(string(feed))
		if !ok {
			return nil, fmt.Errorf("platform_feeds: %s: %q is not ios, android, web or unbound", name, feed)
		}
		s.platformFeeds[p] = f
	}

	var err error
	if s.appIDFeedTypes, err = currents.ParseTypePatterns("app_id_feed_types", o.AppIDFeedTypes); err != nil {
		return nil, err
	}
	if s.types, err = currents.NewTypeFilter(o.EventTypes, o.ExcludeEventTypes); err != nil {
		return nil, err
	}

	switch s.deviceIDMapping {
	case "":
		s.deviceIDMapping = DeviceIDBraze
	case DeviceIDBraze, DeviceIDByPlatform:
	default:
		return nil, fmt.Errorf("device_id_mapping: %q is not braze or by_platform", o.DeviceIDMapping)
	}
	switch s.unknown {
	case "":
		s.unknown = UnknownGeneric
	case UnknownGeneric, UnknownDrop, UnknownFail:
	default:
		return nil, fmt.Errorf("unknown_event_types: %q is not generic, drop or fail", o.UnknownTypes)
	}
	switch s.unmappable {
	case "":
		s.unmappable = UnmappableDrop
	case UnmappableDrop, UnmappableFail:
	default:
		return nil, fmt.Errorf("unmappable: %q is not drop or fail", o.Unmappable)
	}

	if err := s.setPolicies(o.Attributes); err != nil {
		return nil, err
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func (s *settings) setPolicies(a AttributeOptions) error {
	if len(a.Remove) == 0 && len(a.Hash) == 0 {
		return nil
	}
	s.policies = make(map[string]fieldPolicy, len(a.Remove)+len(a.Hash))
	for _, list := range []struct {
		option string
		names  []string
		policy fieldPolicy
	}{{"attributes.remove", a.Remove, policyRemove}, {"attributes.hash", a.Hash, policyHash}} {
		for _, name := range list.names {
			switch {
			case name == "":
				return fmt.Errorf("%s: empty name", list.option)
			case name == roleID.field() || name == roleTime.field():
				return fmt.Errorf("%s: %q cannot be changed: it is the event's deduplication key or timestamp", list.option, name)
			case name == roleExternalUserID.field() && list.policy == policyRemove:
				return fmt.Errorf("%s: %q cannot be removed: it is the user's identity (hash it instead)", list.option, name)
			}
			if prev, ok := s.policies[name]; ok && prev != list.policy {
				return fmt.Errorf("%s: %q is listed in both attributes.remove and attributes.hash", list.option, name)
			}
			s.policies[name] = list.policy
		}
	}
	return nil
}

// policy returns the attribute option for a name.
func (s *settings) policy(name string) fieldPolicy {
	if s.policies == nil {
		return policyKeep
	}
	return s.policies[name]
}

func identityList() string {
	names := make([]string, len(identityTypes))
	for i, t := range identityTypes {
		names[i] = string(t)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
