package live

import (
	"context"
	"errors"
	"sort"
)

// Chunk sizes. Chunks are never reallocated (see the package comment), so a fragment grows by
// adding chunks.
const (
	minChunk = 16 << 10 // small enough for a trickle, large enough to hold a few frames
	maxChunk = 4 << 20  // bounds the memory a growing fragment adds at once
	pageSize = 8 << 10  // the allocator's page: larger objects take whole pages anyway
)

// errRecycled is returned by Next on a fragment whose chunks went back to the hub's pool: only
// a producer-side reader that read without Hold can meet it.
var errRecycled = errors.New("live: fragment memory reused")

// chunk is one piece of a fragment's buffer.
type chunk struct {
	start int    // offset of b[0] in the fragment
	b     []byte // full capacity; only the published part may be read
}

// Write appends a copy of p to the fragment and wakes the readers waiting for it; the caller
// may reuse p at once. Write never waits for readers, but a Write that needs a new chunk
// waits for room within the hub's MaxTotalBytes (see Hub.Reserve) and returns ErrNoMemory if
// there is none; the caller should then Abort the fragment, which holds only part of p.
// Bytes written after the fragment ended are discarded.
func (f *Fragment) Write(ctx context.Context, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.sealed.Load() {
		return nil // its chunks may be another fragment's by now
	}
	for rest := p; len(rest) > 0; {
		if len(f.tail) == cap(f.tail) {
			size := f.chunkSize(len(rest))
			if ok, err := f.hub.grow(ctx, f, size); !ok {
				return err
			}
			c := f.hub.pool.get(size)
			f.mu.Lock()
			f.chunks = append(f.chunks, chunk{start: f.written, b: c})
			f.mu.Unlock()
			f.tail = c[:0]
		}
		// The copy lands past the published length, where no reader looks, so it needs no
		// lock but wmu; publishing under mu orders it before every read of those bytes.
		k := min(len(rest), cap(f.tail)-len(f.tail))
		f.tail = append(f.tail, rest[:k]...)
		f.written += k
		rest = rest[k:]
	}
	f.mu.Lock()
	if f.done {
		f.mu.Unlock()
		return nil
	}
	f.n = f.written
	changed := f.changed
	f.changed = nil
	f.mu.Unlock()
	broadcast(changed)
	return nil
}

// chunkSize returns the capacity of the next chunk: half the bytes written so far rounded up
// to a power of two (the pool's classes), so a fragment needs few chunks (a 1 MB one eight)
// and memory follows the bytes received rather than being taken for the whole fragment at
// its start. It is at least need, so that a Write adds at most one chunk.
func (f *Fragment) chunkSize(need int) int {
	return classSize(max(min(max(f.written/2, minChunk), maxChunk), need))
}

// Next returns the bytes of the fragment from offset off on, as a read-only view that stays
// valid for ever: it waits until there is at least one byte at off, or the fragment has ended,
// or ctx ends (then it returns ctx.Err()). done reports that the view reaches the end of an
// ended fragment; it comes with the last bytes or, if off is already at the end, with none.
// A view may stop short of the published length (where a chunk ends): call Next again.
func (f *Fragment) Next(ctx context.Context, off int) (p []byte, done bool, err error) {
	if off < 0 {
		panic("live: Next with a negative offset")
	}
	for {
		f.mu.Lock()
		if f.recycled {
			f.mu.Unlock()
			return nil, false, errRecycled
		}
		if off < f.n {
			p = f.view(off)
			done = f.done && off+len(p) == f.n
			f.mu.Unlock()
			return p, done, nil
		}
		if f.done {
			f.mu.Unlock()
			return nil, true, nil
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// view returns the published bytes from off to the end of the chunk holding off, with the
// capacity clipped so that appending to the view copies instead of overwriting the producer's
// next bytes. f.mu must be held and off < f.n.
func (f *Fragment) view(off int) []byte {
	i := len(f.chunks) - 1
	if f.chunks[i].start > off { // a reader behind the live edge
		i = sort.Search(i, func(j int) bool { return f.chunks[j].start > off }) - 1
	}
	c := f.chunks[i]
	end := min(f.n, c.start+len(c.b)) - c.start
	return c.b[off-c.start : end : end]
}
