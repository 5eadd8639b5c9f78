package emulator

import (
	"math"
	"time"
)

// bucket is the token bucket behind 429s: it refills at rate tokens per second up
// to capacity, and a request takes one token per batch. It is not safe for
// concurrent use; the emulator's lock guards it.
type bucket struct {
	rate     float64 // tokens per second; <= 0 means unlimited
	capacity float64
	tokens   float64
	last     time.Time
}

func newBucket(rate float64, now time.Time) bucket {
	if rate <= 0 {
		return bucket{}
	}
	// One second of tokens, but never less than one so a single batch always fits.
	capacity := math.Max(rate, 1)
	return bucket{rate: rate, capacity: capacity, tokens: capacity, last: now}
}

// take tries to admit n batches at now. When it cannot, it says how long until it
// could. A request larger than the bucket is admitted once the bucket is full and
// leaves it in debt, so big bulk requests stay possible at low rates.
func (b *bucket) take(now time.Time, n int) (ok bool, retryAfter time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	need := math.Min(float64(n), b.capacity)
	if b.tokens < need {
		wait := (need - b.tokens) / b.rate
		return false, time.Duration(wait * float64(time.Second))
	}
	b.tokens -= float64(n)
	return true, 0
}

// percentUsed is the share of the bucket in use, 0..100, for
// X-mp-rate-limit-percentage-used.
func (b *bucket) percentUsed() int {
	if b.rate <= 0 {
		return 0
	}
	p := math.Round((b.capacity - b.tokens) / b.capacity * 100)
	return int(math.Max(0, math.Min(100, p)))
}

// retryAfterSeconds renders a wait as whole seconds, rounded up, at least 1, as
// the Retry-After header carries it.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
