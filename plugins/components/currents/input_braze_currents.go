package currents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	// The bucket drivers the url field accepts.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/currents/export"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
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
	bciFieldMinObjectAge         = "min_object_age"

	bciMaxConcurrentObjects = 256
	// A nacked or unreadable object is read again after a delay doubling
	// from bciRetryMin to bciRetryMax, so a downstream that rejects
	// everything does not turn the input into a busy loop.
	bciRetryMin = time.Second
	bciRetryMax = time.Minute

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
`+"`currents_id`"+` if duplicates matter. A restart skips completed and failed objects. The cache key
is `+"`checkpoint_prefix`"+` + the hex SHA-256 of the object's full key (fixed length, valid for every
cache: file names, memcached keys); the value is JSON with the status, the key, the event count and,
for failures, the reason. To read a failed object again, delete its key.

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
			service.NewDurationField(bciFieldMinObjectAge).
				Description("In watch mode, an object modified less than this long ago is left for a later pass: a file still being written (a `file://` export, or a tool copying into the bucket) is read once it has settled, and an object that ends early (truncated) while it was modified within this time is read again later rather than failed. In any mode, an object that ends early and whose size changed since it was listed is read again later.").
				Default("30s").
				Advanced(),
			service.NewStringField(bciFieldQuarantine).
				Description("A url (same schemes as `url`) under which a failed object's reason is written as `<key>.error.json`. Empty: failures are only logged, counted and checkpointed.").
				Example("s3://my-currents-bucket/currents-quarantine?region=us-east-1").
				Default(""),
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
	err := service.RegisterBatchInput("braze_currents", brazeCurrentsInputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchInput, error) {
			return newBrazeCurrentsInputFromParsed(conf, mgr, bciOpenBucket)
		})
	if err != nil {
		panic(err)
	}
}

// bciOpener opens a bucket url; bciOpenBucket outside tests.
type bciOpener func(ctx context.Context, url string) (*blob.Bucket, error)

type bciConfig struct {
	bucketURL        string
	prefix           string
	quarantineURL    string
	quarantinePrefix string
	types            currents.TypeFilter
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
	minAge           time.Duration
	limits           currents.ReaderOptions // decode_limits
}

func bciConfigFromParsed(conf *service.ParsedConfig, now time.Time) (c bciConfig, err error) {
	raw, err := conf.FieldString(bciFieldURL)
	if err != nil {
		return c, err
	}
	if c.bucketURL, c.prefix, err = bciSplitURL(raw); err != nil {
		return c, fmt.Errorf("%s: %w", bciFieldURL, err)
	}
	if raw, err = conf.FieldString(bciFieldQuarantine); err != nil {
		return c, err
	}
	if raw != "" {
		if c.quarantineURL, c.quarantinePrefix, err = bciSplitURL(raw); err != nil {
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
	if c.types, err = currents.NewTypeFilter(include, exclude); err != nil {
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
	if c.minAge, err = conf.FieldDuration(bciFieldMinObjectAge); err != nil {
		return c, err
	}
	if c.minAge < 0 {
		return c, fmt.Errorf("%s must not be negative", bciFieldMinObjectAge)
	}
	if c.limits, err = decodeLimitsFromParsed(conf); err != nil {
		return c, err
	}
	return c, nil
}

// bciSplitURL splits a url into the url gocloud opens as a bucket and the
// key prefix inside it. For cloud schemes the path is the prefix (opening the
// whole url would make the drivers reject or ignore it); for file:// the path
// is the folder fileblob opens, so there is no prefix.
func bciSplitURL(raw string) (bucketURL, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	switch u.Scheme {
	case "":
		return "", "", fmt.Errorf("%q has no scheme: want s3://, gs://, azblob://, file:// or mem://", raw)
	case "file":
		if u.Path == "" && u.Host == "" {
			return "", "", fmt.Errorf("%q names no folder", raw)
		}
		return raw, "", nil
	}
	prefix = strings.TrimPrefix(u.Path, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	u.Path, u.RawPath = "", ""
	return u.String(), prefix, nil
}

type bciMetrics struct {
	listed, skipped, read, completed, retries, bytes *service.MetricCounter
	failed, decodeErr, events                        *service.MetricCounter
	lag                                              *service.MetricGauge
}

type brazeCurrentsInput struct {
	conf bciConfig
	mgr  *service.Resources
	log  *service.Logger
	open bciOpener
	m    bciMetrics

	bucket     *blob.Bucket
	quarantine *blob.Bucket
	lister     *export.Lister

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	work   chan *bciObject
	out    chan bciBatch
	done   chan struct{} // closed once a one-pass input has settled every object

	mu         sync.Mutex
	unresolved int
	walkDone   bool
	doneClosed bool

	retryMu   sync.Mutex
	retries   []bciRetry
	retryWake chan struct{}

	newestHour atomic.Int64 // Unix seconds of the newest date= hour listed

	// Totals of this run, for the summary a one-pass input logs at its end.
	nCompleted, nFailed, nSkipped atomic.Int64
}

type bciBatch struct {
	msgs service.MessageBatch
	ack  service.AckFunc
}

type bciRetry struct {
	o   *bciObject
	due time.Time
}

// bciObject is one object between listing and its checkpoint. It may be
// read several times (after a nack or a bucket error); batches acknowledged
// in an earlier attempt are skipped in the next one.
type bciObject struct {
	export.Object

	mu          sync.Mutex
	attempt     int
	acked       map[int]bool   // batch sequence numbers acknowledged so far
	delivered   map[int][]bool // messages delivered of batches nacked in part
	outstanding int            // batches of this attempt not yet acked or nacked
	reading     bool
	nacked      bool
	refusedNow  bool  // downstream refused a message of this attempt for good
	refused     int   // attempts in which downstream refused a message for good
	lastNack    error // the latest refusal for good, for the failed record
	ioErr       error // a bucket error: read again later
	corrupt     error // a decode error: record the object as failed
	events      int   // events read in this attempt, skipped batches included
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
	return &brazeCurrentsInput{
		conf: c,
		mgr:  mgr,
		log:  mgr.Logger(),
		open: open,
		m: bciMetrics{
			listed:    met.NewCounter("currents_objects_listed"),
			skipped:   met.NewCounter("currents_objects_skipped"),
			read:      met.NewCounter("currents_objects_read"),
			completed: met.NewCounter("currents_objects_completed"),
			retries:   met.NewCounter("currents_object_retries"),
			bytes:     met.NewCounter("currents_bytes_read"),
			failed:    met.NewCounter("currents_objects_failed", "class"),
			decodeErr: met.NewCounter("currents_decode_errors", "class"),
			events:    met.NewCounter("currents_events_read", "event_type"),
			lag:       met.NewGauge("currents_lag_seconds"),
		},
	}, nil
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
	if err := in.probeCheckpoint(ctx); err != nil {
		return err
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
		return fmt.Errorf("export bucket %s: %w", in.conf.bucketURL, err)
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
	in.lister = &export.Lister{Bucket: b, Prefix: in.conf.prefix, Types: in.conf.types, Shard: in.conf.shard}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.work = make(chan *bciObject)
	in.out = make(chan bciBatch)
	in.done = make(chan struct{})
	in.retryWake = make(chan struct{}, 1)
	in.wg.Add(2 + in.conf.maxObjects)
	go in.walkLoop()
	go in.retryLoop()
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
	case <-in.done:
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
	err := in.bucket.Close()
	if in.quarantine != nil {
		err = errors.Join(err, in.quarantine.Close())
	}
	return err
}

// walkLoop lists the export (once, or every poll interval in watch mode) and
// hands each new object that is not checkpointed to the readers.
func (in *brazeCurrentsInput) walkLoop() {
	defer in.wg.Done()
	ctx := in.ctx
	// seen holds the objects handed out by this process, by full key, with
	// their hour, so that a new pass (a poll, or a retry after a listing
	// error) does not hand them out again. Entries of hours no later pass
	// will list are dropped as the walk moves on, so the set stays as small
	// as the hours a pass looks at, however long the range.
	seen := map[string]time.Time{}
	lower := in.conf.rng.Since
	failures := 0
	for {
		passStart := time.Now()
		// The next pass starts at the hour this one reaches (one pass) or
		// at watch_lookback before this pass (watch): older entries of seen
		// are not needed once the walk has passed them.
		keepFrom := time.Time{}
		if in.conf.watch {
			keepFrom = passStart.Add(-in.conf.lookback)
		}
		var last time.Time
		var unsettled time.Time // earliest hour of an object left for a later pass
		dispatched := 0
		err := in.lister.Walk(ctx, export.Range{Since: lower, Until: in.conf.rng.Until}, func(o export.Object) error {
			if o.Hour.After(last) && !last.IsZero() {
				bciForget(seen, bciEarlier(o.Hour, keepFrom))
			}
			if _, ok := seen[o.Name]; ok {
				return nil
			}
			if in.conf.watch && in.conf.minAge > 0 && !o.ModTime.IsZero() && time.Since(o.ModTime) < in.conf.minAge {
				// Maybe still being written: not seen yet, so a later
				// pass (within watch_lookback) hands it out once settled.
				in.log.Debugf("Braze Currents object %s was modified %s ago; reading it once it has settled", o.Name, time.Since(o.ModTime).Round(time.Second))
				if !o.Hour.IsZero() && (unsettled.IsZero() || o.Hour.Before(unsettled)) {
					unsettled = o.Hour
				}
				return nil
			}
			done, err := in.checkpointed(ctx, o.Name)
			if err != nil {
				return err
			}
			seen[o.Name] = o.Hour
			in.m.listed.Incr(1)
			in.observeHour(o.Hour)
			if !o.Hour.IsZero() {
				last = o.Hour
			}
			if done {
				in.m.skipped.Incr(1)
				in.nSkipped.Add(1)
				in.log.Debugf("Skipping Braze Currents object %s: checkpointed", o.Name)
				return nil
			}
			dispatched++
			return in.dispatch(ctx, o)
		})
		if ctx.Err() != nil {
			return
		}
		in.updateLag()
		wait := in.conf.pollInterval
		if err != nil {
			failures++
			wait = bciBackoff(failures)
			in.log.Errorf("Listing the Braze Currents export %s%s failed, retrying in %s: %v", in.conf.bucketURL, in.conf.prefix, wait, err)
			// Hours are listed in order: a new pass resumes at the hour
			// reached; seen covers the objects of that hour already out.
			if last.After(lower) {
				lower = last
			}
		} else {
			failures = 0
			in.log.Debugf("Listed the Braze Currents export %s%s: %d new objects", in.conf.bucketURL, in.conf.prefix, dispatched)
			if !in.conf.watch {
				in.mu.Lock()
				in.walkDone = true
				in.checkDoneLocked()
				in.mu.Unlock()
				return
			}
			lower = passStart.Add(-in.conf.lookback).UTC()
			if in.conf.rng.Since.After(lower) {
				lower = in.conf.rng.Since
			}
			// An object left to settle is listed again, however old its hour.
			if !unsettled.IsZero() && unsettled.Before(lower) {
				lower = unsettled
			}
		}
		// A watch pass after a listing error resumes late, but the pass after
		// it looks back again: keep what that one needs.
		bciForget(seen, bciEarlier(lower, keepFrom))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
}

// bciForget drops the entries of seen whose hour folder ends at or before
// t: a range starting at t does not list them.
func bciForget(seen map[string]time.Time, t time.Time) {
	for k, h := range seen {
		if !h.IsZero() && !h.Add(time.Hour).After(t) {
			delete(seen, k)
		}
	}
}

// bciEarlier is the earlier of a and b, where a zero b means no bound.
func bciEarlier(a, b time.Time) time.Time {
	if !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func bciBackoff(n int) time.Duration {
	d := bciRetryMin
	for i := 1; i < n && d < bciRetryMax; i++ {
		d *= 2
	}
	return min(d, bciRetryMax)
}

func (in *brazeCurrentsInput) dispatch(ctx context.Context, o export.Object) error {
	obj := &bciObject{Object: o, acked: map[int]bool{}, delivered: map[int][]bool{}}
	in.mu.Lock()
	in.unresolved++
	in.mu.Unlock()
	select {
	case in.work <- obj:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in *brazeCurrentsInput) readLoop() {
	defer in.wg.Done()
	for {
		select {
		case o := <-in.work:
			in.read(o)
		case <-in.ctx.Done():
			return
		}
	}
}

// retryLoop hands objects due for another attempt back to the readers.
func (in *brazeCurrentsInput) retryLoop() {
	defer in.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		in.retryMu.Lock()
		now := time.Now()
		var due []*bciObject
		next := now.Add(time.Hour)
		kept := in.retries[:0]
		for _, r := range in.retries {
			if !r.due.After(now) {
				due = append(due, r.o)
				continue
			}
			kept = append(kept, r)
			if r.due.Before(next) {
				next = r.due
			}
		}
		in.retries = kept
		in.retryMu.Unlock()
		for _, o := range due {
			select {
			case in.work <- o:
			case <-in.ctx.Done():
				return
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-in.retryWake:
		case <-in.ctx.Done():
			return
		}
	}
}

func (in *brazeCurrentsInput) retryLater(o *bciObject) {
	o.mu.Lock()
	o.attempt++
	delay := bciBackoff(o.attempt)
	o.mu.Unlock()
	in.m.retries.Incr(1)
	in.retryMu.Lock()
	in.retries = append(in.retries, bciRetry{o: o, due: time.Now().Add(delay)})
	in.retryMu.Unlock()
	select {
	case in.retryWake <- struct{}{}:
	default:
	}
}

// bciObjectReader counts the bytes read from the bucket and keeps the first
// bucket error, which tells a network failure from a corrupt object: the
// decoder reports both as a truncated read.
type bciObjectReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *bciObjectReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// read reads one object to its end (or to the damage), sending its events in
// batches; the object settles when the last batch is acknowledged.
func (in *brazeCurrentsInput) read(o *bciObject) {
	ctx := in.ctx
	o.mu.Lock()
	o.reading, o.nacked, o.refusedNow, o.ioErr, o.corrupt, o.outstanding, o.events = true, false, false, nil, nil, 0, 0
	attempt := o.attempt
	o.mu.Unlock()
	in.log.Debugf("Reading Braze Currents object %s (attempt %d)", o.Name, attempt+1)

	r, err := in.bucket.NewReader(ctx, o.Key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			in.log.Warnf("Braze Currents object %s vanished before it was read; skipping it", o.Name)
			in.resolve()
			return
		}
		in.endRead(ctx, o, fmt.Errorf("open %s: %w", o.Name, err), nil)
		return
	}
	defer r.Close()
	src := &bciObjectReader{r: r}
	defer func() { in.m.bytes.Incr(src.n) }()

	opts := in.conf.limits
	opts.Object = o.Name
	dec, err := currents.NewReader(src, opts)
	if err != nil {
		in.endRead(ctx, o, err, src)
		return
	}
	defer dec.Close()
	eventType := dec.EventType()
	if o.EventType == "" && !in.conf.types.Match(eventType) {
		// The key did not say the type; the schema does, and it is not
		// wanted. Not checkpointed: a later config may want it.
		in.log.Debugf("Skipping Braze Currents object %s: event type %s not selected", o.Name, eventType)
		in.resolve()
		return
	}
	key, _ := currents.ParseObjectKey(o.Name)
	es := newEventSource(o.Name, dec.RecordName(), key)

	seq := 0
	for {
		evs, err := dec.NextBlock()
		if errors.Is(err, io.EOF) {
			in.endRead(ctx, o, nil, src)
			return
		}
		if err != nil {
			in.endRead(ctx, o, err, src)
			return
		}
		for len(evs) > 0 {
			n := min(len(evs), in.conf.maxBatch)
			chunk := evs[:n]
			evs = evs[n:]
			seq++
			o.mu.Lock()
			o.events += n
			skip, done := o.acked[seq], o.delivered[seq]
			if !skip {
				o.outstanding++
			}
			o.mu.Unlock()
			// Reading goes on after a nack: delivered messages are never
			// sent again (acked batches and delivered messages are
			// skipped), so the other events of the object keep flowing.
			if skip {
				continue
			}
			batch := make(service.MessageBatch, 0, n)
			var origin []int // origin[k]: chunk index of batch[k]; nil when the same
			msgs := newEventMessages(chunk, es)
			for i, ev := range chunk {
				if done != nil {
					if done[i] {
						continue
					}
					origin = append(origin, i)
				}
				batch = append(batch, msgs.message(i, ev))
			}
			in.m.events.Incr(int64(len(batch)), eventType)
			ack := in.ackFunc(o, seq, n, origin, batch)
			select {
			case in.out <- bciBatch{msgs: batch, ack: ack}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// stillGrowing reports whether an object that ended early may still be
// being written: its size changed since it was listed, or (in watch mode) it
// was modified within min_object_age. Such an object is read again later,
// not failed.
func (in *brazeCurrentsInput) stillGrowing(ctx context.Context, o *bciObject, de *currents.DecodeError) bool {
	if !errors.Is(de, currents.ErrTruncatedBlock) && !errors.Is(de, currents.ErrTruncatedHeader) && !errors.Is(de, currents.ErrNotContainer) {
		return false
	}
	attrs, err := in.bucket.Attributes(ctx, o.Key)
	if err != nil {
		return false
	}
	grew := attrs.Size != o.Size
	// The next read compares with this size: an object that stops changing
	// and still ends early is corrupt after all.
	o.Size = attrs.Size
	return grew || (in.conf.watch && time.Since(attrs.ModTime) < in.conf.minAge)
}

// endRead closes an attempt: err is nil at the end of the object, a bucket
// error, or a decode error.
func (in *brazeCurrentsInput) endRead(ctx context.Context, o *bciObject, err error, src *bciObjectReader) {
	if ctx.Err() != nil {
		return // shutting down: the object stays unsettled and is read after a restart
	}
	in.m.read.Incr(1)
	var ioErr, corrupt error
	if err != nil {
		var de *currents.DecodeError
		switch {
		case src == nil || src.err != nil || !errors.As(err, &de):
			ioErr = err
			in.log.Warnf("Reading Braze Currents object %s failed, reading it again later: %v", o.Name, err)
		case in.stillGrowing(ctx, o, de):
			ioErr = err
			in.log.Warnf("Braze Currents object %s ends early but is still being written; reading it again later: %v", o.Name, err)
		default:
			corrupt = err
			in.m.decodeErr.Incr(1, de.Class.Error())
		}
	}
	o.mu.Lock()
	o.reading = false
	o.ioErr, o.corrupt = ioErr, corrupt
	settle := o.outstanding == 0
	o.mu.Unlock()
	if settle {
		in.settle(ctx, o)
	}
}

// ackFunc settles one batch: the chunk of n events at seq, of which the
// batch holds those at origin (all of them when origin is nil). A batch error
// names the messages that failed: the others are recorded as delivered and
// are not sent again when the object is read again.
func (in *brazeCurrentsInput) ackFunc(o *bciObject, seq, n int, origin []int, batch service.MessageBatch) service.AckFunc {
	size := len(batch)
	idx := batch.Index()
	return func(ctx context.Context, err error) error {
		var delivered []bool
		refused := false
		if err != nil {
			delivered, refused = bciReadNack(err, size, idx)
		}
		o.mu.Lock()
		o.outstanding--
		switch {
		case err == nil:
			o.acked[seq] = true
			delete(o.delivered, seq)
		default:
			o.nacked = true
			if refused {
				o.refusedNow, o.lastNack = true, err
			}
			if delivered != nil {
				done := o.delivered[seq]
				if done == nil {
					done = make([]bool, n)
					o.delivered[seq] = done
				}
				for k, ok := range delivered {
					if !ok {
						continue
					}
					if origin != nil {
						done[origin[k]] = true
					} else {
						done[k] = true
					}
				}
			}
		}
		settle := !o.reading && o.outstanding == 0
		o.mu.Unlock()
		if settle {
			in.settle(ctx, o)
		}
		return nil
	}
}

// bciReadNack reads a nack in one walk of its batch error. delivered says
// which of the batch's n messages went through, nil when it cannot tell (a
// plain error: all of them failed). Benthos passes the output's batch error,
// or, past a fallback, the error of the messages the fallback's last output
// refused: a message it does not name went through an earlier output. An
// error naming a message the indexer does not know (a processor replaced it)
// tells nothing. forGood reports a failure that reading the object again
// cannot mend (a downstream refusal without a fallback), as opposed to one
// that says "later" (an mParticle feed whose credentials are refused for
// now, retries that ran out, a shutdown).
func bciReadNack(err error, n int, idx *service.Indexer) (delivered []bool, forGood bool) {
	var berr *service.BatchError
	if !errors.As(err, &berr) || berr.IndexedErrors() == 0 {
		return nil, !client.IsTemporary(err)
	}
	delivered = make([]bool, n)
	for i := range delivered {
		delivered[i] = true
	}
	known := true
	berr.WalkMessagesIndexedBy(idx, func(i int, _ *service.Message, merr error) bool {
		if merr == nil {
			return true
		}
		if !client.IsTemporary(merr) {
			forGood = true
		}
		if i < 0 || i >= n {
			known = false
		} else {
			delivered[i] = false
		}
		return true
	})
	if !known {
		return nil, forGood
	}
	return delivered, forGood
}

// settle decides an object's fate once it is read and every batch of the
// attempt is acknowledged or nacked. It runs exactly once per attempt.
func (in *brazeCurrentsInput) settle(ctx context.Context, o *bciObject) {
	o.mu.Lock()
	nacked, ioErr, corrupt, events, attempt := o.nacked, o.ioErr, o.corrupt, o.events, o.attempt
	if o.refusedNow {
		o.refused++
	}
	refused, lastNack := o.refused, o.lastNack
	o.mu.Unlock()
	switch {
	case nacked && refused >= in.conf.maxRejected:
		in.recordFailed(ctx, o, bciClassRejected, "kept being refused downstream", events,
			fmt.Errorf("events refused downstream in %d reads (%s %d): %w", refused, bciFieldMaxRejectedAttempts, in.conf.maxRejected, lastNack))
	case nacked || ioErr != nil:
		if nacked {
			in.log.Warnf("Events of Braze Currents object %s were rejected downstream; reading the undelivered ones again (attempt %d)", o.Name, attempt+2)
		}
		in.retryLater(o)
		return
	case corrupt != nil:
		in.recordFailed(ctx, o, bciErrorClass(corrupt), "is corrupt", events, corrupt)
	default:
		in.m.completed.Incr(1)
		in.nCompleted.Add(1)
		in.checkpoint(ctx, o.Name, bciNewCheckpoint("completed", o.Name, events, nil))
	}
	in.resolve()
}

// recordFailed counts, quarantines and checkpoints an object as failed, so
// that a restart does not read it again.
func (in *brazeCurrentsInput) recordFailed(ctx context.Context, o *bciObject, class, what string, events int, cause error) {
	in.m.failed.Incr(1, class)
	in.nFailed.Add(1)
	cp := bciNewCheckpoint("failed", o.Name, events, cause)
	where := ""
	if in.quarantine != nil {
		where = "; described in " + in.conf.quarantinePrefix + o.Name + ".error.json of " + in.conf.quarantineURL
		if err := in.quarantine.WriteAll(ctx, o.Name+".error.json", cp, nil); err != nil {
			where = "; writing its quarantine record failed: " + err.Error()
		}
	}
	in.log.Errorf("Braze Currents object %s %s after %d events, recorded as failed (%s)%s: %v", o.Name, what, events, class, where, cause)
	in.checkpoint(ctx, o.Name, cp)
}

func bciErrorClass(err error) string {
	var de *currents.DecodeError
	if errors.As(err, &de) && de.Class != nil {
		return de.Class.Error()
	}
	return "other"
}

func (in *brazeCurrentsInput) resolve() {
	in.mu.Lock()
	in.unresolved--
	in.checkDoneLocked()
	in.mu.Unlock()
}

func (in *brazeCurrentsInput) checkDoneLocked() {
	if in.walkDone && in.unresolved == 0 && !in.doneClosed {
		in.doneClosed = true
		in.log.Infof("Read the Braze Currents export %s%s: %d objects completed, %d failed, %d skipped as checkpointed",
			in.conf.bucketURL, in.conf.prefix, in.nCompleted.Load(), in.nFailed.Load(), in.nSkipped.Load())
		close(in.done)
	}
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
