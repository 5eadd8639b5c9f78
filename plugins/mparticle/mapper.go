package mparticle

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// DropReason says why an event was dropped rather than mapped.
type DropReason string

// The drop reasons. An unmappable event dropped under UnmappableDrop has
// its error's reason instead, one of UnmappableReasons.
const (
	// DropNoIdentity: the event has no external_user_id (and no user_id
	// to fall back on, when that option is set), as Braze's connector drops.
	DropNoIdentity DropReason = "no_identity"
	// DropExcluded: the event type is excluded by event_types or
	// exclude_event_types.
	DropExcluded DropReason = "excluded"
	// DropUnknownType: the type is outside the catalog and unknown_event_types is drop.
	DropUnknownType DropReason = "unknown_type"
)

// Counters count what the Mapper changed to fit mParticle's rules.
type Counters struct {
	// ValuesTruncated counts attribute values cut to MaxValueLength characters.
	ValuesTruncated int
	// NamesTruncated counts event and attribute names cut to MaxNameLength characters.
	NamesTruncated int
	// AttributesTrimmed counts custom attributes left out beyond MaxCustomAttributes.
	AttributesTrimmed int
	// NonUUIDDeviceIDs counts device and advertising ids left out of
	// device_info because they are not UUIDs.
	NonUUIDDeviceIDs int
	// NonUUIDEventIDs counts event ids replaced by a derived UUID in
	// source_message_id because they are not UUIDs.
	NonUUIDEventIDs int
}

// Result describes one mapped (or dropped) event.
type Result struct {
	// Dropped is why the event was dropped; "" when a batch was written.
	Dropped DropReason
	// Feed is the mParticle feed the batch belongs to.
	Feed Feed
	// Identity is the identity type of the user key: IdentityKey, or the
	// user_id fallback identity.
	Identity IdentityType
	// User is the user key as sent (hashed when that option applies), for
	// grouping one user's batches.
	User string
	// SourceMessageID is the event's id in mParticle (a UUID).
	SourceMessageID string
	// EventName is the event_name sent ("" for uninstall, session and commerce events).
	EventName string
	// Historical is true for events older than eventsapi.HistoricalAge,
	// which belong on mParticle's historical endpoint. The client decides
	// the endpoint itself, from the timestamps it sends, with the same age.
	Historical bool
	// Unmapped is the error of an event dropped as unmappable (Dropped is
	// its reason), for the caller to log; nil otherwise.
	Unmapped *Error
	Counters
}

// Error reasons, for metrics and dead-letter routing.
const (
	ReasonMissingField = "missing_field"
	ReasonWrongKind    = "wrong_kind" // a field of another Avro type than the mapping reads
	ReasonInvalidValue = "invalid_value"
	// ReasonInvalidTime: the event has no usable time: missing, 0 or
	// less, or more than MaxFutureSkew ahead of the Mapper's clock.
	ReasonInvalidTime = "invalid_time"
	// ReasonInvalidIdentity: a value sent as an identity (or as the $mobile
	// contact key) is not valid UTF-8, so it cannot be sent as Braze has it.
	ReasonInvalidIdentity = "invalid_identity"
	ReasonNoIdentity      = "no_identity"
	ReasonUnknownType     = "unknown_type"
	ReasonTooLarge        = "too_large"
)

// unmappableReasons are the reasons of unmappable events, whose data is at
// fault; Options.Unmappable drops or fails them. The other reasons,
// no_identity and unknown_type, are failures an option set to fail asks for.
var unmappableReasons = []string{
	ReasonMissingField, ReasonWrongKind, ReasonInvalidValue, ReasonInvalidTime, ReasonInvalidIdentity, ReasonTooLarge,
}

// UnmappableReasons returns the reasons of unmappable events, for
// documentation and metrics.
func UnmappableReasons() []string { return slices.Clone(unmappableReasons) }

// ErrMapping is wrapped by every *Error, so errors.Is(err, ErrMapping) finds them.
var ErrMapping = errors.New("currents event cannot be mapped to mParticle")

// Error is a mapping failure. It names the event by type and id and, where
// one is at fault, the field.
type Error struct {
	EventType string
	EventID   string
	Field     string // "" when no single field is at fault
	Reason    string // one of the Reason constants
	Detail    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("currents event ")
	b.WriteString(e.EventType)
	if e.EventID != "" {
		b.WriteString(" id ")
		b.WriteString(strconv.Quote(e.EventID))
	}
	if e.Field != "" {
		b.WriteString(": field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Detail)
	// The reason is in the text too: a dead letter often keeps only that.
	b.WriteString(" (reason ")
	b.WriteString(e.Reason)
	b.WriteString(")")
	return b.String()
}

// Unwrap makes every mapping error match ErrMapping.
func (e *Error) Unwrap() error { return ErrMapping }

// Mapper maps Currents events to mParticle batches. It is safe for
// concurrent use; its configuration never changes after New.
type Mapper struct {
	s *settings
	// plans holds the decision for every catalog type, computed once.
	plans map[string]*typePlan
	// others caches the plans of types outside the catalog; bounded by
	// othersCount so that a stream of bogus types cannot grow it forever.
	others      sync.Map
	othersCount atomic.Int64
	scratch     sync.Pool
}

// maxCachedPlans bounds the cache of types outside the catalog (Braze has
// about a hundred types in all).
const maxCachedPlans = 1024

// typePlan is what the Mapper does with one event type.
type typePlan struct {
	entry     catalogEntry
	drop      DropReason
	fail      bool // unknown type under UnknownFail
	appIDFeed bool // the app_id map may pick the feed
	// consumed has bit r set for each role the rich mapping consumes.
	consumed uint32
}

// New returns a Mapper for the options, or an error naming the option at fault.
func New(o Options) (*Mapper, error) {
	s, err := o.settings()
	if err != nil {
		return nil, fmt.Errorf("mparticle mapping option %w", err)
	}
	m := &Mapper{s: s, plans: make(map[string]*typePlan, len(catalogRows))}
	for i := range catalogRows {
		m.plans[catalogRows[i].eventType] = m.newPlan(catalogRows[i], true)
	}
	m.scratch.New = func() any { return &scratch{attrs: make([]Attribute, 0, MaxCustomAttributes)} }
	return m, nil
}

func (m *Mapper) newPlan(e catalogEntry, known bool) *typePlan {
	p := &typePlan{entry: e, appIDFeed: e.feed == byAppID || m.s.appIDFeedTypes.MatchAny(e.eventType)}
	for _, r := range e.consumed {
		p.consumed |= 1 << r
	}
	switch {
	case !m.s.types.Match(e.eventType):
		p.drop = DropExcluded
	case known:
	case m.s.unknown == UnknownDrop:
		p.drop = DropUnknownType
	case m.s.unknown == UnknownFail:
		p.fail = true
	}
	return p
}

func (m *Mapper) plan(eventType string) *typePlan {
	if p, ok := m.plans[eventType]; ok {
		return p
	}
	if p, ok := m.others.Load(eventType); ok {
		return p.(*typePlan)
	}
	// Clone: the type may point into a decoded block the cache must not pin.
	eventType = strings.Clone(eventType)
	p := m.newPlan(genericEntry(eventType), false)
	if m.othersCount.Add(1) <= maxCachedPlans {
		m.others.Store(eventType, p)
	}
	return p
}

// AppendBatch maps ev and appends its batch JSON to dst: one user, one event,
// source_request_id the event id. A dropped event appends nothing and says
// why in Result.Dropped; an event that cannot be mapped is dropped the same
// way, its *Error in Result.Unmapped, or with UnmappableFail returns the
// *Error. Either way dst is unchanged.
//
// The scratch space it takes from a pool keeps the last event mapped until
// it is used again or the pool is emptied; a caller mapping many events at
// once maps them in a Session, which keeps none.
func (m *Mapper) AppendBatch(dst []byte, ev currents.Event) ([]byte, Result, error) {
	s := m.scratch.Get().(*scratch)
	defer m.scratch.Put(s)
	return m.appendBatch(s, dst, ev, m.s.now().Unix())
}

// A Session maps events one after the other in the same scratch space and
// at the same time (Options.Now, read once: the historical decision and the
// future-skew check need seconds, not a clock read per event), for a caller
// that maps many at once, such as a message batch. Close drops every
// reference to the events it mapped, once for all of them: an event's
// strings point into the decoded bytes of its whole Avro block
// (plugins/currents/reader.go), which the scratch space would otherwise
// keep alive. A Session is not safe for concurrent use.
type Session struct {
	m   *Mapper
	s   *scratch
	now int64 // Unix seconds
}

// Session starts a Session; Close it when done.
func (m *Mapper) Session() Session {
	return Session{m: m, s: m.scratch.Get().(*scratch), now: m.s.now().Unix()}
}

// AppendBatch is Mapper.AppendBatch in the session's scratch space, at the
// session's time.
func (se Session) AppendBatch(dst []byte, ev currents.Event) ([]byte, Result, error) {
	return se.m.appendBatch(se.s, dst, ev, se.now)
}

// Close forgets the events mapped and returns the scratch space to the pool.
func (se Session) Close() {
	s := se.s
	attrs := s.attrs[:0]
	clear(attrs[:cap(attrs)])
	// Every field, so that none added later is forgotten; the attributes'
	// array is kept, cleared.
	*s = scratch{attrs: attrs}
	se.m.scratch.Put(s)
}

func (m *Mapper) appendBatch(s *scratch, dst []byte, ev currents.Event, now int64) ([]byte, Result, error) {
	plan := m.plan(ev.Type)
	if plan.drop != "" {
		return dst, Result{Dropped: plan.drop}, nil
	}
	mp := s.start(m, ev, plan, now)
	mp.scan(s, true)
	if err := mp.run(s); err != nil {
		res, err := m.unmapped(err)
		return dst, res, err
	}
	if mp.res.Dropped != "" {
		return dst, mp.res, nil
	}
	start := len(dst)
	dst = s.batch.AppendJSON(dst)
	if n := len(dst) - start; n > MaxBatchBytes {
		res, err := m.unmapped(mp.fail(roleNone, ReasonTooLarge, "batch is %d bytes, over mParticle's %d byte limit", n, MaxBatchBytes))
		return dst[:start], res, err
	}
	return dst, mp.res, nil
}

// unmapped applies Options.Unmappable to a mapping error: an unmappable
// event is dropped with the error's reason, or the error returned.
func (m *Mapper) unmapped(err error) (Result, error) {
	var me *Error
	if m.s.unmappable == UnmappableFail || !errors.As(err, &me) || !slices.Contains(unmappableReasons, me.Reason) {
		return Result{}, err
	}
	return Result{Dropped: DropReason(me.Reason), Unmapped: me}, nil
}

// Feed returns the feed an event belongs to (the feed column of docs/mapping.md; doc.go states the rule): its platform
// field, else for uninstalls and the app_id_feed_types the app_id map, else
// unbound. It does not look at identity or type filters.
func (m *Mapper) Feed(ev currents.Event) (Feed, error) {
	s := m.scratch.Get().(*scratch)
	defer m.scratch.Put(s)
	mp := s.start(m, ev, m.plan(ev.Type), 0) // no time needed
	mp.scan(s, false)
	mp.id, _, _ = mp.str(roleID)
	f, _, err := mp.feed()
	return f, err
}

// scratch is the reusable memory of one AppendBatch call. The mapping state
// lives here too: on the stack it would escape (its methods hand out
// pointers into it) and cost an allocation per event.
//
// A pooled scratch still points at the last event it mapped until it is
// used again or the pool is emptied by a garbage collection; clearing it
// after every event would cost more than that bounded retention.
type scratch struct {
	mp         mapping
	sink       attrSink
	batch      Batch
	identities [2]Identity
	userAttrs  [1]Attribute
	events     [1]Event
	products   [1]Product
	attrs      []Attribute
}

// start readies the scratch for one event.
func (s *scratch) start(m *Mapper, ev currents.Event, plan *typePlan, now int64) *mapping {
	mp := &s.mp
	// Field by field: the roles array is left as it is (see mapping.present).
	mp.m, mp.ev, mp.plan, mp.present, mp.id, mp.res, mp.now = m, ev, plan, 0, "", Result{}, now
	s.sink = attrSink{s: m.s, attrs: s.attrs[:0], c: &mp.res.Counters}
	return mp
}
