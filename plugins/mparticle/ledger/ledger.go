// Package ledger remembers which events mParticle has accepted, so that an
// event read again (after a crash, a replay, or because Braze wrote it into
// two files) is not sent twice.
//
// mParticle deduplicates only a repeated batch source_request_id, and a
// re-read event is rarely packed into the same batch again; Braze Currents is
// itself at-least-once and tells consumers to deduplicate on the event id.
// A Ledger records an id only after mParticle accepted it (never before, which
// would lose the event if the send then failed), and it never stops delivery:
// a store that fails or is slow makes it send anyway and count the fault.
//
// Before a batch is sent, Intend records it whole under its
// source_request_id, and each of its ids as under way in it. Once mParticle
// accepted the batch, Delivered replaces the record with a mark: every id
// under way in that batch now reads as delivered, at the cost of one write
// per batch rather than one per event. A process can die in between: the
// next one that meets one of those ids finds the record and sends the very
// same batch again, which mParticle drops if it had arrived, by its
// source_request_id. A new batch holding some of the same events would not
// be recognised.
//
// The store is any key-value store with expiry; the mparticle output
// (plugins/components/mparticle/output_mparticle.go) adapts a Benthos cache
// resource, Redis when several instances share the work.
package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

// Store keeps recorded ids. Benthos cache resources fit it.
type Store interface {
	// Get returns the value of key; found is false when there is none.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Put sets key to value for ttl.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// MultiPutter is a Store that can set several keys in one call. The ledger
// uses it, when its Store has it, for the writes of one Intend or Delivered:
// a Benthos cache resource is otherwise looked up once per write.
type MultiPutter interface {
	// PutMany sets each entry for ttl and returns how many failed.
	PutMany(ctx context.Context, entries []Entry, ttl time.Duration) (failed int)
}

// Entry is one key and value for MultiPutter.
type Entry struct {
	Key   string
	Value []byte
}

// The values of the keys: an id's is "p:" and the source_request_id of the
// batch it was last sent in; a batch's is its batchRecord while it is under
// way, valueDelivered once mParticle accepted it. The id of a batch that
// tracks no other id (most batches) holds the record itself, "r:" and the
// batchRecord, and then valueDelivered: one key instead of two. An id whose
// value is valueDelivered (also how earlier versions recorded each id) is
// delivered.
var (
	valueDelivered = []byte("d")
	pendingPrefix  = "p:"
	recordPrefix   = "r:"
)

// soleID returns the id of b when it is the only one the ledger tracks in b.
func soleID(b Batch) (string, bool) {
	sole := ""
	for _, id := range b.IDs {
		switch {
		case id == "":
		case sole != "":
			return "", false
		default:
			sole = id
		}
	}
	return sole, sole != ""
}

// batchKey is the key of a batch record under the ledger's prefix.
const batchKey = "batch_"

// Batch is one packed batch about to be sent: its source_request_id, JSON
// and the ids of its events.
type Batch struct {
	SourceRequestID string
	Body            []byte
	IDs             []string
}

// batchRecord is what Intend stores of a batch, so that a process that died
// while it was under way can send the very same batch again: mParticle
// deduplicates it by its source_request_id if it had arrived.
type batchRecord struct {
	Feed string          `json:"feed"`
	IDs  []string        `json:"ids"`
	Body json.RawMessage `json:"body"`
}

// Metrics counts what the ledger did.
type Metrics interface {
	// StoreError counts a failed or timed-out store call; op is "get" or
	// "set". The event was sent (get) or may be sent again later (set).
	StoreError(op string)
}

// DefaultRetention is how long an id is remembered by default: longer than
// the window in which Braze writes an event twice (its retries of a file
// within the hour, files landing late in an hour folder) and than the
// checkpoints a crash makes the input re-read, while keeping the store
// small (about 100 bytes per event: events/day × 3 × 100 B).
const DefaultRetention = 72 * time.Hour

// DefaultTimeout bounds one store call (a group of n calls gets n times
// it): past it the ledger carries on without the answer, so a slow store
// slows delivery by at most this per call.
const DefaultTimeout = time.Second

// Config configures a Ledger.
type Config struct {
	Store Store
	// Prefix is put before each id to make its key.
	Prefix string
	// Retention defaults to DefaultRetention.
	Retention time.Duration
	// Timeout defaults to DefaultTimeout.
	Timeout time.Duration
	// Metrics defaults to none.
	Metrics Metrics
	// Resend sends a batch recorded by Intend again, as it is, on its
	// feed; nil when batches are not recorded. It returns nil once
	// mParticle accepted it.
	Resend func(ctx context.Context, feed string, body []byte) error
}

// Ledger coordinates the senders of one process and remembers accepted ids
// in its Store across processes and restarts. It is safe for concurrent use.
type Ledger struct {
	cfg      Config
	mu       sync.Mutex
	inflight map[string]*flight // ids some caller is sending now
}

type flight struct {
	done      chan struct{}
	delivered bool
}

type nopMetrics struct{}

func (nopMetrics) StoreError(string) {}

// New returns a Ledger over cfg.Store.
func New(cfg Config) *Ledger {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Ledger{cfg: cfg, inflight: map[string]*flight{}}
}

// Decision says what to do with one event.
type Decision uint8

const (
	// Send: not known to be delivered; the caller sends it and reports the
	// outcome with Settle.
	Send Decision = iota
	// Duplicate: mParticle already accepted this id; do not send it.
	Duplicate
	// SameAs: the same id stands earlier in this Claim; its outcome is this
	// one's (Claim.First says where).
	SameAs
	// Skip: the event has no id; send it, the ledger does not track it.
	Skip
	// Busy: another caller is sending this id now. Settle this Claim first,
	// then Wait for the ids and Claim them again: waiting while holding
	// claims could deadlock two callers on each other's ids.
	Busy
)

// Claim is the ledger's answer for a list of ids.
type Claim struct {
	Decisions []Decision
	// First[i] is the index of the earlier occurrence for SameAs.
	First []int
	ids   []string
	l     *Ledger
	mu    sync.Mutex
	own   map[string]*flight
}

// Claim decides for each id whether to send it, without waiting for other
// callers (an id another caller is sending now is Busy). Every Send decision
// must be settled with Claim.Settle, whatever happens.
func (l *Ledger) Claim(ctx context.Context, ids []string) *Claim {
	c := &Claim{Decisions: make([]Decision, len(ids)), First: make([]int, len(ids)), ids: ids, l: l,
		own: map[string]*flight{}}
	firstAt := make(map[string]int, len(ids))
	// One deadline for the reads of every id (see bound); a batch found
	// under way is resent with ctx itself, not this deadline.
	sctx, cancel := l.bound(ctx, len(ids))
	defer cancel()
	for i, id := range ids {
		c.First[i] = -1
		if id == "" {
			c.Decisions[i] = Skip
			continue
		}
		if k, ok := firstAt[id]; ok {
			c.Decisions[i], c.First[i] = SameAs, k
			continue
		}
		firstAt[id] = i
		c.Decisions[i] = l.claimOne(ctx, sctx, c, id)
	}
	return c
}

func (l *Ledger) claimOne(ctx, sctx context.Context, c *Claim, id string) Decision {
	l.mu.Lock()
	if f, busy := l.inflight[id]; busy {
		l.mu.Unlock()
		select {
		case <-f.done:
			if f.delivered {
				return Duplicate
			}
		default:
		}
		return Busy
	}
	f := &flight{done: make(chan struct{})}
	l.inflight[id] = f
	l.mu.Unlock()

	value, found := l.get(sctx, id)
	if found && (bytes.Equal(value, valueDelivered) || l.delivered(ctx, value)) {
		l.finish(id, f, true)
		return Duplicate
	}
	c.own[id] = f
	return Send
}

// delivered reads where an id was under way: in a batch of its own (value
// "r:" and the batch's record) or in a batch of several ids (value "p:" and
// its source_request_id, whose key holds the record). True once mParticle
// accepted that batch. A batch still recorded as under way was cut short by
// a process that died: it is sent again, unchanged, and counts as delivered
// once accepted. False when there is no such batch or it cannot be sent now;
// the caller then sends the event as usual.
func (l *Ledger) delivered(ctx context.Context, value []byte) bool {
	if rec, ok := bytes.CutPrefix(value, []byte(recordPrefix)); ok {
		return l.resend(ctx, rec, "")
	}
	srid, ok := bytes.CutPrefix(value, []byte(pendingPrefix))
	if !ok {
		return false
	}
	rctx, cancel := l.bound(ctx, 1)
	raw, found := l.get(rctx, batchKey+string(srid))
	cancel()
	if !found {
		return false
	}
	if bytes.Equal(raw, valueDelivered) {
		return true
	}
	return l.resend(ctx, raw, batchKey+string(srid))
}

// resend sends the batch of a batchRecord again and, once mParticle accepted
// it, records its ids as delivered, and the batch's key (when it has one,
// not "") too: the client's Accepted hook may have marked the batch already,
// but one of its ids may have been written over since.
func (l *Ledger) resend(ctx context.Context, raw []byte, batchKey string) bool {
	var rec batchRecord
	if l.cfg.Resend == nil || json.Unmarshal(raw, &rec) != nil {
		return false
	}
	if err := l.cfg.Resend(ctx, rec.Feed, rec.Body); err != nil {
		return false
	}
	entries := make([]Entry, 0, len(rec.IDs)+1)
	for _, id := range rec.IDs {
		if id != "" {
			entries = append(entries, Entry{id, valueDelivered})
		}
	}
	if batchKey != "" {
		entries = append(entries, Entry{batchKey, valueDelivered})
	}
	l.putAll(ctx, entries)
	return true
}

// Intend records batches about to be sent on feed: each of their ids as
// under way in its batch, and each batch whole. Should the process die
// before Delivered, the next Claim of one of them sends the same batch again
// (see delivered) instead of a new one holding some of its events:
// mParticle deduplicates only identical batches.
func (l *Ledger) Intend(ctx context.Context, feed string, batches []Batch) {
	entries := make([]Entry, 0, 2*len(batches))
	for _, b := range batches {
		// The body is the client's own packing of parsed JSON; were it not
		// JSON, delivered could not read the record and would send the
		// event as usual.
		if id, ok := soleID(b); ok {
			entries = append(entries, Entry{id, appendBatchRecord([]byte(recordPrefix), feed, b)})
			continue
		}
		// The ids first, the record last (writes keep this order): a
		// process that dies in between leaves ids pointing at no record,
		// which are sent as usual (the batch was not sent), rather than a
		// record some of whose ids a later Claim would not find and send
		// in a new batch.
		pending := []byte(pendingPrefix + b.SourceRequestID)
		for _, id := range b.IDs {
			if id != "" {
				entries = append(entries, Entry{id, pending})
			}
		}
		entries = append(entries, Entry{batchKey + b.SourceRequestID, appendBatchRecord(nil, feed, b)})
	}
	l.putAll(ctx, entries)
}

// appendBatchRecord appends the batchRecord of b on feed. Written by hand:
// json.Marshal re-validates and compacts the body, which took half of
// Intend's time in a profile, once per batch sent.
func appendBatchRecord(dst []byte, feed string, b Batch) []byte {
	dst = slices.Grow(dst, len(b.Body)+len(feed)+len(b.IDs)*40+32) // ids are UUIDs
	dst = append(dst, `{"feed":`...)
	dst = jsonstring.Append(dst, feed)
	dst = append(dst, `,"ids":[`...)
	for i, id := range b.IDs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstring.Append(dst, id)
	}
	dst = append(dst, `],"body":`...)
	dst = append(dst, b.Body...)
	return append(dst, '}')
}

// Delivered records that mParticle accepted these batches (their
// SourceRequestID and IDs; Body is not read), and so every id Intend
// recorded as under way in them. Call it before anyone learns of the
// acceptance: a crash after that point must not send the events again.
func (l *Ledger) Delivered(ctx context.Context, batches []Batch) {
	entries := make([]Entry, len(batches))
	for i, b := range batches {
		key := batchKey + b.SourceRequestID
		if id, ok := soleID(b); ok {
			key = id
		}
		entries[i] = Entry{key, valueDelivered}
	}
	l.putAll(ctx, entries)
}

// putAll writes entries in order under one deadline (see bound), in one
// call when the Store is a MultiPutter.
func (l *Ledger) putAll(ctx context.Context, entries []Entry) {
	if len(entries) == 0 {
		return
	}
	ctx, cancel := l.bound(ctx, len(entries))
	defer cancel()
	for i := range entries {
		entries[i].Key = l.cfg.Prefix + entries[i].Key
	}
	if mp, ok := l.cfg.Store.(MultiPutter); ok {
		for range mp.PutMany(ctx, entries, l.cfg.Retention) {
			l.cfg.Metrics.StoreError("set")
		}
		return
	}
	for _, e := range entries {
		if err := l.cfg.Store.Put(ctx, e.Key, e.Value, l.cfg.Retention); err != nil {
			l.cfg.Metrics.StoreError("set")
		}
	}
}

// Wait blocks until none of ids is being sent by another caller, or ctx
// ends. Call it holding no unsettled Claim.
func (l *Ledger) Wait(ctx context.Context, ids []string) error {
	for _, id := range ids {
		l.mu.Lock()
		f, busy := l.inflight[id]
		l.mu.Unlock()
		if !busy {
			continue
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// get reads key under a deadline the caller set with bound; a failure is
// counted and reads as not found.
func (l *Ledger) get(ctx context.Context, key string) ([]byte, bool) {
	value, found, err := l.cfg.Store.Get(ctx, l.cfg.Prefix+key)
	if err != nil {
		l.cfg.Metrics.StoreError("get")
	}
	return value, found && err == nil
}

func (l *Ledger) finish(id string, f *flight, delivered bool) {
	l.mu.Lock()
	if l.inflight[id] == f {
		delete(l.inflight, id)
	}
	l.mu.Unlock()
	f.delivered = delivered
	close(f.done)
}

// bound gives n store calls the time n single calls would have: one
// deadline for a group costs less than a context per call (a third of each
// put's time in a profile with a memory cache), and a slow store still
// holds delivery no longer.
func (l *Ledger) bound(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Duration(n)*l.cfg.Timeout)
}

// Settle reports the outcome of the Send decisions: delivered[i] for ids[i]
// (entries of other decisions are ignored), for the callers waiting for
// these ids. What mParticle accepted was recorded by Delivered already.
func (c *Claim) Settle(delivered []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range c.ids {
		if c.Decisions[i] != Send {
			continue
		}
		f, ok := c.own[id]
		if !ok {
			continue // sent without a claim (the wait was cut short)
		}
		c.l.finish(id, f, delivered[i])
		delete(c.own, id)
	}
}

// ErrDuplicate is Deliver's outcome for an event mParticle already accepted
// (or that stands twice in one call): it was not sent, and counts as done.
var ErrDuplicate = errors.New("ledger: event already delivered")

// Deliver sends the events the ledger does not know as delivered: ids[i] is
// the id of event i ("" for an event it does not track), and send sends the
// events at the given indexes, returning one error per index (nil when
// mParticle accepted it), calling Intend and Delivered on the way (the
// mparticle output does it from the client's BeforeSend and Accepted
// hooks). It returns one outcome per event: nil (delivered now),
// ErrDuplicate (not sent: already delivered), or send's error.
// Events another caller is sending now are waited for, after this call's
// own sends are settled, and sent if that other send failed.
func (l *Ledger) Deliver(ctx context.Context, ids []string, send func(idx []int) []error) []error {
	out := make([]error, len(ids))
	pending := make([]int, len(ids))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		sub := make([]string, len(pending))
		for k, i := range pending {
			sub[k] = ids[i]
		}
		c := l.Claim(ctx, sub)
		var toSend, busy []int
		for k, d := range c.Decisions {
			switch d {
			case Send, Skip:
				toSend = append(toSend, k)
			case Duplicate:
				out[pending[k]] = ErrDuplicate
			case Busy:
				busy = append(busy, k)
			}
		}
		idx := make([]int, len(toSend))
		for j, k := range toSend {
			idx[j] = pending[k]
		}
		delivered := make([]bool, len(sub))
		if len(idx) > 0 {
			for j, err := range send(idx) {
				out[idx[j]] = err
				delivered[toSend[j]] = err == nil
			}
		}
		c.Settle(delivered)
		// A repeat follows its first occurrence: done (a duplicate) when
		// that was delivered or a duplicate, failed alike when it failed,
		// and waiting with it when it is busy.
		isBusy := make(map[int]bool, len(busy))
		for _, k := range busy {
			isBusy[k] = true
		}
		for k, d := range c.Decisions {
			if d != SameAs {
				continue
			}
			first := c.First[k]
			switch {
			case isBusy[first]:
				busy = append(busy, k)
			case out[pending[first]] == nil || out[pending[first]] == ErrDuplicate:
				out[pending[k]] = ErrDuplicate
			default:
				out[pending[k]] = out[pending[first]]
			}
		}
		if len(busy) == 0 {
			break
		}
		next := make([]int, len(busy))
		waitIDs := make([]string, 0, len(busy))
		for j, k := range busy {
			next[j] = pending[k]
			if c.Decisions[k] == Busy {
				waitIDs = append(waitIDs, sub[k])
			}
		}
		if err := l.Wait(ctx, waitIDs); err != nil {
			for _, i := range next {
				out[i] = err
			}
			break
		}
		sort.Ints(next) // first occurrences before their repeats
		pending = next
	}
	return out
}
