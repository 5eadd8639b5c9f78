package client

import (
	"io"
	"maps"
	"sync"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
)

// DryRunCounts is what a dry-run client wrote for one feed.
type DryRunCounts struct {
	Requests int
	Batches  int
	Events   int
}

// dryRun writes each request as one JSON line instead of sending it:
//
//	{"method":"POST","url":...,"feed":...,"headers":{...},"body":[...]}
//
// The body is the exact request body; the Authorization header is redacted.
type dryRun struct {
	mu     sync.Mutex
	w      io.Writer
	line   []byte
	counts map[string]DryRunCounts
}

func newDryRun(w io.Writer) *dryRun {
	return &dryRun{w: w, counts: make(map[string]DryRunCounts)}
}

// write renders r as one line and writes it in a single Write call, so that
// lines of concurrent Send calls never interleave.
func (d *dryRun) write(url, feed string, r *request) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.line[:0]
	l = append(l, `{"method":"POST","url":`...)
	l = jsonstring.Append(l, url)
	l = append(l, `,"feed":`...)
	l = jsonstring.Append(l, feed)
	l = append(l, `,"headers":{"Authorization":"Basic [redacted]","Content-Type":"application/json","Accept":"application/json"},"body":`...)
	l = append(l, r.body...)
	l = append(l, '}', '\n')
	d.line = l
	if _, err := d.w.Write(l); err != nil {
		return err
	}
	c := d.counts[feed]
	c.Requests++
	c.Batches += len(r.batches)
	for _, b := range r.batches {
		c.Events += b.events
	}
	d.counts[feed] = c
	return nil
}

func (d *dryRun) summary() map[string]DryRunCounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.counts)
}
