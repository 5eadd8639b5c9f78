package export

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// failsafe bounds every wait of these tests in real time. Nothing here waits
// for time to pass: the clock is fake and moves only when a test steps it,
// once the scheduler is idle on the timer the test expects.
const failsafe = 10 * time.Second

// fakeClock is a Clock that moves only when Step is called.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []fakeTimer
	changed chan struct{} // closed and replaced when a timer is added
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Step waits until a timer due exactly d from now is set (the scheduler is
// waiting on it), then moves the clock on by d, firing every timer due.
func (c *fakeClock) Step(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(failsafe)
	for {
		c.mu.Lock()
		at := c.now.Add(d)
		set := slices.ContainsFunc(c.timers, func(ft fakeTimer) bool { return ft.at.Equal(at) })
		changed := c.changed
		if set {
			c.now = at
			kept := c.timers[:0]
			for _, ft := range c.timers {
				if ft.at.After(at) {
					kept = append(kept, ft)
					continue
				}
				ft.ch <- at
			}
			c.timers = kept
			c.mu.Unlock()
			return
		}
		var pending []string
		for _, ft := range c.timers {
			pending = append(pending, ft.at.Sub(c.now).String())
		}
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no timer set %s from now; timers pending in %v", d, pending)
		}
	}
}

// fakeSource serves a fixed list of objects as Lister would: oldest hour
// first, by name within an hour, within the range asked for.
type fakeSource struct {
	mu     sync.Mutex
	objs   []Object
	ranges []Range // the range of every walk, in order
	// fail, when set, may fail a walk (numbered from 1) as it reaches o.
	fail func(walk int, o Object) error
}

func (f *fakeSource) add(objs ...Object) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs = append(f.objs, objs...)
}

func (f *fakeSource) walks() []Range {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ranges)
}

func (f *fakeSource) Walk(ctx context.Context, r Range, fn func(Object) error) error {
	f.mu.Lock()
	f.ranges = append(f.ranges, r)
	n := len(f.ranges)
	objs := slices.Clone(f.objs)
	fail := f.fail
	f.mu.Unlock()
	sort.SliceStable(objs, func(a, b int) bool {
		if !objs[a].Hour.Equal(objs[b].Hour) {
			return objs[a].Hour.Before(objs[b].Hour)
		}
		return objs[a].Name < objs[b].Name
	})
	for _, o := range objs {
		if r.Bounded() && (o.Hour.IsZero() || !r.ContainsHour(o.Hour)) {
			continue
		}
		if fail != nil {
			if err := fail(n, o); err != nil {
				return err
			}
		}
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}

// book is the Checkpoints and the Observer of a test: it checkpoints in
// memory and keeps a log of what it heard.
type book struct {
	mu      sync.Mutex
	done    map[string]bool
	settled []Settlement
	log     []string
	passed  chan string // one line per pass
}

func newBook(done ...string) *book {
	b := &book{done: map[string]bool{}, passed: make(chan string, 100)}
	for _, n := range done {
		b.done[n] = true
	}
	return b
}

func (b *book) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, fmt.Sprintf(format, args...))
}

func (b *book) Done(_ context.Context, name string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done[name], nil
}

func (b *book) Record(_ context.Context, s Settlement) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done[s.Name] {
		b.log = append(b.log, "recorded twice "+s.Name)
	}
	b.done[s.Name] = true
	b.settled = append(b.settled, s)
}

func (b *book) Listed(o Object)                       { b.note("listed %s", o.Name) }
func (b *book) Skipped(o Object)                      { b.note("skipped %s", o.Name) }
func (b *book) Unsettled(o Object, age time.Duration) { b.note("unsettled %s %s", o.Name, age) }
func (b *book) Retrying(o Object, attempt int, nacked bool) {
	b.note("retrying %s attempt %d nacked %t", o.Name, attempt, nacked)
}
func (b *book) Finished() { b.note("finished") }
func (b *book) Passed(n int, err error, wait time.Duration) {
	line := fmt.Sprintf("passed %d %v %s", n, err, wait)
	b.note("%s", line)
	b.passed <- line
}

func (b *book) settlements() []Settlement {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.settled)
}

func (b *book) heard(line string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Contains(b.log, line)
}

func (b *book) count(prefix string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// awaitPass returns the line of the next pass.
func (b *book) awaitPass(t *testing.T) string {
	t.Helper()
	select {
	case l := <-b.passed:
		return l
	case <-time.After(failsafe):
		t.Fatal("no pass ended")
		return ""
	}
}

var t0 = time.Date(2026, 11, 1, 10, 20, 0, 0, time.UTC)

func obj(name string, hour time.Time) Object {
	return Object{Key: name, Name: name, Hour: hour, ModTime: hour, Size: 100}
}

// send takes the next chunk of n events of j, which must be sent.
func send(t *testing.T, j *Job, n int) Chunk {
	t.Helper()
	c, ok := j.NextChunk(n)
	if !ok {
		t.Fatalf("chunk %d of %s is not to be sent", j.seq, j.Name)
	}
	return c
}

type harness struct {
	s     *Scheduler
	src   *fakeSource
	book  *book
	clock *fakeClock
}

// start runs a scheduler over src until the test ends.
func start(t *testing.T, conf SchedulerConfig, src *fakeSource, b *book) *harness {
	t.Helper()
	clk := newFakeClock(t0)
	conf.Source, conf.Checkpoints, conf.Observer, conf.Clock = src, b, b, clk
	if conf.MaxRejected == 0 {
		conf.MaxRejected = 5
	}
	if conf.PollInterval == 0 {
		conf.PollInterval = time.Minute
	}
	s := NewScheduler(conf)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	return &harness{s: s, src: src, book: b, clock: clk}
}

// next takes the next object handed out, which must be name.
func (h *harness) next(t *testing.T, name string) *Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	j, err := h.s.Next(ctx)
	if err != nil {
		t.Fatalf("waiting for %s: %v", name, err)
	}
	if j.Name != name {
		t.Fatalf("handed out %s, want %s", j.Name, name)
	}
	return j
}

// read takes the next object, which must be name, and reads it whole in
// one acknowledged chunk of one event.
func (h *harness) read(t *testing.T, name string) {
	t.Helper()
	j := h.next(t, name)
	send(t, j, 1).Ack(context.Background())
	j.EndRead(context.Background(), nil, false)
}

func (h *harness) awaitDone(t *testing.T) {
	t.Helper()
	select {
	case <-h.s.Done():
	case <-time.After(failsafe):
		t.Fatal("the scheduler did not end")
	}
}

func (h *harness) notDone(t *testing.T) {
	t.Helper()
	select {
	case <-h.s.Done():
		t.Fatal("the scheduler ended with an object unsettled")
	default:
	}
}

// settledAs checks the settlements so far.
func (h *harness) settledAs(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for _, s := range h.book.settlements() {
		got = append(got, fmt.Sprintf("%s %d events %d refused %d err %v", s.Name, s.Verdict, s.Events, s.Refused, s.Err))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("settled:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// One pass: checkpointed objects are skipped, the others handed out oldest
// hour first; an object settles when it is read and its last chunk is
// acknowledged, in either order; the end comes after the last record.
func TestSchedulerOnePassSettlesEveryObjectOnce(t *testing.T) {
	h1 := t0.Truncate(time.Hour).Add(-2 * time.Hour)
	src := &fakeSource{objs: []Object{obj("c", h1.Add(time.Hour)), obj("a", h1), obj("b", h1)}}
	h := start(t, SchedulerConfig{}, src, newBook("b"))

	a := h.next(t, "a")
	if a.Attempt() != 1 {
		t.Fatalf("attempt %d", a.Attempt())
	}
	c1, c2 := send(t, a, 3), send(t, a, 2)
	if c1.Todo() != nil || c2.Todo() != nil {
		t.Fatal("a first attempt sends every chunk whole")
	}
	c1.Ack(context.Background())
	a.EndRead(context.Background(), nil, false)
	h.settledAs(t) // c2 is still out
	c2.Ack(context.Background())
	h.settledAs(t, "a 0 events 5 refused 0 err <nil>")

	c := h.next(t, "c")
	send(t, c, 4).Ack(context.Background()) // acknowledged before the read ends
	h.notDone(t)
	c.EndRead(context.Background(), nil, false)
	h.settledAs(t, "a 0 events 5 refused 0 err <nil>", "c 0 events 4 refused 0 err <nil>")
	h.awaitDone(t)

	for _, l := range []string{"listed a", "listed b", "skipped b", "listed c", "passed 2 <nil> 1m0s", "finished"} {
		if !h.book.heard(l) {
			t.Errorf("did not hear %q: %q", l, h.book.log)
		}
	}
	if n := h.book.count("finished"); n != 1 {
		t.Errorf("finished %d times", n)
	}
}

// A nack reads the object again after a backoff doubling from one second;
// the next attempt skips the chunks acknowledged and sends only the events
// of a chunk that were not delivered.
func TestSchedulerNackReadsOnlyTheUndeliveredEventsAgain(t *testing.T) {
	ctx := context.Background()
	h := start(t, SchedulerConfig{}, &fakeSource{objs: []Object{obj("a", t0.Truncate(time.Hour))}}, newBook())
	later := errors.New("later")

	j := h.next(t, "a")
	send(t, j, 2).Ack(ctx)
	send(t, j, 3).Nack(ctx, later, []bool{true, false, false}, false)
	send(t, j, 2).Nack(ctx, later, nil, false) // nothing known delivered
	j.EndRead(ctx, nil, false)
	h.settledAs(t)
	if !h.book.heard("retrying a attempt 2 nacked true") {
		t.Fatalf("no retry heard: %q", h.book.log)
	}

	h.clock.Step(t, time.Second)
	j = h.next(t, "a")
	if j.Attempt() != 2 {
		t.Fatalf("attempt %d, want 2", j.Attempt())
	}
	if _, ok := j.NextChunk(2); ok {
		t.Fatal("the chunk acknowledged in attempt 1 is sent again")
	}
	c2, c3 := send(t, j, 3), send(t, j, 2)
	if got := c2.Todo(); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("chunk 2 sends %v, want events 1 and 2", got)
	}
	if c3.Todo() != nil {
		t.Fatalf("chunk 3 sends %v, want all of it", c3.Todo())
	}
	c2.Nack(ctx, later, []bool{false, true}, false) // event 2 went through
	c3.Nack(ctx, later, []bool{false, true}, false)
	j.EndRead(ctx, nil, false)
	h.settledAs(t)

	h.clock.Step(t, 2*time.Second) // the second retry waits twice as long
	j = h.next(t, "a")
	if _, ok := j.NextChunk(2); ok {
		t.Fatal("the acknowledged chunk is sent again")
	}
	c2, c3 = send(t, j, 3), send(t, j, 2)
	if got := c2.Todo(); !slices.Equal(got, []int{1}) {
		t.Fatalf("chunk 2 sends %v, want only event 1", got)
	}
	if got := c3.Todo(); !slices.Equal(got, []int{0}) {
		t.Fatalf("chunk 3 sends %v, want only event 0", got)
	}
	c2.Ack(ctx)
	j.EndRead(ctx, nil, false)
	c3.Ack(ctx)
	h.settledAs(t, "a 0 events 7 refused 0 err <nil>")
	h.awaitDone(t)
	if n := h.book.count("retrying"); n != 2 {
		t.Fatalf("%d retries, want 2", n)
	}
}

// Reads in which downstream refused events for good count towards
// MaxRejected, temporary refusals do not; at the limit the object settles
// as Rejected with the latest refusal.
func TestSchedulerRefusedForGoodSettlesRejected(t *testing.T) {
	ctx := context.Background()
	h := start(t, SchedulerConfig{MaxRejected: 2}, &fakeSource{objs: []Object{obj("a", t0.Truncate(time.Hour))}}, newBook())
	nacks := []struct {
		err     error
		forGood bool
	}{{errors.New("unmappable 1"), true}, {errors.New("paused"), false}, {errors.New("unmappable 3"), true}}
	for i, n := range nacks {
		if i > 0 {
			h.clock.Step(t, backoff(i))
		}
		j := h.next(t, "a")
		send(t, j, 2).Nack(ctx, n.err, nil, n.forGood)
		j.EndRead(ctx, nil, false)
	}
	h.settledAs(t, "a 2 events 2 refused 2 err unmappable 3")
	h.awaitDone(t)
}

// A read that fails (a bucket error) is tried again; a decode error settles
// the object as Corrupt once the events before the damage are acknowledged;
// a skipped job ends without a record.
func TestSchedulerUnreadableRetriesCorruptFailsSkipEnds(t *testing.T) {
	ctx := context.Background()
	hr := t0.Truncate(time.Hour)
	h := start(t, SchedulerConfig{}, &fakeSource{objs: []Object{obj("a", hr), obj("b", hr)}}, newBook())
	damage := errors.New("bad sync marker")

	j := h.next(t, "a")
	j.EndRead(ctx, errors.New("connection reset"), false)
	if !h.book.heard("retrying a attempt 2 nacked false") {
		t.Fatalf("no retry heard: %q", h.book.log)
	}
	h.next(t, "b").Skip()
	h.clock.Step(t, time.Second)
	j = h.next(t, "a")
	c := send(t, j, 5)
	j.EndRead(ctx, damage, true)
	h.settledAs(t)
	h.notDone(t)
	c.Ack(ctx)
	h.settledAs(t, "a 1 events 5 refused 0 err bad sync marker")
	h.awaitDone(t)
}

// A listing that fails is walked again after a backoff from the hour it
// reached; objects already handed out are not handed out again.
func TestSchedulerListingErrorResumesAtTheHourReached(t *testing.T) {
	ctx := context.Background()
	h0 := t0.Truncate(time.Hour).Add(-3 * time.Hour)
	src := &fakeSource{objs: []Object{obj("a", h0), obj("b", h0.Add(time.Hour)), obj("c", h0.Add(2*time.Hour))}}
	src.fail = func(walk int, o Object) error {
		if walk == 1 && o.Name == "c" {
			return errors.New("throttled")
		}
		return nil
	}
	h := start(t, SchedulerConfig{}, src, newBook())
	for _, n := range []string{"a", "b"} {
		j := h.next(t, n)
		send(t, j, 1).Ack(ctx)
		j.EndRead(ctx, nil, false)
	}
	if l := h.book.awaitPass(t); l != "passed 2 throttled 1s" {
		t.Fatalf("pass: %s", l)
	}
	h.clock.Step(t, time.Second)
	j := h.next(t, "c")
	send(t, j, 1).Ack(ctx)
	j.EndRead(ctx, nil, false)
	h.awaitDone(t)
	if w := src.walks(); len(w) != 2 || !w[1].Since.Equal(h0.Add(time.Hour)) {
		t.Fatalf("walks %v, want a second from %s", w, h0.Add(time.Hour))
	}
	h.settledAs(t, "a 0 events 1 refused 0 err <nil>", "b 0 events 1 refused 0 err <nil>", "c 0 events 1 refused 0 err <nil>")
}

// Watch: every poll interval a new pass looks back from the previous pass's
// start; an object modified within MinAge is left for a later pass, which
// lists its hour however old; nothing is handed out twice; the scheduler
// never ends.
func TestSchedulerWatchPollsAndWaitsForObjectsToSettle(t *testing.T) {
	old := t0.Truncate(time.Hour).Add(-5 * time.Hour)
	young := obj("y", old)
	young.ModTime = t0.Add(-10 * time.Second)
	src := &fakeSource{objs: []Object{obj("a", old), young}}
	h := start(t, SchedulerConfig{Watch: true, PollInterval: time.Minute, Lookback: 3 * time.Hour, MinAge: 30 * time.Second}, src, newBook())
	h.read(t, "a")
	if l := h.book.awaitPass(t); l != "passed 1 <nil> 1m0s" {
		t.Fatalf("pass 1: %s", l)
	}
	if !h.book.heard("unsettled y 10s") {
		t.Fatalf("y not left to settle: %q", h.book.log)
	}
	src.add(obj("n", t0.Truncate(time.Hour)))
	h.clock.Step(t, time.Minute)
	h.read(t, "y") // its hour is older than the lookback, but it was left to settle
	h.read(t, "n")
	if l := h.book.awaitPass(t); l != "passed 2 <nil> 1m0s" {
		t.Fatalf("pass 2: %s", l)
	}
	h.clock.Step(t, time.Minute)
	if l := h.book.awaitPass(t); l != "passed 0 <nil> 1m0s" {
		t.Fatalf("pass 3: %s", l)
	}
	w := src.walks()
	want := []time.Time{{}, old, t0.Add(time.Minute - 3*time.Hour)}
	for i, since := range want {
		if !w[i].Since.Equal(since) {
			t.Errorf("walk %d from %s, want %s", i+1, w[i].Since, since)
		}
	}
	h.notDone(t)
	h.settledAs(t, "a 0 events 1 refused 0 err <nil>", "y 0 events 1 refused 0 err <nil>", "n 0 events 1 refused 0 err <nil>")
	if n := h.book.count("listed"); n != 3 {
		t.Fatalf("%d objects listed, want 3: %q", n, h.book.log)
	}
}

// Acks arriving concurrently with the end of the read settle the object
// exactly once (run with -race).
func TestSchedulerConcurrentAcksSettleOnce(t *testing.T) {
	var objs []Object
	for i := range 20 {
		objs = append(objs, obj(fmt.Sprintf("o%02d", i), t0.Truncate(time.Hour)))
	}
	h := start(t, SchedulerConfig{}, &fakeSource{objs: objs}, newBook())
	var wg sync.WaitGroup
	for _, o := range objs {
		j := h.next(t, o.Name)
		for range 50 {
			c := send(t, j, 10)
			wg.Add(1)
			go func() { defer wg.Done(); c.Ack(context.Background()) }()
		}
		j.EndRead(context.Background(), nil, false)
	}
	wg.Wait()
	h.awaitDone(t)
	if n := len(h.book.settlements()); n != len(objs) || h.book.count("recorded twice") != 0 {
		t.Fatalf("%d settlements for %d objects: %q", n, len(objs), h.book.log)
	}
}

func TestBackoff(t *testing.T) {
	var got []string
	for n := 1; n <= 9; n++ {
		got = append(got, backoff(n).String())
	}
	if s := strings.Join(got, " "); s != "1s 2s 4s 8s 16s 32s 1m0s 1m0s 1m0s" {
		t.Fatalf("backoff %s", s)
	}
}

// An object handed out in an hour that also holds an object left to settle
// is not handed out again when a later hour of the same pass is reached: the
// next pass lists that hour again, for the object left to settle.
func TestSchedulerWatchKeepsWhatItHandedOutWhileAnHourIsUnsettled(t *testing.T) {
	old := t0.Truncate(time.Hour).Add(-30 * 24 * time.Hour)
	young := func(name string, hour time.Time) Object {
		o := obj(name, hour)
		o.ModTime = t0.Add(-10 * time.Second)
		return o
	}
	src := &fakeSource{objs: []Object{obj("a", old), young("y", old), young("z", old.Add(time.Hour))}}
	h := start(t, SchedulerConfig{Watch: true, PollInterval: time.Minute, Lookback: 3 * time.Hour, MinAge: 30 * time.Second}, src, newBook())
	h.read(t, "a")
	if l := h.book.awaitPass(t); l != "passed 1 <nil> 1m0s" {
		t.Fatalf("pass 1: %s", l)
	}
	h.clock.Step(t, time.Minute)
	h.read(t, "y")
	h.read(t, "z")
	if l := h.book.awaitPass(t); l != "passed 2 <nil> 1m0s" {
		t.Fatalf("pass 2: %s (%q)", l, h.book.log)
	}
	if n := h.book.count("listed"); n != 3 {
		t.Fatalf("%d objects listed, want 3: %q", n, h.book.log)
	}
}

// An object whose reads keep ending in a bucket error (access denied for
// ever, a body cut short every time) settles as Unreadable after
// MaxReadFailures reads in a row, with what the last read delivered, so
// that a one-pass run ends; a read that reaches the end in between starts
// the count again.
func TestSchedulerUnreadableSettlesAfterMaxReadFailures(t *testing.T) {
	ctx := context.Background()
	hr := t0.Truncate(time.Hour)
	h := start(t, SchedulerConfig{MaxReadFailures: 3}, &fakeSource{objs: []Object{obj("a", hr)}}, newBook())
	denied := errors.New("AccessDenied")

	// A read that fails, then one that reaches the end but is nacked: the
	// count starts again.
	h.next(t, "a").EndRead(ctx, denied, false)
	h.clock.Step(t, time.Second)
	j := h.next(t, "a")
	c := send(t, j, 2)
	j.EndRead(ctx, nil, false)
	c.Nack(ctx, errors.New("later"), nil, false)
	for attempt, wait := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		h.clock.Step(t, wait)
		j = h.next(t, "a")
		if attempt == 2 {
			send(t, j, 2).Ack(ctx)
		}
		j.EndRead(ctx, denied, false)
		if attempt < 2 {
			h.settledAs(t)
			h.notDone(t)
		}
	}
	h.settledAs(t, "a 3 events 2 refused 0 err AccessDenied")
	if got := h.book.settlements()[0].ReadFailures; got != 3 {
		t.Fatalf("ReadFailures %d, want 3", got)
	}
	h.awaitDone(t)
}
