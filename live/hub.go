package live

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Default limits, used for Options fields that are zero or negative.
const (
	DefaultMaxStreamBytes = 64 << 20 // per-stream window
	DefaultMaxTotalBytes  = 1 << 30  // all streams together
	// DefaultMaxAge matches the 5-minute ingestion buffer KVS keeps for retention-0 streams
	// (spec 5.1).
	DefaultMaxAge = 5 * time.Minute
	// DefaultArchivedAge is one fragment of a typical camera (a 2-second GOP): a live reader
	// needs the fragment in progress, and one a little behind it reads the archive, which the
	// page cache serves from memory anyway.
	DefaultArchivedAge = 2 * time.Second
	// DefaultMemoryWait is long enough for fragments being persisted to become evictable,
	// and short enough that a producer whose bytes find no room hears of it well before its
	// own staleness timeouts.
	DefaultMemoryWait = 5 * time.Second
)

// ErrNoMemory is returned by Write and Reserve when MaxTotalBytes left no room within
// MemoryWait, or the caller's context ended while waiting for it.
var ErrNoMemory = errors.New("live: memory limit reached")

// Options bounds the memory a Hub holds; fields that are zero or negative take the defaults.
type Options struct {
	MaxStreamBytes int64         // buffer capacity one stream's window may hold (default 64 MiB)
	MaxTotalBytes  int64         // memory all streams together may hold, Reserve included (default 1 GiB)
	MaxAge         time.Duration // fragments begun longer ago than this are evicted (default 5 min)
	// ArchivedAge is the shorter age past which a fragment begun with archived set is evicted
	// once Persisted (default 2 s): from then on readers find it in the archive.
	ArchivedAge time.Duration
	MemoryWait  time.Duration // longest a Write or Reserve waits for room (default 5 s)
}

// Stats is a snapshot of a Hub's memory use, for metrics.
type Stats struct {
	Bytes        int64 // memory counted against MaxTotalBytes: fragments held (in-progress ones included) and Reserved
	Reserved     int64 // memory taken with Reserve
	Fragments    int   // fragments held
	Streams      int   // streams holding at least one fragment
	Evictions    int64 // fragments evicted by the limits or by age since the hub was created
	EvictedBytes int64 // buffer capacity those evictions released
	// RecycledBytes is the buffer capacity given back for reuse since the hub was created:
	// that of fragments that left the window (evicted, withdrawn or dropped) once complete,
	// when no reader had been handed them.
	RecycledBytes int64
}

// Hub holds the live and recent fragments of every stream ingested on this node.
type Hub struct {
	opts Options
	now  func() time.Time // the clock of age eviction; tests replace it

	// mu guards the windows: streams, every Stream's fields, the bookkeeping fields of every
	// Fragment, the age list and stats. Lock order: a Fragment's wmu, then mu, then the
	// Fragment's mu.
	mu      sync.Mutex
	streams map[int64]*Stream
	oldest  *Fragment // held fragments of all streams in Begin order: the order of age and
	newest  *Fragment // total-bytes eviction (linked through Fragment.older and .newer)
	stats   Stats
	freed   chan struct{} // closed when memory may have become available; nil until someone waits
	pool    chunkPool     // chunks of fragments no reader can see any more
}

// NewHub returns an empty Hub bounded by opts.
func NewHub(opts Options) *Hub {
	if opts.MaxStreamBytes <= 0 {
		opts.MaxStreamBytes = DefaultMaxStreamBytes
	}
	if opts.MaxTotalBytes <= 0 {
		opts.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.ArchivedAge <= 0 {
		opts.ArchivedAge = DefaultArchivedAge
	}
	if opts.MemoryWait <= 0 {
		opts.MemoryWait = DefaultMemoryWait
	}
	return &Hub{opts: opts, now: time.Now, streams: make(map[int64]*Stream)}
}

// Stream returns the handle readers use to find the stream's fragments. It never returns nil:
// a stream nothing was published to yet gets a handle that its first Begin will fill.
func (h *Hub) Stream(streamID int64) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stream(streamID)
}

// stream returns the stream's handle, creating it if needed. h.mu must be held.
func (h *Hub) stream(streamID int64) *Stream {
	s := h.streams[streamID]
	if s == nil {
		s = &Stream{hub: h}
		h.streams[streamID] = s
	}
	return s
}

// Begin starts a new in-progress fragment at the stream's live edge and returns it for the
// producer to Write. archived says that the fragment is on its way to the archive: it stays
// in the hub until Persisted. A fragment of a stream that keeps no archive (retention 0) is
// begun with archived false and may be evicted as soon as it is complete.
//
// A fragment still in progress on the stream is aborted first: a new producer session has
// taken over the stream. Numbers increase within a stream, so a number not greater than the
// stream's latest one comes from a stale session: Begin then returns a fragment that is
// already aborted, is never held and discards what is written to it.
func (h *Hub) Begin(streamID int64, m Meta, archived bool) *Fragment {
	h.mu.Lock()
	s := h.stream(streamID)
	if compareNumbers(m.Number, s.last) <= 0 {
		h.mu.Unlock()
		return &Fragment{hub: h, stream: s, meta: m, archived: archived, state: aborted, done: true}
	}
	var ended chan struct{}
	if s.current != nil {
		ended = s.current.finish(aborted, 0)
	}
	// The header is shared by the fragments of a producer session but counted in each: it is
	// small next to a fragment, and counting it once would need to know when the last
	// fragment using it leaves.
	f := &Fragment{hub: h, stream: s, meta: m, prev: s.last, archived: archived, begun: h.now(),
		size: int64(len(m.Header))}
	s.last = m.Number
	s.current = f
	h.hold(f)
	begun := s.changed
	s.changed = nil
	h.trim(s)
	h.mu.Unlock()
	broadcast(ended)
	broadcast(begun)
	return f
}

// Drop forgets a deleted stream: every fragment leaves the hub, the in-progress one is aborted
// (its readers see it end), and readers waiting in After get ErrDropped, as does every later
// call of After on the handle. A later Begin with the same ID starts a new stream.
func (h *Hub) Drop(streamID int64) {
	h.mu.Lock()
	s := h.streams[streamID]
	if s == nil {
		h.mu.Unlock()
		return
	}
	delete(h.streams, streamID)
	s.dropped = true
	var ended chan struct{}
	if s.current != nil {
		ended = s.current.finish(aborted, 0)
	}
	for len(s.window) > 0 {
		h.release(s.window[0])
	}
	dropped := s.changed
	s.changed = nil
	h.mu.Unlock()
	broadcast(ended)
	broadcast(dropped)
}

// Reserve takes n bytes of MaxTotalBytes for memory held outside fragments (ingest's parse
// buffers and stream headers), evicting what may be evicted to make room and waiting up to
// MemoryWait for fragments being persisted to become evictable. It returns ErrNoMemory if
// there is no room by then, or once ctx ends. Release gives the bytes back.
func (h *Hub) Reserve(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	return h.waitRoom(ctx, n, func() bool { return true }, func() {
		h.stats.Reserved += n
		h.stats.Bytes += n
	})
}

// Release gives back n bytes taken with Reserve.
func (h *Hub) Release(n int64) {
	if n <= 0 {
		return
	}
	h.mu.Lock()
	h.stats.Reserved -= n
	h.stats.Bytes -= n
	freed := h.takeFreed()
	h.mu.Unlock()
	broadcast(freed)
}

// waitRoom waits until n more bytes fit in MaxTotalBytes, evicting what it may, and then
// calls take with h.mu held. While it waits, ok (called with h.mu held) may call the wait
// off: waitRoom then returns nil without taking anything.
func (h *Hub) waitRoom(ctx context.Context, n int64, ok func() bool, take func()) error {
	if n > h.opts.MaxTotalBytes {
		return ErrNoMemory
	}
	var timeout <-chan time.Time
	for {
		h.mu.Lock()
		if !ok() {
			h.mu.Unlock()
			return nil
		}
		h.makeRoom(n)
		if h.stats.Bytes+n <= h.opts.MaxTotalBytes {
			take()
			h.mu.Unlock()
			return nil
		}
		if h.freed == nil {
			h.freed = make(chan struct{})
		}
		freed := h.freed
		h.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(h.opts.MemoryWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return ErrNoMemory
		case <-ctx.Done():
			return ErrNoMemory
		}
	}
}

// takeFreed returns the channel of waiters for memory, to be closed once h.mu is released.
// h.mu must be held.
func (h *Hub) takeFreed() chan struct{} {
	freed := h.freed
	h.freed = nil
	return freed
}

// Stats returns the hub's current memory use and eviction counts.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	return h.stats
}

// MaxTotalBytes returns the memory limit in force (Options.MaxTotalBytes or its default).
func (h *Hub) MaxTotalBytes() int64 { return h.opts.MaxTotalBytes }
