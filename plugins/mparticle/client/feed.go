package client

import (
	"context"
	"sync"
	"time"
)

// feedState is what the client remembers about one feed across Send calls.
// mParticle authenticates, throttles and (for the app/feed limits) counts
// per feed key, so a pause decided by one request applies to every request
// of that feed, and to no other feed.
type feedState struct {
	name string
	auth string // the Authorization header value; never logged

	mu        sync.Mutex
	notBefore time.Time // no request of this feed starts before this
	authSince time.Time // first 403 of the current outage; zero when none
	authTries int       // 403s in the current outage, for its backoff
}

// pausedSince reports whether the feed is in a 403 outage and its next
// probe is not due yet at now, and when the outage began.
func (f *feedState) pausedSince(now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authSince, !f.authSince.IsZero() && now.Before(f.notBefore)
}

// holdUntil delays every request of the feed until at least t.
func (f *feedState) holdUntil(t time.Time) {
	f.mu.Lock()
	if t.After(f.notBefore) {
		f.notBefore = t
	}
	f.mu.Unlock()
}

// wait blocks until the feed may send or ctx ends.
func (f *feedState) wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		d := time.Until(f.notBefore)
		f.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
		// Loop: another request may have pushed notBefore further meanwhile.
	}
}

// forbidden records a 403 and returns when the current outage began.
func (f *feedState) forbidden(now time.Time) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authSince.IsZero() {
		f.authSince = now
		f.authTries = 0
	}
	f.authTries++
	return f.authSince
}

// authorized ends any 403 outage: the credentials work again.
func (f *feedState) authorized() {
	f.mu.Lock()
	f.authSince = time.Time{}
	f.authTries = 0
	f.mu.Unlock()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
