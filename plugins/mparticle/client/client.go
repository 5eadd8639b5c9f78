package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/currents-mparticle/currents-mparticle/internal/jsonstring"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
)

// Item is one mapped mParticle batch (the JSON of one user's batch, usually
// holding one event) and the feed whose credentials must carry it.
type Item struct {
	Feed  string
	Batch []byte
	// Key is the caller's name for the item (its event id), handed to
	// Config.BeforeSend; the client does not read it.
	Key string
}

// SentBatch is one packed batch about to be sent, for Config.BeforeSend, or
// accepted, for Config.Accepted (which gets no Body).
type SentBatch struct {
	// SourceRequestID is the batch's deterministic id: a batch of the same
	// events gets it again, and mParticle deduplicates on it.
	SourceRequestID string
	// Historical is true for the /bulkevents/historical endpoint.
	Historical bool
	// Body is the batch's JSON. It is only valid during the call.
	Body []byte
	// Keys are the Keys of the items packed into it.
	Keys []string
}

// Credentials are one feed input's server-to-server key and secret.
type Credentials struct {
	Key    string
	Secret string
}

// Limits bound what the packer puts into one batch and one bulk request.
// Zero fields take the defaults, which are mParticle's documented limits
// read conservatively (1 KB = 1000 bytes).
type Limits struct {
	// MaxEventsPerBatch defaults to 100.
	MaxEventsPerBatch int
	// MaxBatchBytes defaults to 128000.
	MaxBatchBytes int
	// MaxBatchesPerRequest defaults to 100.
	MaxBatchesPerRequest int
	// MaxRequestBytes is inclusive and defaults to 255999 (a request must
	// stay under 256 KB).
	MaxRequestBytes int
}

// Default limits.
const (
	DefaultMaxEventsPerBatch    = 100
	DefaultMaxBatchBytes        = 128000
	DefaultMaxBatchesPerRequest = 100
	DefaultMaxRequestBytes      = 256000 - 1
)

// Defaults of the Config durations and thresholds.
const (
	DefaultTimeout           = 30 * time.Second
	DefaultInitialInterval   = 500 * time.Millisecond
	DefaultMaxInterval       = 30 * time.Second
	DefaultAuthFailureWindow = 48 * time.Hour
	DefaultPaceThreshold     = 80.0
	DefaultPaceMaxDelay      = time.Second
	// MaxRetryAfter caps the wait a 429's Retry-After header asks for:
	// mParticle asks for seconds, a larger value is a fault, and the feed
	// must not stop for good on it.
	MaxRetryAfter = 5 * time.Minute
)

// Config configures a Client. Start from DefaultConfig, which sets every
// default: New refuses a zero duration or PaceThreshold rather than guess
// that zero meant the default, so that a config that says 0 is an error
// wherever it comes from (the mparticle output passes its fields as they
// are). Zero Limits take mParticle's.
type Config struct {
	// URL is the Events API base, up to and including /v2.
	URL string
	// Credentials maps a feed name (ios, android, web, unbound, or any
	// other name the caller uses) to its key and secret.
	Credentials map[string]Credentials
	// Environment, when set, replaces the environment of every batch
	// ("production" or "development").
	Environment string
	// Historical sends items whose events are all older than HistoricalAge
	// to /bulkevents/historical instead of /bulkevents.
	Historical bool
	// HistoricalAge is eventsapi.HistoricalAge by default and may not be
	// under eventsapi.HistoricalMinAge, which the historical endpoint
	// refuses. The client reads the age from the timestamps it sends rather
	// than trust the caller's decision, so that batches of any origin, and
	// packed batches of several, are routed alike.
	HistoricalAge time.Duration
	// Timeout bounds one HTTP attempt.
	Timeout time.Duration
	// InitialInterval and MaxInterval shape the exponential backoff (with
	// jitter) between retries; MaxInterval may not be under InitialInterval.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// MaxElapsedTime bounds how long one request retries 429, 5xx and
	// network errors; 0 retries until the context ends.
	MaxElapsedTime time.Duration
	// AuthFailureWindow is how long a feed answering 403 keeps being
	// retried, counted from the first 403 of the outage, before its items
	// fail with ReasonAuthWindowExpired.
	AuthFailureWindow time.Duration
	// PaceThreshold is the X-mp-rate-limit-percentage-used value above which
	// the feed slows down; PaceMaxDelay is the pause added at 100%. A
	// negative threshold turns pacing off.
	PaceThreshold float64
	PaceMaxDelay  time.Duration
	// RateLimit, when set, is called before every HTTP attempt and must
	// block until the attempt may go (a Benthos rate_limit resource).
	RateLimit func(context.Context) error
	// DryRun, when set, replaces the network: each request is written to it
	// as one JSON line (credentials redacted) and treated as accepted.
	DryRun io.Writer
	// HTTPClient defaults to a client of the package's own; its Timeout is
	// not used (Timeout above applies per attempt).
	HTTPClient *http.Client
	// Metrics and Logger default to no-ops.
	Metrics Metrics
	Logger  Logger
	// Limits default to mParticle's.
	Limits Limits
	// BeforeSend, when set, is called with the batches of a request before
	// it is first sent (not before retries, which send the same batches).
	// An error is logged and the request goes anyway. The ledger uses it
	// to remember what was under way when a process dies.
	BeforeSend func(ctx context.Context, feed string, batches []SentBatch) error
	// Accepted, when set, is called with the batches of feed that
	// mParticle accepted (their source_request_ids, and their Keys when
	// BeforeSend is set too), before the items they carry are settled. The
	// ledger uses it to record them as delivered at once. Neither hook is
	// called in dry-run mode, which delivers nothing.
	Accepted func(ctx context.Context, feed string, batches []SentBatch)
	// Now tells the age of events; defaults to time.Now. Tests set it to
	// make the historical split deterministic.
	Now func() time.Time
}

// DefaultConfig returns a Config with every default spelled out and
// Historical on; set URL and Credentials before use.
func DefaultConfig() Config {
	return Config{
		Historical:        true,
		HistoricalAge:     eventsapi.HistoricalAge,
		Timeout:           DefaultTimeout,
		InitialInterval:   DefaultInitialInterval,
		MaxInterval:       DefaultMaxInterval,
		AuthFailureWindow: DefaultAuthFailureWindow,
		PaceThreshold:     DefaultPaceThreshold,
		PaceMaxDelay:      DefaultPaceMaxDelay,
		Limits: Limits{
			MaxEventsPerBatch:    DefaultMaxEventsPerBatch,
			MaxBatchBytes:        DefaultMaxBatchBytes,
			MaxBatchesPerRequest: DefaultMaxBatchesPerRequest,
			MaxRequestBytes:      DefaultMaxRequestBytes,
		},
	}
}

// Client delivers mapped batches to the Events API. It is safe for
// concurrent use; per-feed state (throttling, 403 outages, pacing) is shared
// by all Send calls.
type Client struct {
	cfg         Config
	bulkURL     string
	histURL     string
	httpClient  *http.Client
	ownsHTTP    bool
	feeds       map[string]*feedState
	environment []byte // the JSON string to write, or nil
	metrics     Metrics
	log         Logger
	dry         *dryRun
	packers     sync.Pool
}

// New checks cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if err := fillDefaults(&cfg); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.URL, "/")
	c := &Client{
		cfg:        cfg,
		bulkURL:    base + "/bulkevents",
		histURL:    base + "/bulkevents/historical",
		httpClient: cfg.HTTPClient,
		feeds:      make(map[string]*feedState, len(cfg.Credentials)),
		metrics:    cfg.Metrics,
		log:        cfg.Logger,
	}
	if c.httpClient == nil {
		c.httpClient = newHTTPClient()
		c.ownsHTTP = true
	}
	for name, cred := range cfg.Credentials {
		c.feeds[name] = &feedState{
			name: name,
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.Key+":"+cred.Secret)),
		}
	}
	if cfg.Environment != "" {
		c.environment = jsonstring.Append(nil, cfg.Environment)
	}
	if cfg.DryRun != nil {
		c.dry = newDryRun(cfg.DryRun)
	}
	return c, nil
}

// ConfigError is a Config field New refuses. Field is the Go name of the
// field ("URL", "MaxInterval", "Limits.MaxBatchBytes"); for Credentials, Feed
// names the feed at fault ("" when the map itself is). Callers with config
// files of their own (the mparticle output) name their field from it.
type ConfigError struct {
	Field   string
	Feed    string
	Problem string
}

func (e *ConfigError) Error() string {
	name := e.Field
	if e.Feed != "" {
		name += "[" + strconv.Quote(e.Feed) + "]"
	}
	return "mparticle client: " + name + ": " + e.Problem
}

func configError(field, format string, args ...any) error {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// fillDefaults checks cfg and fills what may be left zero (Limits, the hooks,
// the clock). Problems never quote a credential.
func fillDefaults(cfg *Config) error {
	if cfg.URL == "" {
		return configError("URL", "is required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		return configError("URL", "%v", err)
	}
	if u.User != nil {
		return configError("URL", "must not carry credentials")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configError("URL", "%q: want http(s)://host/v2", u.Redacted())
	}
	if len(cfg.Credentials) == 0 {
		return configError("Credentials", "no feed has credentials")
	}
	for name, cred := range cfg.Credentials {
		if name == "" {
			return configError("Credentials", "a feed name is empty")
		}
		if cred.Key == "" || cred.Secret == "" {
			return &ConfigError{Field: "Credentials", Feed: name, Problem: "set both key and secret"}
		}
	}
	switch cfg.Environment {
	case "", "production", "development":
	default:
		return configError("Environment", "%q: want production or development", cfg.Environment)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", cfg.Timeout},
		{"InitialInterval", cfg.InitialInterval},
		{"MaxInterval", cfg.MaxInterval},
		{"AuthFailureWindow", cfg.AuthFailureWindow},
		{"PaceMaxDelay", cfg.PaceMaxDelay},
	} {
		if d.v <= 0 {
			return configError(d.name, "must be positive, got %v", d.v)
		}
	}
	if cfg.MaxElapsedTime < 0 {
		return configError("MaxElapsedTime", "must not be negative (0 retries until shutdown), got %v", cfg.MaxElapsedTime)
	}
	if cfg.MaxInterval < cfg.InitialInterval {
		return configError("MaxInterval", "%v is shorter than the initial interval (%v)", cfg.MaxInterval, cfg.InitialInterval)
	}
	if cfg.HistoricalAge < 0 || (cfg.Historical && cfg.HistoricalAge < eventsapi.HistoricalMinAge) {
		return configError("HistoricalAge", "%v: the historical endpoint refuses events younger than %v", cfg.HistoricalAge, eventsapi.HistoricalMinAge)
	}
	if cfg.PaceThreshold == 0 || cfg.PaceThreshold >= 100 {
		return configError("PaceThreshold", "must be between 0 and 100 (exclusive), or negative to turn pacing off; got %v", cfg.PaceThreshold)
	}
	l := &cfg.Limits
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxEventsPerBatch", &l.MaxEventsPerBatch, DefaultMaxEventsPerBatch},
		{"MaxBatchBytes", &l.MaxBatchBytes, DefaultMaxBatchBytes},
		{"MaxBatchesPerRequest", &l.MaxBatchesPerRequest, DefaultMaxBatchesPerRequest},
		{"MaxRequestBytes", &l.MaxRequestBytes, DefaultMaxRequestBytes},
	} {
		if *f.v < 0 {
			return configError("Limits."+f.name, "must not be negative")
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if l.MaxRequestBytes < l.MaxBatchBytes+2 {
		return configError("Limits.MaxRequestBytes", "must hold at least one full batch")
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NopMetrics{}
	}
	if cfg.Logger == nil {
		cfg.Logger = nopLogger{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return nil
}

// newHTTPClient keeps enough idle connections for several concurrent Send
// calls to one host; the default transport keeps only two per host.
func newHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: t}
}

// Close releases idle connections of the client's own HTTP client.
func (c *Client) Close() {
	if c.ownsHTTP {
		c.httpClient.CloseIdleConnections()
	}
}

// HasFeed reports whether credentials are configured for feed.
func (c *Client) HasFeed(feed string) bool {
	_, ok := c.feeds[feed]
	return ok
}

// DryRunSummary returns what a dry-run client has written so far, by feed;
// nil when the client is not in dry-run mode.
func (c *Client) DryRunSummary() map[string]DryRunCounts {
	if c.dry == nil {
		return nil
	}
	return c.dry.summary()
}

// Send delivers items and returns one error per item, in order: nil when
// mParticle accepted the item's batch, else a *DeliveryError. Items of the
// same feed, endpoint and envelope are packed into shared batches; each
// feed's requests go out in their own goroutine so that a throttled or
// failing feed does not hold the others back within the call.
func (c *Client) Send(ctx context.Context, items []Item) []error {
	return c.send(ctx, items, holdForbidden)
}

// What a request does when its feed answers 403 within the window.
const (
	holdForbidden      = true  // retry until the window ends (Client.Send)
	releaseOnForbidden = false // fail the items as ReasonFeedPaused (Queue)
)

func (c *Client) send(ctx context.Context, items []Item, hold bool) []error {
	errs := make([]error, len(items))
	if len(items) == 0 {
		return errs
	}
	p, _ := c.packers.Get().(*packer)
	if p == nil {
		p = &packer{}
	}
	defer func() {
		p.release()
		c.packers.Put(p)
	}()
	plans := p.pack(c, items, errs)

	if len(plans) == 1 {
		c.deliverFeed(ctx, plans[0], items, errs, hold)
		return errs
	}
	var wg sync.WaitGroup
	for _, plan := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.deliverFeed(ctx, plan, items, errs, hold)
		}()
	}
	wg.Wait()
	return errs
}
