package live

// This file keeps the windows: which fragments the hub holds, what they cost, and which to
// evict. Every function here requires h.mu.

// hold adds a just-begun fragment at the live edge of its stream and of the hub's age list.
func (h *Hub) hold(f *Fragment) {
	s := f.stream
	if len(s.window) == 0 {
		h.stats.Streams++
	}
	s.window = append(s.window, f)
	f.older = h.newest
	if h.newest != nil {
		h.newest.newer = f
	} else {
		h.oldest = f
	}
	h.newest = f
	h.stats.Fragments++
}

// grow accounts for a new chunk of size bytes in f and evicts what no longer fits. It reports
// false, and accounts nothing, once f is no longer in progress: its bytes would reach no one.
func (h *Hub) grow(f *Fragment, size int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.state != inProgress {
		return false
	}
	f.size += int64(size)
	f.stream.bytes += int64(size)
	h.stats.Bytes += int64(size)
	h.trim(f.stream)
	return true
}

// release takes f out of the windows and its bytes out of the counts. f is the oldest
// fragment of its stream (eviction, Drop) or the newest (an aborted in-progress fragment);
// nothing else leaves a window, which keeps windows contiguous.
func (h *Hub) release(f *Fragment) {
	s := f.stream
	if last := len(s.window) - 1; s.window[last] == f {
		s.window[last] = nil
		s.window = s.window[:last]
	} else {
		// Reslicing leaves the dead slot behind; the next append that reallocates drops it.
		s.window[0] = nil
		s.window = s.window[1:]
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
	s.bytes -= f.size
	h.stats.Bytes -= f.size
	h.stats.Fragments--
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

// trim evicts, oldest first, what MaxAge, s's MaxStreamBytes and MaxTotalBytes no longer
// allow. s is the stream that just grew or gained an evictable fragment.
//
// Fragments that cannot be evicted yet are stepped over: in a healthy hub they are the
// in-progress and not-yet-persisted fragments, a few per stream, so trimming stays cheap.
func (h *Hub) trim(s *Stream) {
	h.expire()
	for s.bytes > h.opts.MaxStreamBytes && len(s.window) > 0 && s.window[0].evictable() {
		h.evict(s.window[0])
	}
	for f := h.oldest; f != nil && h.stats.Bytes > h.opts.MaxTotalBytes; {
		next := f.newer
		if f.evictable() {
			h.evict(f)
		}
		f = next
	}
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
