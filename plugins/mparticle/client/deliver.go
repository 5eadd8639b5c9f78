package client

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds on reading responses: mParticle's bodies are small JSON documents;
// anything larger is cut rather than buffered.
const (
	maxResponseBytes = 1 << 20
	maxDrainBytes    = 1 << 20
)

// deliverFeed sends one feed's requests in order. With hold false, a feed
// in a 403 outage whose next attempt is not due fails its items at once as
// ReasonFeedPaused rather than waiting.
func (c *Client) deliverFeed(ctx context.Context, plan *feedPlan, items []Item, errs []error, hold bool) {
	for _, r := range plan.requests {
		if !hold {
			if since, paused := plan.feed.pausedSince(time.Now()); paused {
				c.fail(plan.feed, r, r.batches, errs, feedPaused(since, ""))
				continue
			}
		}
		if c.cfg.BeforeSend != nil && c.dry == nil {
			c.beforeSend(ctx, plan.feed.name, r, items)
		}
		c.deliver(ctx, plan.feed, r, errs, hold)
	}
}

// beforeSend tells Config.BeforeSend what request r carries.
func (c *Client) beforeSend(ctx context.Context, feed string, r *request, items []Item) {
	batches := make([]SentBatch, len(r.batches))
	for b, ref := range r.batches {
		keys := make([]string, len(ref.items))
		for k, i := range ref.items {
			keys[k] = items[i].Key
		}
		r.batches[b].keys = keys // for Config.Accepted
		batches[b] = SentBatch{SourceRequestID: r.sourceRequestID(&ref), Historical: r.hist, Body: r.body[ref.start:ref.end], Keys: keys}
	}
	if err := c.cfg.BeforeSend(ctx, feed, batches); err != nil {
		c.log.Warnf("mparticle feed %s: before sending %d batches: %v", feed, len(batches), err)
	}
}

// feedPaused is the error of items released during a 403 outage.
func feedPaused(since time.Time, serverMessage string) *DeliveryError {
	msg := "credentials refused since " + since.UTC().Format(time.RFC3339) + "; send again later"
	if serverMessage != "" {
		msg += ": " + serverMessage
	}
	return &DeliveryError{Reason: ReasonFeedPaused, Status: http.StatusForbidden, Message: msg}
}

// deliver sends one bulk request until it is settled, and records the outcome
// of each of its items in errs. This is the one place that decides what a
// response means:
//
//   - 2xx: accepted; batches named in an error body fail as rejected.
//   - 400 / 413: the same bytes will never pass; the request is split in
//     halves until the offending batches stand alone, and only those fail.
//   - 401: no usable credentials; fail (configuration error).
//   - 403: credentials refused; the whole feed pauses with backoff and keeps
//     trying until AuthFailureWindow has passed since the outage's first
//     403, then the items fail (never dropped silently).
//   - 429: the feed waits Retry-After (else backoff) and tries again.
//   - 5xx, network errors: backoff with jitter and try again.
//   - anything else: fail as unexpected_status.
//
// Retries of 429, 5xx and network errors stop after MaxElapsedTime (if set);
// every wait ends with ctx.
func (c *Client) deliver(ctx context.Context, fs *feedState, r *request, errs []error, hold bool) {
	if c.dry != nil {
		if err := c.dry.write(c.urlOf(r), fs.name, r); err != nil {
			c.fail(fs, r, r.batches, errs, &DeliveryError{Reason: ReasonDryRunWrite, Message: "cannot write the dry-run request", Err: err})
			return
		}
		c.accepted(ctx, fs, r, r.batches)
		return
	}

	start := time.Now()
	bo := backoff{initial: c.cfg.InitialInterval, max: c.cfg.MaxInterval}
	var last *DeliveryError // the latest transient failure, reported if retries run out
	attempt := 0            // HTTP attempts of r so far (for latency and traces)

	// retryAfter schedules the next attempt d from now for the whole feed,
	// unless that would outlast MaxElapsedTime.
	retryAfter := func(d time.Duration, cause string, why *DeliveryError) bool {
		last = why
		if c.cfg.MaxElapsedTime > 0 && time.Since(start)+d > c.cfg.MaxElapsedTime {
			exhausted := *why
			exhausted.Reason = ReasonRetriesExhausted
			c.log.Warnf("mparticle feed %s: giving up on a request of %d batches after %s (last: %s)",
				fs.name, len(r.batches), time.Since(start).Round(time.Millisecond), cause)
			c.fail(fs, r, r.batches, errs, &exhausted)
			return false
		}
		c.metrics.Retry(fs.name, cause)
		c.log.Debugf("mparticle feed %s: %s, retrying a request of %d batches in %s",
			fs.name, cause, len(r.batches), d.Round(time.Millisecond))
		fs.holdUntil(time.Now().Add(d))
		return true
	}

	for {
		if err := fs.wait(ctx); err != nil {
			c.failContext(fs, r, errs, last, err)
			return
		}
		if c.cfg.RateLimit != nil {
			if err := c.cfg.RateLimit(ctx); err != nil {
				if ctx.Err() != nil {
					c.failContext(fs, r, errs, last, ctx.Err())
					return
				}
				// A failing limiter must neither drop data nor spin.
				c.log.Warnf("mparticle feed %s: rate limiter: %v", fs.name, err)
				if !retryAfter(bo.next(), "rate_limit", &DeliveryError{Message: "rate limiter failed", Err: err}) {
					return
				}
				continue
			}
		}

		attempt++
		resp, err := c.observedPost(ctx, fs, r, attempt)
		if err != nil {
			c.metrics.Request(fs.name, 0)
			if ctx.Err() != nil {
				c.failContext(fs, r, errs, last, ctx.Err())
				return
			}
			c.log.Warnf("mparticle feed %s: request failed: %v", fs.name, err)
			if !retryAfter(bo.next(), "network", &DeliveryError{Message: "no response", Err: err}) {
				return
			}
			continue
		}
		c.metrics.Request(fs.name, resp.status)
		c.pace(fs, resp.percentUsed)

		switch s := resp.status; {
		case s >= 200 && s < 300:
			fs.authorized()
			c.settleAccepted(ctx, fs, r, resp.body, errs)
			return

		case s == http.StatusBadRequest || s == http.StatusRequestEntityTooLarge:
			if len(r.batches) > 1 {
				// Split rather than fail the lot: only the bad batches
				// should reach the dead-letter path.
				a, b := r.split()
				c.log.Debugf("mparticle feed %s: HTTP %d on %d batches, splitting", fs.name, s, len(r.batches))
				c.deliver(ctx, fs, a, errs, hold)
				c.deliver(ctx, fs, b, errs, hold)
				return
			}
			reason := ReasonBadRequest
			if s == http.StatusRequestEntityTooLarge {
				reason = ReasonTooLarge
			}
			c.log.Warnf("mparticle feed %s: HTTP %d for one batch of %d events: failing it as %s",
				fs.name, s, r.batches[0].events, reason)
			c.fail(fs, r, r.batches, errs, &DeliveryError{Reason: reason, Status: s, Message: errorMessage(resp.body)})
			return

		case s == http.StatusUnauthorized:
			c.log.Errorf("mparticle feed %s: HTTP 401: the request carried no usable credentials", fs.name)
			c.fail(fs, r, r.batches, errs, &DeliveryError{Reason: ReasonAuthFailed, Status: s, Message: errorMessage(resp.body)})
			return

		case s == http.StatusForbidden:
			now := time.Now()
			since := fs.forbidden(now)
			left := c.cfg.AuthFailureWindow - now.Sub(since)
			if left <= 0 {
				c.log.Errorf("mparticle feed %s: credentials refused (HTTP 403) for %s; failing %d batches",
					fs.name, now.Sub(since).Round(time.Second), len(r.batches))
				c.fail(fs, r, r.batches, errs, &DeliveryError{
					Reason: ReasonAuthWindowExpired, Status: s,
					Message: "credentials refused since " + since.UTC().Format(time.RFC3339) + ": " + errorMessage(resp.body),
				})
				return
			}
			c.log.Warnf("mparticle feed %s: credentials refused (HTTP 403); pausing the feed, %s left in the window",
				fs.name, left.Round(time.Second))
			// The window, not MaxElapsedTime, bounds 403 retries.
			d := min(bo.next(), left)
			last = &DeliveryError{Status: s, Message: errorMessage(resp.body)}
			c.metrics.Retry(fs.name, "forbidden")
			if !hold {
				// Probe again after a backoff that grows over the outage;
				// until then the feed's items are released, not held.
				fs.holdUntil(now.Add(min(c.authBackoff(fs), left)))
				c.fail(fs, r, r.batches, errs, feedPaused(since, last.Message))
				return
			}
			fs.holdUntil(now.Add(d))

		case s == http.StatusTooManyRequests:
			d, ok := parseRetryAfter(resp.retryAfter, time.Now())
			if !ok {
				d = bo.next()
			}
			why := &DeliveryError{Status: s, Message: "throttled"}
			if resp.limitExceeded != "" {
				why.Message += " (" + clipMessage(resp.limitExceeded) + " limit)"
			}
			if !retryAfter(d, "throttled", why) {
				return
			}
			c.metrics.Throttled(fs.name, d)

		case s >= 500:
			c.log.Warnf("mparticle feed %s: HTTP %d", fs.name, s)
			if !retryAfter(bo.next(), "server_error", &DeliveryError{Status: s, Message: errorMessage(resp.body)}) {
				return
			}

		default:
			c.log.Errorf("mparticle feed %s: unexpected HTTP %d from the Events API", fs.name, s)
			c.fail(fs, r, r.batches, errs, &DeliveryError{Reason: ReasonUnexpectedStatus, Status: s, Message: errorMessage(resp.body)})
			return
		}
	}
}

// authBackoff is the wait before the next probe of a feed in a 403 outage:
// exponential in the outage's 403s, from InitialInterval to MaxInterval.
func (c *Client) authBackoff(fs *feedState) time.Duration {
	fs.mu.Lock()
	n := fs.authTries
	fs.mu.Unlock()
	d := c.cfg.InitialInterval
	for i := 1; i < n && d < c.cfg.MaxInterval; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxInterval)
}

// urlOf returns the endpoint of a request.
func (c *Client) urlOf(r *request) string {
	if r.hist {
		return c.histURL
	}
	return c.bulkURL
}

// settleAccepted handles a 2xx: batches named in the body's errors fail as
// rejected, the rest are delivered.
func (c *Client) settleAccepted(ctx context.Context, fs *feedState, r *request, body []byte, errs []error) {
	rejected, all := acceptedErrors(body, r)
	if all != "" {
		// The body reports errors but names no batch: failing every batch
		// is the only choice that cannot lose an event (mParticle
		// deduplicates the ones it did take when they are replayed).
		c.log.Warnf("mparticle feed %s: HTTP 202 with unattributed errors; failing all %d batches", fs.name, len(r.batches))
		c.fail(fs, r, r.batches, errs, &DeliveryError{Reason: ReasonRejected, Status: http.StatusAccepted, Message: all})
		return
	}
	if len(rejected) == 0 {
		c.accepted(ctx, fs, r, r.batches)
		return
	}
	c.log.Warnf("mparticle feed %s: HTTP 202 rejected %d of %d batches", fs.name, len(rejected), len(r.batches))
	for b := range r.batches {
		msg, bad := rejected[b]
		if !bad {
			c.accepted(ctx, fs, r, r.batches[b:b+1])
			continue
		}
		c.fail(fs, r, r.batches[b:b+1], errs, &DeliveryError{Reason: ReasonRejected, Status: http.StatusAccepted, Message: msg})
	}
}

// accepted counts delivered batches of r and tells Config.Accepted; their
// items keep a nil error.
func (c *Client) accepted(ctx context.Context, fs *feedState, r *request, batches []batchRef) {
	for _, b := range batches {
		c.metrics.BatchAccepted(fs.name, b.events)
	}
	if c.cfg.Accepted == nil || c.dry != nil {
		return
	}
	sent := make([]SentBatch, len(batches))
	for k := range batches {
		sent[k] = SentBatch{SourceRequestID: r.sourceRequestID(&batches[k]), Historical: r.hist, Keys: batches[k].keys}
	}
	c.cfg.Accepted(ctx, fs.name, sent)
}

// fail gives every item of batches a copy of tmpl naming its batch.
func (c *Client) fail(fs *feedState, r *request, batches []batchRef, errs []error, tmpl *DeliveryError) {
	for _, b := range batches {
		de := *tmpl
		de.Feed = fs.name
		de.SourceRequestID = r.sourceRequestID(&b)
		for _, i := range b.items {
			errs[i] = &de
		}
		c.metrics.EventsFailed(fs.name, de.Reason, b.events)
	}
}

// failContext fails a request whose context ended; the latest transient
// failure, if any, says what it was waiting for.
func (c *Client) failContext(fs *feedState, r *request, errs []error, last *DeliveryError, cause error) {
	de := &DeliveryError{Reason: ReasonContext, Err: cause, Message: "gave up waiting"}
	if last != nil {
		de.Status = last.Status
		de.Message = "gave up waiting after: " + last.Message
	}
	c.fail(fs, r, r.batches, errs, de)
}

// pace holds the feed back when mParticle reports that most of the rate
// limit is used, so that requests slow down before they get 429s.
func (c *Client) pace(fs *feedState, percentUsed string) {
	if percentUsed == "" || c.cfg.PaceThreshold < 0 {
		return
	}
	pct, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(percentUsed), "%")), 64)
	if err != nil || pct <= c.cfg.PaceThreshold {
		return
	}
	frac := min((pct-c.cfg.PaceThreshold)/(100-c.cfg.PaceThreshold), 1)
	d := time.Duration(frac * float64(c.cfg.PaceMaxDelay))
	fs.holdUntil(time.Now().Add(d))
	c.metrics.Throttled(fs.name, d)
}

// response is what deliver needs from an HTTP response.
type response struct {
	status        int
	body          []byte
	retryAfter    string
	percentUsed   string
	limitExceeded string
}

// post makes one HTTP attempt, bounded by Timeout.
func (c *Client) post(ctx context.Context, fs *feedState, url string, body []byte) (response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header = http.Header{
		"Authorization": {fs.auth},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
	}
	res, err := c.httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	out := response{
		status:        res.StatusCode,
		retryAfter:    res.Header.Get("Retry-After"),
		percentUsed:   res.Header.Get("X-Mp-Rate-Limit-Percentage-Used"),
		limitExceeded: res.Header.Get("X-Mp-Rate-Limit-Exceeded"),
	}
	if res.ContentLength != 0 {
		out.body, err = io.ReadAll(io.LimitReader(res.Body, maxResponseBytes))
		if err != nil && out.status >= 200 && out.status < 300 {
			// An accepted request whose body (maybe listing rejected
			// batches) broke off is settled by resending: the
			// source_request_ids make that safe.
			return response{}, err
		}
	}
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxDrainBytes))
	return out, nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date,
// capped at MaxRetryAfter so that a wrong or hostile header cannot park a
// feed for ever (1e30 seconds would also overflow a Duration).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || secs != secs { // negative or NaN
			return 0, false
		}
		if secs >= MaxRetryAfter.Seconds() {
			return MaxRetryAfter, true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// backoff yields exponentially growing waits with ±50% jitter, so that many
// clients throttled together do not come back together.
type backoff struct {
	initial, max time.Duration
	cur          time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.initial
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	d := b.cur/2 + rand.N(b.cur+1)
	return min(d, b.max)
}

// split halves a request, keeping batch order.
func (r *request) split() (*request, *request) {
	h := len(r.batches) / 2
	return r.sub(r.batches[:h]), r.sub(r.batches[h:])
}

// sub builds a request holding only batches, which belong to r.
func (r *request) sub(batches []batchRef) *request {
	size := 1 + len(batches)
	for _, b := range batches {
		size += b.end - b.start
	}
	n := &request{hist: r.hist, body: make([]byte, 0, size), batches: make([]batchRef, 0, len(batches))}
	n.body = append(n.body, '[')
	for k, b := range batches {
		if k > 0 {
			n.body = append(n.body, ',')
		}
		shift := len(n.body) - b.start
		n.body = append(n.body, r.body[b.start:b.end]...)
		b.start += shift
		b.end += shift
		b.srid += shift
		n.batches = append(n.batches, b)
	}
	n.body = append(n.body, ']')
	return n
}

// errorMessage extracts the messages of an Events API error body
// ({"errors":[{"code":...,"message":...}]}), or a clipped copy of the body
// when it has another shape.
func errorMessage(body []byte) string {
	body = trimSpace(body)
	if len(body) == 0 {
		return ""
	}
	if body[0] == '{' && validJSON(body) {
		if list, ok := member(body, "errors"); ok && len(list) > 0 && list[0] == '[' {
			var sb strings.Builder
			it := newArrayIter(list)
			for {
				e, more := it.next()
				if !more {
					break
				}
				if sb.Len() > 0 {
					sb.WriteString("; ")
				}
				sb.WriteString(entryMessage(e))
			}
			if sb.Len() > 0 {
				return clipMessage(sb.String())
			}
		}
	}
	return clipMessage(string(body))
}

// entryMessage renders one error entry as "CODE: message".
func entryMessage(e []byte) string {
	if len(e) == 0 || e[0] != '{' {
		return clipMessage(string(e))
	}
	code := jsonStringMember(e, "code")
	msg := jsonStringMember(e, "message")
	switch {
	case code != "" && msg != "":
		return code + ": " + msg
	case msg != "":
		return msg
	default:
		return code
	}
}
