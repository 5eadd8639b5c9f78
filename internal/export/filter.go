// Package export finds the objects of a Braze Currents storage export in a
// bucket. It lists the export tree level by level, so that a replay of some
// event types over some hours lists only their `event_type=` and `date=`
// folders, never the whole bucket; it returns objects oldest `date=` hour
// first; and it splits them among instances by a hash of their key, so
// several readers share one export without talking to each other.
//
// It also holds the braze_currents input's scheduler (scheduler.go), its
// checkpoint records (checkpoint.go) and the progress report's counts
// (progress.go). It is the machinery of the input and of cmd/currents-report,
// not an API: hence internal/.
//
// It is plain Go over gocloud.dev/blob; the braze_currents Benthos input
// adapts it.
package export

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// Range bounds the `date=` hours to read. The hour folder h holds the events
// Braze queued in [h, h+1h); it is in the range when that hour overlaps
// [Since, Until). A zero bound is open.
type Range struct {
	Since time.Time
	Until time.Time
}

// Bounded reports whether either bound is set. A bounded range skips objects
// whose key has no `date=` folder, as their hour is unknown.
func (r Range) Bounded() bool { return !r.Since.IsZero() || !r.Until.IsZero() }

// ContainsHour reports whether the hour folder starting at h is in the range.
func (r Range) ContainsHour(h time.Time) bool {
	if !r.Since.IsZero() && !h.Add(time.Hour).After(r.Since) {
		return false
	}
	if !r.Until.IsZero() && !h.Before(r.Until) {
		return false
	}
	return true
}

// Validate rejects an empty range.
func (r Range) Validate() error {
	if !r.Since.IsZero() && !r.Until.IsZero() && !r.Since.Before(r.Until) {
		return fmt.Errorf("since %s is not before until %s", r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	}
	return nil
}

// datePrefix is the longest prefix shared by the `date=` names of every hour
// in the range, up to the hour ceiling (for an open Until): listing a type
// folder with "date=" + this prefix returns only the range's month, day or
// hour folders. The names are fixed-width, so lexical order is time order.
func (r Range) datePrefix(ceiling time.Time) string {
	if r.Since.IsZero() {
		return ""
	}
	first := r.Since.UTC().Truncate(time.Hour)
	last := ceiling
	if !r.Until.IsZero() {
		last = r.Until.Add(-time.Nanosecond)
	}
	last = last.UTC().Truncate(time.Hour)
	if last.Before(first) {
		last = first
	}
	a, b := first.Format(currents.DateHourLayout), last.Format(currents.DateHourLayout)
	n := 0
	for n < len(a) && a[n] == b[n] {
		n++
	}
	return a[:n]
}

// ParseBound reads a `since`/`until` value: a date-hour as in the `date=`
// folders (`2026-11-01-13`), a date (`2026-11-01`, midnight UTC), an RFC 3339
// time, or a duration back from now (`72h`, `90m`, `7d`). Empty is the zero
// time (no bound).
func ParseBound(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("duration %q is negative: give how far back from now", s)
		}
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range []string{currents.DateHourLayout, time.DateOnly, time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a date-hour (YYYY-MM-DD-HH), a date (YYYY-MM-DD), an RFC 3339 time or a duration back from now (72h, 7d)", s)
}

// Shard selects the objects one of Count instances reads: those whose full
// key hashes (64-bit FNV-1a) to Index modulo Count. Every object belongs to
// exactly one shard, so Count instances with indexes 0…Count-1 read each
// object once between them. The zero value (and Count 1) selects everything.
type Shard struct {
	Index int
	Count int
}

// Validate checks 0 <= Index < Count.
func (s Shard) Validate() error {
	if s.Count < 1 {
		return fmt.Errorf("shard count %d: want at least 1", s.Count)
	}
	if s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("shard index %d: want 0 to %d", s.Index, s.Count-1)
	}
	return nil
}

// Owns reports whether the object with this full key belongs to the shard.
func (s Shard) Owns(key string) bool {
	if s.Count <= 1 {
		return true
	}
	return ShardOf(key, s.Count) == s.Index
}

// ShardOf is the shard index of a full object key among count shards.
func ShardOf(key string, count int) int {
	if count <= 1 {
		return 0
	}
	return int(fnv1a64(key) % uint64(count))
}

// fnv1a64 is inlined rather than hash/fnv so that hashing a key costs no
// allocation: it runs once per listed object.
func fnv1a64(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
