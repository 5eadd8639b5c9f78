package mparticle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/strchunk"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	mapping "github.com/currents-mparticle/currents-mparticle/plugins/mparticle"
)

// Metadata the processor reads and writes.
const (
	ctmMetaEventType  = "currents_event_type"
	ctmMetaFeed       = "mparticle_feed"
	ctmMetaUser       = "mparticle_user"
	ctmMetaHistorical = "mparticle_historical"
	ctmMetaEventID    = "mparticle_event_id"
	ctmMetaEventName  = "mparticle_event_name"
)

// ctmReasonBadMessage labels messages that are not events at all (no event
// type metadata, not a JSON object), in the dropped or failed metric: they
// are unmappable too, and follow the unmappable option.
const ctmReasonBadMessage = "bad_message"

// The WARN lines about dropped unmappable events are bounded: a damaged
// export can hold millions, and each is counted anyway. At most
// ctmWarnBurst lines per ctmWarnWindow name an event; the next window opens
// with a line counting the ones left out, and the totals on close count
// them all. Logged strings are cut to ctmWarnMaxLen bytes.
const (
	ctmWarnBurst  = 10
	ctmWarnWindow = time.Minute
	ctmWarnMaxLen = 256
)

// ctmUnmappableReasons lists the reasons of unmappable events for the docs,
// from the mapping's own list.
var ctmUnmappableReasons = func() string {
	var parts []string
	for _, r := range append(mapping.UnmappableReasons(), ctmReasonBadMessage) {
		parts = append(parts, "`"+r+"`")
	}
	return strings.Join(parts, ", ")
}()

func ctmProcSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Integration").
		Version("0.1.0").
		Summary("Maps Braze Currents events to mParticle Events API batches, one batch per event, as Braze's hosted mParticle connector does.").
		Description(`
Each input message is one Currents event: its fields as a JSON object, as the
[`+"`braze_currents`"+`](/docs/components/scanners/braze_currents) scanner emits them, with the
event type in the metadata key `+"`currents_event_type`"+` (required).

Each output message is one mParticle batch for one user and one event, ready for the
`+"`mparticle`"+` output, with this metadata:

| key | value |
|---|---|
| `+"`mparticle_feed`"+` | the feed input the batch belongs to: `+"`ios`"+`, `+"`android`"+`, `+"`web`"+` or `+"`unbound`"+` |
| `+"`mparticle_user`"+` | the user key as sent (for grouping one user's batches) |
| `+"`mparticle_historical`"+` | `+"`true`"+` when the event is older than 30 days (for your own routing: the `+"`mparticle`"+` output picks the historical endpoint from the timestamps it sends) |
| `+"`mparticle_event_id`"+` | the event's `+"`source_message_id`"+` (its Currents id, or a UUID derived from it) |
| `+"`mparticle_event_name`"+` | the mParticle event name (empty for uninstall, session and commerce events) |

The metadata of the input message is kept.

### The mapping

By default the output is what Braze's hosted connector sends for its `+strconv.Itoa(mapping.HostedTypes())+` event types:
a custom event named as in Braze's glossary ("Email Opens", "Push Notification Sends"...,
uninstalls as an `+"`uninstall`"+` event), `+"`external_user_id`"+` as the `+"`customer_id`"+`
identity, `+"`email_address`"+` as the `+"`email`"+` identity on email and subscription events,
the phone number as the `+"`$mobile`"+` user attribute on SMS and WhatsApp events, device data in
`+"`device_info`"+`, and every other field as a custom attribute (`+"`content_card_id`"+` renamed
`+"`card_id`"+`, plus `+"`source_request_id`"+` = the event id). Beyond it:
`+"`users.behaviors.CustomEvent`"+` becomes a custom event named by its `+"`name`"+` with its
`+"`properties`"+` as attributes, `+"`users.behaviors.Purchase`"+` a commerce event (purchase),
`+"`SessionStart`"+`/`+"`SessionEnd`"+` mParticle session events, and types the catalog does not
know a custom event named from the type (see `+"`unknown_event_types`"+`). Fields that a new
schema version adds appear as custom attributes by themselves.

mParticle's limits are kept: names are cut to 256 characters, values to 4096, custom attributes
beyond 100 are left out, each change counted in metrics. The feed is the event's `+"`platform`"+`
field, else (uninstalls and `+"`app_id_feed_types`"+`) the platform of its app in
`+"`app_platforms`"+`, else unbound.

### Dropped and failed events

Dropped events are removed from the batch and counted in
`+"`currents_mparticle_events_dropped`"+` by event type and reason: no identity (as Braze's
connector drops them), excluded or unknown type, and, by default, events that cannot be mapped
(a required field missing or of the wrong kind, no usable time, an identity that is not valid
UTF-8...; see `+"`unmappable`"+`), which are also logged at WARN with their type, id and error.
Nothing is dropped without a count and a reason; the totals are logged when the processor closes.

With `+"`unmappable: fail`"+` (and for `+"`missing_identity: fail`"+`, `+"`unknown_event_types: fail`"+`)
such events stay in the batch as errored messages with their input content, so a `+"`switch`"+`
on `+"`errored()`"+`, `+"`catch`"+`, `+"`fallback`"+` or `+"`reject_errored`"+` can route them to a
dead letter; they are counted in `+"`currents_mparticle_events_failed`"+` by event type and reason.
Route them before the `+"`mparticle`"+` output: it does not send errored messages, it fails them.

### Metrics

- `+"`currents_mparticle_events_mapped`"+` (labels `+"`event_type`"+`, `+"`feed`"+`)
- `+"`currents_mparticle_events_historical`"+` (label `+"`event_type`"+`)
- `+"`currents_mparticle_events_dropped`"+` (labels `+"`event_type`"+`, `+"`reason`"+`: `+"`no_identity`"+`, `+"`excluded`"+`, `+"`unknown_type`"+`, and with `+"`unmappable: drop`"+` the reasons of unmappable events: `+ctmUnmappableReasons+`)
- `+"`currents_mparticle_events_failed`"+` (labels `+"`event_type`"+`, `+"`reason`"+`: with `+"`unmappable: fail`"+` the reasons of unmappable events, and `+"`no_identity`"+`, `+"`unknown_type`"+` under their fail options)
- `+"`currents_mparticle_attributes_truncated`"+` (label `+"`part`"+`: `+"`name`"+` or `+"`value`"+`)
- `+"`currents_mparticle_attributes_trimmed`"+`: custom attributes left out beyond 100
- `+"`currents_mparticle_non_uuid_ids`"+` (label `+"`kind`"+`: `+"`device`"+` for device and advertising ids left out of `+"`device_info`"+`, `+"`event`"+` for event ids replaced by a derived UUID)`).
		Fields(ctmOptionFields()...).
		Example("Braze's hosted connector", "Read a Currents export, map it as Braze's hosted connector does, and send it to mParticle.", `
input:
  aws_s3:
    bucket: my-currents-bucket
    prefix: currents/
    scanner:
      braze_currents: {}
pipeline:
  processors:
    - currents_to_mparticle:
        app_platforms:
          3f1a2b4c-0d5e-4f60-8a71-92b3c4d5e6f7: ios
          7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d: android
output:
  mparticle:
    pod: us1
    feeds:
      ios: { key: "${MP_IOS_KEY}", secret: "${MP_IOS_SECRET}" }
      android: { key: "${MP_ANDROID_KEY}", secret: "${MP_ANDROID_SECRET}" }
      unbound: { key: "${MP_UNBOUND_KEY}", secret: "${MP_UNBOUND_SECRET}" }
`).
		Example("Anonymous users and a dead letter", "Send Braze's user_id as the `other` identity when there is no external id, hash email addresses, and write each event that cannot be mapped, with the reason, to a dead-letter file per event type instead of dropping it.", `
pipeline:
  processors:
    - currents_to_mparticle:
        missing_identity: user_id:other
        attributes:
          hash: [ email_address ]
        exclude_event_types: [ users.messages.webhook.* ]
        # Error unmappable events rather than drop them; the switch below routes them.
        unmappable: fail
output:
  switch:
    cases:
      - check: errored()
        output:
          file:
            path: ./dead-letter/${! @currents_event_type }.jsonl
            codec: lines
          processors:
            - mapping: |
                root.reason = error()
                root.event_id = @currents_id
                root.object = @currents_object
                root.event = this
      - output:
          mparticle:
            pod: eu1
            feeds:
              unbound: { key: "${MP_KEY}", secret: "${MP_SECRET}" }
`)
}

func init() {
	err := service.RegisterBatchProcessor("currents_to_mparticle", ctmProcSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchProcessor, error) {
			return ctmProcFromParsed(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// ctmProc is the currents_to_mparticle processor: a thin adapter from
// structured messages to mapping.Mapper.
type ctmProc struct {
	mapper *mapping.Mapper
	log    *service.Logger
	// failUnmappable errors what cannot be mapped (unmappable: fail);
	// else it is dropped, counted and logged.
	failUnmappable bool
	// meanBatch is the mean size of the mParticle batches of the last
	// message batch, to size the next one's output buffer.
	meanBatch atomic.Int64

	mapped     *service.MetricCounter
	historical *service.MetricCounter
	dropped    *service.MetricCounter
	failed     *service.MetricCounter
	truncated  *service.MetricCounter
	trimmed    *service.MetricCounter
	nonUUID    *service.MetricCounter

	// tally keeps run totals for the summary logged on Close, so a user who
	// runs without a metrics backend still sees what was dropped and why.
	tallyMu sync.Mutex
	tally   ctmTally
	// Benthos shares one processor between its pipeline threads and closes
	// it once per thread: the summary is logged on the first Close.
	summaryOnce sync.Once

	// warn bounds the WARN lines of dropped unmappable events (see ctmWarnBurst).
	warnMu sync.Mutex
	warn   ctmWarnState
}

// ctmWarnState is the current window of WARN lines about unmappable events.
type ctmWarnState struct {
	start      time.Time
	logged     int // lines in this window
	suppressed int // events left out in this window
	// total counts every event left out, for the totals on close.
	total int
}

// ctmTally counts one batch's outcomes, merged into the run's totals.
type ctmTally struct {
	mapped, failed int
	dropped        map[string]int   // by reason
	byFeed         map[string]int64 // mapped, by feed
}

func (t *ctmTally) drop(reason string) {
	if t.dropped == nil {
		t.dropped = map[string]int{}
	}
	t.dropped[reason]++
}

func (t *ctmTally) add(o ctmTally) {
	t.mapped += o.mapped
	t.failed += o.failed
	for r, n := range o.dropped {
		if t.dropped == nil {
			t.dropped = map[string]int{}
		}
		t.dropped[r] += n
	}
}

func ctmProcFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*ctmProc, error) {
	opts, err := ctmOptionsFromParsed(conf)
	if err != nil {
		return nil, err
	}
	m := mgr.Metrics()
	p := &ctmProc{
		log:        mgr.Logger(),
		mapped:     m.NewCounter("currents_mparticle_events_mapped", "event_type", "feed"),
		historical: m.NewCounter("currents_mparticle_events_historical", "event_type"),
		dropped:    m.NewCounter("currents_mparticle_events_dropped", "event_type", "reason"),
		failed:     m.NewCounter("currents_mparticle_events_failed", "event_type", "reason"),
		truncated:  m.NewCounter("currents_mparticle_attributes_truncated", "part"),
		trimmed:    m.NewCounter("currents_mparticle_attributes_trimmed"),
		nonUUID:    m.NewCounter("currents_mparticle_non_uuid_ids", "kind"),
	}
	p.failUnmappable = opts.Unmappable == mapping.UnmappableFail
	if p.mapper, err = mapping.New(opts); err != nil {
		return nil, err
	}
	return p, nil
}

// ctmEventsCarried and ctmEventsParsed count, over the process, the events
// read from the event a message carries and those read by parsing the
// message (see ctmEvent), for tests to tell which way events went.
var ctmEventsCarried, ctmEventsParsed atomic.Int64

// ctmBatchBytes is a guess of one mapped batch's size, to size the first
// shared output buffer before any batch was mapped; after that the buffers
// are sized by the mean size of the batches mapped so far.
const ctmBatchBytes = 1024

// ProcessBatch maps each message. The batches of all messages share one
// buffer, each message holding a capped slice of it, so a message batch
// costs one allocation for its output bytes.
func (p *ctmProc) ProcessBatch(ctx context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	out := make(service.MessageBatch, 0, len(batch))
	var buf []byte
	var written, bytes int // batches written into buf so far, and their bytes
	var counts ctmCounts
	var tally ctmTally
	// The metadata strings cut from the event (user, id, name) are copied
	// into chunks shared by the batch: the event's own point into its
	// whole Avro block, which the output would keep alive while it holds
	// the message (internal/strchunk).
	boxes := ctmMetaBoxes{strs: strchunk.Chunks{Size: len(batch) * ctmMetaStringBytes}}
	var nFast, nParsed int64
	defer func() {
		p.flush(&counts)
		if written > 0 {
			p.meanBatch.Store(int64(bytes / written))
		}
		ctmEventsCarried.Add(nFast)
		ctmEventsParsed.Add(nParsed)
		p.tallyMu.Lock()
		p.tally.add(tally)
		for _, tc := range counts.mapped {
			if p.tally.byFeed == nil {
				p.tally.byFeed = map[string]int64{}
			}
			p.tally.byFeed[string(tc.feed)] += tc.n
		}
		p.tallyMu.Unlock()
	}()
	// One session for the batch: it reads the clock once, and forgets the
	// batch's events at the end (mapping.Session), so the processor keeps
	// none of their blocks.
	mapper := p.mapper.Session()
	defer mapper.Close()
	for i, msg := range batch {
		ev, fast, err := ctmEvent(msg)
		if fast {
			nFast++
		} else {
			nParsed++
		}
		if err != nil {
			if !p.failUnmappable {
				tally.drop(ctmReasonBadMessage)
				p.dropped.Incr(1, ctmLabel(ev.Type), ctmReasonBadMessage)
				p.warnDropped(ctmReasonBadMessage, ev.Type, "", err.Error())
				continue
			}
			tally.failed++
			p.failed.Incr(1, ctmLabel(ev.Type), ctmReasonBadMessage)
			out = append(out, p.errored(msg, err))
			continue
		}
		if cap(buf)-len(buf) < ctmBatchBytes {
			// A new buffer rather than a grown one: the messages mapped
			// so far keep theirs, and nothing is copied. Sized for the
			// messages left at the mean batch size.
			mean := int(p.meanBatch.Load())
			if written > 0 {
				mean = bytes / written
			}
			if mean == 0 {
				mean = ctmBatchBytes
			}
			buf = make([]byte, 0, max((len(batch)-i)*mean*9/8, 4*ctmBatchBytes))
		}
		start := len(buf)
		var res mapping.Result
		buf, res, err = mapper.AppendBatch(buf, ev)
		if err == nil && res.Dropped == "" {
			written++
			bytes += len(buf) - start
		}
		if err != nil {
			reason := ctmReasonBadMessage
			var me *mapping.Error
			if errors.As(err, &me) {
				reason = me.Reason
			}
			tally.failed++
			p.failed.Incr(1, ctmLabel(ev.Type), reason)
			out = append(out, p.errored(msg, err))
			continue
		}
		if res.Dropped != "" {
			tally.drop(string(res.Dropped))
			p.dropped.Incr(1, ctmLabel(ev.Type), string(res.Dropped))
			if u := res.Unmapped; u != nil {
				detail := u.Detail
				if u.Field != "" {
					detail = "field " + u.Field + ": " + detail
				}
				p.warnDropped(u.Reason, u.EventType, u.EventID, detail)
			}
			continue
		}
		tally.mapped++
		counts.add(ctmLabel(ev.Type), &res)
		mapped := msg.Copy()
		// Capped: an append to this message's bytes must never reach the
		// next message's batch in the shared buffer.
		mapped.SetBytes(buf[start:len(buf):len(buf)])
		mapped.MetaSetMut(ctmMetaFeed, ctmFeedMeta(res.Feed))
		mapped.MetaSetMut(ctmMetaUser, boxes.strs.Clone(res.User))
		mapped.MetaSetMut(ctmMetaHistorical, ctmBoolMeta(res.Historical))
		mapped.MetaSetMut(ctmMetaEventID, boxes.eventID(msg, res.SourceMessageID))
		mapped.MetaSetMut(ctmMetaEventName, boxes.name(res.EventName))
		out = append(out, mapped)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return []service.MessageBatch{out}, nil
}

// ctmMetaStringBytes is a guess of the bytes of one message's metadata
// strings cut from its event, to size the batch's string chunks.
const ctmMetaStringBytes = 64

// ctmMetaBoxes saves the allocation of boxing a metadata value the batch
// already has boxed: the event id is most often the input's currents_id,
// and the event name is the same for the events of one type. Strings of
// the event are copied into strs before they are kept.
type ctmMetaBoxes struct {
	strs        strchunk.Chunks
	lastName    string
	lastNameAny any
}

func (b *ctmMetaBoxes) eventID(in *service.Message, id string) any {
	if v, ok := in.MetaGetMut("currents_id"); ok {
		if s, ok := v.(string); ok && s == id {
			return v
		}
	}
	return b.strs.Clone(id)
}

func (b *ctmMetaBoxes) name(n string) any {
	if b.lastNameAny == nil || n != b.lastName {
		n = b.strs.Clone(n)
		b.lastName, b.lastNameAny = n, n
	}
	return b.lastNameAny
}

// ctmFeedMeta and ctmBoolMeta return metadata values as constants, which
// become interface values without an allocation per message.
func ctmFeedMeta(f mapping.Feed) any {
	switch f {
	case mapping.FeedIOS:
		return string(mapping.FeedIOS)
	case mapping.FeedAndroid:
		return string(mapping.FeedAndroid)
	case mapping.FeedWeb:
		return string(mapping.FeedWeb)
	case mapping.FeedUnbound:
		return string(mapping.FeedUnbound)
	}
	return string(f)
}

func ctmBoolMeta(b bool) any {
	if b {
		return "true"
	}
	return "false"
}

// ctmEvent reads the Currents event a message holds. A message of the
// braze_currents scanner or input carries its decoded event beside its JSON
// content: while the content is the very slice they wrote (no processor
// replaced it), that event is mapped as it is, which costs neither a parse
// nor an allocation. Otherwise the content is parsed, and the fields keep
// the writer schema order of the carried event, if any (a processor that
// changed a field does not change which attributes fall beyond mParticle's
// limit). fast reports which way the event was read.
//
// The carried event is taken, not only read: the mapped message shares the
// input's context, and without the event it does not keep the event's Avro
// block alive while the output holds it.
func ctmEvent(msg *service.Message) (ev currents.Event, fast bool, err error) {
	carried, ok := currents.TakeEventJSON(msg.Context())
	eventType, found := msg.MetaGet(ctmMetaEventType)
	if !found || eventType == "" {
		return currents.Event{}, false, fmt.Errorf("message has no %s metadata: the currents_to_mparticle processor maps the events of the braze_currents scanner, which sets it", ctmMetaEventType)
	}
	if ok {
		if raw, err := msg.AsBytes(); err == nil && carried.Unchanged(raw) {
			ev := carried.Event
			// The type is the metadata's, which a processor may change.
			ev.Type = eventType
			return ev, true, nil
		}
	}
	structured, err := msg.AsStructured()
	if err != nil {
		return currents.Event{Type: eventType}, false, fmt.Errorf("currents event %s: message is not JSON: %w", eventType, err)
	}
	fields, isMap := structured.(map[string]any)
	if !isMap {
		return currents.Event{Type: eventType}, false, fmt.Errorf("currents event %s: message is a JSON %s, want an object of event fields", eventType, ctmJSONKind(structured))
	}
	var order []string
	if ok && carried.Event.Len() > 0 {
		order = carried.Event.Names()
	}
	return currents.EventFromMapOrdered(eventType, fields, order), false, nil
}

func ctmJSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// ctmLabel makes an event type safe as a metric label value: Prometheus
// refuses (and its client panics on) label values that are not UTF-8, and
// the type comes from object keys and schemas nobody validated.
func ctmLabel(eventType string) string {
	if utf8.ValidString(eventType) {
		return eventType
	}
	return strings.ToValidUTF8(eventType, "\uFFFD")
}

func (p *ctmProc) errored(msg *service.Message, err error) *service.Message {
	failed := msg.Copy()
	failed.SetError(err)
	p.log.Debugf("Currents event not mapped: %v", err)
	return failed
}

// warnDropped logs a dropped unmappable event at WARN: its reason, type, id
// and what is wrong, each cut to ctmWarnMaxLen bytes. The type and id come
// from the data and may be anything, so they are quoted; the detail is
// made valid UTF-8 (a bad message's error quotes its metadata). Past
// ctmWarnBurst lines in a window it only counts the event.
func (p *ctmProc) warnDropped(reason, eventType, id, detail string) {
	now := time.Now()
	p.warnMu.Lock()
	w := &p.warn
	left := 0
	if now.Sub(w.start) >= ctmWarnWindow {
		left = w.suppressed
		w.start, w.logged, w.suppressed = now, 0, 0
	}
	log := w.logged < ctmWarnBurst
	if log {
		w.logged++
	} else {
		w.suppressed++
		w.total++
	}
	p.warnMu.Unlock()
	if left > 0 {
		p.log.Warnf("currents_to_mparticle: %d more unmappable events were dropped in the last %v without a line each (counted in currents_mparticle_events_dropped)", left, ctmWarnWindow)
	}
	if log {
		p.log.Warnf("currents_to_mparticle: dropped an unmappable Currents event (unmappable: drop): reason=%s event_type=%q id=%q: %s",
			reason, ctmCut(eventType), ctmCut(id), ctmCut(strings.ToValidUTF8(detail, "\uFFFD")))
	}
}

// ctmCut cuts s to ctmWarnMaxLen bytes on a UTF-8 boundary, marking the cut.
func ctmCut(s string) string {
	if len(s) <= ctmWarnMaxLen {
		return s
	}
	cut := ctmWarnMaxLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ctmCounts adds up a message batch's metrics, so that each counter is
// incremented once per batch and label set rather than once per event (an
// increment with labels costs an allocation).
type ctmCounts struct {
	mapped                           []ctmTypeCount
	namesTrunc, valuesTrunc, trimmed int64
	nonUUIDDevice, nonUUIDEvent      int64
}

// ctmTypeCount counts the events of one type and feed mapped in a batch.
type ctmTypeCount struct {
	eventType  string
	feed       mapping.Feed
	n, history int64
}

func (c *ctmCounts) add(eventType string, res *mapping.Result) {
	var tc *ctmTypeCount
	for i := range c.mapped {
		if c.mapped[i].eventType == eventType && c.mapped[i].feed == res.Feed {
			tc = &c.mapped[i]
			break
		}
	}
	if tc == nil {
		c.mapped = append(c.mapped, ctmTypeCount{eventType: eventType, feed: res.Feed})
		tc = &c.mapped[len(c.mapped)-1]
	}
	tc.n++
	if res.Historical {
		tc.history++
	}
	k := &res.Counters
	c.namesTrunc += int64(k.NamesTruncated)
	c.valuesTrunc += int64(k.ValuesTruncated)
	c.trimmed += int64(k.AttributesTrimmed)
	c.nonUUIDDevice += int64(k.NonUUIDDeviceIDs)
	c.nonUUIDEvent += int64(k.NonUUIDEventIDs)
}

// flush increments the metrics by a batch's counts.
func (p *ctmProc) flush(c *ctmCounts) {
	for _, tc := range c.mapped {
		p.mapped.Incr(tc.n, tc.eventType, string(tc.feed))
		if tc.history > 0 {
			p.historical.Incr(tc.history, tc.eventType)
		}
	}
	if c.namesTrunc > 0 {
		p.truncated.Incr(c.namesTrunc, "name")
	}
	if c.valuesTrunc > 0 {
		p.truncated.Incr(c.valuesTrunc, "value")
	}
	if c.trimmed > 0 {
		p.trimmed.Incr(c.trimmed)
	}
	if c.nonUUIDDevice > 0 {
		p.nonUUID.Incr(c.nonUUIDDevice, "device")
	}
	if c.nonUUIDEvent > 0 {
		p.nonUUID.Incr(c.nonUUIDEvent, "event")
	}
}

// Close logs the run's totals: events mapped, dropped by reason, failed.
func (p *ctmProc) Close(context.Context) error {
	p.summaryOnce.Do(p.logSummary)
	return nil
}

func (p *ctmProc) logSummary() {
	p.tallyMu.Lock()
	t := p.tally
	p.tallyMu.Unlock()
	if t.mapped == 0 && t.failed == 0 && len(t.dropped) == 0 {
		return
	}
	reasons := make([]string, 0, len(t.dropped))
	total := 0
	for r, n := range t.dropped {
		reasons = append(reasons, fmt.Sprintf("%s: %d", r, n))
		total += n
	}
	sort.Strings(reasons)
	why := ""
	if total > 0 {
		why = " (" + strings.Join(reasons, ", ") + ")"
	}
	p.warnMu.Lock()
	quiet := p.warn.total
	p.warnMu.Unlock()
	if quiet > 0 {
		why += fmt.Sprintf(" (%d unmappable without a WARN line of their own)", quiet)
	}
	feeds := make([]string, 0, len(t.byFeed))
	for f, n := range t.byFeed {
		feeds = append(feeds, fmt.Sprintf("%s: %d", f, n))
	}
	sort.Strings(feeds)
	perFeed := ""
	if len(feeds) > 0 {
		perFeed = " (" + strings.Join(feeds, ", ") + ")"
	}
	p.log.Infof("currents_to_mparticle: %d events mapped%s, %d dropped%s, %d failed (routed as errors)", t.mapped, perFeed, total, why, t.failed)
}
