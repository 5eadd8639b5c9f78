package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Faults are the failures the emulator injects. The zero value injects none.
type Faults struct {
	// Seed seeds the pseudo-random sequence every rate below draws from.
	Seed int64
	// ServerErrorRate is the share (0..1) of authenticated requests answered 503.
	ServerErrorRate float64
	// ResetRate is the share (0..1) of requests whose connection is reset before
	// the body is read: nothing is processed.
	ResetRate float64
	// ResetAfterAcceptRate is the share (0..1) of accepted requests whose batches
	// are recorded but whose connection is reset instead of answering 202, so the
	// client cannot know they were accepted (tests for deduplication on retry).
	ResetAfterAcceptRate float64
	// Latency delays every API response.
	Latency time.Duration
	// Forbidden answers 403 to every authenticated request while true.
	Forbidden bool
	// ForbiddenNext answers 403 to the next N authenticated requests.
	ForbiddenNext int
	// ForbiddenFrom and ForbiddenUntil answer 403 to authenticated requests that
	// arrive in [ForbiddenFrom, ForbiddenUntil) on the emulator's clock; a zero
	// ForbiddenFrom means "since always", a zero ForbiddenUntil disables the window.
	ForbiddenFrom, ForbiddenUntil time.Time
	// ForbiddenFeeds limits the three 403 faults above to these feeds; empty
	// means every feed.
	ForbiddenFeeds []string
	// BatchErrorRate is the share (0..1) of batches in a bulk request that fail
	// inside a 202 answer (see the package doc for the body).
	BatchErrorRate float64
}

// Validate reports rates outside 0..1 and negative counts or durations.
func (f Faults) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"server_error_rate", f.ServerErrorRate},
		{"reset_rate", f.ResetRate},
		{"reset_after_accept_rate", f.ResetAfterAcceptRate},
		{"batch_error_rate", f.BatchErrorRate},
	} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("fault %s must be between 0 and 1, got %v", r.name, r.v))
		}
	}
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("fault latency must not be negative, got %v", f.Latency))
	}
	if f.ForbiddenNext < 0 {
		errs = append(errs, fmt.Errorf("fault forbidden_next must not be negative, got %d", f.ForbiddenNext))
	}
	return errors.Join(errs...)
}

// forbids reports whether a 403 fault applies to feed at now, and consumes one
// of ForbiddenNext when it is the reason.
func (f *Faults) forbids(feed string, now time.Time) bool {
	if len(f.ForbiddenFeeds) > 0 && !slices.Contains(f.ForbiddenFeeds, feed) {
		return false
	}
	if f.Forbidden {
		return true
	}
	if !f.ForbiddenUntil.IsZero() && !now.Before(f.ForbiddenFrom) && now.Before(f.ForbiddenUntil) {
		return true
	}
	if f.ForbiddenNext > 0 {
		f.ForbiddenNext--
		return true
	}
	return false
}

// faultsJSON is the wire form of Faults for /_emulator/faults: snake_case names
// and a Go duration string for latency, so a shell user can write it by hand.
type faultsJSON struct {
	Seed                 int64     `json:"seed"`
	ServerErrorRate      float64   `json:"server_error_rate"`
	ResetRate            float64   `json:"reset_rate"`
	ResetAfterAcceptRate float64   `json:"reset_after_accept_rate"`
	Latency              string    `json:"latency"`
	Forbidden            bool      `json:"forbidden"`
	ForbiddenNext        int       `json:"forbidden_next"`
	ForbiddenFrom        time.Time `json:"forbidden_from,omitzero"`
	ForbiddenUntil       time.Time `json:"forbidden_until,omitzero"`
	ForbiddenFeeds       []string  `json:"forbidden_feeds,omitempty"`
	BatchErrorRate       float64   `json:"batch_error_rate"`
}

// MarshalJSON renders the faults as /_emulator/faults shows them.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Seed: f.Seed, ServerErrorRate: f.ServerErrorRate, ResetRate: f.ResetRate,
		ResetAfterAcceptRate: f.ResetAfterAcceptRate, Latency: f.Latency.String(),
		Forbidden: f.Forbidden, ForbiddenNext: f.ForbiddenNext,
		ForbiddenFrom: f.ForbiddenFrom, ForbiddenUntil: f.ForbiddenUntil,
		ForbiddenFeeds: f.ForbiddenFeeds, BatchErrorRate: f.BatchErrorRate,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes; absent fields are zero.
func (f *Faults) UnmarshalJSON(raw []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return err
	}
	var latency time.Duration
	if j.Latency != "" {
		d, err := time.ParseDuration(j.Latency)
		if err != nil {
			return fmt.Errorf("fault latency: %w", err)
		}
		latency = d
	}
	*f = Faults{
		Seed: j.Seed, ServerErrorRate: j.ServerErrorRate, ResetRate: j.ResetRate,
		ResetAfterAcceptRate: j.ResetAfterAcceptRate, Latency: latency,
		Forbidden: j.Forbidden, ForbiddenNext: j.ForbiddenNext,
		ForbiddenFrom: j.ForbiddenFrom, ForbiddenUntil: j.ForbiddenUntil,
		ForbiddenFeeds: j.ForbiddenFeeds, BatchErrorRate: j.BatchErrorRate,
	}
	return nil
}
