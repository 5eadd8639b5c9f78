package export

import (
	"context"
	"sync"
	"time"
)

// A nacked or unreadable object is read again after a delay doubling from
// retryMin to retryMax, so a downstream that rejects everything does not
// turn a reader into a busy loop.
const (
	retryMin = time.Second
	retryMax = time.Minute
)

// Source lists the export; *Lister is the one outside tests.
type Source interface {
	Walk(ctx context.Context, r Range, fn func(Object) error) error
}

// Clock is the time a Scheduler sees. Tests inject a fake one, so that
// backoff, polling and min_object_age run without sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Verdict is how a settled object ended.
type Verdict int

const (
	// Completed: every event read was acknowledged.
	Completed Verdict = iota
	// Corrupt: the object cannot be decoded past some point; the events
	// before the damage were acknowledged.
	Corrupt
	// Rejected: downstream refused some of its events for good in
	// MaxRejected reads.
	Rejected
	// Unreadable: MaxReadFailures reads in a row ended in a bucket error
	// (access denied, a body cut short, the network): the events read
	// before were acknowledged, the rest were never read.
	Unreadable
)

// Settlement is an object's final outcome, which the caller records (a
// checkpoint) so that a restart does not read the object again.
type Settlement struct {
	Object
	Verdict Verdict
	// Events is the number of events read in the last attempt, those of
	// chunks delivered by earlier attempts included.
	Events int
	// Err is the decode error (Corrupt), the latest refusal (Rejected) or
	// the latest bucket error (Unreadable).
	Err error
	// Refused is the number of reads in which downstream refused events
	// for good.
	Refused int
	// ReadFailures is the number of reads in a row that ended in a bucket
	// error.
	ReadFailures int
}

// Checkpoints is where settled objects are remembered across restarts. The
// input implements it over its checkpoint cache (and counts, logs and
// quarantines in Record); without a cache Done is always false.
type Checkpoints interface {
	// Done reports whether an object, by full key, was settled by this or
	// an earlier run. An error fails the pass, which is retried.
	Done(ctx context.Context, name string) (bool, error)
	// Record is called once per object, when it settles, before a one-pass
	// scheduler may report the end: the input's output must not be closed
	// while the last checkpoint is written.
	Record(ctx context.Context, s Settlement)
}

// Observer hears what a Scheduler does, for logs and metrics. Calls come
// from the scheduler's goroutines and from Chunk and Job methods; they must
// not block or call back into the Scheduler.
type Observer interface {
	// Listed: a new object of the export, handed out or skipped.
	Listed(o Object)
	// Skipped: a listed object that Checkpoints says is done.
	Skipped(o Object)
	// Unsettled: an object modified age ago, less than MinAge, left for a
	// later pass.
	Unsettled(o Object, age time.Duration)
	// Passed: a walk of the export ended, having handed out n objects; on
	// err the next walk starts in wait and resumes where this one stopped.
	Passed(n int, err error, wait time.Duration)
	// Retrying: an object is read again, in read number attempt (1-based),
	// because downstream refused some of its events (nacked) or because it
	// could not be read to its end.
	Retrying(o Object, attempt int, nacked bool)
	// Finished: a one-pass scheduler has settled every object it listed.
	// Called once, just before Done is closed.
	Finished()
}

// SchedulerConfig is what a Scheduler reads and how.
type SchedulerConfig struct {
	Source Source
	Range  Range
	// Watch lists the export again every PollInterval, from Lookback
	// before the previous pass started, instead of ending after one pass.
	Watch        bool
	PollInterval time.Duration
	Lookback     time.Duration
	// MinAge (watch only): an object modified less than this long ago is
	// left for a later pass, which lists its hour again however old.
	MinAge time.Duration
	// MaxRejected is how many reads may end with events refused for good
	// before the object settles as Rejected (at least 1).
	MaxRejected int
	// MaxReadFailures is how many reads in a row may end in a bucket error
	// before the object settles as Unreadable; 0 retries for ever.
	MaxReadFailures int
	// Checkpoints is required: it also hears every settlement.
	Checkpoints Checkpoints
	Observer    Observer // nil: nobody listens
	Clock       Clock    // nil: the system clock
}

// Scheduler decides which export object is read next and what becomes of
// it: it walks the export (once, or polling in watch mode), skips the
// checkpointed objects, hands the others out through Next, tracks every
// attempt at reading one (which chunks were delivered, which nacked), reads
// an object again with backoff after a nack or a bucket error, and settles
// it once read and acknowledged.
//
// It knows nothing of Benthos: the braze_currents input
// (plugins/components/currents/input_braze_currents.go) runs a pool of
// readers on Next, turns chunks into message batches and their
// acknowledgements into Chunk.Ack and Chunk.Nack, and records settlements in
// its checkpoint cache.
type Scheduler struct {
	conf  SchedulerConfig
	obs   Observer
	clock Clock
	work  chan *Job     // unbuffered: listing waits for a free reader
	done  chan struct{} // closed once a one-pass scheduler has settled every object
	wake  chan struct{} // a retry was queued

	mu         sync.Mutex
	unresolved int // objects handed out and not yet settled or skipped
	walkDone   bool
	doneClosed bool
	retries    []retry
}

type retry struct {
	j   *Job
	due time.Time
}

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(conf SchedulerConfig) *Scheduler {
	s := &Scheduler{
		conf:  conf,
		obs:   conf.Observer,
		clock: conf.Clock,
		work:  make(chan *Job),
		done:  make(chan struct{}),
		wake:  make(chan struct{}, 1),
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	return s
}

// Run lists the export and feeds due retries to Next until ctx ends.
// Listing errors are retried with backoff, not returned: a bucket that was
// reachable once is assumed to come back.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.retryLoop(ctx)
	}()
	s.walkLoop(ctx)
	wg.Wait()
}

// Next waits for the next object to read and starts an attempt at it. The
// caller reads it through Job.NextChunk and ends with Job.EndRead or
// Job.Skip; an attempt abandoned at shutdown leaves the object unsettled,
// to be read after a restart.
func (s *Scheduler) Next(ctx context.Context) (*Job, error) {
	select {
	case j := <-s.work:
		j.begin()
		return j, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed once a one-pass scheduler has listed the export and settled
// (or skipped) every object: only then may the input end, as a nack arriving
// later could no longer be honoured. Never closed in watch mode.
func (s *Scheduler) Done() <-chan struct{} { return s.done }

// walkLoop lists the export (once, or every poll interval in watch mode) and
// hands each new object that is not checkpointed to the readers.
func (s *Scheduler) walkLoop(ctx context.Context) {
	// seen holds the objects handed out by this process, by full key, with
	// their hour, so that a new pass (a poll, or a retry after a listing
	// error) does not hand them out again. Entries of hours no later pass
	// will list are dropped as the walk moves on, so the set stays as small
	// as the hours a pass looks at, however long the range.
	seen := map[string]time.Time{}
	lower := s.conf.Range.Since
	failures := 0
	for {
		passStart := s.clock.Now()
		// The next pass starts at the hour this one reaches (one pass) or
		// at Lookback before this pass (watch): older entries of seen are
		// not needed once the walk has passed them.
		keepFrom := time.Time{}
		if s.conf.Watch {
			keepFrom = passStart.Add(-s.conf.Lookback)
		}
		var last time.Time
		var unsettled time.Time // earliest hour of an object left for a later pass
		handedOut := 0
		err := s.conf.Source.Walk(ctx, Range{Since: lower, Until: s.conf.Range.Until}, func(o Object) error {
			if o.Hour.After(last) && !last.IsZero() {
				// Hours before this one are behind the walk, unless an
				// object left to settle makes the next pass list them
				// again: what was handed out there must stay seen.
				forget(seen, earlier(earlier(o.Hour, keepFrom), unsettled))
			}
			if _, ok := seen[o.Name]; ok {
				return nil
			}
			if s.conf.Watch && s.conf.MinAge > 0 && !o.ModTime.IsZero() {
				if age := s.clock.Now().Sub(o.ModTime); age < s.conf.MinAge {
					// Maybe still being written: not seen yet, so a later
					// pass (within Lookback) hands it out once settled.
					s.obs.Unsettled(o, age)
					if !o.Hour.IsZero() && (unsettled.IsZero() || o.Hour.Before(unsettled)) {
						unsettled = o.Hour
					}
					return nil
				}
			}
			done, err := s.conf.Checkpoints.Done(ctx, o.Name)
			if err != nil {
				return err
			}
			seen[o.Name] = o.Hour
			s.obs.Listed(o)
			if !o.Hour.IsZero() {
				last = o.Hour
			}
			if done {
				s.obs.Skipped(o)
				return nil
			}
			handedOut++
			return s.handOut(ctx, o)
		})
		if ctx.Err() != nil {
			return
		}
		wait := s.conf.PollInterval
		if err != nil {
			failures++
			wait = backoff(failures)
			// Hours are listed in order: a new pass resumes at the hour
			// reached; seen covers the objects of that hour already out.
			if last.After(lower) {
				lower = last
			}
		} else {
			failures = 0
		}
		s.obs.Passed(handedOut, err, wait)
		if err == nil {
			if !s.conf.Watch {
				s.mu.Lock()
				s.walkDone = true
				s.checkDoneLocked()
				s.mu.Unlock()
				return
			}
			lower = passStart.Add(-s.conf.Lookback).UTC()
			if s.conf.Range.Since.After(lower) {
				lower = s.conf.Range.Since
			}
			// An object left to settle is listed again, however old its hour.
			if !unsettled.IsZero() && unsettled.Before(lower) {
				lower = unsettled
			}
		}
		// A watch pass after a listing error resumes late, but the pass after
		// it looks back again: keep what that one needs.
		forget(seen, earlier(lower, keepFrom))
		select {
		case <-s.clock.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// forget drops the entries of seen whose hour folder ends at or before t: a
// range starting at t does not list them.
func forget(seen map[string]time.Time, t time.Time) {
	for k, h := range seen {
		if !h.IsZero() && !h.Add(time.Hour).After(t) {
			delete(seen, k)
		}
	}
}

// earlier is the earlier of a and b, where a zero b means no bound.
func earlier(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// backoff is the wait before the nth retry of a listing or an object.
func backoff(n int) time.Duration {
	d := retryMin
	for i := 1; i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

func (s *Scheduler) handOut(ctx context.Context, o Object) error {
	j := &Job{Object: o, s: s, acked: map[int]bool{}, delivered: map[int][]bool{}}
	s.mu.Lock()
	s.unresolved++
	s.mu.Unlock()
	select {
	case s.work <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryLoop hands objects due for another attempt back to the readers.
func (s *Scheduler) retryLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		now := s.clock.Now()
		var due []*Job
		next := now.Add(time.Hour)
		kept := s.retries[:0]
		for _, r := range s.retries {
			if !r.due.After(now) {
				due = append(due, r.j)
				continue
			}
			kept = append(kept, r)
			if r.due.Before(next) {
				next = r.due
			}
		}
		s.retries = kept
		s.mu.Unlock()
		for _, j := range due {
			select {
			case s.work <- j:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.clock.After(next.Sub(s.clock.Now())):
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Scheduler) retryLater(j *Job, attempt int) {
	due := s.clock.Now().Add(backoff(attempt))
	s.mu.Lock()
	s.retries = append(s.retries, retry{j: j, due: due})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// resolve counts an object settled or skipped.
func (s *Scheduler) resolve() {
	s.mu.Lock()
	s.unresolved--
	s.checkDoneLocked()
	s.mu.Unlock()
}

func (s *Scheduler) checkDoneLocked() {
	if s.walkDone && s.unresolved == 0 && !s.doneClosed {
		s.doneClosed = true
		s.obs.Finished()
		close(s.done)
	}
}

// Job is one object between listing and settling. It may be read several
// times (after a nack or a bucket error); a chunk acknowledged in an earlier
// attempt is skipped in the next one, and of a chunk nacked in part only the
// events not delivered are sent again.
//
// Chunks are numbered in the order the object yields them, so an attempt
// must cut the object into the same chunks as the first.
type Job struct {
	// Object is what the listing said; the reader may update Size (the
	// input compares it with the bucket's after a short read).
	Object
	s *Scheduler

	seq int // chunks of this attempt so far; the reader's alone

	mu          sync.Mutex
	attempt     int            // reads before this one
	acked       map[int]bool   // chunks acknowledged so far, by number
	delivered   map[int][]bool // events delivered of chunks nacked in part
	outstanding int            // chunks of this attempt not yet acked or nacked
	reading     bool
	nacked      bool
	refusedNow  bool  // downstream refused an event of this attempt for good
	refused     int   // attempts in which downstream refused an event for good
	lastNack    error // the latest refusal for good, for the settlement
	ioErr       error // the object could not be read to its end: read again
	ioFailures  int   // reads in a row that ended in ioErr
	corrupt     error // a decode error: settle as Corrupt
	events      int   // events read in this attempt, skipped chunks included
}

func (j *Job) begin() {
	j.seq = 0
	j.mu.Lock()
	j.reading, j.nacked, j.refusedNow, j.ioErr, j.corrupt, j.outstanding, j.events = true, false, false, nil, nil, 0, 0
	j.mu.Unlock()
}

// Attempt is the number of this read of the object, 1 for the first.
func (j *Job) Attempt() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.attempt + 1
}

// NextChunk accounts the next n events read from the object. ok is false
// when an earlier attempt delivered the whole chunk: do not send it.
// Reading goes on after a nack, so the other events of the object keep
// flowing.
func (j *Job) NextChunk(n int) (c Chunk, ok bool) {
	j.seq++
	c = Chunk{j: j, seq: j.seq, n: n}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events += n
	if j.acked[c.seq] {
		return Chunk{}, false
	}
	j.outstanding++
	if done := j.delivered[c.seq]; done != nil {
		c.todo = make([]int, 0, n)
		for i, ok := range done {
			if !ok {
				c.todo = append(c.todo, i)
			}
		}
	}
	return c, true
}

// Skip ends a job whose object is not to be read after all (it vanished, or
// its schema names a type not selected). It is not recorded, so that a later
// run or config may read it.
func (j *Job) Skip() {
	j.s.resolve()
}

// EndRead ends the reading of an attempt: err is nil at the end of the
// object. Otherwise a corrupt object settles as Corrupt once its chunks are
// acknowledged, and any other error (a bucket error, an object still being
// written) reads it again later. Not called when reading stopped for a
// shutdown: the object stays unsettled and is read after a restart.
func (j *Job) EndRead(ctx context.Context, err error, corrupt bool) {
	j.mu.Lock()
	j.reading = false
	if corrupt {
		j.corrupt = err
	} else {
		j.ioErr = err
	}
	settle := j.outstanding == 0
	j.mu.Unlock()
	if settle {
		j.settle(ctx)
	}
}

// settle decides an object's fate once it is read and every chunk of the
// attempt is acknowledged or nacked. It runs exactly once per attempt.
func (j *Job) settle(ctx context.Context) {
	j.mu.Lock()
	if j.refusedNow {
		j.refused++
	}
	nacked, ioErr, corrupt := j.nacked, j.ioErr, j.corrupt
	if ioErr != nil {
		j.ioFailures++
	} else {
		j.ioFailures = 0
	}
	s := Settlement{Object: j.Object, Events: j.events, Refused: j.refused, ReadFailures: j.ioFailures}
	switch {
	case nacked && j.refused >= j.s.conf.MaxRejected:
		s.Verdict, s.Err = Rejected, j.lastNack
	case ioErr != nil && j.s.conf.MaxReadFailures > 0 && j.ioFailures >= j.s.conf.MaxReadFailures:
		// Never read to its end: what was read is delivered, the rest is
		// named in the record, and a one-pass run can end.
		s.Verdict, s.Err = Unreadable, ioErr
	case nacked || ioErr != nil:
		j.attempt++
		attempt := j.attempt
		j.mu.Unlock()
		j.s.obs.Retrying(j.Object, attempt+1, nacked)
		j.s.retryLater(j, attempt)
		return
	case corrupt != nil:
		s.Verdict, s.Err = Corrupt, corrupt
	}
	j.mu.Unlock()
	j.s.conf.Checkpoints.Record(ctx, s)
	j.s.resolve()
}

// Chunk is a run of events of one attempt, sent downstream as one batch. A
// value, so that the acknowledgement holding it costs no allocation.
type Chunk struct {
	j      *Job
	seq, n int
	todo   []int // nil: all n events
}

// Todo lists the events of the chunk to send, by index in the chunk; nil
// means all of them. Events an earlier attempt delivered are left out.
func (c Chunk) Todo() []int { return c.todo }

// Ack settles the chunk: every event sent was delivered.
func (c Chunk) Ack(ctx context.Context) {
	j := c.j
	j.mu.Lock()
	j.outstanding--
	j.acked[c.seq] = true
	delete(j.delivered, c.seq)
	c.done(ctx)
}

// Nack settles the chunk as failed: the object is read again. delivered[k]
// says whether the kth event sent went through, nil when none is known to
// have; forGood says some event was refused for good (reading again cannot
// mend it), so the read counts towards MaxRejected; err is the refusal.
func (c Chunk) Nack(ctx context.Context, err error, delivered []bool, forGood bool) {
	j := c.j
	j.mu.Lock()
	j.outstanding--
	j.nacked = true
	if forGood {
		j.refusedNow, j.lastNack = true, err
	}
	if delivered != nil {
		done := j.delivered[c.seq]
		if done == nil {
			done = make([]bool, c.n)
			j.delivered[c.seq] = done
		}
		for k, ok := range delivered {
			if !ok {
				continue
			}
			if c.todo != nil {
				done[c.todo[k]] = true
			} else {
				done[k] = true
			}
		}
	}
	c.done(ctx)
}

// done unlocks the job after an ack or a nack and settles it when this was
// the attempt's last chunk.
func (c Chunk) done(ctx context.Context) {
	j := c.j
	settle := !j.reading && j.outstanding == 0
	j.mu.Unlock()
	if settle {
		j.settle(ctx)
	}
}

type nopObserver struct{}

func (nopObserver) Listed(Object)                    {}
func (nopObserver) Skipped(Object)                   {}
func (nopObserver) Unsettled(Object, time.Duration)  {}
func (nopObserver) Passed(int, error, time.Duration) {}
func (nopObserver) Retrying(Object, int, bool)       {}
func (nopObserver) Finished()                        {}
