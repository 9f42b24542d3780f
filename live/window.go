package live

import (
	"context"
	"slices"
)

// This file keeps the windows: which fragments the hub holds, what they cost, and which to
// evict. Every function here requires h.mu.

// hold adds a just-begun fragment at the live edge of its stream and of the hub's age list.
func (h *Hub) hold(f *Fragment) {
	s := f.stream
	if len(s.window) == 0 {
		h.stats.Streams++
	}
	s.window = append(s.window, f)
	s.bytes += f.size
	h.stats.Bytes += f.size
	f.older = h.newest
	if h.newest != nil {
		h.newest.newer = f
	} else {
		h.oldest = f
	}
	h.newest = f
	h.stats.Fragments++
}

// grow accounts for a new chunk of size bytes in f, making room for it within MaxTotalBytes
// (see waitRoom). It reports false, and accounts nothing, once f is no longer in progress:
// its bytes would reach no one.
func (h *Hub) grow(ctx context.Context, f *Fragment, size int) (bool, error) {
	open := true
	err := h.waitRoom(ctx, int64(size), func() bool {
		open = f.state == inProgress
		return open
	}, func() {
		f.size += int64(size)
		f.stream.bytes += int64(size)
		h.stats.Bytes += int64(size)
		h.trim(f.stream)
	})
	return open && err == nil, err
}

// release takes f out of the windows and its bytes out of the counts. f is the oldest
// fragment of its stream (eviction, Drop), the newest (an aborted in-progress fragment), or
// a withdrawn one anywhere.
func (h *Hub) release(f *Fragment) {
	s := f.stream
	switch i := slices.Index(s.window, f); i {
	case 0:
		// Reslicing leaves the dead slot behind; the next append that reallocates drops it.
		s.window[0] = nil
		s.window = s.window[1:]
	case -1:
		return // withdrawn earlier
	default:
		s.window = slices.Delete(s.window, i, i+1)
	}
	if len(s.window) == 0 {
		h.stats.Streams--
	}
	if f.older != nil {
		f.older.newer = f.newer
	} else {
		h.oldest = f.newer
	}
	if f.newer != nil {
		f.newer.older = f.older
	} else {
		h.newest = f.older
	}
	f.older, f.newer = nil, nil
	f.recycle()
	s.bytes -= f.size
	h.stats.Bytes -= f.size
	h.stats.Fragments--
	broadcast(h.takeFreed()) // nobody who waits for memory holds h.mu
}

// evictable reports whether f may be evicted now: it is complete, no longer needed by the
// archive, and the oldest of its stream's window (so the window stays contiguous).
func (f *Fragment) evictable() bool {
	return f.state == complete && (f.persisted || !f.archived) && f.stream.window[0] == f
}

// evict releases f because of a limit or its age.
func (h *Hub) evict(f *Fragment) {
	h.release(f)
	f.stream.evicted = f.meta.Number
	h.stats.Evictions++
	h.stats.EvictedBytes += f.size
}

// makeRoom evicts evictable fragments, oldest first across all streams, until n more bytes
// fit in MaxTotalBytes or nothing more may go.
func (h *Hub) makeRoom(n int64) {
	h.expire()
	for f := h.oldest; f != nil && h.stats.Bytes+n > h.opts.MaxTotalBytes; {
		next := f.newer
		if f.evictable() {
			h.evict(f)
		}
		f = next
	}
}

// trim evicts, oldest first, what MaxAge, ArchivedAge, s's MaxStreamBytes and MaxTotalBytes
// no longer allow. s is the stream that just grew or gained an evictable fragment.
//
// Fragments that cannot be evicted yet are stepped over: in a healthy hub they are the
// in-progress and not-yet-persisted fragments, a few per stream, so trimming stays cheap.
// ArchivedAge is checked here, on the stream's own events (a fragment begun, grown, complete
// or persisted), rather than in expire's walk over all streams, which would step over every
// fragment of the streams that keep no archive on each call.
func (h *Hub) trim(s *Stream) {
	archivedCutoff := h.now().Add(-h.opts.ArchivedAge)
	for len(s.window) > 0 && s.window[0].evictable() &&
		(s.bytes > h.opts.MaxStreamBytes || s.window[0].archived && s.window[0].begun.Before(archivedCutoff)) {
		h.evict(s.window[0])
	}
	h.makeRoom(0)
}

// expire evicts the evictable fragments begun more than MaxAge ago. The age list is in Begin
// order, so the walk ends at the first fragment young enough.
func (h *Hub) expire() {
	cutoff := h.now().Add(-h.opts.MaxAge)
	for f := h.oldest; f != nil && f.begun.Before(cutoff); {
		next := f.newer
		if f.evictable() {
			h.evict(f)
		}
		f = next
	}
}
