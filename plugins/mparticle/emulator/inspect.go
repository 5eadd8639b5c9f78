package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Record is one accepted batch, as it arrived.
type Record struct {
	// Feed is the name of the feed whose credentials sent the batch.
	Feed string `json:"feed"`
	// Endpoint is EndpointEvents, EndpointBulk or EndpointHistorical.
	Endpoint string `json:"endpoint"`
	// Batch is the batch's JSON, byte for byte as received.
	Batch json.RawMessage `json:"batch"`
	// Received is when the batch was recorded, on the emulator's clock.
	Received time.Time `json:"received"`
}

// Counts are the counters kept per emulator and per feed.
type Counts struct {
	// Requests counts API requests (not /_emulator ones).
	Requests int `json:"requests"`
	// Statuses counts answered requests by HTTP status.
	Statuses map[int]int `json:"statuses"`
	// Resets counts requests whose connection was reset instead of answered
	// (faults, or clients that went away).
	Resets int `json:"resets"`
	// Batches counts recorded batches.
	Batches int `json:"batches"`
	// Events counts the events of recorded batches.
	Events int `json:"events"`
	// Duplicates counts batches accepted but not recorded again because their
	// source_request_id had been seen for the same key.
	Duplicates int `json:"duplicates"`
	// FailedBatches counts batches listed as failed in a 202 answer.
	FailedBatches int `json:"failed_batches"`
}

func (c *Counts) add(x *exchange) {
	if c.Statuses == nil {
		c.Statuses = map[int]int{}
	}
	c.Requests++
	if x.reset {
		c.Resets++
	} else {
		c.Statuses[x.status]++
	}
	c.Batches += x.recorded
	c.Events += x.events
	c.Duplicates += x.duplicates
	c.FailedBatches += x.failed
}

func (c Counts) clone() Counts {
	m := make(map[int]int, len(c.Statuses))
	for k, v := range c.Statuses {
		m[k] = v
	}
	c.Statuses = m
	return c
}

// Stats are the emulator's counters: totals, and the same counts per feed
// (requests without valid credentials have no feed and count in totals only).
type Stats struct {
	Counts
	Feeds map[string]Counts `json:"feeds"`
}

// Batches returns the accepted batches in arrival order (the latest
// Config.KeepBatches of them when that is positive).
func (e *Emulator) Batches() []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.keep > 0 && len(e.records) == e.keep {
		// The ring, oldest first.
		return append(append([]Record(nil), e.records[e.next:]...), e.records[:e.next]...)
	}
	return append([]Record(nil), e.records...)
}

// Stats returns a snapshot of the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{Counts: e.stats.Counts.clone(), Feeds: make(map[string]Counts, len(e.stats.Feeds))}
	for k, v := range e.stats.Feeds {
		s.Feeds[k] = v.clone()
	}
	return s
}

// Reset forgets recorded batches, counters and seen source_request_ids, and
// refills the rate limit. Faults stay as they are.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.resetLocked()
}

func (e *Emulator) resetLocked() {
	e.records, e.next = nil, 0
	e.seen = map[uint64]struct{}{}
	e.stats = Stats{Counts: Counts{Statuses: map[int]int{}}, Feeds: map[string]Counts{}}
	e.bucket = newBucket(e.rate, e.now())
}

// serveInspection serves the /_emulator paths.
func (e *Emulator) serveInspection(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_emulator/batches" && r.Method == http.MethodGet:
		records := e.Batches()
		if feed := r.URL.Query().Get("feed"); feed != "" {
			kept := records[:0]
			for _, rec := range records {
				if rec.Feed == feed {
					kept = append(kept, rec)
				}
			}
			records = kept
		}
		if records == nil {
			records = []Record{} // [] rather than null
		}
		writeJSON(w, http.StatusOK, records)
	case r.URL.Path == "/_emulator/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Stats())
	case r.URL.Path == "/_emulator/reset" && r.Method == http.MethodPost:
		e.Reset()
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/_emulator/faults" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, e.Faults())
	case r.URL.Path == "/_emulator/faults" && r.Method == http.MethodPut:
		var f Faults
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(raw, &f)
		}
		if err == nil {
			err = e.SetFaults(f)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, e.Faults())
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No such emulator endpoint or method.")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
