package live

import (
	"context"
	"errors"
	"sort"
)

// ErrDropped is returned by Stream.After once the stream was dropped (deleted).
var ErrDropped = errors.New("live: stream dropped")

// Stream is a reader's handle on one stream's window in a Hub.
type Stream struct {
	hub *Hub

	// Guarded by hub.mu.
	window  []*Fragment   // held fragments in number order: complete ones, then the in-progress one
	bytes   int64         // buffer capacity of the window
	current *Fragment     // the in-progress fragment, or nil
	last    string        // number of the latest fragment begun: the next one's Prev
	evicted string        // number of the newest fragment evicted from the window, "" if none
	dropped bool          // Drop was called: the handle is dead
	changed chan struct{} // closed by Begin and Drop; nil until a reader waits in After
}

// After returns the first fragment in the window whose number is greater than number ("" for
// the oldest fragment in the window). If there is none it returns (nil, nil) unless wait is
// set, in which case it waits until a fragment begins, ctx ends (ctx.Err()) or the stream is
// dropped (ErrDropped).
//
// Fragments are found only while the hub holds them: if the result's Prev is not number, the
// fragments in between were evicted (archived streams have them in the archive) or aborted.
func (s *Stream) After(ctx context.Context, number string, wait bool) (*Fragment, error) {
	h := s.hub
	for {
		h.mu.Lock()
		if s.dropped {
			h.mu.Unlock()
			return nil, ErrDropped
		}
		h.expire()
		w := s.window
		if i := sort.Search(len(w), func(i int) bool { return compareNumbers(w[i].meta.Number, number) > 0 }); i < len(w) {
			f := w[i] // before unlocking: eviction clears the slots it frees
			f.shared = true
			h.mu.Unlock()
			return f, nil
		}
		if !wait {
			h.mu.Unlock()
			return nil, nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Get returns the fragment with the given number if the window holds it, else nil.
func (s *Stream) Get(number string) *Fragment {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	w := s.window
	i := sort.Search(len(w), func(i int) bool { return compareNumbers(w[i].meta.Number, number) >= 0 })
	if i < len(w) && compareNumbers(w[i].meta.Number, number) == 0 {
		w[i].shared = true
		return w[i]
	}
	return nil
}

// Oldest returns the number of the oldest fragment in the window, or "" if it is empty.
func (s *Stream) Oldest() string {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	if len(s.window) == 0 {
		return ""
	}
	return s.window[0].meta.Number
}

// Current returns the fragment in progress at the live edge, or nil between fragments.
func (s *Stream) Current() *Fragment {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.current != nil {
		s.current.shared = true
	}
	return s.current
}

// Evicted returns the number of the newest fragment evicted from the window since the hub
// started, or "" if none was. Fragments leave the window oldest first, so every complete
// fragment up to it was evicted (or aborted), none after it. Aborted fragments are not
// evictions: a reader that finds a fragment missing between the one it delivered and the
// next in the window can tell from Evicted whether it was lost (evicted: in the archive, if
// the stream keeps one) or never whole (aborted).
func (s *Stream) Evicted() string {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	return s.evicted
}

// Latest returns the number of the latest fragment begun on the stream,
// evicted or not, or "" if none was since the hub started.
func (s *Stream) Latest() string {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.last
}

// Waiting reports whether a reader waits in After for a fragment to begin on the stream.
func (s *Stream) Waiting() bool {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.changed != nil
}
