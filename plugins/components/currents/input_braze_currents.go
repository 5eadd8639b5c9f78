package currents

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"gocloud.dev/blob"

	// The bucket drivers the url field accepts.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/internal/lograte"
	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

const (
	bciFieldURL                  = "url"
	bciFieldEventTypes           = "event_types"
	bciFieldExcludeEventTypes    = "exclude_event_types"
	bciFieldSince                = "since"
	bciFieldUntil                = "until"
	bciFieldWatch                = "watch"
	bciFieldPollInterval         = "poll_interval"
	bciFieldWatchLookback        = "watch_lookback"
	bciFieldCheckpointCache      = "checkpoint_cache"
	bciFieldCheckpointPrefix     = "checkpoint_prefix"
	bciFieldShard                = "shard"
	bciFieldShardIndex           = "index"
	bciFieldShardCount           = "count"
	bciFieldMaxConcurrentObjects = "max_concurrent_objects"
	bciFieldMaxBatchSize         = "max_batch_size"
	bciFieldQuarantine           = "quarantine"
	bciFieldMaxRejectedAttempts  = "max_rejected_attempts"
	bciFieldMaxReadAttempts      = "max_read_attempts"
	bciFieldMinObjectAge         = "min_object_age"

	bciMaxConcurrentObjects = 256

	// bciClassRejected is the failure class of an object whose events
	// downstream kept refusing for good.
	bciClassRejected = "rejected_downstream"
)

func brazeCurrentsInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Version("0.1.0").
		Summary("Reads a Braze Currents storage export from S3, Google Cloud Storage, Azure Blob Storage or a folder: replays date ranges, selects event types, resumes after a restart without re-sending a file, follows new files and splits the work among instances.").
		Description(`
Emits one structured message per Currents event, decoded with the writer schema of its own
file, with the same metadata as the `+"`braze_currents`"+` scanner:

| key | value |
|---|---|
| `+"`currents_event_type`"+` | the event type, e.g. `+"`users.messages.email.Open`"+` |
| `+"`currents_id`"+` | the event id, Braze's only deduplication key |
| `+"`currents_time`"+` | the event time, Unix seconds |
| `+"`currents_object`"+` | the object's full key in the bucket (its path under the folder for `+"`file://`"+`) |
| `+"`currents_date`"+` | the `+"`date=`"+` hour of the key (when Braze queued the event) |
| `+"`currents_schema`"+` | the writer schema's record full name |
| `+"`currents_integration_id`"+` | the Currents integration id from the key |

### Where the export is: `+"`url`"+`

`+"`s3://bucket/prefix`"+`, `+"`gs://bucket/prefix`"+`, `+"`azblob://container/prefix`"+`: the host names the
bucket, the path is the key prefix (the folder holding the `+"`dataexport.*`"+` folders, usually
`+"`currents`"+`), query parameters go to the driver. `+"`file:///data/currents`"+`: the path is the
folder. `+"`mem://`"+`: an empty in-memory bucket, for tests. Credentials are never in the url:
each cloud's usual chain applies (AWS: environment, shared profiles, `+"`profile=`"+` parameter,
instance or task roles, IRSA; GCP: application default credentials, workload identity;
Azure: `+"`AZURE_STORAGE_ACCOUNT`"+` with `+"`AZURE_STORAGE_KEY`"+`, `+"`AZURE_STORAGE_SAS_TOKEN`"+`,
`+"`AZURE_STORAGE_CONNECTION_STRING`"+` or the default Azure credential). S3 parameters:
`+"`region`"+`, `+"`profile`"+`, and for S3-compatible stores `+"`endpoint=http://host:port`"+` with
`+"`s3ForcePathStyle=true`"+` (and `+"`disableSSL=true`"+` for plain HTTP).

### Selecting: `+"`event_types`"+`, `+"`since`"+`, `+"`until`"+`

Listing is pruned: folders are listed level by level with the delimiter `+"`/`"+` — the prefix, each
`+"`dataexport.*`"+` folder, the `+"`event_type=`"+` folders (only the selected ones are opened), their
`+"`date=`"+` folders (listed under the longest name prefix the range allows, e.g. `+"`date=2026-11-0`"+`),
then every object of each selected hour. A replay of one type over one day never lists other
types or days. `+"`date=`"+` is the hour Braze *queued* the events, not the event time (events can
be days late). An hour folder is read when the hour overlaps [`+"`since`"+`, `+"`until`"+`). With
either bound set, objects outside any `+"`date=`"+` folder are skipped. Keys not ending in
`+"`.avro`"+` are ignored.

### One pass or follow: `+"`watch`"+`

Off: one pass over the range, oldest `+"`date=`"+` hour first; the input ends when every object is
delivered and acknowledged (the process then exits). On: after the first pass the input lists again
every `+"`poll_interval`"+`, looking only at hours from `+"`watch_lookback`"+` before the previous pass
started, so a long-running follower does not re-list its history.

### Resuming: `+"`checkpoint_cache`"+`

A cache resource (`+"`file`"+`, `+"`redis`"+`, `+"`aws_dynamodb`"+`, …) records finished objects. An object is
completed only when every event read from it was acknowledged by the output; a nack (or a crash)
means it is read again — delivery is at least once, never lossy, so deduplicate downstream on
`+"`currents_id`"+` if duplicates matter (the `+"`mparticle`"+` output's `+"`ledger`"+` does). A restart skips completed and failed objects. The cache key
is `+"`checkpoint_prefix`"+` + the hex SHA-256 of the object's full key (fixed length, valid for every
cache: file names, memcached keys); the value is JSON with the status, the key, the event count and,
for failures, the reason. `+"`currents-report -c <pipeline>`"+` counts them per hour and event type, and
`+"`currents-report -c <pipeline> requeue <object key>`"+` deletes a failed object's key (and its
quarantine record) so that the next start reads it again.

### Scaling out: `+"`shard`"+`

N instances with the same url and `+"`shard.count: N`"+` and indexes 0…N-1 each read the objects whose
full key hashes (FNV-1a, 64-bit) to their index: one export split without coordination, each object
read by exactly one instance. They can share one checkpoint cache. The other path is the stock
`+"`aws_s3`"+` input with SQS notifications of new objects and `+"`scanner: braze_currents`"+`: any number of
competing consumers, SQS handing each object to one of them.

### Corrupt objects

An object that cannot be decoded (not Avro, truncated, bad sync marker, corrupt block) is logged with
its key and the reason, counted (`+"`currents_objects_failed`"+`, `+"`currents_decode_errors`"+`), recorded in
the checkpoint as failed once the events decoded before the damage are acknowledged, and, with
`+"`quarantine`"+`, described in `+"`<quarantine url>/<key>.error.json`"+`. Other objects carry on. A bucket
error while reading (timeout, throttling) is not corruption: the object is read again later.

### Metrics

`+"`currents_objects_listed`"+`, `+"`currents_objects_skipped`"+` (already checkpointed), `+"`currents_objects_read`"+`,
`+"`currents_objects_completed`"+`, `+"`currents_objects_failed`"+` (label `+"`class`"+`), `+"`currents_object_retries`"+`,
`+"`currents_events_read`"+` (label `+"`event_type`"+`), `+"`currents_bytes_read`"+`, and the gauge
`+"`currents_lag_seconds`"+`: how far the end of the newest `+"`date=`"+` hour listed is behind now (0 while
that hour is the current one; alert when it grows in watch mode).`).
		Fields(
			service.NewStringField(bciFieldURL).
				Description("The export's location: a bucket url whose path is the Currents prefix, or a folder. See the description for the schemes and parameters.").
				Examples("s3://my-currents-bucket/currents?region=us-east-1", "gs://my-currents-bucket/currents", "azblob://my-container/currents", "file:///data/currents"),
			service.NewStringListField(bciFieldEventTypes).
				Description("Read only these event types (glob patterns, `*` matches any run of characters). Empty: every type.").
				Examples([]string{"users.messages.email.*"}, []string{"users.messages.pushnotification.Send", "users.messages.pushnotification.Open"}).
				Default([]string{}),
			service.NewStringListField(bciFieldExcludeEventTypes).
				Description("Skip these event types (glob patterns), even when `event_types` selects them.").
				Example([]string{"users.messages.*.Abort"}).
				Default([]string{}),
			service.NewStringField(bciFieldSince).
				Description("Read `date=` hours from this one on: a date-hour (`2026-11-01-13`), a date (`2026-11-01`, UTC), an RFC 3339 time, or a duration back from the start of the process (`72h`, `7d`). Empty: from the oldest.").
				Examples("2026-11-01-00", "2026-11-01T00:00:00Z", "72h").
				Default(""),
			service.NewStringField(bciFieldUntil).
				Description("Read `date=` hours before this one (exclusive), same formats as `since`. Empty: up to the newest. Not allowed with `watch`.").
				Examples("2026-11-02-00", "2026-11-02").
				Default(""),
			service.NewBoolField(bciFieldWatch).
				Description("Keep polling for new objects after the first pass instead of ending the input.").
				Default(false),
			service.NewDurationField(bciFieldPollInterval).
				Description("How often to list again in watch mode. Braze writes a file every five minutes per event type, or sooner under load.").
				Default("1m"),
			service.NewDurationField(bciFieldWatchLookback).
				Description("In watch mode, how many hours before the start of the previous pass a new pass looks at. Braze may write into an hour folder for a while after the hour ends; a file landing in an hour older than this is missed until a restart.").
				Default("3h").
				Advanced(),
			service.NewStringField(bciFieldCheckpointCache).
				Description("The name of a cache resource recording completed and failed objects, so a restart does not read them again. Empty: no checkpoint (a restart reads everything in range again).").
				Example("currents_checkpoint").
				Default(""),
			service.NewStringField(bciFieldCheckpointPrefix).
				Description("Prefix of the checkpoint keys; give each export or pipeline sharing a cache its own.").
				Default("braze_currents_").
				Advanced(),
			service.NewObjectField(bciFieldShard,
				service.NewIntField(bciFieldShardIndex).
					Description("This instance's shard, 0 to count-1.").
					Default(0),
				service.NewIntField(bciFieldShardCount).
					Description("How many instances share the export.").
					Default(1),
			).
				Description("Split the export among instances by a hash of each object's key: every object is read by exactly one of `count` instances with distinct indexes."),
			service.NewIntField(bciFieldMaxConcurrentObjects).
				Description(fmt.Sprintf("How many objects are read at once (1 to %d), so that one slow object does not stall the others.", bciMaxConcurrentObjects)).
				Default(4),
			service.NewIntField(bciFieldMaxBatchSize).
				Description("The most events in one message batch; an Avro block becomes one or more batches.").
				Default(500).
				Advanced(),
			service.NewIntField(bciFieldMaxRejectedAttempts).
				Description("How many reads of an object may end with some of its events refused for good downstream (a permanent failure that no `fallback` took, such as an event that cannot be mapped) before the object is recorded as failed (class `"+bciClassRejected+"`) and quarantined. Each read sends only the events not yet delivered. Temporary failures, such as an mParticle feed whose credentials are refused for now, do not count: those events are read again until they pass or fail for good.").
				Default(5).
				Advanced(),
			service.NewIntField(bciFieldMaxReadAttempts).
				Description("In a one-pass run (no `watch`), how many reads in a row of an object may fail in the bucket (access denied, a body that ends before the object's size, a connection reset) before the object is recorded as failed (class `"+classUnreadable+"`), named in the log and quarantined, so that the run ends. Reads are retried with a backoff doubling from 1s to 1m: the default 20 rides out about a quarter of an hour of trouble. Such a failure is never taken for a corrupt file. 0 retries for ever, as watch mode always does: a follower rides out an outage of the bucket rather than fail the objects it had under way.").
				Default(20).
				Advanced(),
			service.NewDurationField(bciFieldMinObjectAge).
				Description("In watch mode, an object modified less than this long ago is left for a later pass: a file still being written (a `file://` export, or a tool copying into the bucket) is read once it has settled, and an object that ends early (truncated) while it was modified within this time is read again later rather than failed. In any mode, an object that ends early and whose size changed since it was listed is read again later.").
				Default("30s").
				Advanced(),
			service.NewStringField(bciFieldQuarantine).
				Description("A url (same schemes as `url`) under which a failed object's reason is written as `<key>.error.json`. Empty: failures are only logged, counted and checkpointed.").
				Example("s3://my-currents-bucket/currents-quarantine?region=us-east-1").
				Default(""),
			maxInFlightBytesField(),
			decodeLimitsField(),
		).
		Example("Replay one day of email events", "Read the email events Braze queued on 1 November, oldest hour first, then stop. A file checkpoint makes a rerun skip what was already delivered.", `
input:
  braze_currents:
    url: s3://my-currents-bucket/currents?region=us-east-1
    event_types: [ "users.messages.email.*" ]
    since: 2026-11-01-00
    until: 2026-11-02-00
    checkpoint_cache: checkpoint
cache_resources:
  - label: checkpoint
    file:
      directory: ./checkpoint
`).
		Example("Follow an export with two instances", "Each of two instances reads half of the objects and polls for new ones; both record progress in one Redis.", `
input:
  braze_currents:
    url: gs://my-currents-bucket/currents
    since: 72h
    watch: true
    checkpoint_cache: checkpoint
    shard:
      index: ${SHARD_INDEX}
      count: 2
cache_resources:
  - label: checkpoint
    redis:
      url: redis://checkpoint-redis:6379
`)
}

func init() {
	err := service.RegisterBatchInput(InputName, brazeCurrentsInputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			return newBrazeCurrentsInputFromParsed(conf, mgr, export.OpenBucket)
		})
	if err != nil {
		panic(err)
	}
}

// bciOpener opens a bucket url; export.OpenBucket outside tests.
type bciOpener func(ctx context.Context, url string) (*blob.Bucket, error)

type bciConfig struct {
	bucketURL        string
	prefix           string
	where            string // the url without its query, for logs (export.Where)
	quarantineURL    string
	quarantinePrefix string
	types            decoder.TypeFilter
	rng              export.Range
	watch            bool
	pollInterval     time.Duration
	lookback         time.Duration
	checkpointCache  string
	checkpointPrefix string
	shard            export.Shard
	maxObjects       int
	maxBatch         int
	maxRejected      int
	maxReadAttempts  int
	minAge           time.Duration
	limits           decoder.ReaderOptions // decode_limits
	maxInFlightBytes int
}

func bciConfigFromParsed(conf *service.ParsedConfig, now time.Time) (c bciConfig, err error) {
	raw, err := conf.FieldString(bciFieldURL)
	if err != nil {
		return c, err
	}
	if c.bucketURL, c.prefix, err = export.SplitURL(raw); err != nil {
		return c, fmt.Errorf("%s: %w", bciFieldURL, err)
	}
	c.where = export.Where(raw)
	if raw, err = conf.FieldString(bciFieldQuarantine); err != nil {
		return c, err
	}
	if raw != "" {
		if c.quarantineURL, c.quarantinePrefix, err = export.SplitURL(raw); err != nil {
			return c, fmt.Errorf("%s: %w", bciFieldQuarantine, err)
		}
	}
	include, err := conf.FieldStringList(bciFieldEventTypes)
	if err != nil {
		return c, err
	}
	exclude, err := conf.FieldStringList(bciFieldExcludeEventTypes)
	if err != nil {
		return c, err
	}
	if c.types, err = decoder.NewTypeFilter(include, exclude); err != nil {
		return c, err
	}
	for _, b := range []struct {
		field string
		dst   *time.Time
	}{{bciFieldSince, &c.rng.Since}, {bciFieldUntil, &c.rng.Until}} {
		s, err := conf.FieldString(b.field)
		if err != nil {
			return c, err
		}
		if *b.dst, err = export.ParseBound(s, now); err != nil {
			return c, fmt.Errorf("%s: %w", b.field, err)
		}
	}
	if err := c.rng.Validate(); err != nil {
		return c, err
	}
	if c.watch, err = conf.FieldBool(bciFieldWatch); err != nil {
		return c, err
	}
	if c.watch && !c.rng.Until.IsZero() {
		return c, fmt.Errorf("%s cannot be combined with %s: a follower has no end", bciFieldWatch, bciFieldUntil)
	}
	if c.pollInterval, err = conf.FieldDuration(bciFieldPollInterval); err != nil {
		return c, err
	}
	if c.pollInterval <= 0 {
		return c, fmt.Errorf("%s must be positive", bciFieldPollInterval)
	}
	if c.lookback, err = conf.FieldDuration(bciFieldWatchLookback); err != nil {
		return c, err
	}
	if c.lookback < 0 {
		return c, fmt.Errorf("%s must not be negative", bciFieldWatchLookback)
	}
	if c.checkpointCache, err = conf.FieldString(bciFieldCheckpointCache); err != nil {
		return c, err
	}
	if c.checkpointPrefix, err = conf.FieldString(bciFieldCheckpointPrefix); err != nil {
		return c, err
	}
	if c.shard.Index, err = conf.FieldInt(bciFieldShard, bciFieldShardIndex); err != nil {
		return c, err
	}
	if c.shard.Count, err = conf.FieldInt(bciFieldShard, bciFieldShardCount); err != nil {
		return c, err
	}
	if err := c.shard.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", bciFieldShard, err)
	}
	if c.maxObjects, err = conf.FieldInt(bciFieldMaxConcurrentObjects); err != nil {
		return c, err
	}
	if c.maxObjects < 1 || c.maxObjects > bciMaxConcurrentObjects {
		return c, fmt.Errorf("%s %d: want 1 to %d", bciFieldMaxConcurrentObjects, c.maxObjects, bciMaxConcurrentObjects)
	}
	if c.maxBatch, err = conf.FieldInt(bciFieldMaxBatchSize); err != nil {
		return c, err
	}
	if c.maxBatch < 1 {
		return c, fmt.Errorf("%s must be at least 1", bciFieldMaxBatchSize)
	}
	if c.maxRejected, err = conf.FieldInt(bciFieldMaxRejectedAttempts); err != nil {
		return c, err
	}
	if c.maxRejected < 1 {
		return c, fmt.Errorf("%s must be at least 1", bciFieldMaxRejectedAttempts)
	}
	if c.maxReadAttempts, err = conf.FieldInt(bciFieldMaxReadAttempts); err != nil {
		return c, err
	}
	if c.maxReadAttempts < 0 {
		return c, fmt.Errorf("%s must not be negative", bciFieldMaxReadAttempts)
	}
	if c.minAge, err = conf.FieldDuration(bciFieldMinObjectAge); err != nil {
		return c, err
	}
	if c.minAge < 0 {
		return c, fmt.Errorf("%s must not be negative", bciFieldMinObjectAge)
	}
	if c.limits, err = decodeLimitsFromParsed(conf); err != nil {
		return c, err
	}
	if c.maxInFlightBytes, err = conf.FieldInt(fieldMaxInFlightBytes); err != nil {
		return c, err
	}
	return c, nil
}

type bciMetrics struct {
	listed, skipped, read, completed, retries, bytes *service.MetricCounter
	failed, decodeErr, events                        *service.MetricCounter
	lag                                              *service.MetricGauge
}

// brazeCurrentsInput adapts an export.Scheduler to Benthos: the scheduler
// decides what is read when and what becomes of it; the input opens the
// buckets, runs the readers (input_braze_currents_read.go), turns events into
// message batches and acknowledgements into chunk outcomes, and records
// settled objects in the checkpoint cache (input_braze_currents_checkpoint.go).
type brazeCurrentsInput struct {
	conf bciConfig
	mgr  *service.Resources
	log  *service.Logger
	open bciOpener
	m    bciMetrics

	bucket     *blob.Bucket
	quarantine *blob.Bucket
	sched      *export.Scheduler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	out    chan bciBatch

	newestHour atomic.Int64 // Unix seconds of the newest date= hour listed

	state    *bciStateWrites // checkpoint and quarantine writes, none in a dry run
	budget   *inFlight       // max_in_flight_bytes
	cpOutage lograte.Outage  // of the checkpoint cache, for its two log lines

	// Totals of this run, for the summary a one-pass input logs at its end.
	nCompleted, nFailed, nSkipped atomic.Int64
}

type bciBatch struct {
	msgs service.MessageBatch
	ack  service.AckFunc
}

func newBrazeCurrentsInputFromParsed(conf *service.ParsedConfig, mgr *service.Resources, open bciOpener) (*brazeCurrentsInput, error) {
	c, err := bciConfigFromParsed(conf, time.Now())
	if err != nil {
		return nil, err
	}
	if c.checkpointCache != "" && !mgr.HasCache(c.checkpointCache) {
		return nil, fmt.Errorf("%s: cache resource %q not found", bciFieldCheckpointCache, c.checkpointCache)
	}
	met := mgr.Metrics()
	in := &brazeCurrentsInput{
		conf:  c,
		mgr:   mgr,
		log:   mgr.Logger(),
		open:  open,
		state: &bciStateWrites{log: mgr.Logger()},
		m: bciMetrics{
			listed:    met.NewCounter("currents_objects_listed"),
			skipped:   met.NewCounter("currents_objects_skipped"),
			read:      met.NewCounter("currents_objects_read"),
			completed: met.NewCounter("currents_objects_completed"),
			retries:   met.NewCounter("currents_object_retries"),
			bytes:     met.NewCounter("currents_bytes_read"),
			events:    met.NewCounter("currents_events_read", "event_type"),
			lag:       met.NewGauge("currents_lag_seconds"),
		},
	}
	in.m.failed, in.m.decodeErr = newFailureCounters(met)
	in.m.zero()
	if in.budget, err = newInFlight(c.maxInFlightBytes); err != nil {
		return nil, err
	}
	// A checkpoint cache that cannot store anything refuses the start, with
	// an error naming it, rather than retrying the connection for ever.
	ctx, cancel := context.WithTimeout(context.Background(), bciProbeTimeout)
	defer cancel()
	if err := in.probeCheckpoint(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// bciProbeTimeout bounds the start-time probe of the checkpoint cache.
const bciProbeTimeout = 30 * time.Second

// zero creates the series of the unlabelled counters at 0 (the failure
// counters come so from newFailureCounters): `increase(...) > 0` sees
// nothing of a series that first appears at 1.
func (m bciMetrics) zero() {
	for _, c := range []*service.MetricCounter{m.listed, m.skipped, m.read, m.completed, m.retries, m.bytes} {
		c.Incr(0)
	}
}

func (in *brazeCurrentsInput) openBucket(ctx context.Context, bucketURL, prefix string) (*blob.Bucket, error) {
	b, err := in.open(ctx, bucketURL)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix)
	}
	return b, nil
}

// Connect opens the buckets and starts listing and reading. Listing errors
// after this point are retried, not returned: a bucket that was reachable
// once is assumed to come back.
func (in *brazeCurrentsInput) Connect(ctx context.Context) error {
	if in.bucket != nil {
		return nil
	}
	b, err := in.openBucket(ctx, in.conf.bucketURL, in.conf.prefix)
	if err != nil {
		return fmt.Errorf("open the export bucket: %w", err)
	}
	if ok, err := b.IsAccessible(ctx); err != nil || !ok {
		_ = b.Close()
		if err == nil {
			err = errors.New("it does not exist")
		}
		return fmt.Errorf("export bucket %s: %w", in.conf.where, err)
	}
	if in.conf.quarantineURL != "" {
		q, err := in.openBucket(ctx, in.conf.quarantineURL, in.conf.quarantinePrefix)
		if err != nil {
			_ = b.Close()
			return fmt.Errorf("open the quarantine bucket: %w", err)
		}
		in.quarantine = q
	}
	in.bucket = b
	hooks := bciHooks{in}
	in.sched = export.NewScheduler(export.SchedulerConfig{
		Source:          &export.Lister{Bucket: b, Prefix: in.conf.prefix, Types: in.conf.types, Shard: in.conf.shard},
		Range:           in.conf.rng,
		Watch:           in.conf.watch,
		PollInterval:    in.conf.pollInterval,
		Lookback:        in.conf.lookback,
		MinAge:          in.conf.minAge,
		MaxRejected:     in.conf.maxRejected,
		MaxReadFailures: in.readAttempts(),
		Checkpoints:     hooks,
		Observer:        hooks,
	})
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.out = make(chan bciBatch)
	in.wg.Add(1 + in.conf.maxObjects)
	go func() {
		defer in.wg.Done()
		in.sched.Run(in.ctx)
	}()
	for i := 0; i < in.conf.maxObjects; i++ {
		go in.readLoop()
	}
	return nil
}

// ReadBatch hands out the next batch of events. A one-pass input ends only
// once every object has settled, i.e. every batch was acknowledged: a nack
// arriving after the end could no longer be honoured.
func (in *brazeCurrentsInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	if in.out == nil {
		return nil, nil, service.ErrNotConnected
	}
	select {
	case b := <-in.out:
		return b.msgs, b.ack, nil
	case <-in.sched.Done():
		return nil, nil, service.ErrEndOfInput
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
}

func (in *brazeCurrentsInput) Close(ctx context.Context) error {
	if in.cancel == nil {
		return nil
	}
	in.cancel()
	stopped := make(chan struct{})
	go func() { in.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Stopped before any acknowledgement: what settled is recorded now,
	// unless this is a dry run.
	in.state.decide(ctx)
	err := in.bucket.Close()
	if in.quarantine != nil {
		err = errors.Join(err, in.quarantine.Close())
	}
	return err
}

// readAttempts is the scheduler's MaxReadFailures: max_read_attempts for a
// one-pass run, which must end; none in watch mode, where a follower rides
// out a bucket outage (expired credentials, a region incident) by reading
// again until the object comes whole, rather than failing every object it
// had under way.
func (in *brazeCurrentsInput) readAttempts() int {
	if in.conf.watch {
		return 0
	}
	return in.conf.maxReadAttempts
}

// readLoop is one of the max_concurrent_objects readers.
func (in *brazeCurrentsInput) readLoop() {
	defer in.wg.Done()
	for {
		j, err := in.sched.Next(in.ctx)
		if err != nil {
			return
		}
		in.read(j)
	}
}

// bciHooks is the input as the scheduler's export.Checkpoints and
// export.Observer: the checkpoint cache, metrics and logs.
type bciHooks struct{ in *brazeCurrentsInput }

func (h bciHooks) Done(ctx context.Context, name string) (bool, error) {
	return h.in.checkpointed(ctx, name)
}

// Record counts, logs, quarantines and checkpoints a settled object.
func (h bciHooks) Record(ctx context.Context, s export.Settlement) {
	in := h.in
	switch s.Verdict {
	case export.Rejected:
		in.recordFailed(ctx, s.Name, bciClassRejected, "kept being refused downstream", s.Events,
			fmt.Errorf("events refused downstream in %d reads (%s %d): %w", s.Refused, bciFieldMaxRejectedAttempts, in.conf.maxRejected, s.Err))
	case export.Corrupt:
		in.recordFailed(ctx, s.Name, decoder.ErrorClass(s.Err), "is corrupt", s.Events, s.Err)
	case export.Unreadable:
		in.recordFailed(ctx, s.Name, classUnreadable, "could not be read whole", s.Events,
			fmt.Errorf("%d reads in a row failed (%s %d): %w", s.ReadFailures, bciFieldMaxReadAttempts, in.conf.maxReadAttempts, s.Err))
	default:
		in.m.completed.Incr(1)
		in.nCompleted.Add(1)
		in.checkpoint(ctx, s.Name, bciNewCheckpoint(export.StatusCompleted, s.Name, s.Events, nil))
	}
}

func (h bciHooks) Listed(o export.Object) {
	h.in.m.listed.Incr(1)
	h.in.observeHour(o.Hour)
}

func (h bciHooks) Skipped(o export.Object) {
	h.in.m.skipped.Incr(1)
	h.in.nSkipped.Add(1)
	h.in.log.Debugf("Skipping Braze Currents object %s: checkpointed", o.Name)
}

func (h bciHooks) Unsettled(o export.Object, age time.Duration) {
	h.in.log.Debugf("Braze Currents object %s was modified %s ago; reading it once it has settled", o.Name, age.Round(time.Second))
}

func (h bciHooks) Passed(n int, err error, wait time.Duration) {
	in := h.in
	in.updateLag()
	if err != nil {
		in.log.Errorf("Listing the Braze Currents export %s failed, retrying in %s: %v", in.conf.where, wait, err)
		return
	}
	in.log.Debugf("Listed the Braze Currents export %s: %d new objects", in.conf.where, n)
}

func (h bciHooks) Retrying(o export.Object, attempt int, nacked bool) {
	if nacked {
		h.in.log.Warnf("Events of Braze Currents object %s were rejected downstream; reading the undelivered ones again (attempt %d)", o.Name, attempt)
	}
	h.in.m.retries.Incr(1)
}

func (h bciHooks) Finished() {
	in := h.in
	in.state.decide(in.ctx)
	failed := in.nFailed.Load()
	in.log.Infof("Read the Braze Currents export %s: %d objects completed, %d failed, %d skipped as checkpointed",
		in.conf.where, in.nCompleted.Load(), failed, in.nSkipped.Load())
	if failed > 0 {
		in.log.Errorf("%d Braze Currents objects failed in this run (named above, with `currents-report` listing them); the run exits with code %d", failed, runstatus.ExitObjectsFailed)
	}
}

// recordFailed counts, quarantines and checkpoints an object as failed, so
// that a restart does not read it again.
func (in *brazeCurrentsInput) recordFailed(ctx context.Context, name, class, what string, events int, cause error) {
	in.m.failed.Incr(1, class)
	in.nFailed.Add(1)
	runstatus.ObjectFailed()
	cp := bciNewCheckpoint(export.StatusFailed, name, events, cause)
	where := ""
	if in.quarantine != nil {
		where = "; described in " + in.conf.quarantinePrefix + export.QuarantineKey(name) + " of " + export.Where(in.conf.quarantineURL)
		in.state.do(ctx, func(ctx context.Context) {
			if err := in.quarantine.WriteAll(ctx, export.QuarantineKey(name), cp, nil); err != nil {
				in.log.Errorf("Writing the quarantine record of Braze Currents object %s failed: %v", name, err)
			}
		})
	}
	in.log.Errorf("Braze Currents object %s %s after %d events, recorded as failed (%s)%s: %v", name, what, events, class, where, cause)
	in.checkpoint(ctx, name, cp)
}

func (in *brazeCurrentsInput) observeHour(h time.Time) {
	if h.IsZero() {
		return
	}
	u := h.Unix()
	for {
		cur := in.newestHour.Load()
		if u <= cur {
			return
		}
		if in.newestHour.CompareAndSwap(cur, u) {
			in.updateLag()
			return
		}
	}
}

func (in *brazeCurrentsInput) updateLag() {
	newest := in.newestHour.Load()
	if newest == 0 {
		return
	}
	lag := time.Now().Unix() - (newest + 3600)
	in.m.lag.Set(max(lag, 0))
}
