package mparticle

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/benthosdev/benthos/v4/public/bloblang"
	"github.com/benthosdev/benthos/v4/public/service"

	mapping "github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
)

// The mapping options: each is defined once, in ctmOptions, and the
// currents_to_mparticle processor's config fields, the Bloblang methods'
// parameters and both parsers are made from that one table. The methods
// parse their arguments with a config spec of the same fields, so names,
// kinds and defaults cannot drift apart.

// Field names of the mapping options.
const (
	ctmFieldEnvironment       = "environment"
	ctmFieldIdentity          = "identity"
	ctmFieldMissingIdentity   = "missing_identity"
	ctmFieldAppPlatforms      = "app_platforms"
	ctmFieldPlatformFeeds     = "platform_feeds"
	ctmFieldAppIDFeedTypes    = "app_id_feed_types"
	ctmFieldDeviceIDMapping   = "device_id_mapping"
	ctmFieldEventTypes        = "event_types"
	ctmFieldExcludeEventTypes = "exclude_event_types"
	ctmFieldUnknownEventTypes = "unknown_event_types"
	ctmFieldUnmappable        = "unmappable"
	ctmFieldAttributes        = "attributes"
	ctmFieldAttributesRemove  = "remove"
	ctmFieldAttributesHash    = "hash"
)

// ctmKind is the config kind of an option.
type ctmKind uint8

const (
	ctmString     ctmKind = iota // a string
	ctmEnum                      // one of enum (or of the keys of annotated)
	ctmStringMap                 // an object of strings
	ctmStringList                // an array of strings
	ctmObject                    // an object of the children
)

// ctmOption is one mapping option.
type ctmOption struct {
	name        string
	kind        ctmKind
	description string
	def         any
	examples    []any
	enum        []string          // ctmEnum: the values, in order
	annotated   map[string]string // ctmEnum: the values with what each does, instead of enum
	advanced    bool
	children    []ctmOption // ctmObject
	// feed: the mparticle_feed method takes it too, as it decides the feed.
	feed bool
	// bloblDefault and bloblDescription, when set, replace def and
	// description for the Bloblang methods (only unmappable: a method has
	// no metric or log to count a drop in).
	bloblDefault     any
	bloblDescription string
	// set copies the parsed option into the Options; nil for children,
	// which their parent's set reads.
	set func(conf *service.ParsedConfig, o *mapping.Options) error
}

// ctmPlatformFeedDefaults are the feeds of the platforms without a feed of
// their own, as mapping.Options documents them.
var ctmPlatformFeedDefaults = map[string]any{"tvos": string(mapping.FeedIOS), "kindle": string(mapping.FeedAndroid), "roku": string(mapping.FeedUnbound)}

// ctmOptions are the mapping options, in the order the docs list them.
var ctmOptions = func() []ctmOption {
	identities := make([]string, 0, len(mapping.IdentityTypes()))
	for _, t := range mapping.IdentityTypes() {
		identities = append(identities, string(t))
	}
	return []ctmOption{
		{
			name: ctmFieldEnvironment, kind: ctmEnum,
			enum:        []string{string(mapping.Production), string(mapping.Development)},
			description: "The `environment` of every batch.",
			def:         string(mapping.Production),
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				s, err := conf.FieldString(ctmFieldEnvironment)
				o.Environment = mapping.Environment(s)
				return err
			},
		},
		{
			name: ctmFieldIdentity, kind: ctmEnum, enum: identities,
			description: "The mParticle identity that Braze's `external_user_id` fills. Braze documents it as `customerid`; mParticle's schema spells it `customer_id`.",
			def:         string(mapping.CustomerID),
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				s, err := conf.FieldString(ctmFieldIdentity)
				o.IdentityKey = mapping.IdentityType(s)
				return err
			},
		},
		{
			name: ctmFieldMissingIdentity, kind: ctmString,
			description: "What happens to an event without `external_user_id`: `drop` (Braze's hosted connector does the same; the processor counts it in `currents_mparticle_events_dropped` with reason `no_identity`, the Bloblang method returns `null`), `fail` (the processor errors the message, for `catch`, `fallback` or `reject_errored`; the method fails the mapping), or `user_id:<identity>` to send Braze's own `user_id` as that identity (an event with neither id is dropped).",
			def:         mapping.MissingIdentityDrop,
			examples:    []any{mapping.MissingIdentityFail, mapping.MissingIdentityUserIDPrefix + "other"},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				o.MissingIdentity, err = conf.FieldString(ctmFieldMissingIdentity)
				return err
			},
		},
		{
			name: ctmFieldAppPlatforms, kind: ctmStringMap, feed: true,
			description: "The platform of each Braze app, by `app_id`: `ios`, `android`, `web`, `tvos`, `kindle` or `roku`. Braze knows it, this processor must be told. Used for the feed (and `device_info.platform`) of uninstalls and of the `app_id_feed_types`, which carry `app_id` but no `platform`; an app not listed goes to the unbound feed.",
			def:         map[string]any{},
			examples:    []any{map[string]any{"3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7": "ios", "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d": "android"}},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				o.AppPlatforms, err = conf.FieldStringMap(ctmFieldAppPlatforms)
				return err
			},
		},
		{
			name: ctmFieldPlatformFeeds, kind: ctmStringMap, feed: true, advanced: true,
			description: "The feed of the platforms without a feed input of their own (`tvos`, `kindle`, `roku`): `ios`, `android`, `web` or `unbound`. A platform left out keeps its default.",
			def:         ctmPlatformFeedDefaults,
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				m, err := conf.FieldStringMap(ctmFieldPlatformFeeds)
				if err != nil {
					return err
				}
				o.PlatformFeeds = make(map[string]mapping.Feed, len(m))
				for k, v := range m {
					o.PlatformFeeds[k] = mapping.Feed(v)
				}
				return nil
			},
		},
		{
			name: ctmFieldAppIDFeedTypes, kind: ctmStringList, feed: true, advanced: true,
			description: "Glob patterns (`*` spans dots) of the event types, besides `users.behaviors.Uninstall`, whose feed comes from `app_platforms` when they have no `platform` field. Braze's hosted connector sends them to the unbound feed.",
			def:         []any{},
			examples:    []any{[]any{"users.campaigns.Conversion", "users.canvas.Conversion"}},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				o.AppIDFeedTypes, err = conf.FieldStringList(ctmFieldAppIDFeedTypes)
				return err
			},
		},
		{
			name: ctmFieldDeviceIDMapping, kind: ctmEnum, advanced: true,
			annotated: map[string]string{
				string(mapping.DeviceIDBraze):      "`device_id` becomes `device_info.ios_idfv` whatever the platform, as Braze's hosted connector sends it.",
				string(mapping.DeviceIDByPlatform): "`device_id` becomes `ios_idfv` on iOS and tvOS, `android_uuid` on Android and Kindle, and is left out elsewhere.",
			},
			description: "Where Braze's `device_id` goes in `device_info`. A device id that is not a UUID is left out of `device_info` either way (it still travels as the `device_id` custom attribute).",
			def:         string(mapping.DeviceIDBraze),
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				s, err := conf.FieldString(ctmFieldDeviceIDMapping)
				o.DeviceIDMapping = mapping.DeviceIDMapping(s)
				return err
			},
		},
		{
			name: ctmFieldEventTypes, kind: ctmStringList,
			description: "Glob patterns of the event types to send; empty sends every type. Other types are dropped with reason `excluded`.",
			def:         []any{},
			examples:    []any{[]any{"users.messages.*", "users.behaviors.Uninstall"}},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				o.EventTypes, err = conf.FieldStringList(ctmFieldEventTypes)
				return err
			},
		},
		{
			name: ctmFieldExcludeEventTypes, kind: ctmStringList,
			description: "Glob patterns of event types to drop (reason `excluded`).",
			def:         []any{},
			examples:    []any{[]any{"users.messages.email.*"}},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				o.ExcludeEventTypes, err = conf.FieldStringList(ctmFieldExcludeEventTypes)
				return err
			},
		},
		{
			name: ctmFieldUnknownEventTypes, kind: ctmEnum,
			annotated: map[string]string{
				string(mapping.UnknownGeneric): "Send a custom event named from the type, e.g. `users.messages.line.Click` becomes `LINE Click`.",
				string(mapping.UnknownDrop):    "Drop the event (reason `unknown_type`).",
				string(mapping.UnknownFail):    "Error the event: the processor errors its message, the Bloblang method fails the mapping.",
			},
			description: "What happens to event types outside the catalog of " + strconv.Itoa(len(mapping.Catalog())) + " known types (Braze exports about 95, and adds more).",
			def:         string(mapping.UnknownGeneric),
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				s, err := conf.FieldString(ctmFieldUnknownEventTypes)
				o.UnknownTypes = mapping.UnknownTypes(s)
				return err
			},
		},
		{
			name: ctmFieldUnmappable, kind: ctmEnum,
			annotated: map[string]string{
				string(mapping.UnmappableDrop): fmt.Sprintf("Drop the event, as one damaged event must neither stop nor loop a pipeline: it is counted in `currents_mparticle_events_dropped` with its reason, logged at WARN with its type, id and error (at most %d lines a minute, the rest counted), and included in the totals logged on close.", ctmWarnBurst),
				string(mapping.UnmappableFail): "Error the message, with its input content, for a `switch` on `errored()`, `catch`, `fallback` or `reject_errored` to write to a dead letter; counted in `currents_mparticle_events_failed`. Route errored messages away from the `mparticle` output, which fails them.",
			},
			description: "What happens to an event that cannot be mapped because its data is at fault. Reasons: " +
				"`missing_field` (no `id`, or a purchase without `product_id` or `price`, a session without `session_id`); " +
				"`wrong_kind` (a field of another Avro type than Braze writes); " +
				"`invalid_value` (an `id` that is not valid UTF-8, a price that is not a number, a negative session duration); " +
				"`invalid_time` (`time` missing, 0 or negative, or more than 24 hours after the processor's clock: sent, 0 would leave `timestamp_unixtime_ms` out and mParticle would date the event when it arrives); " +
				"`invalid_identity` (a value sent as an identity — `external_user_id`, `user_id` under `missing_identity: user_id:...`, `email_address` as the `email` identity, or the `$mobile` phone number — that is not valid UTF-8: it cannot be sent as Braze has it, and with U+FFFD for the bad bytes it would name another user); " +
				"`too_large` (a batch over mParticle's 128 KB); " +
				"`bad_message` (a message that is not a Currents event). " +
				"Other text that is not valid UTF-8 (attribute values, event names, property names) is sent with U+FFFD in place of the bad bytes, as mParticle only takes valid JSON. " +
				"`missing_identity: fail` and `unknown_event_types: fail` error their events whatever this says.",
			def: string(mapping.UnmappableDrop),
			// fail, unlike the processor: a method cannot count or log a
			// drop, so an error is the only way an unmappable event shows.
			bloblDefault:     string(mapping.UnmappableFail),
			bloblDescription: "`fail` (an unmappable event is a mapping error naming the field and the reason, as the processor's `unmappable` lists them) or `drop` (the result is `null`).",
			set: func(conf *service.ParsedConfig, o *mapping.Options) error {
				s, err := conf.FieldString(ctmFieldUnmappable)
				o.Unmappable = mapping.Unmappable(s)
				return err
			},
		},
		{
			name: ctmFieldAttributes, kind: ctmObject,
			description: "Values to remove or hash before sending. Names are Currents field names, custom attribute names as sent (`card_id`) or flattened property names (`address.city`). An option applies wherever the value is sent: hashing `email_address` also hashes the `email` identity, hashing `to_phone_number` the `$mobile` user attribute, removing `device_model` removes it from `device_info`. `id`, `time` cannot be listed, and `external_user_id` can be hashed but not removed.",
			def:         map[string]any{},
			children: []ctmOption{
				{
					name: ctmFieldAttributesRemove, kind: ctmStringList,
					description: "Names of values never to send.",
					def:         []any{},
					examples:    []any{[]any{"user_agent", "campaign_name"}},
				},
				{
					name: ctmFieldAttributesHash, kind: ctmStringList,
					description: "Names of values to send as the lowercase hex SHA-256 of their text.",
					def:         []any{},
					examples:    []any{[]any{"email_address", "external_user_id"}},
				},
			},
			set: func(conf *service.ParsedConfig, o *mapping.Options) (err error) {
				if o.Attributes.Remove, err = conf.FieldStringList(ctmFieldAttributes, ctmFieldAttributesRemove); err != nil {
					return err
				}
				o.Attributes.Hash, err = conf.FieldStringList(ctmFieldAttributes, ctmFieldAttributesHash)
				return err
			},
		},
	}
}()

// configField is the option as a config field of the processor.
func (opt *ctmOption) configField() *service.ConfigField {
	var f *service.ConfigField
	switch opt.kind {
	case ctmString:
		f = service.NewStringField(opt.name)
	case ctmEnum:
		if opt.annotated != nil {
			f = service.NewStringAnnotatedEnumField(opt.name, opt.annotated)
		} else {
			f = service.NewStringEnumField(opt.name, opt.enum...)
		}
	case ctmStringMap:
		f = service.NewStringMapField(opt.name)
	case ctmStringList:
		f = service.NewStringListField(opt.name)
	case ctmObject:
		children := make([]*service.ConfigField, len(opt.children))
		for i := range opt.children {
			children[i] = opt.children[i].configField()
		}
		f = service.NewObjectField(opt.name, children...)
	}
	f = f.Description(opt.description)
	if opt.kind != ctmObject {
		// An object field takes its children's defaults.
		f = f.Default(opt.def)
	}
	for _, ex := range opt.examples {
		f = f.Example(ex)
	}
	if opt.advanced {
		f = f.Advanced()
	}
	return f
}

// bloblParam is the option as a parameter of the Bloblang methods.
func (opt *ctmOption) bloblParam() bloblang.ParamDefinition {
	desc, def := opt.description, opt.def
	if opt.bloblDescription != "" {
		desc = opt.bloblDescription
	}
	if opt.bloblDefault != nil {
		def = opt.bloblDefault
	}
	switch {
	case opt.kind == ctmEnum && opt.annotated != nil && opt.bloblDescription == "":
		values := make([]string, 0, len(opt.annotated))
		for v := range opt.annotated {
			values = append(values, v)
		}
		sort.Strings(values)
		for _, v := range values {
			desc += " `" + v + "`: " + opt.annotated[v]
		}
	case opt.kind == ctmEnum && opt.annotated == nil:
		desc += " One of `" + strings.Join(opt.enum, "`, `") + "`."
	case opt.kind == ctmObject:
		for _, c := range opt.children {
			desc += " `" + c.name + "`: " + c.description
		}
	}
	var p bloblang.ParamDefinition
	if opt.kind == ctmString || opt.kind == ctmEnum {
		p = bloblang.NewStringParam(opt.name)
	} else {
		p = bloblang.NewAnyParam(opt.name)
	}
	return p.Default(def).Description(desc)
}

// ctmOptionFields are the processor's config fields of the options.
func ctmOptionFields() []*service.ConfigField {
	fields := make([]*service.ConfigField, len(ctmOptions))
	for i := range ctmOptions {
		fields[i] = ctmOptions[i].configField()
	}
	return fields
}

// ctmOptionsFromParsed reads the mapping options of a parsed config: the
// processor's, or the Bloblang methods' arguments parsed by bloblMPOptionSpec.
func ctmOptionsFromParsed(conf *service.ParsedConfig) (mapping.Options, error) {
	var o mapping.Options
	for i := range ctmOptions {
		if !conf.Contains(ctmOptions[i].name) {
			continue // an option the mparticle_feed method does not take
		}
		if err := ctmOptions[i].set(conf, &o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// bloblMPOptionList returns the options a Bloblang method takes: all, or
// only those that decide the feed.
func bloblMPOptionList(all bool) []*ctmOption {
	var out []*ctmOption
	for i := range ctmOptions {
		if all || ctmOptions[i].feed {
			out = append(out, &ctmOptions[i])
		}
	}
	return out
}

// bloblMPOptionParams adds the options a method takes as named parameters,
// each optional with its default.
func bloblMPOptionParams(spec *bloblang.PluginSpec, all bool) *bloblang.PluginSpec {
	for _, opt := range bloblMPOptionList(all) {
		spec = spec.Param(opt.bloblParam())
	}
	return spec
}

// bloblMPOptions reads a method's option arguments the way the processor
// reads its config: as a config of the same fields, parsed by the same
// spec and read by the same code.
func bloblMPOptions(args *bloblang.ParsedParams, all bool) (mapping.Options, error) {
	opts := bloblMPOptionList(all)
	values := make(map[string]any, len(opts))
	fields := make([]*service.ConfigField, len(opts))
	for i, opt := range opts {
		v, err := args.Get(opt.name)
		if err != nil {
			return mapping.Options{}, err
		}
		if err := opt.checkKeys(v); err != nil {
			return mapping.Options{}, err
		}
		values[opt.name] = v
		fields[i] = opt.configField()
	}
	raw, err := json.Marshal(values)
	if err != nil {
		return mapping.Options{}, err
	}
	// JSON is YAML.
	conf, err := service.NewConfigSpec().Fields(fields...).ParseYAML(string(raw), nil)
	if err != nil {
		return mapping.Options{}, err
	}
	return ctmOptionsFromParsed(conf)
}

// checkKeys refuses keys an object option does not have: parsing a config
// does not lint it, and a misspelt `attributes` key would be ignored.
func (opt *ctmOption) checkKeys(v any) error {
	if opt.kind != ctmObject {
		return nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want an object, got %T", opt.name, v)
	}
	for key := range obj {
		known := false
		for _, c := range opt.children {
			known = known || c.name == key
		}
		if !known {
			names := make([]string, len(opt.children))
			for i, c := range opt.children {
				names[i] = c.name
			}
			return fmt.Errorf("%s: unknown key %q (want %s)", opt.name, key, strings.Join(names, ", "))
		}
	}
	return nil
}
