// Package lograte keeps logs at production volume: a failure that repeats
// with every write or every call becomes one line per interval with a
// count (Tally), and an outage of a dependency one line when it begins and
// one when it ends (Outage). It knows nothing of the logger: callers log
// what these types say is due. Time is injected, for tests.
package lograte

import (
	"sort"
	"sync"
	"time"
)

// Tally counts occurrences by key and says when a line is due: the first
// occurrence of a key at once, then at most one line per Every with what
// was counted since the last line.
type Tally struct {
	Every time.Duration
	Now   func() time.Time // nil: time.Now

	mu      sync.Mutex
	last    map[string]time.Time
	pending map[string]int
}

// Add counts n occurrences of key. When a line is due it returns the count
// to log (everything since the last line of key, n included) and true.
func (t *Tally) Add(key string, n int) (int, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last, t.pending = map[string]time.Time{}, map[string]int{}
	}
	t.pending[key] += n
	if last, ok := t.last[key]; ok && now.Sub(last) < t.Every {
		return 0, false
	}
	total := t.pending[key]
	delete(t.pending, key)
	t.last[key] = now
	return total, true
}

// Flush returns what was counted and not yet logged, by key, in key order,
// and forgets it: for a closing line.
func (t *Tally) Flush() []Count {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Count, 0, len(t.pending))
	for k, n := range t.pending {
		out = append(out, Count{Key: k, N: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	t.pending = map[string]int{}
	return out
}

// Count is a key's count not yet logged.
type Count struct {
	Key string
	N   int
}

func (t *Tally) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// Outage follows the health of one dependency (a cache) from the outcomes
// of its calls: Failed says when an outage begins, OK when it ends, so that
// each is logged once however many calls fail in between.
type Outage struct {
	Now func() time.Time // nil: time.Now

	mu     sync.Mutex
	since  time.Time // zero: healthy
	failed int       // calls failed in the current outage
}

// Failed records a failed call and reports whether it begins an outage.
func (o *Outage) Failed() (began bool) {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failed++
	if o.since.IsZero() {
		o.since = now
		return true
	}
	return false
}

// OK records a call that worked and, when it ends an outage, reports how
// long the outage lasted and how many calls failed in it.
func (o *Outage) OK() (ended bool, lasted time.Duration, failed int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return false, 0, 0
	}
	lasted, failed = o.now().Sub(o.since), o.failed
	o.since, o.failed = time.Time{}, 0
	return true, lasted, failed
}

func (o *Outage) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}
