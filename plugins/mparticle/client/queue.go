package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSendersPerFeed is the default of QueueConfig.SendersPerFeed.
const DefaultSendersPerFeed = 4

// QueueConfig tunes a Queue.
type QueueConfig struct {
	// SendersPerFeed is how many requests of one feed may be under way at
	// once, at least 1 (see DefaultSendersPerFeed).
	SendersPerFeed int
	// GroupWindow is how long a sender lets a feed's items gather before it
	// takes them, unless a full take is already pending: a user's events
	// that arrive within the window (from different Currents files) share
	// one batch. Zero takes what is pending at once; negative is an error.
	GroupWindow time.Duration
	// MaxCallers is how many Send calls can be under way at once (the
	// output's max_in_flight): when that many wait, no item can arrive
	// within the window, so senders stop waiting. Zero: unknown.
	MaxCallers int
	// Now is the clock of the window; time.Now when nil.
	Now func() time.Time
}

// Queue delivers the items of many concurrent Send calls through one Client.
// Each configured feed has its own pending list and its own senders: a
// sender takes what is pending for its feed (items of several callers), so
// one request packs events of many callers (group commit, no timer), and a
// feed that is throttled (429) or failing (5xx) holds only its own senders
// and items. A feed whose credentials are refused (403) holds nothing: its
// items fail at once as ReasonFeedPaused (temporary) for the caller to send
// again later, while one request now and then probes whether the
// credentials work again; after AuthFailureWindow they fail as
// ReasonAuthWindowExpired. A caller waits only for its own items and gets
// one outcome per item, as Client.Send returns them.
//
// The Benthos output (plugins/components/mparticle/output_mparticle.go)
// calls Send once per input transaction, so what a Queue holds is bounded by
// the transactions the output lets in flight.
type Queue struct {
	c       *Client
	senders int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	feeds   map[string]*feedQueue
	maxTake int // items one sender takes at once
	maxSize int // bytes one sender takes at once (at least one item)
	window  time.Duration
	now     func() time.Time
	callers int          // MaxCallers
	active  atomic.Int64 // Send calls under way
}

// NewQueue checks cfg and starts the senders of every feed c has
// credentials for. Close stops them. Errors are *ConfigError, Field naming
// the QueueConfig field.
func NewQueue(c *Client, cfg QueueConfig) (*Queue, error) {
	if cfg.SendersPerFeed < 1 {
		return nil, configError("SendersPerFeed", "must be at least 1, got %d", cfg.SendersPerFeed)
	}
	if cfg.GroupWindow < 0 {
		return nil, configError("GroupWindow", "must not be negative, got %v", cfg.GroupWindow)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{
		c:       c,
		senders: cfg.SendersPerFeed,
		ctx:     ctx,
		cancel:  cancel,
		feeds:   make(map[string]*feedQueue, len(c.feeds)),
		// Many full requests per take: one user's events pack together only
		// within a take; the take's requests still go out one by one.
		maxTake: 16 * c.cfg.Limits.MaxBatchesPerRequest,
		maxSize: 16 * c.cfg.Limits.MaxRequestBytes,
		window:  cfg.GroupWindow,
		now:     cfg.Now,
		callers: cfg.MaxCallers,
	}
	if q.now == nil {
		q.now = time.Now
	}
	for name := range c.feeds {
		fq := &feedQueue{wake: make(chan struct{}, 1)}
		q.feeds[name] = fq
		for range q.senders {
			q.wg.Add(1)
			go q.sendLoop(fq)
		}
	}
	return q, nil
}

// errPending marks an item whose outcome is not known yet.
var errPending = errors.New("pending")

// queueCall is one Send call waiting for its items.
type queueCall struct {
	mu     sync.Mutex
	errs   []error
	left   int
	done   chan struct{}
	closed bool // the caller stopped waiting: later outcomes are dropped
}

func (k *queueCall) settle(i int, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || k.errs[i] != errPending {
		return
	}
	k.errs[i] = err
	k.left--
	if k.left == 0 {
		close(k.done)
	}
}

func (k *queueCall) gaveUp() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed
}

// queued is one item in a feed's pending list.
type queued struct {
	call *queueCall
	idx  int
	item Item
}

type feedQueue struct {
	mu      sync.Mutex
	pending []queued
	since   time.Time     // when the oldest pending item arrived
	wake    chan struct{} // capacity 1: "there may be work"
}

func (f *feedQueue) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// take removes up to maxTake items (and about maxSize bytes) from the
// pending list, blocking until there is one, and the oldest has waited
// window or a full take is pending, or ctx ends (nil then).
func (f *feedQueue) take(ctx context.Context, maxTake, maxSize int, window time.Duration, now func() time.Time, full func() bool) []queued {
	for {
		f.mu.Lock()
		if n := len(f.pending); n > 0 && n < maxTake && window > 0 && !full() {
			if wait := f.since.Add(window).Sub(now()); wait > 0 {
				f.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-f.wake: // more items (or more callers): look again
				case <-ctx.Done():
					t.Stop()
					return nil
				}
				t.Stop()
				continue
			}
		}
		if n := len(f.pending); n > 0 {
			k, size := 0, 0
			for k < n && k < maxTake && (k == 0 || size+len(f.pending[k].item.Batch) <= maxSize) {
				size += len(f.pending[k].item.Batch)
				k++
			}
			out := make([]queued, k)
			copy(out, f.pending)
			rest := copy(f.pending, f.pending[k:])
			clear(f.pending[rest:])
			f.pending = f.pending[:rest]
			more := rest > 0 // older than the window already: taken next
			f.mu.Unlock()
			if more {
				f.signal() // another sender may take the rest now
			}
			return out
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// full reports whether every caller that can be under way is waiting, so
// that nothing new can arrive while a sender lingers.
func (q *Queue) full() bool {
	return q.callers > 0 && q.active.Load() >= int64(q.callers)
}

// sendLoop is one sender of a feed.
func (q *Queue) sendLoop(f *feedQueue) {
	defer q.wg.Done()
	for {
		taken := q.drop(f.take(q.ctx, q.maxTake, q.maxSize, q.window, q.now, q.full))
		if q.ctx.Err() != nil {
			q.failAll(taken, q.ctx.Err())
			return
		}
		if len(taken) == 0 {
			continue
		}
		items := make([]Item, len(taken))
		for i, t := range taken {
			items[i] = t.item
		}
		errs := q.c.send(q.ctx, items, releaseOnForbidden)
		for i, t := range taken {
			t.call.settle(t.idx, errs[i])
		}
	}
}

// drop removes the items whose caller stopped waiting: nobody would learn
// their outcome, and Benthos delivers them again.
func (q *Queue) drop(taken []queued) []queued {
	live := taken[:0]
	for _, t := range taken {
		if !t.call.gaveUp() {
			live = append(live, t)
		}
	}
	return live
}

func (q *Queue) failAll(taken []queued, cause error) {
	for _, t := range taken {
		t.call.settle(t.idx, &DeliveryError{Reason: ReasonContext, Feed: t.item.Feed, Message: "the output closed before delivery", Err: cause})
	}
}

// Send queues items on their feeds and waits until each is settled or ctx
// ends; it returns one error per item as Client.Send does. Items of a feed
// without credentials are settled at once (ReasonFeedNotConfigured), as are
// items that cannot be batches (ReasonInvalidBatch) when they are sent.
func (q *Queue) Send(ctx context.Context, items []Item) []error {
	if len(items) == 0 {
		return nil
	}
	q.active.Add(1)
	defer q.active.Add(-1)
	call := &queueCall{errs: make([]error, len(items)), left: len(items), done: make(chan struct{})}
	for i := range call.errs {
		call.errs[i] = errPending
	}
	var unknown []Item
	var unknownIdx []int
	touched := make(map[*feedQueue]bool, 2)
	for i, it := range items {
		fq, ok := q.feeds[it.Feed]
		if !ok {
			unknown = append(unknown, it)
			unknownIdx = append(unknownIdx, i)
			continue
		}
		if since, paused := q.c.feeds[it.Feed].pausedSince(time.Now()); paused {
			// Not worth a place in the window: it would only fail later.
			de := feedPaused(since, "")
			de.Feed = it.Feed
			call.settle(i, de)
			continue
		}
		fq.mu.Lock()
		if len(fq.pending) == 0 {
			fq.since = q.now()
		}
		fq.pending = append(fq.pending, queued{call: call, idx: i, item: it})
		fq.mu.Unlock()
		touched[fq] = true
	}
	if q.ctx.Err() != nil {
		// Closed: senders are gone; nothing queued now would be taken.
		call.mu.Lock()
		call.closed = true
		call.mu.Unlock()
		return contextErrors(items, call.errs, q.ctx.Err())
	}
	if q.full() {
		// The last caller that can come: no sender need wait any longer.
		for _, fq := range q.feeds {
			fq.signal()
		}
	} else {
		for fq := range touched {
			fq.signal()
		}
	}
	if len(unknown) > 0 {
		// No request is made for these: Client.Send fails them at once.
		for k, err := range q.c.Send(ctx, unknown) {
			call.settle(unknownIdx[k], err)
		}
	}
	select {
	case <-call.done:
	case <-ctx.Done():
	case <-q.ctx.Done():
	}
	call.mu.Lock()
	defer call.mu.Unlock()
	call.closed = true
	if call.left == 0 {
		return call.errs
	}
	cause := ctx.Err()
	if cause == nil {
		cause = q.ctx.Err()
	}
	return contextErrors(items, call.errs, cause)
}

// contextErrors settles every pending entry of errs with ReasonContext.
func contextErrors(items []Item, errs []error, cause error) []error {
	for i, err := range errs {
		if err == errPending {
			errs[i] = &DeliveryError{Reason: ReasonContext, Feed: items[i].Feed, Message: "gave up waiting", Err: cause}
		}
	}
	return errs
}

// Close stops the senders; items still pending fail with ReasonContext.
// Calls to Send after Close fail their items the same way.
func (q *Queue) Close() {
	q.cancel()
	q.wg.Wait()
	for _, fq := range q.feeds {
		fq.mu.Lock()
		rest := fq.pending
		fq.pending = nil
		fq.mu.Unlock()
		q.failAll(rest, context.Canceled)
	}
}
