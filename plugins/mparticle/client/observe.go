package client

import (
	"context"
	"time"
)

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

// LatencyMetrics is an optional extension of Metrics: when the Metrics value
// given to the client implements it, the client reports how long every HTTP
// attempt took, with its status (0 when no response arrived).
type LatencyMetrics interface {
	RequestLatency(feed string, status int, d time.Duration)
}

// RequestInfo describes one HTTP attempt to a tracer. It never carries
// credentials or event contents.
type RequestInfo struct {
	Feed     string // the feed (ios, android, web, unbound, …)
	Endpoint string // the path: /bulkevents or /bulkevents/historical
	Batches  int    // batches in the request body
	Events   int    // events over those batches
	Attempt  int    // 1 for the first attempt of a request, 2… for retries
}

// RequestTracer is an optional extension of Metrics: when the Metrics value
// given to the client implements it, the client calls StartRequest before
// every HTTP attempt and the returned end function once the attempt is over,
// with the HTTP status (0 when no response arrived) and the transport error,
// if any. The context it returns is the one the HTTP request is made with,
// so a tracer can start a span there and keep the client free of any
// tracing library.
type RequestTracer interface {
	StartRequest(ctx context.Context, info RequestInfo) (context.Context, func(status int, err error))
}

// observedPost makes one HTTP attempt of r through post, timed and traced
// when c.metrics implements LatencyMetrics or RequestTracer.
func (c *Client) observedPost(ctx context.Context, fs *feedState, r *request, attempt int) (response, error) {
	tracer, traced := c.metrics.(RequestTracer)
	latency, timed := c.metrics.(LatencyMetrics)
	if !traced && !timed {
		return c.post(ctx, fs, c.urlOf(r), r.body)
	}
	var end func(int, error)
	if traced {
		info := RequestInfo{Feed: fs.name, Endpoint: "/bulkevents", Batches: len(r.batches), Attempt: attempt}
		if r.hist {
			info.Endpoint = "/bulkevents/historical"
		}
		for _, b := range r.batches {
			info.Events += b.events
		}
		ctx, end = tracer.StartRequest(ctx, info)
	}
	start := time.Now()
	resp, err := c.post(ctx, fs, c.urlOf(r), r.body)
	status := resp.status
	if err != nil {
		status = 0
	}
	if timed {
		latency.RequestLatency(fs.name, status, time.Since(start))
	}
	if end != nil {
		end(status, err)
	}
	return resp, err
}
