package currents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"gocloud.dev/gcerrors"

	"github.com/currents-mparticle/currents-mparticle/internal/export"
	"github.com/currents-mparticle/currents-mparticle/internal/redelivery"
	decoder "github.com/currents-mparticle/currents-mparticle/plugins/currents"
	"github.com/currents-mparticle/currents-mparticle/plugins/mparticle/client"
)

// bciRereadable is the context of every message of the input
// (internal/redelivery).
var bciRereadable = redelivery.Mark(context.Background())

// read reads one object to its end (or to the damage), sending its events in
// batches of at most max_batch_size; the scheduler settles the object once
// the last batch is acknowledged.
func (in *brazeCurrentsInput) read(j *export.Job) {
	ctx := in.ctx
	in.log.Debugf("Reading Braze Currents object %s (attempt %d)", j.Name, j.Attempt())

	r, err := in.bucket.NewReader(ctx, j.Key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			in.log.Warnf("Braze Currents object %s vanished before it was read; skipping it", j.Name)
			j.Skip()
			return
		}
		in.endRead(ctx, j, fmt.Errorf("open %s: %w", j.Name, err), nil)
		return
	}
	defer r.Close()
	src := &objectReader{r: r}
	defer func() { in.m.bytes.Incr(src.n) }()

	opts := in.conf.limits
	opts.Object = j.Name
	dec, err := decoder.NewReader(src, opts)
	if err != nil {
		in.endRead(ctx, j, err, src)
		return
	}
	defer dec.Close()
	eventType := dec.EventType()
	if j.EventType == "" && !in.conf.types.Match(eventType) {
		// The key did not say the type; the schema does, and it is not
		// wanted. Not checkpointed: a later config may want it.
		in.log.Debugf("Skipping Braze Currents object %s: event type %s not selected", j.Name, eventType)
		j.Skip()
		return
	}
	key, _ := decoder.ParseObjectKey(j.Name)
	es := newEventSource(j.Name, dec.RecordName(), key)
	// This input reads refused events again by itself: the output may
	// hand a paused feed's events back at once.
	es.parent = bciRereadable

	for {
		evs, err := dec.NextBlock()
		if errors.Is(err, io.EOF) {
			in.endRead(ctx, j, nil, src)
			return
		}
		if err != nil {
			in.endRead(ctx, j, err, src)
			return
		}
		for len(evs) > 0 {
			n := min(len(evs), in.conf.maxBatch)
			chunk := evs[:n]
			evs = evs[n:]
			c, ok := j.NextChunk(n)
			if !ok {
				continue // delivered by an earlier attempt
			}
			msgs := newEventMessages(chunk, es)
			var batch service.MessageBatch
			if todo := c.Todo(); todo != nil {
				batch = make(service.MessageBatch, 0, len(todo))
				for _, i := range todo {
					batch = append(batch, msgs.message(i, chunk[i]))
				}
			} else {
				batch = make(service.MessageBatch, 0, n)
				for i, ev := range chunk {
					batch = append(batch, msgs.message(i, ev))
				}
			}
			in.m.events.Incr(int64(len(batch)), eventType)
			// Reading waits here while max_in_flight_bytes is spent.
			release, err := in.budget.acquire(ctx, batch)
			if err != nil {
				return // shutting down: the object is read after a restart
			}
			select {
			case in.out <- bciBatch{msgs: batch, ack: bciAckFunc(c, batch, in.state, release)}:
			case <-ctx.Done():
				release()
				return
			}
		}
	}
}

// stillGrowing reports whether an object that ended early may still be
// being written: its size changed since it was listed, or (in watch mode) it
// was modified within min_object_age. Such an object is read again later,
// not failed.
func (in *brazeCurrentsInput) stillGrowing(ctx context.Context, j *export.Job, de *decoder.DecodeError) bool {
	if !endedEarly(de) {
		return false
	}
	attrs, err := in.bucket.Attributes(ctx, j.Key)
	if err != nil {
		return false
	}
	grew := attrs.Size != j.Size
	// The next read compares with this size: an object that stops changing
	// and still ends early is corrupt after all.
	j.Size = attrs.Size
	return grew || (in.conf.watch && time.Since(attrs.ModTime) < in.conf.minAge)
}

// endedEarly reports a decode error that says the bytes ran out: the file
// ends inside its header or a block, or holds nothing at all.
func endedEarly(de *decoder.DecodeError) bool {
	return errors.Is(de, decoder.ErrTruncatedBlock) || errors.Is(de, decoder.ErrTruncatedHeader) || errors.Is(de, decoder.ErrNotContainer)
}

// cutShort reports a read whose body ended cleanly before the object's size
// (an S3 gateway that lost its upstream mid-body, a chunked answer without
// Content-Length): the decoder then sees a truncated file, but the bytes
// were lost on the way, so the object is read again, never taken for
// corrupt.
func cutShort(de *decoder.DecodeError, src *objectReader, j *export.Job) bool {
	return endedEarly(de) && src.short(j.Size)
}

// endRead closes an attempt: err is nil at the end of the object, a bucket
// error, or a decode error. A body the bucket served short is read again
// whichever way the decoder ended: inside a block (a truncated file, at
// first sight) or right after one (a file that looks whole).
func (in *brazeCurrentsInput) endRead(ctx context.Context, j *export.Job, err error, src *objectReader) {
	if ctx.Err() != nil {
		return // shutting down: the object stays unsettled and is read after a restart
	}
	in.m.read.Incr(1)
	corrupt := false
	if err == nil && src != nil && src.short(j.Size) {
		err = fmt.Errorf("reading %s: the bucket served %d of the object's %d bytes, ending at a block boundary", j.Name, src.n, j.Size)
	}
	if err != nil {
		var de *decoder.DecodeError
		switch {
		case src == nil || src.err != nil || !errors.As(err, &de):
			in.log.Warnf("Reading Braze Currents object %s failed, reading it again later: %v", j.Name, err)
		case in.stillGrowing(ctx, j, de):
			in.log.Warnf("Braze Currents object %s ends early but is still being written; reading it again later: %v", j.Name, err)
		case cutShort(de, src, j):
			err = fmt.Errorf("the bucket served %d of the object's %d bytes: %w", src.n, j.Size, err)
			in.log.Warnf("Reading Braze Currents object %s was cut short, reading it again later: %v", j.Name, err)
		default:
			corrupt = true
			in.m.decodeErr.Incr(1, decoder.ErrorClass(de))
		}
	}
	j.EndRead(ctx, err, corrupt)
}

// bciAckFunc settles the chunk sent as batch. A batch error names the
// messages that failed: the others are recorded as delivered and are not
// sent again when the object is read again.
func bciAckFunc(c export.Chunk, batch service.MessageBatch, state *bciStateWrites, release func()) service.AckFunc {
	size := len(batch)
	idx := batch.Index()
	return func(ctx context.Context, err error) error {
		release()
		state.decide(ctx) // before the chunk settles its object
		if err == nil {
			c.Ack(ctx)
			return nil
		}
		delivered, forGood := bciReadNack(err, size, idx)
		c.Nack(ctx, err, delivered, forGood)
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
