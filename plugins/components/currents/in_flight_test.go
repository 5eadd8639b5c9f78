package currents

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// batchesOf is a scanner handing out n batches of one message of size bytes.
type batchesOf struct {
	n, size int
	acked   int
}

func (b *batchesOf) NextBatch(context.Context) (service.MessageBatch, service.AckFunc, error) {
	if b.n == 0 {
		return nil, nil, errors.New("no more")
	}
	b.n--
	return service.MessageBatch{service.NewMessage(bytes.Repeat([]byte("x"), b.size))},
		func(context.Context, error) error { b.acked++; return nil }, nil
}

func (b *batchesOf) Close(context.Context) error { return nil }

// Batches wait while what is handed on and not acknowledged would pass
// max_in_flight_bytes, each message charged its content and messageCharge;
// an acknowledgement gives its bytes back; a batch over the whole budget
// still goes, alone.
func TestInFlightBoundsBytesNotMessages(t *testing.T) {
	const size = 50_000 // a 50 KB event
	budget, err := newInFlight(3 * (size + messageCharge))
	if err != nil {
		t.Fatal(err)
	}
	src := &batchesOf{n: 5, size: size}
	s := &budgetedScanner{BatchScanner: src, budget: budget}
	var acks []service.AckFunc
	for range 3 {
		_, ack, err := s.NextBatch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := s.NextBatch(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fourth 50 KB batch went with three in flight and a budget of three: %v", err)
	}
	if src.acked != 1 {
		t.Fatalf("the batch held at shutdown was acknowledged %d times, want once (with the error)", src.acked)
	}
	if err := acks[0](context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NextBatch(context.Background()); err != nil {
		t.Fatalf("after an acknowledgement: %v", err)
	}

	big, err := newInFlight(1000)
	if err != nil {
		t.Fatal(err)
	}
	s = &budgetedScanner{BatchScanner: &batchesOf{n: 1, size: size}, budget: big}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, _, err := s.NextBatch(ctx); err != nil {
		t.Fatalf("a batch over the whole budget, nothing in flight: %v", err)
	}
	if _, err := newInFlight(0); err == nil {
		t.Fatal("a budget of 0 bytes was accepted")
	}
}
