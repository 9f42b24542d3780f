package ingest

import (
	"context"
	"sync/atomic"
	"time"
)

// bodyReader reads the PutMedia body within the stream's byte rate, notes
// when bytes last arrived (for IDLE ACKs) and keeps a read deadline of
// IdleTimeout after the last byte, so a silent producer ends the session.
type bodyReader struct {
	ctx      context.Context
	s        *Session
	r        interface{ Read([]byte) (int, error) }
	last     atomic.Int64 // unix nanoseconds of the last byte
	deadline time.Time    // last read deadline set
}

func newBodyReader(ctx context.Context, s *Session, p Params) *bodyReader {
	b := &bodyReader{ctx: ctx, s: s, r: p.Body}
	b.last.Store(time.Now().UnixNano())
	b.extend(time.Now())
	return b
}

// extend moves the idle deadline, at most once a second: each call costs a
// timer update on the connection.
func (b *bodyReader) extend(now time.Time) {
	if b.s.p.SetReadDeadline == nil || now.Sub(b.deadline) < time.Second || b.s.stopCause() != nil {
		return
	}
	b.deadline = now
	b.s.p.SetReadDeadline(now.Add(b.s.m.opts.IdleTimeout))
}

func (b *bodyReader) Read(p []byte) (int, error) {
	// Bound one read to the limiter's burst so WaitN can grant it.
	if burst := b.s.lim.bytes.Burst(); len(p) > burst {
		p = p[:burst]
	}
	n, err := b.r.Read(p)
	if n > 0 {
		b.s.bytesIn.Add(int64(n))
		now := time.Now()
		b.last.Store(now.UnixNano())
		b.extend(now)
		if werr := b.s.lim.bytes.WaitN(b.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// silentFor is how long no byte has arrived.
func (b *bodyReader) silentFor() time.Duration {
	return time.Since(time.Unix(0, b.last.Load()))
}

// idle reports whether the body has been silent for the idle timeout.
func (b *bodyReader) idle() bool { return b.silentFor() >= b.s.m.opts.IdleTimeout-time.Second }
