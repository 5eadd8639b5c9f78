package mparticle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/currents-mparticle/currents-mparticle/internal/dryrun"
	"github.com/currents-mparticle/currents-mparticle/internal/linefile"
	"github.com/currents-mparticle/currents-mparticle/internal/lograte"
	"github.com/currents-mparticle/currents-mparticle/internal/redelivery"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/eventsapi"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/ledger"
)

// Field names of the mparticle output, shared by the spec and the parser.
const (
	mpOutputFieldURL               = "url"
	mpOutputFieldPod               = "pod"
	mpOutputFieldFeeds             = "feeds"
	mpOutputFieldFeedKey           = "key"
	mpOutputFieldFeedSecret        = "secret"
	mpOutputFieldFeed              = "feed"
	mpOutputFieldEnvironment       = "environment"
	mpOutputFieldBatching          = "batching"
	mpOutputFieldMaxInFlight       = "max_in_flight"
	mpOutputFieldRateLimit         = "rate_limit"
	mpOutputFieldBackoff           = "backoff"
	mpOutputFieldInitialInterval   = "initial_interval"
	mpOutputFieldMaxInterval       = "max_interval"
	mpOutputFieldMaxElapsedTime    = "max_elapsed_time"
	mpOutputFieldAuthFailureWindow = "auth_failure_window"
	mpOutputFieldHistorical        = "historical"
	mpOutputFieldFallbackFeed      = "fallback_feed"
	mpOutputFieldFeedsAll          = "all"
	mpOutputFieldDryRun            = "dry_run"
	mpOutputFieldDryRunPath        = "dry_run_path"
	mpOutputFieldTimeout           = "timeout"
	mpOutputFieldPaceThreshold     = "pace_threshold"
	mpOutputFieldSendersPerFeed    = "senders_per_feed"
	mpOutputFieldGroupWindow       = "group_window"
	mpOutputFieldLedger            = "ledger"
	mpOutputFieldLedgerCache       = "cache"
	mpOutputFieldLedgerKey         = "key"
	mpOutputFieldLedgerPrefix      = "prefix"
	mpOutputFieldLedgerRetention   = "retention"
	mpOutputFieldLedgerTimeout     = "timeout"
)

// mpOutputFeedList lists the feeds for the docs: "`ios`, `android`, `web` or `unbound`".
var mpOutputFeedList = func() string {
	feeds := eventsapi.Feeds()
	for i, f := range feeds {
		feeds[i] = "`" + f + "`"
	}
	return strings.Join(feeds[:len(feeds)-1], ", ") + " or " + feeds[len(feeds)-1]
}()

// mpOutputPods maps a data pod to its Events API base URL.
var mpOutputPods = map[string]string{
	"us1": "https://s2s.us1.mparticle.com/v2",
	"us2": "https://s2s.us2.mparticle.com/v2",
	"eu1": "https://s2s.eu1.mparticle.com/v2",
	"au1": "https://s2s.au1.mparticle.com/v2",
}

// mpOutputPodNames are the keys of mpOutputPods in the order the docs and
// errors give them.
var mpOutputPodNames = []string{"us1", "us2", "eu1", "au1"}

// mpOutputPodLint is the lint rule's list of pods, as a Bloblang array.
var mpOutputPodLint = `["` + strings.Join(mpOutputPodNames, `", "`) + `"]`

// mpOutputDefaultMaxInFlight is how many input transactions the output holds
// at once by default: enough for the senders of each feed to pack many
// transactions' events into shared requests, and for a paused feed not to
// stop the others at once (see "Feeds" in the spec).
const mpOutputDefaultMaxInFlight = 64

// mpOutputCredentialFields are the key and secret of one feed, or of all.
// Both empty leaves the feed unconfigured, so that a config can name every
// feed with optional environment variables (${MPARTICLE_IOS_KEY:}).
func mpOutputCredentialFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(mpOutputFieldFeedKey).
			Description("The server-to-server key of the feed input. Empty together with `secret`: not configured.").
			Default("").
			Secret(),
		service.NewStringField(mpOutputFieldFeedSecret).
			Description("The server-to-server secret of the feed input. Empty together with `key`: not configured.").
			Default("").
			Secret(),
	}
}

func mpOutputSpec() *service.ConfigSpec {
	feedFields := make([]*service.ConfigField, 0, len(eventsapi.Feeds())+1)
	for _, feed := range eventsapi.Feeds() {
		feedFields = append(feedFields, service.NewObjectField(feed, mpOutputCredentialFields()...).
			Description(fmt.Sprintf("Credentials of the %s feed input.", feed)).Optional())
	}
	feedFields = append(feedFields, service.NewObjectField(mpOutputFieldFeedsAll, mpOutputCredentialFields()...).
		Description("One credential pair for every feed without credentials of its own: events keep their feed (`act as platform` on one feed input in mParticle), all signed with this key.").
		Optional())

	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Version("0.1.0").
		Summary("Sends mParticle batches to the mParticle server-to-server Events API, packed into bulk requests, with per-feed retries.").
		Description(`
Each message must be one mParticle batch (the JSON of one user's batch, as written by the
`+"`currents_to_mparticle`"+` processor) and carries the feed input it belongs to in the
`+"`feed`"+` field (by default the `+"`mparticle_feed`"+` metadata the processor sets).

### Packing

Each write carries one input transaction (an input batch) and is never merged with another by
Benthos: the output gathers the messages of all the writes in flight (`+"`max_in_flight`"+`) itself.
Each feed has its own senders (`+"`senders_per_feed`"+`); a sender takes every message pending for
its feed, from any write, so messages pile up and share requests while earlier requests are under
way, without a timer. Messages of the same feed, endpoint and envelope (every top-level field except
`+"`events`"+` and `+"`source_request_id`"+`, i.e. the same user) are merged into one batch of at
most 100 events and 128 KB; batches are sent in `+"`/bulkevents`"+` requests of at most 100 batches
and under 256 KB. mParticle limits throughput in batches per second (about 270 by default), so
packing raises events per second. Each packed batch gets a deterministic `+"`source_request_id`"+`
(a UUIDv5 of its sorted event `+"`source_message_id`"+`s): mParticle deduplicates a batch that
is retried or replayed. With `+"`historical`"+`, batches whose events are all older than 30 days
go to `+"`/bulkevents/historical`"+`.

### Responses

| status | what the output does |
|---|---|
| 202 | delivered; batches listed as failed in the body fail with reason `+"`rejected`"+` |
| 400 | the request is split in halves until the bad batches stand alone; only they fail (`+"`bad_request`"+`) |
| 401 | fails the messages (`+"`auth_failed`"+`): a configuration error |
| 403 | pauses that feed only: its messages fail at once as `+"`feed_paused`"+` (temporary: the input sends them again later) while one request now and then, with backoff, probes the credentials; once `+"`auth_failure_window`"+` has passed since the first 403 of the outage, they fail as `+"`auth_window_expired`"+` |
| 429 | waits `+"`Retry-After`"+` (at most 5 minutes, whatever the header says; else backoff) and retries; `+"`X-mp-rate-limit-percentage-used`"+` above `+"`pace_threshold`"+` slows the feed down before 429s happen |
| 5xx, network errors | retries with exponential backoff and jitter, up to `+"`backoff.max_elapsed_time`"+` (0: until shutdown) |

### Failed messages

Messages that cannot be delivered are reported to Benthos individually, so a
[`+"`fallback`"+`](/docs/components/outputs/fallback) output routes exactly those to a
dead-letter output, each with its own error (in `+"`@fallback_error`"+`), which starts with
`+"`mparticle <reason>`"+`, where reason is one of `+"`invalid_batch`"+`,
`+"`upstream_error`"+` (the message arrived flagged with an error by an earlier processor; it
is not sent), `+"`feed_not_configured`"+` (its feed has no credentials and no `+"`fallback_feed`"+` is set), `+"`too_large`"+`, `+"`bad_request`"+`, `+"`rejected`"+`,
`+"`auth_failed`"+`, `+"`auth_window_expired`"+`, `+"`unexpected_status`"+`, `+"`dry_run_write`"+` (permanent;
the last: the dry-run file could not be written, as on a full disk) or
`+"`feed_paused`"+`, `+"`retries_exhausted`"+`, `+"`context`"+` (temporary: the
feed's credentials are refused for now, the retry budget ran out, or Benthos is shutting down). A dead letter should send `+"`feed_paused`"+` messages back
rather than keep them (see the Dead-lettering example): the `+"`braze_currents`"+` input then reads
those events, and only those, again later. Without a fallback, Benthos nacks failed messages and the input delivers them
again. To keep temporary failures out of a dead-letter output, leave
`+"`backoff.max_elapsed_time`"+` at 0.

Benthos's own output `+"`batching`"+` would merge several input transactions into one write and
then fail a whole transaction when any one of its messages fails, so that delivered messages would
reach the dead letter under another message's error (and a `+"`count`"+` without a `+"`period`"+`
would hold the last messages of a one-pass run for ever). The output therefore refuses any
`+"`batching`"+` but the default (off) and packs across writes itself (see Packing): dead letters
hold exactly the messages that failed, and replaying them delivers nothing twice.

### Feeds

Each feed has its own senders, so a feed that is throttled (429) or failing (5xx) holds only its
own messages: its senders wait and retry, the other feeds' senders go on. A write waits for its own
messages only. A feed whose credentials are refused (403) is paused: one request now and then
probes whether they work again. What becomes of its messages meanwhile depends on the input:

- from the `+"`braze_currents`"+` input, they fail at once as `+"`feed_paused`"+` and go back to the
  input, so writes holding them return at once and the other feeds flow at full speed for as long
  as the outage lasts, whatever `+"`max_in_flight`"+` is; the input keeps reading and re-reads an
  object later for its undelivered events only (nothing is sent twice);
- from any other input (`+"`file`"+`, `+"`aws_s3`"+`, ... with the `+"`braze_currents`"+` scanner), the write
  holds them until the feed is back (or `+"`auth_failure_window`"+` ends and they fail as
  `+"`auth_window_expired`"+`): handed back, they would wait in the input's memory, and a one-pass
  run could end without them. The other feeds' messages of those writes are delivered, but once
  `+"`max_in_flight`"+` writes hold a paused feed's messages, reading stops until it is back.

### Dry run

With `+"`dry_run`"+` nothing is sent: each request is written to `+"`dry_run_path`"+` as one JSON line
`+"`{\"method\":\"POST\",\"url\":...,\"feed\":...,\"headers\":{...},\"body\":[...]}`"+` with the
Authorization header redacted, treated as accepted, and a summary per feed is logged on close.
A dry run leaves no trace that the real run after it would read: the `+"`braze_currents`"+` input of the
same process writes no checkpoint and no quarantine record (the real run reads every object),
and the `+"`ledger`"+` is neither read nor written. Start with a dry run, then run the same config
without `+"`dry_run`"+`, on the same checkpoint cache. What fails for good in a dry run (a batch over
the limits, a feed without credentials, a dry-run file that cannot be written) still reaches a
`+"`fallback`"+` dead letter: give a dry run a dead-letter folder of its own (`+"`DEAD_LETTER_DIR`"+` in the
shipped configs), or its lines would be replayed with the real run's.

### Metrics

- `+"`mparticle_requests`"+` (labels `+"`feed`"+`, `+"`status`"+`; status 0 when no response came)
- `+"`mparticle_batches_accepted`"+`, `+"`mparticle_events_accepted`"+` (label `+"`feed`"+`)
- `+"`mparticle_batch_events`"+` (gauge, label `+"`feed`"+`): events in the latest accepted batch
- `+"`mparticle_retries`"+` (labels `+"`feed`"+`, `+"`cause`"+`: throttled, server_error, network, forbidden, rate_limit)
- `+"`mparticle_throttled_seconds`"+` (label `+"`feed`"+`)
- `+"`mparticle_events_failed`"+` (labels `+"`feed`"+`, `+"`reason`"+`)
- `+"`mparticle_events_duplicate`"+` (label `+"`feed`"+`): events the `+"`ledger`"+` skipped as already delivered
- `+"`mparticle_ledger_errors`"+` (label `+"`op`"+`: get, set): ledger cache calls that failed or timed out
- `+"`mparticle_request_latency_ns`"+` (timer, labels `+"`feed`"+`, `+"`status`"+`): how long each HTTP attempt took, status 0 when no response came (Prometheus: a summary in nanoseconds, or with `+"`use_histogram_timing: true`"+` a histogram in seconds)

### Traces

Under Benthos's `+"`tracer`"+` (e.g. `+"`open_telemetry_collector`"+`, OTLP) every HTTP attempt is a client span `+"`mparticle.request`"+` (a request packs the events of several writes, so it starts a trace of its own), with the attributes `+"`mparticle.feed`"+`, `+"`mparticle.endpoint`"+`, `+"`mparticle.batches`"+`, `+"`mparticle.events`"+`, `+"`mparticle.attempt`"+`, `+"`mparticle.retry`"+` and `+"`http.response.status_code`"+` (0 when no response came); a transport error or a status of 400 and above marks the span as an error.

Logs never contain credentials nor batch content.`).
		Fields(
			service.NewStringField(mpOutputFieldURL).
				Description("The Events API base URL, up to and including `/v2`. Set either this or `pod` (an empty value counts as not set, so a config can read both from optional environment variables).").
				Example("https://s2s.eu1.mparticle.com/v2").
				Optional(),
			service.NewStringField(mpOutputFieldPod).
				Description("The mParticle data pod of the workspace, which selects the documented Events API host: `us1`, `us2`, `eu1` or `au1`. Set either this or `url` (empty counts as not set); a workspace on one pod cannot be reached through another.").
				Example("eu1").
				Optional(),
			service.NewObjectField(mpOutputFieldFeeds, feedFields...).
				Description("Server-to-server credentials per feed input. Each feed input of mParticle's Braze integration has its own key and secret; configure those you use (at least one), or one pair for all under `all`. A feed without credentials is not an error: its messages go to `fallback_feed`, or fail as `feed_not_configured`."),
			service.NewInterpolatedStringField(mpOutputFieldFeed).
				Description("The feed of a message: "+mpOutputFeedList+".").
				Default("${! @mparticle_feed }").
				Example("unbound"),
			service.NewStringEnumField(mpOutputFieldEnvironment, "production", "development").
				Description("Replaces the `environment` of every batch. By default batches keep their own.").
				Optional(),
			service.NewBatchPolicyField(mpOutputFieldBatching).
				Description("Must stay off (the default): the output packs the messages of all writes in flight itself, and Benthos's batching would make dead letters inexact (see Failed messages). Any other value is refused.").
				Advanced(),
			service.NewOutputMaxInFlightField().
				Description("How many writes (input batches) the output holds at once. More writes in flight means more messages to pack into shared requests, and more room for the other feeds while one feed is paused; the memory held is about this many input batches.").
				Default(mpOutputDefaultMaxInFlight),
			service.NewDurationField(mpOutputFieldGroupWindow).
				Description("How long a feed's messages gather before they are packed, unless a full take (16 requests) is already waiting: one user's events that reach the output within the window, from different writes (Currents writes one file per event type), share one batch, so more events go through mParticle's batches-per-second limit. The writes waiting hold their input batches, so the window is bounded in time by this and in events by `max_in_flight` input batches. `0s` packs what is pending at once.").
				Default("500ms").
				Example("2s"),
			service.NewIntField(mpOutputFieldSendersPerFeed).
				Description("How many requests of one feed may be under way at once. Each feed has its own senders, so a paused or throttled feed never takes another feed's.").
				Default(client.DefaultSendersPerFeed).
				Advanced(),
			service.NewStringField(mpOutputFieldRateLimit).
				Description("The name of a [`rate_limit`](/docs/components/rate_limits/about) resource consulted before every request.").
				Optional().
				Advanced(),
			service.NewObjectField(mpOutputFieldBackoff,
				service.NewDurationField(mpOutputFieldInitialInterval).
					Description("The first wait between retries of a request.").
					Default("500ms").Example("100ms").Example("1s"),
				service.NewDurationField(mpOutputFieldMaxInterval).
					Description("The longest wait between retries of a request.").
					Default("30s").Example("10s").Example("1m"),
				service.NewDurationField(mpOutputFieldMaxElapsedTime).
					Description("How long a request retries 429, 5xx and network errors before its messages fail as `retries_exhausted`. `0s` retries until shutdown.").
					Default("0s").Example("10m").Example("1h"),
			).Description("Exponential backoff (with jitter) between retries of a request.").Advanced(),
			service.NewDurationField(mpOutputFieldAuthFailureWindow).
				Description("How long a feed answering 403 keeps being retried, from the first 403 of the outage, before its messages fail as `auth_window_expired`.").
				Default("48h").Example("1h"),
			service.NewBoolField(mpOutputFieldHistorical).
				Description("Send batches whose events are all older than 30 days to `/bulkevents/historical`.").
				Default(true),
			service.NewStringField(mpOutputFieldFallbackFeed).
				Description("The feed ("+mpOutputFeedList+") that carries messages whose own feed has no credentials, as Braze's workspace-level credentials send everything to one feed; it must have credentials. Not set or empty: such messages fail as `feed_not_configured` (permanent, for the dead letter) and are counted.").
				Example("unbound").
				Optional(),
			service.NewBoolField(mpOutputFieldDryRun).
				Description("Write the requests instead of sending them.").
				Default(false),
			service.NewStringField(mpOutputFieldDryRunPath).
				Description("Where `dry_run` writes: a file path or `stdout`. The file starts empty on each run, so it always holds one run's requests.").
				Default("stdout").
				Example("./mparticle-requests.jsonl"),
			service.NewDurationField(mpOutputFieldTimeout).
				Description("The timeout of one HTTP request.").
				Default("30s"),
			service.NewFloatField(mpOutputFieldPaceThreshold).
				Description("The `X-mp-rate-limit-percentage-used` value (above 0, below 100) over which a feed slows down, pausing up to 1s at 100%. A negative value turns pacing off.").
				Default(client.DefaultPaceThreshold).
				Advanced(),
			service.NewObjectField(mpOutputFieldLedger,
				service.NewStringField(mpOutputFieldLedgerCache).
					Description("The name of a cache resource recording the ids of the events mParticle accepted. Empty: no ledger. Use Redis (or another shared cache) when several instances share an export, so that an event one instance delivered is skipped by the others.").
					Default("").
					Example("delivered"),
				service.NewInterpolatedStringField(mpOutputFieldLedgerKey).
					Description("The id of a message's event. Messages whose id is empty are sent without the ledger.").
					Default("${! @mparticle_event_id }"),
				service.NewStringField(mpOutputFieldLedgerPrefix).
					Description("Put before each id to make its cache key; give each workspace sharing a cache its own.").
					Default("mparticle_delivered_"),
				service.NewDurationField(mpOutputFieldLedgerRetention).
					Description("How long an id is remembered: longer than Braze's window for writing an event twice and than the re-reads a crash causes. The cache holds about 100 bytes per event for this long.").
					Default(ledger.DefaultRetention.String()),
				service.NewDurationField(mpOutputFieldLedgerTimeout).
					Description("The longest wait for one cache call; past it the event is sent anyway (and counted in `mparticle_ledger_errors`), so a slow or failing cache never stops delivery.").
					Default(ledger.DefaultTimeout.String()),
			).
				Description("A delivered-once ledger. Before sending, events whose id mParticle already accepted (after a crash, a replay, or a Braze duplicate: the same event `id` in two files) are skipped and counted (`mparticle_events_duplicate`); an event counts as delivered only once mParticle accepted its batch, so a failed send never loses an event. Before a batch is sent, it is recorded whole, and each of its events as under way in it; once mParticle accepted it, one write marks the batch delivered, and with it every event under way in it. After a crash, an event found under way in a batch not marked makes the output send that very batch again (mParticle drops it if it had arrived, by its source_request_id) instead of a new batch, which mParticle could not recognise. Within one process, an event that another write is sending is waited for rather than sent twice. The cache holds a key per event (about 100 bytes) and one per batch of several events; a batch's record, kept while it is under way (in the event's own key when the batch holds one event), shrinks to one byte once mParticle accepted it. In dry-run mode nothing is recorded.").
				Advanced(),
		).
		// The constructor refuses these too; lint rules make `lint` say so
		// before a run does.
		LintRule(`let url = this.url.or("").trim()
let pod = this.pod.or("").trim()
let both = if $url != "" && $pod != "" { [ "set either url or pod, not both" ] } else if $url == "" && $pod == "" { [ "set url or pod (`+strings.Join(mpOutputPodNames, ", ")+`): where the workspace lives" ] } else { [] }
let badpod = if $pod != "" && !`+mpOutputPodLint+`.contains($pod) { [ "pod %q: want one of `+strings.Join(mpOutputPodNames, ", ")+`".format($pod) ] } else { [] }
let batching = if this.batching.count.or(0) > 0 || this.batching.byte_size.or(0) > 0 || this.batching.period.or("") != "" || this.batching.check.or("") != "" { [ "batching must stay off: the output packs the messages of all writes in flight itself, and Benthos batching would merge input transactions, so dead letters could not be exact" ] } else { [] }
root = $both.concat($badpod, $batching)`).
		Example("Dead-lettering", "Sends to the EU1 pod and writes what mParticle refuses for good to a file, one JSON line per event with its reason. Events of a feed whose credentials are refused for now are sent back to the input instead, to be sent again later.", `
output:
  fallback:
    - mparticle:
        pod: eu1
        feeds:
          unbound:
            key: ${MPARTICLE_UNBOUND_KEY}
            secret: ${MPARTICLE_UNBOUND_SECRET}
          ios:
            key: ${MPARTICLE_IOS_KEY}
            secret: ${MPARTICLE_IOS_SECRET}
    - switch:
        cases:
          - check: '@fallback_error.has_prefix("mparticle feed_paused")'
            output:
              reject: '${! @fallback_error }'
          - output:
              dead_letter_file:
                path: ./dead-letter.jsonl
              processors:
                - mapping: |
                    root.reason = @fallback_error
                    root.feed = @mparticle_feed
                    root.event_id = @mparticle_event_id
                    root.batch = this
`).
		Example("Dry run", "Writes the requests it would send to a file.", `
output:
  mparticle:
    url: https://s2s.us1.mparticle.com/v2
    feeds:
      unbound:
        key: example-key
        secret: example-secret
    dry_run: true
    dry_run_path: ./requests.jsonl
`)
}

func init() {
	err := service.RegisterBatchOutput("mparticle", mpOutputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (out service.BatchOutput, policy service.BatchPolicy, maxInFlight int, err error) {
			if maxInFlight, err = conf.FieldMaxInFlight(); err != nil {
				return
			}
			if policy, err = conf.FieldBatchPolicy(mpOutputFieldBatching); err != nil {
				return
			}
			if !mpOutputBatchingOff(policy) {
				err = fmt.Errorf("%s: Benthos batching would merge input transactions and fail a whole transaction when one of its messages fails, so dead letters could not be exact; remove it (the output packs the messages of all %s writes itself)", mpOutputFieldBatching, "max_in_flight")
				return
			}
			out, err = mpOutputFromParsed(conf, mgr, maxInFlight)
			return
		})
	if err != nil {
		panic(err)
	}
}

// mpOutputBatchingOff reports whether a batch policy leaves each write to one
// input transaction.
func mpOutputBatchingOff(p service.BatchPolicy) bool {
	return p.Count == 0 && p.ByteSize == 0 && p.Period == "" && p.Check == ""
}

// mpOutputConfig is the parsed configuration of the mparticle output.
type mpOutputConfig struct {
	client       client.Config
	queue        client.QueueConfig
	feed         messageField
	fallbackFeed string // "" when not set
	rateLimit    string
	dryRun       bool
	dryRunPath   string
	ledger       ledger.Config // Store nil: no ledger
	ledgerCache  string
	ledgerKey    messageField
	// credentialFields names the field each feed's credentials came from
	// (feeds.ios, or feeds.all), for client.New's errors.
	credentialFields map[string]string
}

// mpOutputClientFields are the output fields of the client.Config and
// client.QueueConfig fields, by Go name, for their constructors' errors.
var mpOutputClientFields = map[string]string{
	"URL":               mpOutputFieldURL,
	"Credentials":       mpOutputFieldFeeds,
	"Environment":       mpOutputFieldEnvironment,
	"Timeout":           mpOutputFieldTimeout,
	"InitialInterval":   mpOutputFieldBackoff + "." + mpOutputFieldInitialInterval,
	"MaxInterval":       mpOutputFieldBackoff + "." + mpOutputFieldMaxInterval,
	"MaxElapsedTime":    mpOutputFieldBackoff + "." + mpOutputFieldMaxElapsedTime,
	"AuthFailureWindow": mpOutputFieldAuthFailureWindow,
	"Historical":        mpOutputFieldHistorical,
	"PaceThreshold":     mpOutputFieldPaceThreshold,
	"SendersPerFeed":    mpOutputFieldSendersPerFeed,
	"GroupWindow":       mpOutputFieldGroupWindow,
}

// clientError restates an error of client.New or client.NewQueue under the
// name of the output field at fault. The client is the one place that
// checks its config; the output only translates the names.
func (c *mpOutputConfig) clientError(err error) error {
	var ce *client.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	field, ok := mpOutputClientFields[ce.Field]
	if !ok {
		return err
	}
	switch {
	case ce.Field == "Credentials" && ce.Feed != "":
		if f, ok := c.credentialFields[ce.Feed]; ok {
			field = f
		}
		return fmt.Errorf("%s: %s, or neither to leave the feed unconfigured", field, ce.Problem)
	case ce.Field == "Credentials":
		return fmt.Errorf("%s: %s: set the key and secret of at least one feed (%s), or %s.%s for every feed",
			field, ce.Problem, strings.Join(eventsapi.Feeds(), ", "), mpOutputFieldFeeds, mpOutputFieldFeedsAll)
	}
	return fmt.Errorf("%s: %s", field, ce.Problem)
}

// mpOutputConfigFromParsed reads and checks the fields of the output.
func mpOutputConfigFromParsed(conf *service.ParsedConfig) (*mpOutputConfig, error) {
	c := &mpOutputConfig{client: client.DefaultConfig()}
	var err error

	optional := func(field string) (string, error) {
		if !conf.Contains(field) {
			return "", nil
		}
		v, err := conf.FieldString(field)
		return strings.TrimSpace(v), err
	}
	rawURL, err := optional(mpOutputFieldURL)
	if err != nil {
		return nil, err
	}
	pod, err := optional(mpOutputFieldPod)
	if err != nil {
		return nil, err
	}
	switch {
	case rawURL != "" && pod != "":
		return nil, fmt.Errorf("set either %s or %s, not both", mpOutputFieldURL, mpOutputFieldPod)
	case rawURL != "":
		// Checked by client.New, like every client field.
		c.client.URL = rawURL
	case pod != "":
		base, ok := mpOutputPods[pod]
		if !ok {
			return nil, fmt.Errorf("%s %q: want one of %s", mpOutputFieldPod, pod, strings.Join(mpOutputPodNames, ", "))
		}
		c.client.URL = base
	default:
		return nil, fmt.Errorf("set %s or %s", mpOutputFieldURL, mpOutputFieldPod)
	}

	// credentials reads one key and secret pair; both empty is "not
	// configured". One without the other is passed on for client.New to
	// refuse, under the name of the field it came from (credentialFields).
	credentials := func(path ...string) (client.Credentials, bool, error) {
		var cred client.Credentials
		if !conf.Contains(path...) {
			return cred, false, nil
		}
		var err error
		if cred.Key, err = conf.FieldString(append(path, mpOutputFieldFeedKey)...); err != nil {
			return cred, false, err
		}
		if cred.Secret, err = conf.FieldString(append(path, mpOutputFieldFeedSecret)...); err != nil {
			return cred, false, err
		}
		cred.Key, cred.Secret = strings.TrimSpace(cred.Key), strings.TrimSpace(cred.Secret)
		return cred, cred.Key != "" || cred.Secret != "", nil
	}
	all, hasAll, err := credentials(mpOutputFieldFeeds, mpOutputFieldFeedsAll)
	if err != nil {
		return nil, err
	}
	c.client.Credentials = map[string]client.Credentials{}
	c.credentialFields = map[string]string{}
	for _, feed := range eventsapi.Feeds() {
		cred, ok, err := credentials(mpOutputFieldFeeds, feed)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			c.client.Credentials[feed] = cred
			c.credentialFields[feed] = mpOutputFieldFeeds + "." + feed
		case hasAll:
			c.client.Credentials[feed] = all
			c.credentialFields[feed] = mpOutputFieldFeeds + "." + mpOutputFieldFeedsAll
		}
	}

	if c.feed, err = newMessageField(conf, mpOutputFieldFeed); err != nil {
		return nil, err
	}
	if conf.Contains(mpOutputFieldEnvironment) {
		if c.client.Environment, err = conf.FieldString(mpOutputFieldEnvironment); err != nil {
			return nil, err
		}
	}
	if conf.Contains(mpOutputFieldRateLimit) {
		if c.rateLimit, err = conf.FieldString(mpOutputFieldRateLimit); err != nil {
			return nil, err
		}
	}
	// The client's fields are read as they are: client.New checks them
	// (mpOutputFromParsed names the field of its error).
	for _, d := range []struct {
		path []string
		dst  *time.Duration
	}{
		{[]string{mpOutputFieldBackoff, mpOutputFieldInitialInterval}, &c.client.InitialInterval},
		{[]string{mpOutputFieldBackoff, mpOutputFieldMaxInterval}, &c.client.MaxInterval},
		{[]string{mpOutputFieldBackoff, mpOutputFieldMaxElapsedTime}, &c.client.MaxElapsedTime},
		{[]string{mpOutputFieldAuthFailureWindow}, &c.client.AuthFailureWindow},
		{[]string{mpOutputFieldTimeout}, &c.client.Timeout},
		{[]string{mpOutputFieldGroupWindow}, &c.queue.GroupWindow},
	} {
		if *d.dst, err = conf.FieldDuration(d.path...); err != nil {
			return nil, err
		}
	}
	if c.client.Historical, err = conf.FieldBool(mpOutputFieldHistorical); err != nil {
		return nil, err
	}
	if c.client.PaceThreshold, err = conf.FieldFloat(mpOutputFieldPaceThreshold); err != nil {
		return nil, err
	}
	if c.queue.SendersPerFeed, err = conf.FieldInt(mpOutputFieldSendersPerFeed); err != nil {
		return nil, err
	}
	if c.fallbackFeed, err = optional(mpOutputFieldFallbackFeed); err != nil {
		return nil, err
	}
	if c.fallbackFeed != "" {
		if !eventsapi.IsFeed(c.fallbackFeed) {
			return nil, fmt.Errorf("%s %q: want one of %s", mpOutputFieldFallbackFeed, c.fallbackFeed, strings.Join(eventsapi.Feeds(), ", "))
		}
		if _, ok := c.client.Credentials[c.fallbackFeed]; !ok {
			return nil, fmt.Errorf("%s: feed %q has no credentials in %s", mpOutputFieldFallbackFeed, c.fallbackFeed, mpOutputFieldFeeds)
		}
	}
	if c.ledgerCache, err = conf.FieldString(mpOutputFieldLedger, mpOutputFieldLedgerCache); err != nil {
		return nil, err
	}
	if c.ledgerKey, err = newMessageField(conf, mpOutputFieldLedger, mpOutputFieldLedgerKey); err != nil {
		return nil, err
	}
	if c.ledger.Prefix, err = conf.FieldString(mpOutputFieldLedger, mpOutputFieldLedgerPrefix); err != nil {
		return nil, err
	}
	if c.ledger.Retention, err = conf.FieldDuration(mpOutputFieldLedger, mpOutputFieldLedgerRetention); err != nil {
		return nil, err
	}
	if c.ledger.Timeout, err = conf.FieldDuration(mpOutputFieldLedger, mpOutputFieldLedgerTimeout); err != nil {
		return nil, err
	}
	if c.ledger.Retention <= 0 || c.ledger.Timeout <= 0 {
		return nil, fmt.Errorf("%s: %s and %s must be positive", mpOutputFieldLedger, mpOutputFieldLedgerRetention, mpOutputFieldLedgerTimeout)
	}
	if c.dryRun, err = conf.FieldBool(mpOutputFieldDryRun); err != nil {
		return nil, err
	}
	if c.dryRunPath, err = conf.FieldString(mpOutputFieldDryRunPath); err != nil {
		return nil, err
	}
	if c.dryRun && c.dryRunPath == "" {
		return nil, fmt.Errorf("%s is empty", mpOutputFieldDryRunPath)
	}
	return c, nil
}

// mpOutput is the mparticle batch output: a thin adapter from Benthos
// batches to client.Send.
type mpOutput struct {
	conf    *mpOutputConfig
	mgr     *service.Resources
	log     *service.Logger
	metrics *mpOutputMetrics
	client  *client.Client
	queue   *client.Queue
	ledger  *ledger.Ledger      // nil without a ledger cache
	dry     *mpOutputDryRunSink // nil unless dry_run

	notDelivered *lograte.Tally // the WARN lines of events not delivered
}

// mpOutputFromParsed builds the output from its parsed configuration.
func mpOutputFromParsed(conf *service.ParsedConfig, mgr *service.Resources, maxInFlight int) (*mpOutput, error) {
	c, err := mpOutputConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	// When every write in flight waits, nothing can join a group window.
	c.queue.MaxCallers = maxInFlight
	if c.rateLimit != "" && !mgr.HasRateLimit(c.rateLimit) {
		return nil, fmt.Errorf("%s: rate limit resource %q was not found", mpOutputFieldRateLimit, c.rateLimit)
	}
	o := &mpOutput{conf: c, mgr: mgr, log: mgr.Logger(), notDelivered: &lograte.Tally{Every: mpOutputLogEvery}}
	o.metrics = newMPOutputMetrics(mgr.Metrics(), mgr.OtelTracer())
	c.client.Metrics = o.metrics
	c.client.Logger = o.log
	if c.rateLimit != "" {
		c.client.RateLimit = o.waitForRateLimit
	}
	if c.dryRun {
		o.dry = &mpOutputDryRunSink{}
		c.client.DryRun = o.dry
		// A dry run leaves no trace a real run would read: the input
		// records no checkpoint, and the ledger is not used.
		dryrun.Declare()
		if c.ledgerCache != "" {
			o.log.Infof("mparticle dry run: the %s is neither read nor written", mpOutputFieldLedger)
		}
	}
	if c.ledgerCache != "" && !c.dryRun {
		if !mgr.HasCache(c.ledgerCache) {
			return nil, fmt.Errorf("%s.%s: cache resource %q was not found", mpOutputFieldLedger, mpOutputFieldLedgerCache, c.ledgerCache)
		}
		c.ledger.Store = mpOutputLedgerStore{mgr: mgr, cache: c.ledgerCache, log: o.log, outage: &lograte.Outage{}}
		c.ledger.Metrics = o.metrics
		// A batch under way when the process died is sent again as it was.
		c.ledger.Resend = func(ctx context.Context, feed string, body []byte) error {
			return o.client.Send(ctx, []client.Item{{Feed: feed, Batch: body}})[0]
		}
		o.ledger = ledger.New(c.ledger)
		c.client.BeforeSend = func(ctx context.Context, feed string, batches []client.SentBatch) error {
			lb := make([]ledger.Batch, len(batches))
			for i, b := range batches {
				lb[i] = ledger.Batch{SourceRequestID: b.SourceRequestID, Body: b.Body, IDs: b.Keys}
			}
			o.ledger.Intend(ctx, feed, lb)
			return nil
		}
		c.client.Accepted = func(ctx context.Context, _ string, batches []client.SentBatch) {
			lb := make([]ledger.Batch, len(batches))
			for i, b := range batches {
				lb[i] = ledger.Batch{SourceRequestID: b.SourceRequestID, IDs: b.Keys}
			}
			o.ledger.Delivered(ctx, lb)
		}
	}
	if o.client, err = client.New(c.client); err != nil {
		return nil, c.clientError(err)
	}
	if o.queue, err = client.NewQueue(o.client, c.queue); err != nil {
		o.client.Close()
		return nil, c.clientError(err)
	}
	return o, nil
}

// Connect opens the dry-run destination; a real client connects per request.
func (o *mpOutput) Connect(ctx context.Context) error {
	if o.dry == nil {
		return nil
	}
	return o.dry.open(o.conf.dryRunPath)
}

// WriteBatch sends the batch and reports exactly the messages that were not
// delivered, each with its own error, so that fallback and reject_errored
// act on those alone.
func (o *mpOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	items := make([]client.Item, 0, len(batch))
	index := make([]int, 0, len(batch)) // items[k] is batch[index[k]]
	var ids []string                    // ids[k]: the ledger key of items[k]
	var berr *service.BatchError
	notDelivered := map[mpOutputLogKey]int{}
	fail := func(i int, err error) {
		if berr == nil {
			berr = service.NewBatchError(batch, err)
		}
		berr.Failed(i, err)
	}
	for i, msg := range batch {
		if uerr := msg.GetError(); uerr != nil {
			// Sending it would fail as invalid_batch at best; the dead
			// letter should get the processor's own reason.
			o.metrics.EventsFailed("", client.ReasonUpstreamError, 1)
			notDelivered[mpOutputLogKey{"", client.ReasonUpstreamError}]++
			fail(i, fmt.Errorf("mparticle %s: message %d: %w", client.ReasonUpstreamError, i, uerr))
			continue
		}
		feed, err := o.conf.feed.get(msg)
		if err != nil {
			o.metrics.EventsFailed("", client.ReasonInvalidBatch, 1)
			notDelivered[mpOutputLogKey{"", client.ReasonInvalidBatch}]++
			fail(i, fmt.Errorf("mparticle %s: message %d: %s: %w", client.ReasonInvalidBatch, i, mpOutputFieldFeed, err))
			continue
		}
		raw, err := msg.AsBytes()
		if err != nil {
			o.metrics.EventsFailed("", client.ReasonInvalidBatch, 1)
			notDelivered[mpOutputLogKey{"", client.ReasonInvalidBatch}]++
			fail(i, fmt.Errorf("mparticle %s: message %d: %w", client.ReasonInvalidBatch, i, err))
			continue
		}
		item := client.Item{Feed: o.resolveFeed(feed), Batch: raw}
		if o.ledger != nil {
			id, err := o.conf.ledgerKey.get(msg)
			if err != nil || id == "null" {
				// Sent without the ledger rather than not at all; "null" is
				// what a missing key interpolates to, and is no event's id.
				id = ""
			}
			ids = append(ids, id)
			item.Key = id
		}
		items = append(items, item)
		index = append(index, i)
	}

	errs := o.send(ctx, items, ids)
	o.holdPaused(ctx, batch, index, items, ids, errs)
	for k, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, ledger.ErrDuplicate):
			o.metrics.duplicate(items[k].Feed)
		default:
			notDelivered[mpOutputLogKey{items[k].Feed, client.Reason(err)}]++
			fail(index[k], err)
		}
	}
	if berr == nil {
		return nil
	}
	o.logNotDelivered(notDelivered)
	return berr
}

// send delivers items through the queue, and the ledger when there is one
// (ids[k] is the ledger key of items[k]).
func (o *mpOutput) send(ctx context.Context, items []client.Item, ids []string) []error {
	if o.ledger == nil {
		return o.queue.Send(ctx, items)
	}
	return o.ledger.Deliver(ctx, ids, func(idx []int) []error {
		sub := make([]client.Item, len(idx))
		for j, k := range idx {
			sub[j] = items[k]
		}
		return o.queue.Send(ctx, sub)
	})
}

// mpOutputPausedRetry is how often a held item of a paused feed is offered
// again: the client answers at once while the feed is paused and sends a
// probe when one is due, so this only bounds how soon after the feed is
// back the item goes.
const mpOutputPausedRetry = time.Second

// holdPaused keeps sending the items that failed as feed_paused and whose
// message comes from an input that would not read them again by itself
// (any but braze_currents, internal/redelivery), until each is delivered or
// fails for good (auth_window_expired after auth_failure_window), or ctx
// ends: handed back, they would wait in a stock input's memory, and a
// one-pass run ends without them. errs is updated in place.
func (o *mpOutput) holdPaused(ctx context.Context, batch service.MessageBatch, index []int, items []client.Item, ids []string, errs []error) {
	logged := false
	for {
		var held []int
		for k, err := range errs {
			if err != nil && client.Reason(err) == client.ReasonFeedPaused && !redelivery.Marked(batch[index[k]].Context()) {
				held = append(held, k)
			}
		}
		if len(held) == 0 {
			return
		}
		if !logged {
			logged = true
			o.log.Debugf("mparticle: %d events wait for their paused feed: their input would not read them again", len(held))
		}
		t := time.NewTimer(mpOutputPausedRetry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		sub := make([]client.Item, len(held))
		var subIDs []string
		for j, k := range held {
			sub[j] = items[k]
			if ids != nil {
				subIDs = append(subIDs, ids[k])
			}
		}
		for j, err := range o.send(ctx, sub, subIDs) {
			errs[held[j]] = err
		}
	}
}

// resolveFeed applies fallback_feed to a message's feed; a feed left without
// credentials fails in the client as feed_not_configured.
func (o *mpOutput) resolveFeed(feed string) string {
	feed = strings.ToLower(strings.TrimSpace(feed))
	if o.client.HasFeed(feed) || o.conf.fallbackFeed == "" {
		return feed
	}
	return o.conf.fallbackFeed
}

// waitForRateLimit blocks until the rate_limit resource allows a request.
func (o *mpOutput) waitForRateLimit(ctx context.Context) error {
	for {
		var wait time.Duration
		var err error
		if rerr := o.mgr.AccessRateLimit(ctx, o.conf.rateLimit, func(rl service.RateLimit) {
			wait, err = rl.Access(ctx)
		}); rerr != nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("rate limit %q: %w", o.conf.rateLimit, err)
		}
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// Close logs what the run delivered and failed per feed (or, in a dry run,
// wrote) and releases the client.
func (o *mpOutput) Close(ctx context.Context) error {
	o.queue.Close()
	o.client.Close()
	for _, c := range o.notDelivered.Flush() {
		o.log.Warnf("mparticle: %d more events not delivered since the last such line (feed and reason: %s)", c.N, c.Key)
	}
	if o.dry == nil {
		for _, line := range o.metrics.totalLines() {
			o.log.Infof("mparticle: %s", line)
		}
		return nil
	}
	summary := o.client.DryRunSummary()
	feeds := make([]string, 0, len(summary))
	for feed := range summary {
		feeds = append(feeds, feed)
	}
	sort.Strings(feeds)
	for _, feed := range feeds {
		s := summary[feed]
		o.log.Infof("mparticle dry run: feed %s: %d requests, %d batches, %d events", feed, s.Requests, s.Batches, s.Events)
	}
	if len(feeds) == 0 {
		o.log.Infof("mparticle dry run: no requests")
	}
	return o.dry.close()
}

// mpOutputLogEvery is the most often a line is logged for the same feed
// and reason of events not delivered, or for a cache that keeps failing:
// a paused feed fails every write, and one line per write would drown the
// log at production volume.
const mpOutputLogEvery = time.Minute

// mpOutputLogKey is what a line about events not delivered is about.
type mpOutputLogKey struct{ feed, reason string }

func (k mpOutputLogKey) String() string { return mpOutputFeedName(k.feed) + " " + k.reason }

// logNotDelivered logs, at most once per mpOutputLogEvery for each feed and
// reason, how many events writes did not deliver since the last line.
func (o *mpOutput) logNotDelivered(counts map[mpOutputLogKey]int) {
	for k, n := range counts {
		if total, due := o.notDelivered.Add(k.String(), n); due {
			o.log.Warnf("mparticle: feed %s: %d events not delivered (%s) since the last such line (at most one per %s per feed and reason)",
				mpOutputFeedName(k.feed), total, k.reason, mpOutputLogEvery)
		}
	}
}

func mpOutputFeedName(feed string) string {
	if feed == "" {
		return "(none)"
	}
	return feed
}

// mpOutputReasonSummary renders failure counts as "bad_request: 2, rejected: 1".
func mpOutputReasonSummary(reasons map[string]int) string {
	keys := make([]string, 0, len(reasons))
	for r := range reasons {
		keys = append(keys, r)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, r := range keys {
		if r == "" {
			parts[i] = fmt.Sprintf("other: %d", reasons[r])
			continue
		}
		parts[i] = fmt.Sprintf("%s: %d", r, reasons[r])
	}
	return strings.Join(parts, ", ")
}

// mpOutputDryRunSink is the dry-run destination, opened on Connect. The
// client writes one whole line per request; a file keeps whole lines only
// (internal/linefile): a write that fails part-way (a full disk) is cut
// back, so neither half a line nor a retried request glued onto it is
// left.
type mpOutputDryRunSink struct {
	mu   sync.Mutex
	w    io.Writer      // stdout, or file
	file *linefile.File // nil for stdout
}

func (s *mpOutputDryRunSink) open(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		return nil
	}
	if path == "stdout" {
		s.w = os.Stdout
		return nil
	}
	// Truncated, not appended to: a second demo run must not double the file.
	f, _, err := linefile.Open(path, linefile.Options{Truncate: true})
	if err != nil {
		return fmt.Errorf("%s: %w", mpOutputFieldDryRunPath, err)
	}
	s.w, s.file = nil, f
	return nil
}

// Write implements io.Writer for the client: p is one whole line.
func (s *mpOutputDryRunSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.file != nil:
		if err := s.file.Write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	case s.w != nil:
		return s.w.Write(p)
	}
	return 0, errors.New("dry-run destination is not open")
}

func (s *mpOutputDryRunSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = nil
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// mpOutputLedgerStore is a ledger.Store over a Benthos cache resource. A
// cache that fails makes the ledger send anyway (counted in
// mparticle_ledger_errors); its outage is logged once when it begins and
// once when it ends, however many calls fail in between.
type mpOutputLedgerStore struct {
	mgr    *service.Resources
	cache  string
	log    *service.Logger
	outage *lograte.Outage
}

// observe logs the beginning and the end of an outage of the cache from
// the outcome of one call.
func (s mpOutputLedgerStore) observe(op string, err error) {
	if err != nil {
		if s.outage.Failed() {
			s.log.Warnf("mparticle ledger: cache %q fails (%s: %v); events are sent without the ledger until it answers again (mparticle_ledger_errors counts the calls)", s.cache, op, err)
		}
		return
	}
	if ended, lasted, failed := s.outage.OK(); ended {
		s.log.Infof("mparticle ledger: cache %q answers again after %s; %d calls failed meanwhile", s.cache, lasted.Round(time.Second), failed)
	}
}

// Get implements ledger.Store.
func (s mpOutputLedgerStore) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	defer func() { s.observe("get", err) }()
	if aerr := s.mgr.AccessCache(ctx, s.cache, func(c service.Cache) {
		value, err = c.Get(ctx, key)
	}); aerr != nil {
		return nil, false, aerr
	}
	if errors.Is(err, service.ErrKeyNotFound) {
		return nil, false, nil
	}
	return value, err == nil, err
}

// Put implements ledger.Store.
func (s mpOutputLedgerStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) (err error) {
	defer func() { s.observe("set", err) }()
	if aerr := s.mgr.AccessCache(ctx, s.cache, func(c service.Cache) {
		err = c.Set(ctx, key, value, &ttl)
	}); aerr != nil {
		return aerr
	}
	return err
}

// PutMany implements ledger.MultiPutter: the writes of one record in one
// resource lookup.
func (s mpOutputLedgerStore) PutMany(ctx context.Context, entries []ledger.Entry, ttl time.Duration) (failed int) {
	var last error
	defer func() { s.observe("set", last) }()
	if aerr := s.mgr.AccessCache(ctx, s.cache, func(c service.Cache) {
		for _, e := range entries {
			if err := c.Set(ctx, e.Key, e.Value, &ttl); err != nil {
				failed++
				last = err
			}
		}
	}); aerr != nil {
		last = aerr
		return len(entries)
	}
	return failed
}

// mpOutputMetrics counts the client's events as Benthos metrics, and keeps
// this run's totals per feed for the closing lines.
type mpOutputMetrics struct {
	mu          sync.Mutex
	totals      map[string]*mpOutputFeedTotals // by feed label
	feeds       map[string]bool
	requests    *service.MetricCounter
	batches     *service.MetricCounter
	events      *service.MetricCounter
	batchEvents *service.MetricGauge
	retries     *service.MetricCounter
	throttled   *service.MetricCounter
	failed      *service.MetricCounter
	duplicates  *service.MetricCounter
	ledgerErrs  *service.MetricCounter
	latency     *service.MetricTimer
	tracer      trace.Tracer
}

func newMPOutputMetrics(m *service.Metrics, tp trace.TracerProvider) *mpOutputMetrics {
	feeds := make(map[string]bool, len(eventsapi.Feeds()))
	for _, feed := range eventsapi.Feeds() {
		feeds[feed] = true
	}
	o := &mpOutputMetrics{
		totals:      map[string]*mpOutputFeedTotals{},
		feeds:       feeds,
		requests:    m.NewCounter("mparticle_requests", "feed", "status"),
		batches:     m.NewCounter("mparticle_batches_accepted", "feed"),
		events:      m.NewCounter("mparticle_events_accepted", "feed"),
		batchEvents: m.NewGauge("mparticle_batch_events", "feed"),
		retries:     m.NewCounter("mparticle_retries", "feed", "cause"),
		throttled:   m.NewCounter("mparticle_throttled_seconds", "feed"),
		failed:      m.NewCounter("mparticle_events_failed", "feed", "reason"),
		duplicates:  m.NewCounter("mparticle_events_duplicate", "feed"),
		ledgerErrs:  m.NewCounter("mparticle_ledger_errors", "op"),
		latency:     m.NewTimer("mparticle_request_latency_ns", "feed", "status"),
		tracer:      tp.Tracer("github.com/currents-mparticle/currents-mparticle/mparticle"),
	}
	// The failure counters exist at 0 from the start for every feed and
	// reason: an alert on `increase(...) > 0` sees nothing of a series
	// that first appears at 1.
	for _, feed := range append(eventsapi.Feeds(), o.label("")) {
		for _, reason := range client.Reasons() {
			o.failed.Incr(0, feed, reason)
		}
		o.events.Incr(0, feed)
		o.batches.Incr(0, feed)
	}
	return o
}

// mpOutputFeedTotals is what one feed's requests came to in this run.
type mpOutputFeedTotals struct {
	requests, batches, events int
	failed                    map[string]int // events by reason
}

// total returns feed's totals; m.mu is held.
func (m *mpOutputMetrics) total(feed string) *mpOutputFeedTotals {
	t := m.totals[feed]
	if t == nil {
		t = &mpOutputFeedTotals{failed: map[string]int{}}
		m.totals[feed] = t
	}
	return t
}

// totalLines renders the totals, a line per feed that saw anything, in
// feed order: what a run that ends says it delivered and failed.
func (m *mpOutputMetrics) totalLines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.totals) == 0 {
		return []string{"no event was sent"}
	}
	var out []string
	for _, feed := range append(eventsapi.Feeds(), m.label("")) {
		t := m.totals[feed]
		if t == nil {
			continue
		}
		line := fmt.Sprintf("feed %s: %d events delivered in %d batches, %d requests", feed, t.events, t.batches, t.requests)
		if len(t.failed) > 0 {
			line += "; not delivered by a write (" + mpOutputReasonSummary(t.failed) + "): for good to the dead letter, feed_paused and the other temporary reasons sent again"
		}
		out = append(out, line)
	}
	return out
}

// label keeps the feed label to mParticle's feed names: a message's feed
// comes from data, and unbounded label values would swamp a metrics store.
func (m *mpOutputMetrics) label(feed string) string {
	if m.feeds[feed] {
		return feed
	}
	return "unknown"
}

// Request implements client.Metrics.
func (m *mpOutputMetrics) Request(feed string, status int) {
	f := m.label(feed)
	m.requests.Incr(1, f, strconv.Itoa(status))
	m.mu.Lock()
	m.total(f).requests++
	m.mu.Unlock()
}

// BatchAccepted implements client.Metrics.
func (m *mpOutputMetrics) BatchAccepted(feed string, events int) {
	f := m.label(feed)
	m.batches.Incr(1, f)
	m.events.Incr(int64(events), f)
	m.batchEvents.Set(int64(events), f)
	m.mu.Lock()
	t := m.total(f)
	t.batches++
	t.events += events
	m.mu.Unlock()
}

// Retry implements client.Metrics.
func (m *mpOutputMetrics) Retry(feed, cause string) {
	m.retries.Incr(1, m.label(feed), cause)
}

// Throttled implements client.Metrics.
func (m *mpOutputMetrics) Throttled(feed string, d time.Duration) {
	m.throttled.IncrFloat64(d.Seconds(), m.label(feed))
}

// EventsFailed implements client.Metrics.
func (m *mpOutputMetrics) EventsFailed(feed, reason string, events int) {
	f := m.label(feed)
	m.failed.Incr(int64(events), f, reason)
	m.mu.Lock()
	m.total(f).failed[reason] += events
	m.mu.Unlock()
}

// duplicate counts an event the ledger skipped as already delivered.
func (m *mpOutputMetrics) duplicate(feed string) {
	m.duplicates.Incr(1, m.label(feed))
}

// StoreError implements ledger.Metrics.
func (m *mpOutputMetrics) StoreError(op string) {
	m.ledgerErrs.Incr(1, op)
}

// RequestLatency implements client.LatencyMetrics.
func (m *mpOutputMetrics) RequestLatency(feed string, status int, d time.Duration) {
	m.latency.Timing(d.Nanoseconds(), m.label(feed), strconv.Itoa(status))
}

// StartRequest implements client.RequestTracer: one client span per HTTP
// attempt, under the trace of the messages being written (Benthos's tracer
// config; a no-op provider without one).
func (m *mpOutputMetrics) StartRequest(ctx context.Context, info client.RequestInfo) (context.Context, func(int, error)) {
	ctx, span := m.tracer.Start(ctx, "mparticle.request", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("mparticle.feed", m.label(info.Feed)),
			attribute.String("mparticle.endpoint", info.Endpoint),
			attribute.Int("mparticle.batches", info.Batches),
			attribute.Int("mparticle.events", info.Events),
			attribute.Int("mparticle.attempt", info.Attempt),
			attribute.Bool("mparticle.retry", info.Attempt > 1),
		))
	return ctx, func(status int, err error) {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		switch {
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, "no response")
		case status >= 400:
			span.SetStatus(codes.Error, "HTTP "+strconv.Itoa(status))
		}
		span.End()
	}
}
