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
// A process can die after mParticle accepted a batch and before the ids are
// recorded. So each batch is recorded (Intend) before it is sent, and its ids
// as under way in it; the next process that meets one of those ids sends the
// very same batch again: mParticle drops it if it had arrived, by its
// source_request_id. A new batch holding some of the same events would not be
// recognised.
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
	"sort"
	"sync"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/internal/jsonstring"
)

// Store keeps recorded ids. Benthos cache resources fit it.
type Store interface {
	// Get returns the value of key; found is false when there is none.
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	// Put sets key to value for ttl.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// The values of an id's key: delivered, or under way in a batch (the prefix
// and the batch's source_request_id).
var (
	valueDelivered = []byte("d")
	pendingPrefix  = "p:"
)

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

// DefaultTimeout bounds one store call: past it the ledger carries on
// without the answer, so a slow store slows delivery by at most this.
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
	First    []int
	ids      []string
	l        *Ledger
	mu       sync.Mutex
	own      map[string]*flight
	recorded map[string]bool // Send ids recorded by Accepted already
}

// Claim decides for each id whether to send it, without waiting for other
// callers (an id another caller is sending now is Busy). Every Send decision
// must be settled with Claim.Settle, whatever happens.
func (l *Ledger) Claim(ctx context.Context, ids []string) *Claim {
	c := &Claim{Decisions: make([]Decision, len(ids)), First: make([]int, len(ids)), ids: ids, l: l,
		own: map[string]*flight{}, recorded: map[string]bool{}}
	firstAt := make(map[string]int, len(ids))
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
		c.Decisions[i] = l.claimOne(ctx, c, id)
	}
	return c
}

func (l *Ledger) claimOne(ctx context.Context, c *Claim, id string) Decision {
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

	value, found, err := l.get(ctx, id)
	if err != nil {
		l.cfg.Metrics.StoreError("get")
	}
	if found && (bytes.Equal(value, valueDelivered) || l.recover(ctx, value)) {
		l.finish(id, f, true)
		return Duplicate
	}
	c.own[id] = f
	return Send
}

// recover handles an id that was under way in a batch when a process died:
// it sends that batch again, unchanged, and records its ids as delivered.
// False when there is no such record or the batch cannot be sent now; the
// caller then sends the event as usual.
func (l *Ledger) recover(ctx context.Context, value []byte) bool {
	srid, ok := bytes.CutPrefix(value, []byte(pendingPrefix))
	if !ok || l.cfg.Resend == nil {
		return false
	}
	raw, found, err := l.get(ctx, batchKey+string(srid))
	if err != nil {
		l.cfg.Metrics.StoreError("get")
	}
	var rec batchRecord
	if !found || json.Unmarshal(raw, &rec) != nil {
		return false
	}
	if err := l.cfg.Resend(ctx, rec.Feed, rec.Body); err != nil {
		return false
	}
	for _, id := range rec.IDs {
		l.put(ctx, id, valueDelivered)
	}
	return true
}

// Intend records batches about to be sent on feed: each of their ids as
// under way in its batch, and each batch whole. Should the process die
// before the ids are recorded as delivered, the next Claim of one of them
// sends the same batch again (see recover) instead of a new one holding
// some of its events: mParticle deduplicates only identical batches.
func (l *Ledger) Intend(ctx context.Context, feed string, batches []Batch) {
	for _, b := range batches {
		// The body is the client's own packing of parsed JSON; were it not
		// JSON, recover could not read the record and would send the
		// event as usual.
		l.put(ctx, batchKey+b.SourceRequestID, appendBatchRecord(nil, feed, b))
		pending := []byte(pendingPrefix + b.SourceRequestID)
		for _, id := range b.IDs {
			if id != "" {
				l.put(ctx, id, pending)
			}
		}
	}
}

// appendBatchRecord appends the batchRecord of b on feed. Written by hand:
// json.Marshal re-validates and compacts the body, which took half of
// Intend's time in a profile, once per batch sent.
func appendBatchRecord(dst []byte, feed string, b Batch) []byte {
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

func (l *Ledger) get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	return l.cfg.Store.Get(ctx, l.cfg.Prefix+key)
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

// Accepted records ids[i], a Send decision, as delivered at once: the caller
// learnt that mParticle accepted it while its other events are still under
// way, and a crash between the two must not send it again. Safe for
// concurrent use.
func (c *Claim) Accepted(ctx context.Context, i int) {
	if c.Decisions[i] != Send {
		return
	}
	id := c.ids[i]
	c.mu.Lock()
	_, own := c.own[id]
	done := c.recorded[id]
	c.recorded[id] = true
	c.mu.Unlock()
	if own && !done {
		c.l.put(ctx, id, valueDelivered)
	}
}

func (l *Ledger) put(ctx context.Context, key string, value []byte) {
	pctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	if err := l.cfg.Store.Put(pctx, l.cfg.Prefix+key, value, l.cfg.Retention); err != nil {
		l.cfg.Metrics.StoreError("set")
	}
}

// Settle reports the outcome of the Send decisions: delivered[i] for ids[i]
// (entries of other decisions are ignored). Delivered ids are recorded (if
// Accepted did not already) before anyone waiting for them learns the
// outcome.
func (c *Claim) Settle(ctx context.Context, delivered []bool) {
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
		if delivered[i] && !c.recorded[id] {
			c.l.put(ctx, id, valueDelivered)
			c.recorded[id] = true
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
// mParticle accepted it); it may call accepted(j) as soon as the j-th of
// them is accepted, so that it is recorded at once. It returns one outcome per event: nil (delivered
// now), ErrDuplicate (not sent: already delivered), or send's error.
// Events another caller is sending now are waited for, after this call's
// own sends are settled, and sent if that other send failed.
func (l *Ledger) Deliver(ctx context.Context, ids []string, send func(idx []int, accepted func(j int)) []error) []error {
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
			accepted := func(j int) { c.Accepted(ctx, toSend[j]) }
			for j, err := range send(idx, accepted) {
				out[idx[j]] = err
				delivered[toSend[j]] = err == nil
			}
		}
		c.Settle(ctx, delivered)
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
