package client

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Reasons carried by a DeliveryError. They are stable strings: the Benthos
// output uses them as metric labels and a dead-letter route can match them.
const (
	// ReasonInvalidBatch: the item is not a JSON object with a non-empty
	// events array (or repeats a top-level key). Never sent.
	ReasonInvalidBatch = "invalid_batch"
	// ReasonUpstreamError: the message reached the output flagged with an
	// error by an earlier processor (e.g. an event that could not be
	// mapped). Never sent; the error names the processor's reason.
	ReasonUpstreamError = "upstream_error"
	// ReasonFeedNotConfigured: no credentials are configured for the
	// item's feed. Never sent.
	ReasonFeedNotConfigured = "feed_not_configured"
	// ReasonTooLarge: the item alone breaks the batch limits (events or
	// bytes), or mParticle answered 413 for its batch alone.
	ReasonTooLarge = "too_large"
	// ReasonBadRequest: mParticle answered 400 for a request holding only
	// this item's batch.
	ReasonBadRequest = "bad_request"
	// ReasonRejected: mParticle accepted the request (202) but named this
	// item's batch in the errors of its body.
	ReasonRejected = "rejected"
	// ReasonAuthFailed: mParticle answered 401 (no usable Authorization);
	// a configuration error, not retried.
	ReasonAuthFailed = "auth_failed"
	// ReasonAuthWindowExpired: the feed kept answering 403 for longer than
	// the configured authentication failure window.
	ReasonAuthWindowExpired = "auth_window_expired"
	// ReasonFeedPaused: the feed's credentials are being refused (403)
	// and the item was not held to wait for them (a Queue never holds
	// them): send it again later. Temporary, until AuthFailureWindow has
	// passed since the outage began; then items fail as
	// ReasonAuthWindowExpired.
	ReasonFeedPaused = "feed_paused"
	// ReasonUnexpectedStatus: an HTTP status the Events API does not
	// document (404, 405, ...); retrying the same bytes cannot help.
	ReasonUnexpectedStatus = "unexpected_status"
	// ReasonRetriesExhausted: 429, 5xx or network errors outlasted the
	// configured maximum elapsed retry time. Temporary.
	ReasonRetriesExhausted = "retries_exhausted"
	// ReasonContext: the caller's context ended before delivery. Temporary.
	ReasonContext = "context"
	// ReasonDryRunWrite: a dry-run client could not write the request to
	// its writer (a full disk). Not temporary: a dry run delivers nothing,
	// so failing its events loses nothing, and a one-pass dry run on a
	// full disk must end rather than retry for ever.
	ReasonDryRunWrite = "dry_run_write"
)

// Reasons lists every Reason constant: metrics create their series at 0
// from these, so that an alert on the increase of a failure counter sees
// the first failure.
func Reasons() []string {
	return []string{ReasonInvalidBatch, ReasonUpstreamError, ReasonFeedNotConfigured, ReasonTooLarge, ReasonBadRequest,
		ReasonRejected, ReasonAuthFailed, ReasonAuthWindowExpired, ReasonFeedPaused, ReasonUnexpectedStatus,
		ReasonRetriesExhausted, ReasonContext, ReasonDryRunWrite}
}

// DeliveryError says why one item was not delivered. Send returns one per
// failed item; items packed into the same batch share the same error value.
type DeliveryError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Status is the HTTP status of the response that decided the failure,
	// 0 when there was none.
	Status int
	// Message is the server's explanation (or ours when no server was
	// involved), bounded in length. It never contains credentials.
	Message string
	// Feed is the item's feed.
	Feed string
	// SourceRequestID is the source_request_id of the packed batch the item
	// travelled in; empty when the item never made it into a batch.
	SourceRequestID string
	// Err is the underlying cause (a context or network error), if any.
	Err error
}

// Error starts with "mparticle <reason>" so that a dead-letter route can
// match the reason in Benthos's fallback_error metadata by prefix.
func (e *DeliveryError) Error() string {
	var sb strings.Builder
	sb.WriteString("mparticle ")
	sb.WriteString(e.Reason)
	sb.WriteString(" (feed ")
	sb.WriteString(strconv.Quote(e.Feed))
	if e.SourceRequestID != "" {
		sb.WriteString(", batch ")
		sb.WriteString(e.SourceRequestID)
	}
	if e.Status != 0 {
		sb.WriteString(", HTTP ")
		sb.WriteString(strconv.Itoa(e.Status))
	}
	sb.WriteString(")")
	if e.Message != "" {
		sb.WriteString(": ")
		sb.WriteString(e.Message)
	}
	if e.Err != nil {
		sb.WriteString(": ")
		sb.WriteString(e.Err.Error())
	}
	return sb.String()
}

// Unwrap returns the underlying cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Temporary reports whether sending the same item again later may succeed
// without anyone changing anything: the context ended or retries ran out.
// Every other reason needs a fix to the data or the configuration.
func (e *DeliveryError) Temporary() bool {
	return slices.Contains(temporaryReasons, e.Reason)
}

// temporaryReasons are the reasons whose items may be delivered later as
// they are.
var temporaryReasons = []string{ReasonContext, ReasonRetriesExhausted, ReasonFeedPaused}

// IsTemporary reports whether err says that an item may be delivered later
// without anyone fixing anything. It reads a *DeliveryError in err's chain,
// or else err's text: past a Benthos broker that keeps only the text (a
// `reject` output fed with @fallback_error), an error that names a temporary
// reason the way DeliveryError.Error does still counts. An input uses it to
// tell "read this again later" from "this will never pass".
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Temporary()
	}
	msg := err.Error()
	for _, r := range temporaryReasons {
		if strings.Contains(msg, "mparticle "+r+" (") {
			return true
		}
	}
	return false
}

// Reason returns the reason of the DeliveryError in err's chain, or "" when
// there is none.
func Reason(err error) string {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

// maxMessageLen bounds server messages kept in errors: they end up in
// message metadata and logs, and a hostile or broken server could send
// megabytes.
const maxMessageLen = 512

// clipMessage bounds a server message and keeps it on one line.
func clipMessage(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}
