package emulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/validate"
)

// Feed names used by this project (any names work; these are the conventional
// ones, defined in package eventsapi).
const (
	FeedIOS     = eventsapi.FeedIOS
	FeedAndroid = eventsapi.FeedAndroid
	FeedWeb     = eventsapi.FeedWeb
	FeedUnbound = eventsapi.FeedUnbound
)

// DefaultBatchesPerSecond is mParticle's default throughput limit.
const DefaultBatchesPerSecond = 270

// HistoricalMinAge is how old every event sent to /v2/bulkevents/historical must be.
const HistoricalMinAge = eventsapi.HistoricalMinAge

// Endpoint names, as recorded in Record.Endpoint.
const (
	EndpointEvents     = "events"
	EndpointBulk       = "bulkevents"
	EndpointHistorical = "bulkevents/historical"
)

// Credentials are one feed's server-to-server key and secret.
type Credentials struct {
	Key    string
	Secret string
}

// Config configures an Emulator.
type Config struct {
	// Feeds maps a feed name (ios, android, web, unbound...) to its credentials.
	// Keys must be unique and non-empty.
	Feeds map[string]Credentials
	// BatchesPerSecond is the token bucket's rate: 0 means
	// DefaultBatchesPerSecond, a negative value means unlimited.
	BatchesPerSecond float64
	// Faults are the failures injected from the start; see SetFaults.
	Faults Faults
	// Now is the clock for the rate limit, the historical rules and the 403
	// window; nil means time.Now. Tests pass a fake clock to stay deterministic.
	Now func() time.Time
	// Logger receives one line per API request (never credentials nor batch
	// content); nil logs nothing.
	Logger *slog.Logger
	// KeepBatches bounds the accepted batches kept for Batches and
	// /_emulator/batches: 0 keeps every one (what tests inspect), n > 0 the
	// latest n, a negative value none. Counters and deduplication cover
	// every batch whatever it says; deduplication keeps 8 bytes per batch,
	// so a long soak runs in bounded memory with KeepBatches set.
	KeepBatches int
}

// Emulator is an http.Handler that behaves like mParticle's Events API. Create it
// with New; NewServer serves it on a loopback port.
type Emulator struct {
	now    func() time.Time
	logger *slog.Logger
	// byKey resolves Basic auth usernames; immutable after New.
	byKey map[string]feedAuth

	mu      sync.Mutex
	faults  Faults
	rng     *rand.Rand
	bucket  bucket
	rate    float64
	records []Record
	// keep is Config.KeepBatches; with keep > 0, records is a ring of
	// that many and next is where the next record goes once it is full.
	keep, next int
	seed       maphash.Seed
	seen       map[uint64]struct{} // hash of API key and source_request_id → seen
	stats      Stats
}

// feedAuth is what a key authenticates as.
type feedAuth struct {
	feed   string
	secret []byte
}

// New returns an Emulator for cfg, or an error when cfg is inconsistent.
func New(cfg Config) (*Emulator, error) {
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	e := &Emulator{
		now:    cfg.Now,
		logger: cfg.Logger,
		byKey:  make(map[string]feedAuth, len(cfg.Feeds)),
		keep:   cfg.KeepBatches,
		seed:   maphash.MakeSeed(),
	}
	if e.now == nil {
		e.now = time.Now
	}
	for feed, c := range cfg.Feeds {
		if c.Key == "" {
			return nil, fmt.Errorf("feed %q: empty key", feed)
		}
		if other, dup := e.byKey[c.Key]; dup {
			return nil, fmt.Errorf("feeds %q and %q share one key", other.feed, feed)
		}
		e.byKey[c.Key] = feedAuth{feed: feed, secret: []byte(c.Secret)}
	}
	e.rate = cfg.BatchesPerSecond
	if e.rate == 0 {
		e.rate = DefaultBatchesPerSecond
	}
	e.setFaultsLocked(cfg.Faults)
	e.resetLocked()
	return e, nil
}

// SetFaults replaces the injected faults and restarts the fault sequence from
// f.Seed. It is safe to call while requests are being served.
func (e *Emulator) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.setFaultsLocked(f)
	return nil
}

// Faults returns the faults in force (ForbiddenNext counts down as it is used).
func (e *Emulator) Faults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.faults
	f.ForbiddenFeeds = append([]string(nil), f.ForbiddenFeeds...)
	return f
}

func (e *Emulator) setFaultsLocked(f Faults) {
	f.ForbiddenFeeds = append([]string(nil), f.ForbiddenFeeds...)
	e.faults = f
	e.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6d5061727469636c)) // "mPartcl": a fixed stream id
}

// draw reports whether an event of probability p happens; it draws from the
// sequence only when p is in (0, 1) so that unused faults do not shift it.
func (e *Emulator) drawLocked(p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return e.rng.Float64() < p
}

// apiError is one entry of an error body.
type apiError struct {
	Code            string `json:"code"`
	Message         string `json:"message"`
	BatchIndex      *int   `json:"batch_index,omitempty"`
	SourceRequestID string `json:"source_request_id,omitempty"`
}

type errorBody struct {
	Errors []apiError `json:"errors"`
}

// exchange is the state of one API request while it is handled.
type exchange struct {
	endpoint string
	feed     string
	status   int
	// batches is how many batches the request carried; recorded, duplicates and
	// failed split those of an accepted request.
	batches    int
	recorded   int
	events     int
	duplicates int
	failed     int
	// errors is the error body, if any.
	errors []apiError
	// reset: the connection was dropped instead of answered; hangUp: by the
	// emulator (a fault), which must still reset it, rather than by the client.
	reset, hangUp bool
}

func (x *exchange) fail(status int, code, message string) {
	x.status, x.errors = status, []apiError{{Code: code, Message: message}}
}

// respond sends the outcome of the exchange.
func (x *exchange) respond(w http.ResponseWriter) {
	switch {
	case x.hangUp:
		resetConnection(w)
	case x.reset:
	case x.errors != nil:
		writeErrors(w, x.status, x.errors)
	default:
		w.WriteHeader(x.status)
	}
}

// ServeHTTP serves the Events API paths and the /_emulator inspection paths.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var endpoint string
	switch r.URL.Path {
	case "/v2/events":
		endpoint = EndpointEvents
	case "/v2/bulkevents":
		endpoint = EndpointBulk
	case "/v2/bulkevents/historical":
		endpoint = EndpointHistorical
	default:
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			e.serveInspection(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", "No such endpoint.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Use POST.")
		return
	}
	start := time.Now()
	x := exchange{endpoint: endpoint}
	e.serveAPI(w, r, &x)
	// Counted and logged before answering: a client that reads Stats right after
	// its answer (or its reset) must find its request in them.
	e.account(&x)
	if e.logger != nil {
		status := strconv.Itoa(x.status)
		if x.reset {
			status = "reset"
		}
		e.logger.Info("request", "endpoint", x.endpoint, "feed", x.feed, "status", status,
			"batches", x.batches, "events", x.events, "duplicates", x.duplicates,
			"failed_batches", x.failed, "bytes", r.ContentLength, "duration", time.Since(start))
	}
	x.respond(w)
}

// serveAPI runs the checks of the package doc's response table in order and
// leaves the outcome in x; it sets response headers but writes nothing, so that
// the exchange is counted before the client can see its answer.
func (e *Emulator) serveAPI(w http.ResponseWriter, r *http.Request, x *exchange) {
	e.mu.Lock()
	latency := e.faults.Latency
	e.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			x.reset = true // the client went away; nothing to answer
			return
		}
	}

	key, secret, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="mParticle"`)
		x.fail(http.StatusUnauthorized, "UNAUTHORIZED", "Authentication required: HTTP Basic with the feed's key and secret.")
		return
	}
	auth, known := e.byKey[key]
	if !known || subtle.ConstantTimeCompare(auth.secret, []byte(secret)) != 1 {
		x.fail(http.StatusForbidden, "FORBIDDEN", "API key or secret is invalid.")
		return
	}
	feed := auth.feed
	x.feed = feed

	e.mu.Lock()
	now := e.now()
	reset := e.drawLocked(e.faults.ResetRate)
	forbidden := !reset && e.faults.forbids(feed, now)
	unavailable := !reset && !forbidden && e.drawLocked(e.faults.ServerErrorRate)
	e.mu.Unlock()
	switch {
	case reset:
		x.reset, x.hangUp = true, true
		return
	case forbidden:
		x.fail(http.StatusForbidden, "FORBIDDEN", "API key or secret is invalid or expired.")
		return
	case unavailable:
		x.fail(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Service unavailable, retry later.")
		return
	}

	if msg := checkContentHeaders(r.Header); msg != "" {
		x.fail(http.StatusBadRequest, "BAD_REQUEST", msg)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, validate.MaxRequestBytes))
	if err != nil {
		x.reset = true // the client broke the request off; nothing to answer
		return
	}
	if len(body) >= validate.MaxRequestBytes {
		size := "at least " + strconv.Itoa(len(body))
		if r.ContentLength > 0 {
			size = strconv.FormatInt(r.ContentLength, 10)
		}
		x.fail(http.StatusBadRequest, "BAD_REQUEST",
			fmt.Sprintf("Request is %s bytes; it must be smaller than %d bytes.", size, validate.MaxRequestBytes))
		return
	}

	batches, msg := splitBody(x.endpoint, body)
	if msg != "" {
		x.fail(http.StatusBadRequest, "BAD_REQUEST", msg)
		return
	}
	x.batches = len(batches)

	e.mu.Lock()
	admitted, wait := e.bucket.take(e.now(), len(batches))
	e.mu.Unlock()
	if !admitted {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(wait)))
		w.Header().Set("X-mp-rate-limit-exceeded", "workspace")
		x.fail(http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "Rate limit exceeded.")
		return
	}

	var verr error
	if x.endpoint == EndpointEvents {
		verr = validate.Batch(body)
	} else {
		verr = validate.BulkRequest(body)
	}
	if verr != nil {
		x.status, x.errors = http.StatusBadRequest, validationErrors(verr)
		return
	}
	heads, err := decodeHeads(batches)
	if err != nil { // validate accepted it, so this would be an emulator bug
		x.fail(http.StatusInternalServerError, "INTERNAL_ERROR", err.Error())
		return
	}
	if x.endpoint == EndpointHistorical {
		if errs := historicalErrors(heads, now); len(errs) > 0 {
			x.status, x.errors = http.StatusBadRequest, errs
			return
		}
	}

	failures, resetAfter, pct := e.accept(x, key, batches, heads)
	if resetAfter {
		x.reset, x.hangUp = true, true
		return
	}
	w.Header().Set("X-mp-rate-limit-percentage-used", strconv.Itoa(pct))
	x.status, x.errors = http.StatusAccepted, failures
}

// accept records the batches of an admitted, valid request: it draws per-batch
// failures (bulk endpoints), skips duplicates and appends the rest, all under one
// lock so concurrent retries of the same batch are deduplicated exactly.
func (e *Emulator) accept(x *exchange, key string, batches []json.RawMessage, heads []batchHead) (failures []apiError, resetAfter bool, pct int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, raw := range batches {
		h := heads[i]
		// A batch already taken is a duplicate before anything else: a
		// retry of a request whose answer was lost must not see a batch
		// that was recorded fail now (mParticle drops it silently).
		var sum uint64
		id := h.dedupKey()
		if id != "" {
			// A 64-bit hash of key and id: a false duplicate needs
			// billions of batches.
			var hh maphash.Hash
			hh.SetSeed(e.seed)
			hh.WriteString(key)
			hh.WriteByte(0)
			hh.WriteString(id)
			sum = hh.Sum64()
			if _, dup := e.seen[sum]; dup {
				x.duplicates++
				continue
			}
		}
		if x.endpoint != EndpointEvents && e.drawLocked(e.faults.BatchErrorRate) {
			idx := i
			failures = append(failures, apiError{
				Code:            "BATCH_FAILED",
				Message:         fmt.Sprintf("batch %d was not processed (emulated failure)", i),
				BatchIndex:      &idx,
				SourceRequestID: h.sourceRequestID(),
			})
			x.failed++
			continue
		}
		if id != "" {
			e.seen[sum] = struct{}{}
		}
		e.recordLocked(Record{Feed: x.feed, Endpoint: x.endpoint, Batch: raw, Received: e.now()})
		x.recorded++
		x.events += len(h.Events)
	}
	resetAfter = e.drawLocked(e.faults.ResetAfterAcceptRate)
	return failures, resetAfter, e.bucket.percentUsed()
}

// recordLocked keeps an accepted batch as KeepBatches says. A kept batch
// is copied out of its request body, so that a ring does not hold whole
// bodies alive.
func (e *Emulator) recordLocked(r Record) {
	switch {
	case e.keep < 0:
	case e.keep == 0:
		e.records = append(e.records, r)
	case len(e.records) < e.keep:
		r.Batch = append(json.RawMessage(nil), r.Batch...)
		e.records = append(e.records, r)
	default:
		r.Batch = append(json.RawMessage(nil), r.Batch...)
		e.records[e.next] = r
		e.next = (e.next + 1) % e.keep
	}
}

// account adds one finished exchange to the statistics.
func (e *Emulator) account(x *exchange) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.add(x)
	if x.feed == "" {
		return
	}
	f := e.stats.Feeds[x.feed]
	f.add(x)
	e.stats.Feeds[x.feed] = f
}

// checkContentHeaders returns a 400 message when the request is not plain JSON.
func checkContentHeaders(h http.Header) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return "Content-Type must be application/json."
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return "Content-Encoding " + strconv.Quote(ce) + " is not supported; send uncompressed JSON."
	}
	return ""
}

// splitBody parses the body into batches, returning a 400 message when it is not
// the JSON shape the endpoint takes.
func splitBody(endpoint string, body []byte) ([]json.RawMessage, string) {
	if endpoint == EndpointEvents {
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) {
			return nil, "Unable to parse JSON batch."
		}
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return nil, "Batch must be a JSON object."
		}
		return []json.RawMessage{trimmed}, ""
	}
	batches, err := validate.SplitBulk(body)
	switch {
	case errors.Is(err, validate.ErrNotArray):
		return nil, "Bulk request must be a JSON array of batches."
	case err != nil:
		return nil, "Unable to parse JSON bulk request."
	}
	return batches, ""
}

// batchHead is the part of a batch the emulator reads besides validation.
type batchHead struct {
	SourceRequestID json.RawMessage `json:"source_request_id"`
	Events          []struct {
		Data struct {
			Timestamp *json.Number `json:"timestamp_unixtime_ms"`
		} `json:"data"`
	} `json:"events"`
}

func decodeHeads(batches []json.RawMessage) ([]batchHead, error) {
	heads := make([]batchHead, len(batches))
	for i, raw := range batches {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&heads[i]); err != nil {
			return nil, fmt.Errorf("batch %d: %w", i, err)
		}
	}
	return heads, nil
}

// dedupKey is the batch's source_request_id as JSON text ("" when absent or
// null), so that "7" and 7 stay distinct as they are distinct JSON values.
func (h batchHead) dedupKey() string {
	s := string(bytes.TrimSpace(h.SourceRequestID))
	if s == "null" {
		return ""
	}
	return s
}

// sourceRequestID renders the id for error bodies: a string unquoted, anything
// else as its JSON text.
func (h batchHead) sourceRequestID() string {
	k := h.dedupKey()
	var s string
	if json.Unmarshal([]byte(k), &s) == nil {
		return s
	}
	return k
}

// historicalErrors applies the historical endpoint's rules to every event.
func historicalErrors(heads []batchHead, now time.Time) []apiError {
	var errs []apiError
	limit := now.Add(-HistoricalMinAge).UnixMilli()
	for i, h := range heads {
		for j, ev := range h.Events {
			path := fmt.Sprintf("[%d].events[%d].data.timestamp_unixtime_ms", i, j)
			ts := ev.Data.Timestamp
			if ts == nil {
				errs = append(errs, apiError{Code: "BAD_REQUEST",
					Message: path + `: Required event data field "timestamp_unixtime_ms" is missing or empty; historical data needs it.`})
				continue
			}
			ms, err := ts.Int64()
			if err != nil {
				f, _ := ts.Float64()
				ms = int64(f)
			}
			if ms > limit {
				errs = append(errs, apiError{Code: "BAD_REQUEST",
					Message: path + ": Historical events must be at least 72 hours old; send recent data to /v2/bulkevents."})
			}
		}
	}
	return errs
}

// validationErrors turns validation violations into error body entries.
func validationErrors(err error) []apiError {
	var verr *validate.Error
	if !errors.As(err, &verr) {
		return []apiError{{Code: "BAD_REQUEST", Message: err.Error()}}
	}
	errs := make([]apiError, 0, len(verr.Violations)+1)
	for _, v := range verr.Violations {
		errs = append(errs, apiError{Code: "BAD_REQUEST", Message: v.String()})
	}
	if verr.Omitted > 0 {
		errs = append(errs, apiError{Code: "BAD_REQUEST", Message: fmt.Sprintf("(%d more violations omitted)", verr.Omitted)})
	}
	return errs
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeErrors(w, status, []apiError{{Code: code, Message: message}})
}

func writeErrors(w http.ResponseWriter, status int, errs []apiError) {
	body, err := json.Marshal(errorBody{Errors: errs})
	if err != nil { // only strings and ints: cannot fail
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// resetConnection drops the client's connection without an HTTP answer, with a
// TCP RST where possible so the client sees "connection reset by peer".
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
