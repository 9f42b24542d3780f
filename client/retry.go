package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Reconnect pacing: capped exponential backoff with jitter, so that many
// producers and readers of a server that restarts do not all come back at
// the same instant, and a server that stays down is asked about once every
// ten seconds.
const (
	retryBase = 250 * time.Millisecond
	retryCap  = 10 * time.Second
)

// retryDelay is the wait before retry n (1 for the first): retryBase
// doubling up to retryCap, of which a random half is left out ("equal
// jitter").
func retryDelay(n int) time.Duration {
	d := retryCap
	if n < 7 { // 250 ms << 6 is past the cap already
		d = min(retryBase<<(n-1), retryCap)
	}
	return d/2 + rand.N(d/2+1)
}

// backoff paces the reconnects of one Put or Get. The wait grows with the
// failures since data last went through; RetryFor counts from when the
// connection was lost, so a server that answers again, even without data
// to give, restarts that clock.
type backoff struct {
	retryFor time.Duration // give up once the connection has been lost this long; 0: never
	logf     func(string, ...any)
	failures int       // failed connections since the last progress
	lost     time.Time // when the connection was lost; zero while connected
}

// fail records a failed connection and waits before the next one. It
// returns an error instead once the connection has been lost for
// RetryFor, or when ctx ends.
func (b *backoff) fail(ctx context.Context, op string, err error) error {
	now := time.Now()
	if b.lost.IsZero() {
		b.lost = now
	}
	b.failures++
	left := b.retryFor - now.Sub(b.lost)
	if b.retryFor > 0 && left <= 0 {
		return fmt.Errorf("%s: gave up after %v without a connection (retry for %v): %w",
			op, now.Sub(b.lost).Round(time.Millisecond), b.retryFor, err)
	}
	d := retryDelay(b.failures)
	if b.retryFor > 0 {
		d = min(d, left) // one last try when RetryFor ends
	}
	b.logf("connection lost: %v; retrying in %v (attempt %d)", err, d.Round(100*time.Millisecond), b.failures)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// connected records that a connection was established and returns how
// long the connection had been lost, zero if it had not.
func (b *backoff) connected() time.Duration {
	if b.lost.IsZero() {
		return 0
	}
	d := time.Since(b.lost)
	b.lost = time.Time{}
	return d
}

// progress records that data went through: later failures start a new
// count.
func (b *backoff) progress() { b.failures = 0 }

// nologf discards messages.
func nologf(string, ...any) {}
