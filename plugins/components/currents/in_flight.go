package currents

import (
	"context"
	"fmt"

	"github.com/benthosdev/benthos/v4/public/service"
	"golang.org/x/sync/semaphore"
)

// The `max_in_flight_bytes` field of the scanner and the input.
const fieldMaxInFlightBytes = "max_in_flight_bytes"

// defaultMaxInFlightBytes is its default: what the messages handed on and
// not yet acknowledged may hold, charged as below.
const defaultMaxInFlightBytes = 64 << 20

// messageCharge is what one message is charged beside its content: what
// Benthos and the mapping hold per message in flight (its metadata maps,
// the processor's copy, the mapped batch of a typical event), measured by
// bench/floor retained and bench/memory.sh.
const messageCharge = 2 << 10

func maxInFlightBytesField() *service.ConfigField {
	return service.NewIntField(fieldMaxInFlightBytes).
		Description(fmt.Sprintf("The most bytes of messages handed on and not yet acknowledged downstream: each message is charged its content (the event's JSON) plus %d bytes for what Benthos and the mapping hold beside it. Reading waits while the budget is spent, so memory is bounded in bytes whatever the size of the events (Braze allows about 50 KB of properties per event); the output's `max_in_flight` bounds writes, not bytes. A single batch larger than the budget still goes, alone.", messageCharge)).
		Default(defaultMaxInFlightBytes).
		Advanced()
}

// inFlight is the byte budget of the messages an input or scanner has handed
// on and that are not yet acknowledged.
type inFlight struct {
	sem *semaphore.Weighted
	max int64
}

func newInFlight(maxBytes int) (*inFlight, error) {
	if maxBytes < 1 {
		return nil, fmt.Errorf("%s must be at least 1", fieldMaxInFlightBytes)
	}
	return &inFlight{sem: semaphore.NewWeighted(int64(maxBytes)), max: int64(maxBytes)}, nil
}

// charge is what batch costs against the budget: at most the whole budget,
// so that a batch larger than it goes once nothing else is in flight.
func (f *inFlight) charge(batch service.MessageBatch) int64 {
	n := int64(len(batch)) * messageCharge
	for _, m := range batch {
		if b, err := m.AsBytes(); err == nil {
			n += int64(len(b))
		}
	}
	return min(n, f.max)
}

// acquire waits until batch fits in the budget (or ctx ends) and returns
// the function that gives its bytes back, to be called once, when the
// batch is acknowledged.
func (f *inFlight) acquire(ctx context.Context, batch service.MessageBatch) (release func(), err error) {
	n := f.charge(batch)
	if err := f.sem.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { f.sem.Release(n) }, nil
}

// budgetedScanner holds each batch of a scanner until it fits in the
// budget, and gives its bytes back when it is acknowledged.
type budgetedScanner struct {
	service.BatchScanner
	budget *inFlight
}

func (s *budgetedScanner) NextBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	batch, ack, err := s.BatchScanner.NextBatch(ctx)
	if err != nil {
		return batch, ack, err
	}
	release, err := s.budget.acquire(ctx, batch)
	if err != nil {
		_ = ack(ctx, err) // shutting down: the source reads it again
		return nil, nil, err
	}
	return batch, func(ctx context.Context, err error) error {
		release()
		return ack(ctx, err)
	}, nil
}
