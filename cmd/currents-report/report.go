package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

// report is a survey of one braze_currents input's export.
type report struct {
	s         settings
	allShards bool
	warnings  []string
	export.Progress
}

// openExport opens the input's export bucket, as the input does.
func openExport(ctx context.Context, s settings) (*blob.Bucket, string, error) {
	b, prefix, err := export.OpenPrefixed(ctx, s.url)
	if err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", fieldURL, s.url, err)
	}
	if ok, err := b.IsAccessible(ctx); err != nil || !ok {
		_ = b.Close()
		if err == nil {
			err = errors.New("it does not exist")
		}
		return nil, "", fmt.Errorf("%s %s: %w", fieldURL, s.url, err)
	}
	return b, prefix, nil
}

// openQuarantine opens the input's quarantine bucket; nil without one.
func openQuarantine(ctx context.Context, s settings) (*blob.Bucket, error) {
	if s.quarantine == "" {
		return nil, nil
	}
	q, _, err := export.OpenPrefixed(ctx, s.quarantine)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", fieldQuarantine, s.quarantine, err)
	}
	return q, nil
}

// survey counts the objects the input would consider (the whole export with
// allShards, else its shard's share) against its checkpoints and quarantine.
func survey(ctx context.Context, s settings, allShards bool) (report, error) {
	r := report{s: s, allShards: allShards}
	b, prefix, err := openExport(ctx, s)
	if err != nil {
		return r, err
	}
	defer b.Close()
	var quarantined map[string]bool
	if q, err := openQuarantine(ctx, s); err != nil {
		return r, err
	} else if q != nil {
		defer q.Close()
		if quarantined, err = export.ListQuarantined(ctx, q); err != nil {
			return r, fmt.Errorf("%s %s: %w", fieldQuarantine, s.quarantine, err)
		}
	}
	l := &export.Lister{Bucket: b, Prefix: prefix, Types: s.types, Shard: s.shard}
	if allShards {
		l.Shard = export.Shard{}
	}
	walk := func(ctx context.Context, lookup export.CheckpointLookup) error {
		p, err := export.Survey(ctx, l, s.rng, lookup, quarantined)
		r.Progress = p
		return err
	}
	if s.checkpointCache == "" {
		err = walk(ctx, nil)
	} else {
		err = withCache(ctx, s, func(ctx context.Context, c *cacheStore) error {
			// A cache the input never wrote to (a file cache's folder that
			// does not exist, another Redis database, another prefix) reads
			// as empty: say so rather than report everything pending.
			probe := export.ProbeKey(s.checkpointPrefix)
			if v, err := c.get(ctx, probe); err != nil {
				return err
			} else if v == nil {
				r.warnings = append(r.warnings, fmt.Sprintf("cache resource %q holds no key %s, which the input writes each time it starts: "+
					"it has not run against this cache with this %s, so nothing it did is counted", s.checkpointCache, probe, fieldCheckpointPrefix))
			}
			return walk(ctx, c.lookup(s.checkpointPrefix))
		})
	}
	if err != nil {
		return r, fmt.Errorf("export %s: %w", s.url, err)
	}
	return r, nil
}

func hourText(h time.Time) string {
	if h.IsZero() {
		return "-"
	}
	return h.UTC().Format(currents.DateHourLayout)
}

func (r report) writeText(w io.Writer, configPath string) error {
	s := r.s
	fmt.Fprintf(w, "Export:      %s (event types: %s", s.url, s.typesText)
	if s.rng.Bounded() {
		fmt.Fprintf(w, "; date= hours")
		if !s.rng.Since.IsZero() {
			fmt.Fprintf(w, " from %s", s.rng.Since.Format(time.RFC3339))
		}
		if !s.rng.Until.IsZero() {
			fmt.Fprintf(w, " before %s", s.rng.Until.Format(time.RFC3339))
		}
	}
	if s.shard.Count > 1 {
		if r.allShards {
			fmt.Fprintf(w, "; all %d shards", s.shard.Count)
		} else {
			fmt.Fprintf(w, "; shard %d of 0-%d, -all-shards for every one", s.shard.Index, s.shard.Count-1)
		}
	}
	fmt.Fprintln(w, ")")
	if s.checkpointCache == "" {
		fmt.Fprintf(w, "Checkpoints: none (no %s: the input records nothing, every object counts as pending)\n", fieldCheckpointCache)
	} else {
		fmt.Fprintf(w, "Checkpoints: cache resource %q, keys %s<sha256 of the object key>\n", s.checkpointCache, s.checkpointPrefix)
	}
	if s.quarantine == "" {
		fmt.Fprintf(w, "Quarantine:  none (no %s)\n", fieldQuarantine)
	} else {
		fmt.Fprintf(w, "Quarantine:  %s\n", s.quarantine)
	}
	for _, x := range r.warnings {
		fmt.Fprintf(w, "Warning:     %s\n", x)
	}
	fmt.Fprintln(w)

	// Text columns left, counts right.
	typeWidth := len("EVENT TYPE")
	for _, x := range r.Rows {
		typeWidth = max(typeWidth, len(x.EventType))
	}
	line := func(hour, typ string, cols ...any) {
		fmt.Fprintf(w, "%-13s  %-*s  %7v  %9v  %6v  %11v  %7v\n", append([]any{hour, typeWidth, typ}, cols...)...)
	}
	line("HOUR (UTC)", "EVENT TYPE", "OBJECTS", "COMPLETED", "FAILED", "QUARANTINED", "PENDING")
	row := func(hour, typ string, c export.Counts) {
		// An unreadable checkpoint is settled for the input: it counts
		// beside the completed ones here and is listed below.
		line(hour, typ, c.Objects, c.Completed+c.Unreadable, c.Failed, c.Quarantined, c.Pending)
	}
	for _, x := range r.Rows {
		typ := x.EventType
		if typ == "" {
			typ = "-"
		}
		row(hourText(x.Hour), typ, x.Counts)
	}
	row("total", "", r.Total)
	fmt.Fprintln(w)
	switch {
	case !r.OldestPending.IsZero():
		fmt.Fprintf(w, "Oldest pending hour: %s\n", hourText(r.OldestPending))
	case r.Total.Pending > 0:
		fmt.Fprintln(w, "Oldest pending hour: none (the pending objects are outside any date= folder)")
	default:
		fmt.Fprintln(w, "Oldest pending hour: none, nothing is pending")
	}
	if len(r.Failed) > 0 {
		fmt.Fprintf(w, "\nFailed objects (read one again: currents-report -c %s requeue <object>):\n", configPath)
		for _, f := range r.Failed {
			q := "not quarantined"
			if f.Quarantined {
				q = "quarantined"
			}
			fmt.Fprintf(w, "  %s\n    %s; %d events read; at %s; %s\n    %s\n", f.Name, f.Checkpoint.Class, f.Checkpoint.Events, f.Checkpoint.At, q, f.Checkpoint.Error)
		}
	}
	if len(r.Unreadable) > 0 {
		fmt.Fprintf(w, "\nUnreadable checkpoints (a write cut short, e.g. by a kill; the input skips these objects as settled and they count as completed above; read one again: currents-report -c %s requeue <object>):\n", configPath)
		for _, f := range r.Unreadable {
			fmt.Fprintf(w, "  %s\n    %s\n", f.Name, f.Checkpoint.Error)
		}
	}
	return nil
}

// jsonReport is the -json output. Hours are `date=` names (UTC), "" for
// objects outside any `date=` folder.
type jsonReport struct {
	Export            string        `json:"export"`
	EventTypes        string        `json:"event_types"`
	Since             string        `json:"since,omitempty"`
	Until             string        `json:"until,omitempty"`
	Shard             *jsonShard    `json:"shard,omitempty"`
	CheckpointCache   string        `json:"checkpoint_cache"`
	CheckpointPrefix  string        `json:"checkpoint_prefix"`
	Quarantine        string        `json:"quarantine"`
	Warnings          []string      `json:"warnings"`
	Rows              []jsonRow     `json:"rows"`
	Total             export.Counts `json:"total"`
	OldestPendingHour *string       `json:"oldest_pending_hour"`
	Failed            []jsonFailure `json:"failed"`
	// Unreadable: objects whose checkpoint is not a record (class and
	// events empty, error says why); total.unreadable counts them.
	Unreadable []jsonFailure `json:"unreadable"`
}

type jsonShard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

type jsonRow struct {
	Hour      string `json:"hour"`
	EventType string `json:"event_type"`
	export.Counts
}

type jsonFailure struct {
	Object      string `json:"object"`
	Hour        string `json:"hour"`
	EventType   string `json:"event_type"`
	Class       string `json:"class"`
	Error       string `json:"error"`
	Events      int    `json:"events"`
	At          string `json:"at"`
	Quarantined bool   `json:"quarantined"`
}

func jsonHour(h time.Time) string {
	if h.IsZero() {
		return ""
	}
	return h.UTC().Format(currents.DateHourLayout)
}

func (r report) writeJSON(w io.Writer) error {
	s := r.s
	out := jsonReport{
		Export: s.url, EventTypes: s.typesText,
		CheckpointCache: s.checkpointCache, CheckpointPrefix: s.checkpointPrefix, Quarantine: s.quarantine,
		Warnings: append([]string{}, r.warnings...), Rows: []jsonRow{}, Total: r.Total, Failed: []jsonFailure{}, Unreadable: []jsonFailure{},
	}
	if !s.rng.Since.IsZero() {
		out.Since = s.rng.Since.Format(time.RFC3339)
	}
	if !s.rng.Until.IsZero() {
		out.Until = s.rng.Until.Format(time.RFC3339)
	}
	if s.shard.Count > 1 && !r.allShards {
		out.Shard = &jsonShard{Index: s.shard.Index, Count: s.shard.Count}
	}
	for _, x := range r.Rows {
		out.Rows = append(out.Rows, jsonRow{Hour: jsonHour(x.Hour), EventType: x.EventType, Counts: x.Counts})
	}
	if !r.OldestPending.IsZero() {
		h := jsonHour(r.OldestPending)
		out.OldestPendingHour = &h
	}
	for _, f := range r.Failed {
		out.Failed = append(out.Failed, jsonFailure{Object: f.Name, Hour: jsonHour(f.Hour), EventType: f.EventType,
			Class: f.Checkpoint.Class, Error: f.Checkpoint.Error, Events: f.Checkpoint.Events, At: f.Checkpoint.At, Quarantined: f.Quarantined})
	}
	for _, f := range r.Unreadable {
		out.Unreadable = append(out.Unreadable, jsonFailure{Object: f.Name, Hour: jsonHour(f.Hour), EventType: f.EventType,
			Error: f.Checkpoint.Error, Quarantined: f.Quarantined})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// requeue makes the input read objects again when it next starts: for each
// full key, it deletes the object's quarantine record and then its
// checkpoint, printing what it did. Every object is checked first
// (checkRequeue), so that a wrong key deletes nothing.
func requeue(ctx context.Context, w io.Writer, s settings, objects []string, force bool) error {
	if s.checkpointCache == "" && s.quarantine == "" {
		return fmt.Errorf("the %s input has neither %s nor %s: nothing records its objects, so there is nothing to re-queue", inputName, fieldCheckpointCache, fieldQuarantine)
	}
	b, prefix, err := openExport(ctx, s)
	if err != nil {
		return err
	}
	defer b.Close()
	q, err := openQuarantine(ctx, s)
	if err != nil {
		return err
	}
	if q != nil {
		defer q.Close()
	}
	run := func(ctx context.Context, c *cacheStore) error {
		var plans []requeuePlan
		for _, o := range objects {
			p, err := checkRequeue(ctx, s, b, prefix, q, c, o, force)
			if err != nil {
				return err
			}
			plans = append(plans, p)
		}
		for _, p := range plans {
			// The quarantine record goes first: an input starting meanwhile
			// may read the object as soon as its checkpoint is gone, and a
			// record it then writes must not be deleted here.
			var did []string
			if p.quarantine {
				if err := q.Delete(ctx, export.QuarantineKey(p.object)); err != nil {
					return fmt.Errorf("object %s: delete its quarantine record: %w", p.object, err)
				}
				did = append(did, "deleted its quarantine record "+export.QuarantineKey(p.object)+" under "+s.quarantine)
			}
			if p.checkpoint {
				if err := c.delete(ctx, p.key); err != nil {
					return fmt.Errorf("object %s: %w", p.object, err)
				}
				did = append(did, fmt.Sprintf("deleted its checkpoint %s (was %s)", p.key, p.was))
			}
			fmt.Fprintf(w, "Re-queued %s:\n  %s\n", p.object, strings.Join(did, "\n  "))
			if p.events > 0 {
				fmt.Fprintf(w, "  Warning: the next read sends its events from the start, the %d read before it %s included: "+
					"mParticle receives those again unless the output's delivered-once ledger (ledger.cache) is on.\n", p.events, p.was)
			}
		}
		// A running input does not: it remembers the objects it handed out
		// (the seen set of export.Scheduler's walkLoop) and a watching one
		// lists only recent hours.
		fmt.Fprintln(w, "The pipeline reads re-queued objects when it next starts; restart a running one.")
		return nil
	}
	if s.checkpointCache == "" {
		return run(ctx, nil)
	}
	return withCache(ctx, s, run)
}

// requeuePlan is what re-queueing one object deletes.
type requeuePlan struct {
	object     string
	key        string // its checkpoint key
	was        string // what the checkpoint said, for the output
	events     int    // events its last read delivered (or handed to a dead letter)
	checkpoint bool   // the checkpoint exists
	quarantine bool   // the quarantine record exists
}

// checkRequeue checks that an object, by full key, is in the export and is
// failed or quarantined (or completed, with force), and says what
// re-queueing it deletes. c is nil without a checkpoint cache, q without a
// quarantine.
func checkRequeue(ctx context.Context, s settings, b *blob.Bucket, prefix string, q *blob.Bucket, c *cacheStore, object string, force bool) (requeuePlan, error) {
	p := requeuePlan{object: object, key: export.CheckpointKey(s.checkpointPrefix, object)}
	key, ok := strings.CutPrefix(object, prefix)
	if !ok {
		return p, fmt.Errorf("object %s: not under the export's prefix %q: give the full key, as the report prints it", object, prefix)
	}
	if exists, err := b.Exists(ctx, key); err != nil {
		return p, fmt.Errorf("object %s: %w", object, err)
	} else if !exists {
		return p, fmt.Errorf("object %s: not in the export %s, so nothing would read it again: give the full key, as the report prints it", object, s.url)
	}
	if c != nil {
		v, err := c.get(ctx, p.key)
		if err != nil {
			return p, fmt.Errorf("object %s: %w", object, err)
		}
		if v != nil {
			p.checkpoint = true
			cp, err := export.ParseCheckpoint(v)
			switch {
			case err != nil:
				p.was = fmt.Sprintf("an unreadable value %.60q", v)
			case cp.Status == export.StatusCompleted && !force:
				return p, fmt.Errorf("object %s: completed (checkpoint %s); -force re-queues a completed object, whose events are then sent again", object, p.key)
			default:
				p.was, p.events = cp.Status, cp.Events
				if cp.Class != "" {
					p.was += ", " + cp.Class
				}
			}
		}
	}
	if q != nil {
		exists, err := q.Exists(ctx, export.QuarantineKey(object))
		if err != nil {
			return p, fmt.Errorf("object %s: %s %s: %w", object, fieldQuarantine, s.quarantine, err)
		}
		p.quarantine = exists
	}
	if !p.checkpoint && !p.quarantine {
		return p, fmt.Errorf("object %s: no checkpoint and no quarantine record: it is pending already", object)
	}
	return p, nil
}
