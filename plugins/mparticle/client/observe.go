package client

import "time"

// Metrics receives the client's counts. The client calls it from several
// goroutines at once, so implementations must be safe for concurrent use.
// Embed NopMetrics to implement only some of the methods.
type Metrics interface {
	// Request counts one HTTP attempt and its status; status is 0 when no
	// response arrived (network error, timeout).
	Request(feed string, status int)
	// BatchAccepted counts one batch mParticle accepted, with its events.
	BatchAccepted(feed string, events int)
	// Retry counts one retried attempt and why: "throttled" (429),
	// "server_error" (5xx), "network", "forbidden" (403) or "rate_limit"
	// (the rate limiter hook failed).
	Retry(feed, cause string)
	// Throttled adds time the feed was held back by 429 answers or by pacing
	// on X-mp-rate-limit-percentage-used.
	Throttled(feed string, d time.Duration)
	// EventsFailed counts events of items that failed, by reason.
	EventsFailed(feed, reason string, events int)
}

// NopMetrics discards every count.
type NopMetrics struct{}

// Request implements Metrics.
func (NopMetrics) Request(string, int) {}

// BatchAccepted implements Metrics.
func (NopMetrics) BatchAccepted(string, int) {}

// Retry implements Metrics.
func (NopMetrics) Retry(string, string) {}

// Throttled implements Metrics.
func (NopMetrics) Throttled(string, time.Duration) {}

// EventsFailed implements Metrics.
func (NopMetrics) EventsFailed(string, string, int) {}

// Logger receives the client's log lines. Benthos's *service.Logger fits.
// The client never passes credentials, batch bodies or server messages
// (which may echo data) to it: only feeds, statuses, counts and reasons.
type Logger interface {
	Debugf(format string, v ...any)
	Warnf(format string, v ...any)
	Errorf(format string, v ...any)
}

// nopLogger discards every line.
type nopLogger struct{}

func (nopLogger) Debugf(string, ...any) {}
func (nopLogger) Warnf(string, ...any)  {}
func (nopLogger) Errorf(string, ...any) {}
