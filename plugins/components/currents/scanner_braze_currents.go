// Package currents registers the Benthos components that read Braze Currents
// exports: the `braze_currents` scanner and input. They adapt the plain-Go
// decoder of plugins/currents, imported as decoder: that package is named
// currents too, and currents.X in this one would not say which is meant.
package currents

import (
	"context"
	"errors"
	"io"

	"github.com/benthosdev/benthos/v4/public/service"

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
are supported; memory is bounded by one Avro block whatever the size of the file.

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
logged, counted in the metric `+"`currents_decode_errors`"+` and returned, so the input nacks
the source (an SQS message becomes visible again, for instance). Events of the blocks before
the damage are still delivered.

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
	events    *service.MetricCounter
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
	s.decodeErr = mgr.Metrics().NewCounter("currents_decode_errors", "class")
	s.events = mgr.Metrics().NewCounter("currents_events_decoded", "event_type")
	return s, nil
}

func (s *brazeCurrentsScannerCreator) Create(rdr io.ReadCloser, aFn service.AckFunc, details *service.ScannerSourceDetails) (service.BatchScanner, error) {
	// The header is read on the first NextBatch, not here: an error from
	// Create makes the file input retry the same file for ever, while an
	// error from NextBatch moves it on to the next file.
	return service.AutoAggregateBatchScannerAcks(&brazeCurrentsScanner{
		creator: s,
		rdr:     rdr,
		object:  details.Name(),
	}, aFn), nil
}

func (s *brazeCurrentsScannerCreator) Close(context.Context) error { return nil }

type brazeCurrentsScanner struct {
	creator *brazeCurrentsScannerCreator
	rdr     io.ReadCloser
	object  string
	dec     *decoder.Reader
	src     *eventSource
	pending []decoder.Event
}

func (b *brazeCurrentsScanner) NextBatch(ctx context.Context) (service.MessageBatch, error) {
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
	msgs := newEventMessages(b.pending[:n], b.src)
	for i, ev := range b.pending[:n] {
		batch[i] = msgs.message(i, ev)
	}
	b.pending = b.pending[n:]
	b.creator.events.Incr(int64(n), b.dec.EventType())
	return batch, nil
}

func (b *brazeCurrentsScanner) open() error {
	opts := b.creator.limits
	opts.Object, opts.EventType = b.object, b.creator.eventType
	dec, err := decoder.NewReader(b.rdr, opts)
	if err != nil {
		return err
	}
	b.dec = dec
	// A key that is not in Braze's layout still decodes; it only lacks the
	// date and integration metadata.
	key, _ := decoder.ParseObjectKey(b.object)
	b.src = newEventSource(b.object, dec.RecordName(), key)
	return nil
}

// fail makes a decode error loud: logged with the object, counted by class.
func (b *brazeCurrentsScanner) fail(err error) error {
	b.creator.decodeErr.Incr(1, decoder.ErrorClass(err))
	b.creator.log.Errorf("Braze Currents object %q could not be decoded: %v", b.object, err)
	return err
}

func (b *brazeCurrentsScanner) Close(context.Context) error {
	if b.dec != nil {
		_ = b.dec.Close()
	}
	return b.rdr.Close()
}
