package live

import (
	"sync"
	"time"
)

// Meta is what GetMedia needs to frame a fragment as a chunk (spec 5.3).
type Meta struct {
	Number       string    // fragment number (47 digits, spec 5.4); numbers increase within a stream
	ProducerTime time.Time // AWS_KINESISVIDEO_PRODUCER_TIMESTAMP
	ServerTime   time.Time // AWS_KINESISVIDEO_SERVER_TIMESTAMP
	Header       []byte    // chunk prefix: EBML header, Segment and header elements; shared, read-only
}

// state is where a fragment is in its life.
type state uint8

const (
	inProgress state = iota // being written
	complete                // whole: Complete was called
	aborted                 // ended where it was: Abort, a new Begin or Drop
)

// Fragment is one fragment of a stream: its producer writes it, its readers follow it.
// One goroutine at a time should produce a fragment; misuse stays race-free, and bytes written
// after the fragment ended are discarded.
type Fragment struct {
	hub    *Hub
	stream *Stream
	meta   Meta
	prev   string    // number of the fragment begun before this one on the stream
	begun  time.Time // hub clock at Begin: age eviction
	// archived marks a fragment on its way to the archive, which must stay until Persisted.
	archived bool

	// Guarded by hub.mu: the window's bookkeeping.
	state        state
	persisted    bool
	size         int64     // capacity of the chunks, as counted in the window
	older, newer *Fragment // neighbours in the hub's age list

	// Guarded by wmu: the producer's side of the buffer.
	wmu     sync.Mutex
	tail    []byte // the chunk being filled: len is what was written into it
	written int    // bytes written so far

	// Guarded by mu: what readers see.
	mu       sync.Mutex
	chunks   []chunk       // the buffer, in order
	n        int           // bytes published
	done     bool          // no more bytes will come: the fragment is complete or aborted
	complete bool          // done because it is whole; mirrors state so readers skip hub.mu
	dur      time.Duration // set when complete
	changed  chan struct{} // closed when n or done change; nil until a reader waits
}

// Complete records that the fragment is whole and lasts d; readers see it end. The hub may
// evict it from now on if it was begun with archived false, otherwise once Persisted.
// Complete does nothing to a fragment that already ended.
func (f *Fragment) Complete(d time.Duration) {
	f.end(complete, d)
}

// Abort ends a fragment that ingest could not finish. Readers following it see it end where
// it is, as if it were complete but with Duration reporting false; it leaves the window at
// once, so readers arriving later never see a truncated fragment, and it is never persisted.
// Abort does nothing to a fragment that already ended.
func (f *Fragment) Abort() {
	f.end(aborted, 0)
}

// end moves an in-progress fragment to st and wakes its readers.
func (f *Fragment) end(st state, d time.Duration) {
	h := f.hub
	h.mu.Lock()
	if f.state != inProgress {
		h.mu.Unlock()
		return
	}
	ended := f.finish(st, d)
	h.mu.Unlock()
	broadcast(ended)
}

// finish moves the in-progress fragment f to st and updates the window. It requires hub.mu and
// returns the channel to broadcast on once hub.mu is released.
func (f *Fragment) finish(st state, d time.Duration) chan struct{} {
	h, s := f.hub, f.stream
	f.state = st
	s.current = nil
	f.mu.Lock()
	f.done = true
	f.complete = st == complete
	f.dur = d
	ended := f.changed
	f.changed = nil
	f.mu.Unlock()
	if st == aborted {
		h.release(f)
	} else {
		h.trim(s)
		broadcast(h.takeFreed()) // f may be evictable now: let waiters for memory look again
	}
	return ended
}

// Persisted records that the fragment is durable in the archive: once complete, the hub may
// evict it.
func (f *Fragment) Persisted() {
	h := f.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	f.persisted = true
	h.trim(f.stream)
	broadcast(h.takeFreed()) // f may be evictable now: let waiters for memory look again
}

// Withdraw takes a fragment that will never be persisted out of the window, wherever it is
// (ingest failed to store it, or the session that received it failed before it could), so
// that no reader finds it from now on; an in-progress fragment is aborted. Readers already
// following it see it end where it is. Like an aborted fragment, and unlike an evicted one,
// it leaves no gap that a reader must report: it was never in the archive.
func (f *Fragment) Withdraw() {
	h := f.hub
	h.mu.Lock()
	var ended chan struct{}
	if f.state == inProgress {
		ended = f.finish(aborted, 0)
	} else {
		f.state = aborted
		h.release(f)
	}
	h.mu.Unlock()
	broadcast(ended)
}

// Meta returns what the producer passed to Begin.
func (f *Fragment) Meta() Meta { return f.meta }

// Prev returns the number of the fragment begun before this one on the same stream, "" for
// the first since the hub started: a reader that delivered that fragment has missed nothing.
func (f *Fragment) Prev() string { return f.prev }

// Duration returns the duration given to Complete; ok is false until then, and for ever if
// the fragment was aborted.
func (f *Fragment) Duration() (d time.Duration, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dur, f.complete
}

// broadcast wakes every reader parked on c; a nil c had no reader.
func broadcast(c chan struct{}) {
	if c != nil {
		close(c)
	}
}
