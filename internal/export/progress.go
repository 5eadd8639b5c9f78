package export

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Counts are objects of an export by what became of them. Every object is
// completed, failed, unreadable or pending; Quarantined counts those with a
// quarantine record, usually the failed ones (a record outlives a deleted
// checkpoint).
type Counts struct {
	Objects   int `json:"objects"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	// Unreadable counts objects whose checkpoint holds no record that can
	// be read (a write cut short by a kill): the input skips them as
	// settled, and a requeue reads one again.
	Unreadable  int `json:"unreadable"`
	Quarantined int `json:"quarantined"`
	Pending     int `json:"pending"`
}

func (c *Counts) add(cp *Checkpoint, quarantined bool) {
	c.Objects++
	switch {
	case cp == nil:
		c.Pending++
	case cp.Status == StatusFailed:
		c.Failed++
	case cp.Status == StatusUnreadable:
		c.Unreadable++
	default:
		c.Completed++
	}
	if quarantined {
		c.Quarantined++
	}
}

// Row counts the objects of one `date=` hour and event type.
type Row struct {
	Hour      time.Time // zero for objects outside any `date=` folder
	EventType string    // "" for objects outside any `event_type=` folder
	Counts
}

// Failure is a failed object with its checkpoint record.
type Failure struct {
	Object
	Checkpoint  Checkpoint
	Quarantined bool
}

// Progress is how far the braze_currents input got through an export.
type Progress struct {
	Rows  []Row // by hour, oldest first (objects without one first), then event type
	Total Counts
	// OldestPending is the oldest `date=` hour holding a pending object,
	// zero when none does: the input reads from there on.
	OldestPending time.Time
	Failed        []Failure // in the order listed
	// Unreadable are the objects whose checkpoint could not be read; each
	// Checkpoint holds the object and, in Error, why.
	Unreadable []Failure
}

// Tally builds a Progress one object at a time. The zero value is ready.
type Tally struct {
	rows map[rowKey]*Row
	p    Progress
}

type rowKey struct {
	hour      int64
	eventType string
}

// Add counts one object: cp is its checkpoint record, nil when it has none
// (pending); quarantined says whether a quarantine record exists for it.
func (t *Tally) Add(o Object, cp *Checkpoint, quarantined bool) {
	if t.rows == nil {
		t.rows = map[rowKey]*Row{}
	}
	k := rowKey{eventType: o.EventType}
	if !o.Hour.IsZero() {
		k.hour = o.Hour.Unix()
	}
	r := t.rows[k]
	if r == nil {
		r = &Row{Hour: o.Hour, EventType: o.EventType}
		t.rows[k] = r
	}
	r.add(cp, quarantined)
	t.p.Total.add(cp, quarantined)
	switch {
	case cp == nil:
		if !o.Hour.IsZero() && (t.p.OldestPending.IsZero() || o.Hour.Before(t.p.OldestPending)) {
			t.p.OldestPending = o.Hour
		}
	case cp.Status == StatusFailed:
		t.p.Failed = append(t.p.Failed, Failure{Object: o, Checkpoint: *cp, Quarantined: quarantined})
	case cp.Status == StatusUnreadable:
		t.p.Unreadable = append(t.p.Unreadable, Failure{Object: o, Checkpoint: *cp, Quarantined: quarantined})
	}
}

// Progress returns the counts so far.
func (t *Tally) Progress() Progress {
	p := t.p
	p.Rows = make([]Row, 0, len(t.rows))
	for _, r := range t.rows {
		p.Rows = append(p.Rows, *r)
	}
	sort.Slice(p.Rows, func(i, j int) bool {
		a, b := p.Rows[i], p.Rows[j]
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return a.EventType < b.EventType
	})
	p.Failed = append([]Failure(nil), p.Failed...)
	p.Unreadable = append([]Failure(nil), p.Unreadable...)
	return p
}

// CheckpointLookup returns the checkpoint record of an object by full key,
// nil when the object has none.
type CheckpointLookup func(ctx context.Context, object string) (*Checkpoint, error)

// Survey lists the export as the braze_currents input does (same lister,
// range, event types and shard) and counts every object it would consider:
// completed or failed by its checkpoint record, pending without one.
// quarantined holds the full keys with a quarantine record (ListQuarantined);
// nil when the input has no quarantine. lookup nil means no checkpoint cache:
// everything is pending, as the input would read everything again.
func Survey(ctx context.Context, l *Lister, r Range, lookup CheckpointLookup, quarantined map[string]bool) (Progress, error) {
	var t Tally
	err := l.Walk(ctx, r, func(o Object) error {
		var cp *Checkpoint
		if lookup != nil {
			var err error
			if cp, err = lookup(ctx, o.Name); err != nil {
				return fmt.Errorf("object %s: %w", o.Name, err)
			}
		}
		t.Add(o, cp, quarantined[o.Name])
		return nil
	})
	if err != nil {
		return Progress{}, err
	}
	return t.Progress(), nil
}
