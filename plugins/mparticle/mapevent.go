package mparticle

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
)

// This file maps one event; mapper.go holds the Mapper and its results,
// options.go its options, catalog.go the per-type table.

// mapping carries one event through AppendBatch.
type mapping struct {
	m    *Mapper
	ev   currents.Event
	plan *typePlan
	// roles holds the value of each role field the event has, and present
	// says which: the array is not zeroed for every event, a bit test is
	// cheaper.
	roles   [roleCount]currents.Value
	present uint32
	id      string
	res     Result
	now     int64 // Unix seconds: when the event is mapped
}

// role returns the value of a role field, Null when the event has none.
func (mp *mapping) role(r role) currents.Value {
	if mp.present&(1<<r) == 0 {
		return currents.Null
	}
	return mp.roles[r]
}

// scan reads the event's fields in one pass: role fields into their roles
// and, when attrs is set, every other field straight into the custom
// attributes (the opening paragraph of docs/mapping.md), after a slot kept for source_request_id,
// which comes first but needs the id. Null, excluded, consumed and array
// fields are left out; fields of a future writer schema come along by
// themselves.
func (mp *mapping) scan(s *scratch, attrs bool) {
	ev, renames, consumed := mp.ev, mp.plan.entry.renames, mp.plan.consumed
	sink := &s.sink
	// out is a local copy of sink.attrs, so the compiler keeps the slice
	// header in registers; it is handed back around the slow path.
	out := append(sink.attrs, Attribute{})
	fast := sink.s.policies == nil
	names, values := ev.Names(), ev.Values()
	for i := range values {
		// A pointer, not a copy: Values are 40 bytes and this loop runs for
		// every field of every event.
		v, name := &values[i], names[i]
		r := roleOf(name)
		if r != roleNone {
			mp.roles[r] = *v
			mp.present |= 1 << r
			if r.excluded() {
				continue
			}
		}
		if !attrs || consumed&(1<<r) != 0 || v.IsNull() || name == attrSourceRequestID {
			continue // source_request_id is ours, the event id
		}
		attr, dedup := name, false
		for _, rn := range renames {
			if rn.from == name {
				attr, dedup = rn.to, true
			}
		}
		// The common case inline: a short string field, no option, room left.
		if fast && !dedup && v.Kind() == currents.KindString && len(out) < MaxCustomAttributes &&
			len(name) <= MaxNameLength && len(v.Str()) <= MaxValueLength && name != "" {
			out = append(out, Attribute{Name: name, Value: Value{kind: valueString, str: v.Str()}})
			continue
		}
		sink.attrs = out
		sink.addValue(attr, name, *v, dedup, 0)
		out = sink.attrs
	}
	sink.attrs = out
}

// setSourceRequestID fills the slot scan kept for the source_request_id
// attribute, under the attribute options and the value limit.
func (mp *mapping) setSourceRequestID(sink *attrSink) {
	v := mp.id
	switch sink.s.policy(attrSourceRequestID) {
	case policyRemove:
		sink.attrs = sink.attrs[1:]
		return
	case policyHash:
		v = sha256Hex(v)
	}
	if len(v) > MaxValueLength {
		var cut bool
		if v, cut = truncateRunes(v, MaxValueLength); cut {
			mp.res.ValuesTruncated++
		}
	}
	sink.attrs[0] = Attribute{Name: attrSourceRequestID, Value: StringValue(v)}
}

// fail returns the error of the event. Its strings are copies: an error
// outlives the event, and must not keep a decoded block alive.
func (mp *mapping) fail(r role, reason, format string, args ...any) *Error {
	return &Error{
		EventType: strings.Clone(mp.ev.Type), EventID: strings.Clone(mp.id), Field: r.field(), Reason: reason,
		Detail: fmt.Sprintf(format, args...),
	}
}

// str returns a role that must be a string when present: ok is false when it
// is absent, null or empty.
func (mp *mapping) str(r role) (s string, ok bool, err error) {
	v := mp.role(r)
	switch v.Kind() {
	case currents.KindNull:
		return "", false, nil
	case currents.KindString:
		return v.Str(), v.Str() != "", nil
	}
	return "", false, mp.fail(r, ReasonWrongKind, "is %s, want string", v.Kind())
}

// sent applies the hash option to a string value sent as it is.
func (mp *mapping) sent(r role, v string) string {
	if mp.m.s.policy(r.field()) == policyHash {
		return sha256Hex(v)
	}
	return v
}

// run decides and builds the batch of one event in the scratch: the checks
// first (type, id, time, identity, feed), then the batch.
func (mp *mapping) run(s *scratch) error {
	if v := mp.role(roleID); v.Kind() == currents.KindString {
		mp.id = v.Str()
	}
	if mp.plan.fail {
		return mp.fail(roleNone, ReasonUnknownType, "event type is not in the catalog (unknown_event_types: fail)")
	}
	if mp.id == "" {
		switch v := mp.role(roleID); v.Kind() {
		case currents.KindNull:
			return mp.fail(roleID, ReasonMissingField, "is missing: the event id is the only deduplication key")
		case currents.KindString:
			return mp.fail(roleID, ReasonMissingField, "is empty: the event id is the only deduplication key")
		default:
			return mp.fail(roleID, ReasonWrongKind, "is %s, want string", v.Kind())
		}
	}
	if !utf8.ValidString(mp.id) {
		// Sent with U+FFFD, two damaged ids could become one
		// source_request_id, and mParticle would drop one event as a replay.
		// (Error quotes the id, so its bad bytes show as \x escapes.)
		return mp.fail(roleID, ReasonInvalidValue, "is not valid UTF-8 (byte %d): the event id is the only deduplication key", invalidUTF8At(mp.id))
	}
	now := mp.now
	sec, err := mp.time(now)
	if err != nil {
		return err
	}
	identity, user, ok, err := mp.identity()
	if err != nil || !ok {
		return err
	}
	feed, plat, err := mp.feed()
	if err != nil {
		return err
	}
	mp.res.Feed, mp.res.Identity, mp.res.User = feed, identity, user
	mp.res.Historical = now-sec > int64(eventsapi.HistoricalAge/time.Second)
	return mp.build(s, sec, identity, user, plat)
}

// time reads the event time, in Unix seconds (int on most types, long on
// WhatsApp). A time that is missing, 0 or less, or more than MaxFutureSkew
// after now is no time at which the event happened: sent, 0 would leave
// timestamp_unixtime_ms out and mParticle would date the event on arrival,
// and a later time would put it in the future.
func (mp *mapping) time(now int64) (int64, error) {
	v := mp.role(roleTime)
	switch v.Kind() {
	case currents.KindInt:
	case currents.KindNull:
		return 0, mp.fail(roleTime, ReasonInvalidTime, "is missing")
	default:
		return 0, mp.fail(roleTime, ReasonWrongKind, "is %s, want int (Unix seconds)", v.Kind())
	}
	// Year 9999 keeps the milliseconds far inside int64 whatever the clock says.
	const maxTime = 253402300799
	switch sec := v.Int(); {
	case sec <= 0:
		return 0, mp.fail(roleTime, ReasonInvalidTime, "is %d: no time after 1970 in Unix seconds", sec)
	case sec > now+int64(MaxFutureSkew/time.Second) || sec > maxTime:
		return 0, mp.fail(roleTime, ReasonInvalidTime, "is %d, more than %v after the time it is mapped (%d): a wrong clock, or not Unix seconds", sec, MaxFutureSkew, now)
	default:
		return sec, nil
	}
}

// identity picks the user key (docs/mapping.md; options identity and missing_identity): external_user_id as the
// configured identity, else the missing_identity policy. ok is false with a
// nil error when the event is dropped.
func (mp *mapping) identity() (IdentityType, string, bool, error) {
	s := mp.m.s
	ext, ok, err := mp.str(roleExternalUserID)
	if err != nil {
		return "", "", false, err
	}
	if ok {
		if err := mp.validIdentity(roleExternalUserID, ext); err != nil {
			return "", "", false, err
		}
		return s.identity, mp.sent(roleExternalUserID, ext), true, nil
	}
	if s.userIDIdentity != "" {
		uid, ok, err := mp.str(roleUserID)
		if err != nil {
			return "", "", false, err
		}
		if ok && s.policy(roleUserID.field()) != policyRemove {
			if err := mp.validIdentity(roleUserID, uid); err != nil {
				return "", "", false, err
			}
			return s.userIDIdentity, mp.sent(roleUserID, uid), true, nil
		}
	}
	if s.missing == MissingIdentityFail {
		return "", "", false, mp.fail(roleExternalUserID, ReasonNoIdentity, "is missing and missing_identity is fail")
	}
	mp.res.Dropped = DropNoIdentity
	return "", "", false, nil
}

// validIdentity refuses a value sent as an identity (or the $mobile contact
// key) that is not valid UTF-8. The JSON encoder would send U+FFFD for the
// bad bytes: another key than Braze's, shared by every id damaged alike. A
// hashed value is refused too, so that a user's key does not depend on the
// option. The value itself stays out of the error: it is personal data.
func (mp *mapping) validIdentity(r role, v string) error {
	if utf8.ValidString(v) {
		return nil
	}
	return mp.fail(r, ReasonInvalidIdentity, "is not valid UTF-8 (byte %d of %d): it cannot be sent as Braze has it", invalidUTF8At(v), len(v))
}

// invalidUTF8At returns the offset of the first byte of s that is not UTF-8.
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// feed decides the feed (the feed column of docs/mapping.md; doc.go states the rule) and the platform it implies.
func (mp *mapping) feed() (Feed, platform, error) {
	s := mp.m.s
	name, ok, err := mp.str(rolePlatform)
	if err != nil {
		return "", platformNone, err
	}
	if ok {
		if p := parsePlatform(name); p != platformNone {
			return s.platformFeeds[p], p, nil
		}
	}
	if mp.plan.appIDFeed && len(s.appPlatforms) > 0 {
		app, ok, err := mp.str(roleAppID)
		if err != nil {
			return "", platformNone, err
		}
		if p, known := s.appPlatforms[app]; ok && known {
			return s.platformFeeds[p], p, nil
		}
	}
	return FeedUnbound, platformNone, nil
}

// build fills the scratch batch.
func (mp *mapping) build(s *scratch, sec int64, identity IdentityType, user string, plat platform) error {
	m, entry := mp.m, &mp.plan.entry
	b := &s.batch
	*b = Batch{Environment: m.s.env, SourceRequestID: mp.id}

	b.UserIdentities = append(s.identities[:0], Identity{Type: identity, Value: user})
	if entry.email && identity != Email {
		email, ok, err := mp.str(roleEmailAddress)
		if err != nil {
			return err
		}
		if ok && m.s.policy(roleEmailAddress.field()) != policyRemove {
			if err := mp.validIdentity(roleEmailAddress, email); err != nil {
				return err
			}
			b.UserIdentities = append(b.UserIdentities, Identity{Type: Email, Value: mp.sent(roleEmailAddress, email)})
		}
	}

	b.UserAttributes = s.userAttrs[:0]
	for _, r := range entry.mobile {
		phone, ok, err := mp.str(r)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if m.s.policy(r.field()) != policyRemove {
			if err := mp.validIdentity(r, phone); err != nil {
				return err
			}
			phone, cut := truncateRunes(mp.sent(r, phone), MaxValueLength)
			if cut {
				mp.res.ValuesTruncated++
			}
			b.UserAttributes = append(b.UserAttributes, Attribute{Name: "$mobile", Value: StringValue(phone)})
		}
		break
	}

	if err := mp.deviceInfo(&b.DeviceInfo, plat); err != nil {
		return err
	}

	e := &s.events[0]
	*e = Event{EventType: EventTypeCustom}
	b.Events = s.events[:]
	d := &e.Data
	d.TimestampUnixtimeMS = sec * 1000
	d.SourceMessageID = mp.id
	if !isUUID(mp.id) {
		d.SourceMessageID = uuidV5(eventNamespace, mp.id)
		mp.res.NonUUIDEventIDs++
	}
	mp.res.SourceMessageID = d.SourceMessageID
	if err := mp.eventData(e, s); err != nil {
		return err
	}

	sink := &s.sink
	mp.setSourceRequestID(sink)
	if entry.kind == kindNamedCustom || entry.kind == kindPurchase {
		props, _, err := mp.str(roleProperties)
		if err != nil {
			return err
		}
		sink.addProperties(props)
	}
	d.CustomAttributes = sink.attrs

	if d.EventName != "" {
		name, cut := truncateRunes(d.EventName, MaxNameLength)
		if cut {
			mp.res.NamesTruncated++
		}
		d.EventName = name
	}
	mp.res.EventName = d.EventName
	return nil
}

// eventData fills the kind-specific part of the event (docs/mapping.md; the richer kinds in doc.go).
func (mp *mapping) eventData(e *Event, s *scratch) error {
	d := &e.Data
	switch mp.plan.entry.kind {
	case kindCustom:
		d.EventName = mp.plan.entry.name
		d.CustomEventType = CustomEventTypeOther
	case kindUninstall:
		e.EventType = EventTypeUninstall
	case kindNamedCustom:
		name, ok, err := mp.str(roleName)
		if err != nil {
			return err
		}
		if !ok {
			// mParticle refuses an empty event_name; Braze requires a name,
			// so this only meets damaged data.
			name = derivedName(mp.ev.Type)
		}
		d.EventName = name
		d.CustomEventType = CustomEventTypeOther
	case kindPurchase:
		return mp.purchase(e, s)
	case kindSessionStart, kindSessionEnd:
		return mp.session(e)
	}
	return nil
}

// number reads a role that must be a number (Avro float, or an int).
func (mp *mapping) number(r role) (f float64, ok bool, err error) {
	switch v := mp.role(r); v.Kind() {
	case currents.KindNull:
		return 0, false, nil
	case currents.KindFloat, currents.KindInt:
		if f = v.Float(); !finite(f) {
			return 0, false, mp.fail(r, ReasonInvalidValue, "is %v, not a number JSON can carry", f)
		}
		return f, true, nil
	default:
		return 0, false, mp.fail(r, ReasonWrongKind, "is %s, want float", v.Kind())
	}
}

// purchase writes a Braze purchase as a commerce event with a purchase
// product action: one product (Braze records each unit as its own purchase),
// the event id as transaction id.
func (mp *mapping) purchase(e *Event, s *scratch) error {
	e.EventType = EventTypeCommerce
	d := &e.Data
	productID, ok, err := mp.str(roleProductID)
	if err != nil {
		return err
	}
	if !ok {
		return mp.fail(roleProductID, ReasonMissingField, "is missing")
	}
	price, ok, err := mp.number(rolePrice)
	if err != nil {
		return err
	}
	if !ok {
		return mp.fail(rolePrice, ReasonMissingField, "is missing")
	}
	if d.CurrencyCode, _, err = mp.str(roleCurrency); err != nil {
		return err
	}
	s.products[0] = Product{ID: productID, Name: productID, Price: price, Quantity: 1}
	d.ProductAction = ProductAction{
		Action: "purchase", TransactionID: mp.id, TotalAmount: price, Products: s.products[:],
	}
	return nil
}

// session writes session_start / session_end. mParticle's session_id is an
// integer and its session_uuid a UUID; Braze's session_id is a string
// (usually a UUID), so session_uuid is that UUID (or one derived from the
// string) and session_id its first 63 bits: the start and the end of a
// session agree. Braze's string also stays as the session_id custom attribute.
func (mp *mapping) session(e *Event) error {
	d := &e.Data
	e.EventType = EventTypeSessionStart
	sid, ok, err := mp.str(roleSessionID)
	if err != nil {
		return err
	}
	if !ok {
		return mp.fail(roleSessionID, ReasonMissingField, "is missing; mParticle requires a session id")
	}
	d.SessionUUID = sid
	if !isUUID(sid) {
		d.SessionUUID = uuidV5(sessionNamespace, sid)
	}
	d.SessionID = uuidPrefix63(d.SessionUUID)
	if mp.plan.entry.kind != kindSessionEnd {
		return nil
	}
	e.EventType = EventTypeSessionEnd
	secs, ok, err := mp.number(roleDuration)
	if err != nil || !ok {
		return err // session_duration_ms is still written: 0 says unknown
	}
	if secs < 0 || secs > 1e9 {
		return mp.fail(roleDuration, ReasonInvalidValue, "%v is not a session duration in seconds", secs)
	}
	d.SessionDurationMS = int64(math.Round(secs * 1000))
	if start := d.TimestampUnixtimeMS - d.SessionDurationMS; start > 0 && d.SessionDurationMS > 0 {
		d.SessionStartUnixtimeMS = start
	}
	return nil
}

// deviceInfo fills device_info (the feed column of docs/mapping.md; doc.go states the rule).
func (mp *mapping) deviceInfo(d *DeviceInfo, plat platform) error {
	s := mp.m.s
	*d = DeviceInfo{}
	if plat != platformNone && s.policy(rolePlatform.field()) == policyKeep {
		d.Platform = devicePlatforms[plat]
	}
	var err error
	if d.OSVersion, err = mp.deviceString(roleOSVersion); err != nil {
		return err
	}
	if d.DeviceModel, err = mp.deviceString(roleDeviceModel); err != nil {
		return err
	}

	deviceID, ok, err := mp.str(roleDeviceID)
	if err != nil {
		return err
	}
	if ok && s.policy(roleDeviceID.field()) == policyKeep {
		var slot *string
		switch {
		case s.deviceIDMapping == DeviceIDBraze, plat == platformIOS, plat == platformTVOS:
			slot = &d.IOSIDFV
		case plat == platformAndroid, plat == platformKindle:
			slot = &d.AndroidUUID
		}
		mp.deviceUUID(slot, deviceID)
	}

	adID, ok, err := mp.str(roleAdID)
	if err != nil {
		return err
	}
	if ok && s.policy(roleAdID.field()) == policyKeep {
		adType, _, err := mp.str(roleAdIDType)
		if err != nil {
			return err
		}
		var slot *string
		switch adType {
		case "ios_idfa":
			slot = &d.IOSAdvertisingID
		case "google_ad_id":
			slot = &d.AndroidAdvertisingID
		case "windows_ad_id":
			slot = &d.MicrosoftAdvertisingID
		case "roku_ad_id":
			slot = &d.RokuAdvertisingID
		}
		mp.deviceUUID(slot, adID)
	}

	switch v := mp.role(roleAdTracking); v.Kind() {
	case currents.KindNull:
	case currents.KindBool:
		if s.policy(roleAdTracking.field()) == policyKeep {
			d.LimitAdTracking, d.HasLimitAdTracking = !v.Bool(), true
		}
	default:
		return mp.fail(roleAdTracking, ReasonWrongKind, "is %s, want boolean", v.Kind())
	}
	return nil
}

// deviceString reads a free-text device_info field under the attribute options.
func (mp *mapping) deviceString(r role) (string, error) {
	v, ok, err := mp.str(r)
	if err != nil || !ok || mp.m.s.policy(r.field()) == policyRemove {
		return "", err
	}
	v, _ = truncateRunes(mp.sent(r, v), MaxValueLength)
	return v, nil
}

// deviceUUID puts id in a device_info slot when it is a UUID, and counts it
// when it is not (it still travels as a custom attribute).
func (mp *mapping) deviceUUID(slot *string, id string) {
	switch {
	case slot == nil:
	case isUUID(id):
		*slot = id
	default:
		mp.res.NonUUIDDeviceIDs++
	}
}
