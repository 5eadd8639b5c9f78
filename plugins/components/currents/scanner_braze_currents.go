// Package currents registers the Benthos components that read Braze Currents
// exports: the `braze_currents` scanner and input. They adapt the plain-Go
// decoder of plugins/currents, imported as decoder: that package is named
// currents too, and currents.X in this one would not say which is meant.
package currents

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/currents-mparticle/currents-mparticle/internal/runstatus"
	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
)

const (
	bcsFieldMaxBatchSize = "max_batch_size"
	bcsFieldEventType    = "event_type"
)

func brazeCurrentsScannerSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Version("0.1.0").
		Summary("Decodes Braze Currents export files (Avro object container files) into one structured message per event.").
		Description(`
Every file is decoded with the writer schema in its own header, so files written by any
Currents schema version decode, fields added later appear by themselves and int/long or
required/nullable changes are tolerated. Codecs `+"`null`, `deflate`, `snappy` and `zstandard`"+`
are supported. A goroutine decodes ahead of the pipeline, one message batch at most; memory is
bounded by two Avro blocks (the one being decoded and the one its waiting batch came from) whatever
the size of the file.

`+decodeLimitsDescription+`

Each message holds the event's fields as an object (null fields as `+"`null`"+`; absent fields
are absent) with this metadata:

| key | value |
|---|---|
| `+"`currents_event_type`"+` | the event type, e.g. `+"`users.messages.email.Open`"+` (from the `+"`event_type=`"+` folder of the key when present, else the schema name) |
| `+"`currents_id`"+` | the event id, Braze's only deduplication key |
| `+"`currents_time`"+` | the event time, Unix seconds |
| `+"`currents_object`"+` | the file path or object key, when the input provides it |
| `+"`currents_date`"+` | the `+"`date=`"+` hour of the key (when Braze queued the event) |
| `+"`currents_schema`"+` | the writer schema's record full name |
| `+"`currents_integration_id`"+` | the Currents integration id from the key |

A file that cannot be decoded (not Avro, truncated, bad sync marker, unknown codec, corrupt
block, past a decode limit) is never a clean end: the error names the object, the block and the byte offset, is
logged, counted in the metrics `+"`currents_decode_errors`"+` and `+"`currents_objects_failed`"+` (label
`+"`class`"+`) and returned, so the input nacks the source (an SQS message becomes visible again, for
instance). Events of the blocks before the damage are still delivered.

A source that fails mid-object (a connection reset) is not taken for a corrupt file: the object
is counted as `+"`currents_objects_failed{class=\"unreadable\"}`"+` and named in the log, and its later
events are read only if the input reads the object again. `+"`aws_s3`"+` with `+"`sqs`"+` does, once the
message is visible again; the inputs that list a bucket (`+"`aws_s3`"+` without `+"`sqs`"+`,
`+"`gcp_cloud_storage`"+`, `+"`azure_blob_storage`"+`) read each object once, so those events are lost:
`+"`currents-mparticle lint`"+` warns of that combination, and a run that ends by itself exits with code 3
when an object failed. The `+"`braze_currents`"+` input reads such an object again (and tells a body cut
short from a truncated file by the object's size, which a scanner is not told).

The stock `+"`avro`"+` scanner of Benthos v4.27 yields nothing for these files; use this one.`).
		Fields(
			service.NewIntField(bcsFieldMaxBatchSize).
				Description("The most events in one message batch. Each Avro block is emitted as one or more batches of at most this many messages.").
				Default(500).
				Advanced(),
			service.NewStringField(bcsFieldEventType).
				Description("Force the event type of every file, for files whose key has no `event_type=` folder and whose schema name is not Braze's. Empty: derive it.").
				Default("").
				Advanced(),
			maxInFlightBytesField(),
			decodeLimitsField(),
		).
		Example("Read a local export", "Decode every export file under a folder and print the events.", `
input:
  file:
    paths: [ ./currents/**/*.avro ]
    scanner:
      braze_currents: {}
output:
  stdout: {}
`).
		Example("Competing consumers on S3 notifications", "Several instances share one export: each file is read once, a failure nacks the SQS message.", `
input:
  aws_s3:
    bucket: my-currents-bucket
    sqs:
      url: https://sqs.us-east-1.amazonaws.com/123456789012/currents-new-objects
    scanner:
      braze_currents: {}
`)
}

func init() {
	err := service.RegisterBatchScannerCreator("braze_currents", brazeCurrentsScannerSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchScannerCreator, error) {
			return brazeCurrentsScannerFromParsed(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

type brazeCurrentsScannerCreator struct {
	maxBatch  int
	eventType string
	limits    decoder.ReaderOptions // the decode limits
	log       *service.Logger
	decodeErr *service.MetricCounter
	failed    *service.MetricCounter // objects not read to their end, by class
	events    *service.MetricCounter
	fails     func()    // a test's hook: called for each failure logged
	budget    *inFlight // max_in_flight_bytes, shared by every object the input reads
}

func brazeCurrentsScannerFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (*brazeCurrentsScannerCreator, error) {
	s := &brazeCurrentsScannerCreator{log: mgr.Logger()}
	var err error
	if s.maxBatch, err = conf.FieldInt(bcsFieldMaxBatchSize); err != nil {
		return nil, err
	}
	if s.maxBatch < 1 {
		return nil, errors.New("max_batch_size must be at least 1")
	}
	if s.eventType, err = conf.FieldString(bcsFieldEventType); err != nil {
		return nil, err
	}
	if s.limits, err = decodeLimitsFromParsed(conf); err != nil {
		return nil, err
	}
	maxBytes, err := conf.FieldInt(fieldMaxInFlightBytes)
	if err != nil {
		return nil, err
	}
	if s.budget, err = newInFlight(maxBytes); err != nil {
		return nil, err
	}
	s.failed, s.decodeErr = newFailureCounters(mgr.Metrics())
	s.events = mgr.Metrics().NewCounter("currents_events_decoded", "event_type")
	return s, nil
}

func (s *brazeCurrentsScannerCreator) Create(rdr io.ReadCloser, aFn service.AckFunc, details *service.ScannerSourceDetails) (service.BatchScanner, error) {
	// The header is read on the first NextBatch, not here: an error from
	// Create makes the file input retry the same file for ever, while an
	// error from NextBatch moves it on to the next file.
	return &budgetedScanner{BatchScanner: service.AutoAggregateBatchScannerAcks(&brazeCurrentsScanner{
		creator: s,
		rdr:     rdr,
		object:  details.Name(),
	}, aFn), budget: s.budget}, nil
}

func (s *brazeCurrentsScannerCreator) Close(context.Context) error { return nil }

// brazeCurrentsScanner decodes ahead: a goroutine decodes the file and
// builds the next message batch while Benthos's input goroutine hands the
// last one on, so decoding does not wait for the pipeline nor the pipeline
// for decoding (the braze_currents input reads the same way). At most one
// batch waits, built, besides the one being built.
type brazeCurrentsScanner struct {
	creator *brazeCurrentsScannerCreator
	rdr     io.ReadCloser
	src     *objectReader // rdr, counted: tells a failing source from a corrupt file
	object  string

	ahead chan scannedBatch // from the decoding goroutine; its last item has the error or io.EOF
	stop  chan struct{}     // closed by Close: the goroutine stops
	done  chan struct{}     // closed when the goroutine has returned
	err   error             // the error or io.EOF that ended the file, once received

	// Owned by the decoding goroutine.
	dec     *decoder.Reader
	events  *eventSource
	pending []decoder.Event
	read    int // events decoded so far
}

// scannedBatch is one result of the decoding goroutine: a batch, or the
// error (io.EOF at the end) that ends the file.
type scannedBatch struct {
	batch service.MessageBatch
	err   error
}

func (b *brazeCurrentsScanner) NextBatch(ctx context.Context) (service.MessageBatch, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.ahead == nil {
		b.ahead, b.stop, b.done = make(chan scannedBatch, 1), make(chan struct{}), make(chan struct{})
		go b.decodeAhead()
	}
	select {
	case r := <-b.ahead:
		if r.err != nil {
			b.err = r.err
		}
		return r.batch, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// decodeAhead decodes the file into batches until its end, an error or
// Close.
func (b *brazeCurrentsScanner) decodeAhead() {
	defer close(b.done)
	defer func() {
		if b.dec != nil {
			_ = b.dec.Close()
		}
	}()
	for {
		batch, err := b.next()
		select {
		case b.ahead <- scannedBatch{batch: batch, err: err}:
		case <-b.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// next decodes the next batch: at most max_batch_size events of the
// current block.
func (b *brazeCurrentsScanner) next() (service.MessageBatch, error) {
	if b.dec == nil {
		if err := b.open(); err != nil {
			return nil, b.fail(err)
		}
	}
	for len(b.pending) == 0 {
		evs, err := b.dec.NextBlock()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, b.fail(err)
		}
		b.pending = evs
	}
	n := min(len(b.pending), b.creator.maxBatch)
	batch := make(service.MessageBatch, n)
	msgs := newEventMessages(b.pending[:n], b.events)
	for i, ev := range b.pending[:n] {
		batch[i] = msgs.message(i, ev)
	}
	b.pending = b.pending[n:]
	b.read += n
	b.creator.events.Incr(int64(n), b.dec.EventType())
	return batch, nil
}

func (b *brazeCurrentsScanner) open() error {
	opts := b.creator.limits
	opts.Object, opts.EventType = b.object, b.creator.eventType
	b.src = &objectReader{r: b.rdr}
	dec, err := decoder.NewReader(b.src, opts)
	if err != nil {
		return err
	}
	b.dec = dec
	// A key that is not in Braze's layout still decodes; it only lacks the
	// date and integration metadata.
	key, _ := decoder.ParseObjectKey(b.object)
	b.events = newEventSource(b.object, dec.RecordName(), key)
	return nil
}

// fail makes the end of an object loud: logged with the object, counted by
// class, and reported for the exit code. A source that failed (a connection
// reset mid-body) is told from a corrupt file: its object is unreadable,
// not a decode error, and the log says what becomes of the rest of it. An
// error after Close is the closed source's, not the file's: quiet.
func (b *brazeCurrentsScanner) fail(err error) error {
	select {
	case <-b.stop:
		return err
	default:
	}
	if b.creator.fails != nil {
		b.creator.fails()
	}
	runstatus.ObjectFailed()
	if b.src != nil && b.src.err != nil {
		err = fmt.Errorf("reading %s failed after %d bytes and %d events: %w", b.object, b.src.n, b.read, b.src.err)
		b.creator.failed.Incr(1, classUnreadable)
		b.creator.log.Errorf("Braze Currents object %s could not be read to its end (%s), its later events were not read: "+
			"an input reads it again only if it can (aws_s3 with sqs: once the message is visible again; listing-mode aws_s3, "+
			"gcp_cloud_storage and azure_blob_storage do not: use the braze_currents input, which reads it again): %v",
			b.object, classUnreadable, err)
		return err
	}
	class := decoder.ErrorClass(err)
	b.creator.decodeErr.Incr(1, class)
	b.creator.failed.Incr(1, class)
	b.creator.log.Errorf("Braze Currents object %q could not be decoded: %v", b.object, err)
	return err
}

func (b *brazeCurrentsScanner) Close(ctx context.Context) error {
	// Closing the source first ends a read the goroutine may be blocked in.
	err := b.rdr.Close()
	if b.stop != nil {
		close(b.stop)
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err() // the goroutine ends with its next read or send
		}
	}
	return err
}
