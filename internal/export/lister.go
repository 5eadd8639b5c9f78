package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// maxUnknownDepth is how many levels of folders that are not Braze's
// (`dataexport.*`, `event_type=`, `date=`) a walk descends, so that a url
// pointing at the bucket root still finds `currents/dataexport.*` without
// ever walking unrelated trees.
const maxUnknownDepth = 2

// Object is one export object a walk selected.
type Object struct {
	// Key is the object's key in the listed bucket, the one to read it by.
	Key string
	// Name is the object's full key: Lister.Prefix + Key. It names the object
	// in logs, metadata and checkpoints, and decides its shard.
	Name    string
	Size    int64
	ModTime time.Time
	// EventType comes from the `event_type=` folder, "" when the key has none.
	EventType string
	// Hour is the `date=` hour, zero when the key has none.
	Hour time.Time
}

// Lister walks the export tree of a bucket. Fields are read-only once a walk
// has started; one Lister may run one walk at a time.
type Lister struct {
	// Bucket is the export's bucket, usually a blob.PrefixedBucket over the
	// Currents prefix: the folder holding the `dataexport.*` folders.
	Bucket *blob.Bucket
	// Prefix is the key prefix Bucket hides, "" when none. See Object.Name.
	Prefix string
	// Types selects event types by their `event_type=` folder.
	Types currents.TypeFilter
	// Shard selects this instance's share of the objects.
	Shard Shard
	// OnList, when set, is called with the prefix of every list request the
	// walk starts (a request may fetch several pages).
	OnList func(prefix string)
	// Now is the clock (time.Now when nil); it caps the `date=` listing of a
	// range without Until.
	Now func() time.Time
}

// Walk lists the objects in r and calls fn for each one that passes the type
// filter and the shard: objects outside any `date=` folder first (only when r
// is unbounded), then by `date=` hour, oldest first, and by key within an hour.
//
// Pruning: a folder level is listed with the delimiter "/" — the prefix, then
// each `dataexport.*` folder, then each selected `event_type=` folder, whose
// `date=` folders are listed under the longest name prefix the range allows
// (e.g. `date=2026-11-01-`). Only the folders of selected hours are listed in
// full. Keys that do not end in `.avro` are ignored.
//
// An error from fn stops the walk and is returned as is.
func (l *Lister) Walk(ctx context.Context, r Range, fn func(Object) error) error {
	if err := r.Validate(); err != nil {
		return err
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	w := &walk{l: l, r: r, fn: fn, ceiling: now().UTC().Add(24 * time.Hour)}
	if err := w.scan(ctx, "", 0); err != nil {
		return err
	}
	return w.merge(ctx)
}

type walk struct {
	l       *Lister
	r       Range
	fn      func(Object) error
	ceiling time.Time
	sources []*hourSource
}

// hourSource yields the hour folders of one `event_type=` folder in time
// order (or one lone `date=` folder); the walk merges them all.
type hourSource struct {
	eventType string
	it        *blob.ListIterator // nil for a lone folder
	head      hourFolder
	ok        bool
}

type hourFolder struct {
	hour   time.Time
	prefix string
}

func (w *walk) list(prefix, delimiter string) *blob.ListIterator {
	if w.l.OnList != nil {
		w.l.OnList(prefix)
	}
	return w.l.Bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: delimiter})
}

// each calls fn with every entry listed under prefix, until the end of the
// listing, a listing error (naming the prefix) or an error of fn.
func (w *walk) each(ctx context.Context, prefix, delimiter string, fn func(*blob.ListObject) error) error {
	it := w.list(prefix, delimiter)
	for {
		lo, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %q: %w", w.l.Prefix+prefix, err)
		}
		if err := fn(lo); err != nil {
			return err
		}
	}
}

// scan lists one level above the `event_type=` folders.
func (w *walk) scan(ctx context.Context, prefix string, unknownDepth int) error {
	return w.each(ctx, prefix, "/", func(lo *blob.ListObject) error {
		if !lo.IsDir {
			return w.emitLoose(lo)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(lo.Key, prefix), "/")
		switch {
		case strings.HasPrefix(name, "event_type="):
			t := strings.TrimPrefix(name, "event_type=")
			if !w.l.Types.Match(t) {
				return nil
			}
			// Unbounded, the whole folder is listed so that entries of an
			// unknown layout are not lost; bounded, only its date= folders.
			p := lo.Key
			if w.r.Bounded() {
				p += "date=" + w.r.datePrefix(w.ceiling)
			}
			w.sources = append(w.sources, &hourSource{eventType: t, it: w.list(p, "/")})
		case strings.HasPrefix(name, "date="):
			h, err := time.Parse(currents.DateHourLayout, strings.TrimPrefix(name, "date="))
			if err != nil || !w.r.ContainsHour(h) {
				return nil
			}
			w.sources = append(w.sources, &hourSource{head: hourFolder{hour: h, prefix: lo.Key}, ok: true})
		case strings.HasPrefix(name, "dataexport."):
			return w.scan(ctx, lo.Key, unknownDepth)
		default:
			if unknownDepth < maxUnknownDepth {
				return w.scan(ctx, lo.Key, unknownDepth+1)
			}
		}
		return nil
	})
}

// advance moves a source to its next hour folder in the range. Entries of an
// `event_type=` folder that are not `date=` folders (a layout Braze has not
// used) are listed flat and their objects emitted on sight.
func (w *walk) advance(ctx context.Context, s *hourSource) error {
	s.ok = false
	if s.it == nil {
		return nil
	}
	for {
		lo, err := s.it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list event_type=%s: %w", s.eventType, err)
		}
		if !lo.IsDir {
			if err := w.emitLoose(lo); err != nil {
				return err
			}
			continue
		}
		seg := lastSegment(lo.Key)
		if ds, ok := strings.CutPrefix(seg, "date="); ok {
			h, err := time.Parse(currents.DateHourLayout, ds)
			if err != nil || !w.r.ContainsHour(h) {
				continue
			}
			s.head, s.ok = hourFolder{hour: h, prefix: lo.Key}, true
			return nil
		}
		if err := w.emitFlat(ctx, lo.Key, s.eventType, time.Time{}); err != nil {
			return err
		}
	}
}

// merge reads the hour folders of every source, oldest first. Each source
// lists lazily, a page at a time, so memory stays bounded by the number of
// event types, not by the length of the range.
func (w *walk) merge(ctx context.Context) error {
	for _, s := range w.sources {
		if !s.ok {
			if err := w.advance(ctx, s); err != nil {
				return err
			}
		}
	}
	for {
		var next *hourSource
		for _, s := range w.sources {
			if !s.ok {
				continue
			}
			if next == nil || s.head.hour.Before(next.head.hour) ||
				(s.head.hour.Equal(next.head.hour) && s.head.prefix < next.head.prefix) {
				next = s
			}
		}
		if next == nil {
			return nil
		}
		if err := w.emitFlat(ctx, next.head.prefix, next.eventType, next.head.hour); err != nil {
			return err
		}
		if err := w.advance(ctx, next); err != nil {
			return err
		}
	}
}

// emitFlat lists every object under a folder, whatever its depth: Braze's
// folders below `date=` have changed before and carry nothing we filter on.
func (w *walk) emitFlat(ctx context.Context, prefix, eventType string, hour time.Time) error {
	return w.each(ctx, prefix, "", func(lo *blob.ListObject) error {
		if o, ok := w.object(lo, eventType, hour); ok {
			return w.fn(o)
		}
		return nil
	})
}

// emitLoose handles an object found outside a `date=` folder.
func (w *walk) emitLoose(lo *blob.ListObject) error {
	if o, ok := w.object(lo, "", time.Time{}); ok {
		return w.fn(o)
	}
	return nil
}

// object applies the per-object filters; eventType and hour are those of
// the folders the object was listed under, when known.
func (w *walk) object(lo *blob.ListObject, eventType string, hour time.Time) (Object, bool) {
	if lo.IsDir || !strings.HasSuffix(lo.Key, ".avro") {
		return Object{}, false
	}
	name := w.l.Prefix + lo.Key
	if eventType == "" {
		eventType = currents.EventTypeFromKey(name)
	}
	if eventType != "" && !w.l.Types.Match(eventType) {
		return Object{}, false
	}
	if hour.IsZero() {
		hour = currents.HourFromKey(name)
	}
	if w.r.Bounded() && (hour.IsZero() || !w.r.ContainsHour(hour)) {
		return Object{}, false
	}
	if !w.l.Shard.Owns(name) {
		return Object{}, false
	}
	return Object{Key: lo.Key, Name: name, Size: lo.Size, ModTime: lo.ModTime, EventType: eventType, Hour: hour}, true
}

func lastSegment(dirKey string) string {
	k := strings.TrimSuffix(dirKey, "/")
	return k[strings.LastIndexByte(k, '/')+1:]
}
