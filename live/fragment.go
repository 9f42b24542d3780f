package live

import (
	"sync"
	"sync/atomic"
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
	shared       bool      // a reader was handed the fragment (Stream.After, Get, Current)
	size         int64     // capacity of the chunks, as counted in the window
	older, newer *Fragment // neighbours in the hub's age list

	// Guarded by wmu: the producer's side of the buffer.
	wmu     sync.Mutex
	tail    []byte // the chunk being filled: len is what was written into it
	written int    // bytes written so far
	// sealed is set, under wmu, once the producer completed the fragment: no Write touches
	// the chunks after it. Atomic so that the hub may read it under its own lock.
	sealed atomic.Bool

	// Guarded by mu: what readers see.
	mu       sync.Mutex
	chunks   []chunk       // the buffer, in order
	n        int           // bytes published
	done     bool          // no more bytes will come: the fragment is complete or aborted
	complete bool          // done because it is whole; mirrors state so readers skip hub.mu
	dur      time.Duration // set when complete
	changed  chan struct{} // closed when n or done change; nil until a reader waits
	holds    int           // producer-side readers in progress (Hold)
	released bool          // left the window unshared: the last Hold returns the chunks
	recycled bool          // the chunks went back to the hub's pool
}

// Complete records that the fragment is whole and lasts d; readers see it end. The hub may
// evict it from now on if it was begun with archived false, otherwise once Persisted.
// Complete does nothing to a fragment that already ended. The producer must not Write after
// Complete (such bytes are discarded).
func (f *Fragment) Complete(d time.Duration) {
	f.wmu.Lock()
	f.sealed.Store(true)
	f.wmu.Unlock()
	f.end(complete, d)
}

// Hold lets the producer's side read its own fragment with Next, as the archive writer does,
// although no reader was ever handed it: until the returned release is called, the fragment's
// chunks are not reused, even if it leaves the hub. Chunks of a fragment that a reader was
// handed are never reused (its views stay valid for ever); those of one that only its
// producer knows go back to the hub's pool once it leaves the window, which is why the
// producer must Hold it to read it. ok is false if that already happened: the fragment was
// evicted, withdrawn or dropped before the Hold.
func (f *Fragment) Hold() (release func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recycled {
		return nil, false
	}
	f.holds++
	return f.unhold, true
}

func (f *Fragment) unhold() {
	f.mu.Lock()
	f.holds--
	var chunks []chunk
	if f.holds == 0 && f.released {
		chunks = f.takeChunks()
	}
	f.mu.Unlock()
	if chunks != nil {
		h := f.hub
		h.mu.Lock()
		h.stats.RecycledBytes += h.pool.put(chunks)
		h.mu.Unlock()
	}
}

// recycle gives f's chunks back to the hub's pool as f leaves the window, if nothing can read
// them any more: its producer sealed it and no reader was handed it; a Hold in progress
// defers that to its release. It requires hub.mu.
func (f *Fragment) recycle() {
	if !f.sealed.Load() || f.shared {
		return
	}
	f.mu.Lock()
	var chunks []chunk
	if f.holds > 0 {
		f.released = true
	} else {
		chunks = f.takeChunks()
	}
	f.mu.Unlock()
	f.hub.stats.RecycledBytes += f.hub.pool.put(chunks)
}

// takeChunks marks f recycled and returns its chunks for the pool. f.mu must be held.
func (f *Fragment) takeChunks() []chunk {
	chunks := f.chunks
	f.chunks, f.recycled, f.released = nil, true, false
	return chunks
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
