package live

import (
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
)

// Options bounds the memory a Hub holds; fields that are zero or negative take the defaults.
type Options struct {
	MaxStreamBytes int64         // buffer capacity one stream's window may hold (default 64 MiB)
	MaxTotalBytes  int64         // buffer capacity all streams together may hold (default 1 GiB)
	MaxAge         time.Duration // fragments begun longer ago than this are evicted (default 5 min)
}

// Stats is a snapshot of a Hub's memory use, for metrics.
type Stats struct {
	Bytes        int64 // buffer capacity of the fragments held, in-progress ones included
	Fragments    int   // fragments held
	Streams      int   // streams holding at least one fragment
	Evictions    int64 // fragments evicted by the limits or by age since the hub was created
	EvictedBytes int64 // buffer capacity those evictions released
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
	f := &Fragment{hub: h, stream: s, meta: m, prev: s.last, archived: archived, begun: h.now(), hint: s.hint}
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

// Stats returns the hub's current memory use and eviction counts.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	return h.stats
}
