package live

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A reader following a fragment in lock step with its producer receives each write as it
// happens, as one view unless the write crossed into a new chunk, and every view it was given
// keeps its bytes while the fragment grows.
func TestFollowWriteByWrite(t *testing.T) {
	h := NewHub(Options{})
	f := h.Begin(1, meta(1), memoryOnly)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	views := make(chan []byte)
	go func() {
		defer close(views)
		for off := 0; ; {
			p, done, err := f.Next(ctx, off)
			if err != nil {
				t.Errorf("Next(%d): %v", off, err)
				return
			}
			if len(p) > 0 {
				views <- p
			}
			if done {
				return
			}
			off += len(p)
		}
	}()

	var want []byte
	var kept [][]byte
	splits := 0
	for i := 0; len(want) < 100<<10; i++ {
		size := 1 // byte by byte at first, then writes of up to 7 bytes
		if i >= 1000 {
			size += i % 7
		}
		p := pattern(i, size)
		want = append(want, p...)
		f.Write(context.Background(), p)
		for got := 0; got < size; {
			v, ok := <-views
			if !ok {
				t.Fatalf("reader stopped at write %d", i)
			}
			if !bytes.Equal(v, p[got:got+len(v)]) {
				t.Fatalf("write %d: view % x, want % x", i, v, p[got:got+len(v)])
			}
			if got > 0 {
				splits++
			}
			got += len(v)
			kept = append(kept, v)
		}
		clear(p) // Write copied p: the caller may reuse it
	}
	f.Complete(time.Second)
	if _, ok := <-views; ok {
		t.Fatal("reader got bytes after the last write")
	}

	// Chunks of 16, 16, 16, 24 and 40 KiB hold the 100 KiB: five chunks, four boundaries,
	// each of which split at most one write.
	if n := len(f.chunks); n != 5 {
		t.Errorf("fragment has %d chunks, want 5", n)
	}
	if splits > 4 {
		t.Errorf("%d writes arrived in two views, want at most 4", splits)
	}
	if got := bytes.Join(kept, nil); !bytes.Equal(got, want) {
		t.Error("views handed out earlier changed while the fragment grew")
	}
	if got := readAll(t, f); !bytes.Equal(got, want) {
		t.Error("a second reading of the fragment differs from what was written")
	}
}

// A write that crosses a chunk boundary is read as two views; views cannot be appended into
// the producer's space; the hub counts chunk capacity.
func TestViewAcrossChunks(t *testing.T) {
	h := NewHub(Options{})
	f := h.Begin(1, meta(1), memoryOnly)
	ctx := context.Background()
	a, b := pattern(1, minChunk-4), pattern(2, 10)
	f.Write(context.Background(), a)
	f.Write(context.Background(), b)

	p, done, err := f.Next(ctx, minChunk-6)
	if err != nil || done || !bytes.Equal(p, append(a[minChunk-6:], b[:4]...)) {
		t.Fatalf("Next at the end of chunk 1 = %x, %v, %v; want its last 6 bytes", p, done, err)
	}
	p, done, err = f.Next(ctx, minChunk)
	if err != nil || done || !bytes.Equal(p, b[4:]) {
		t.Fatalf("Next at chunk 2 = %x, %v, %v; want the rest of the second write", p, done, err)
	}
	if got := h.Stats().Bytes; got != 2*minChunk {
		t.Errorf("Stats().Bytes = %d, want %d", got, 2*minChunk)
	}

	if cap(p) != len(p) {
		t.Fatalf("a view of %d bytes has capacity %d: appending to it would overwrite the next write", len(p), cap(p))
	}
	c := pattern(3, 5)
	f.Write(context.Background(), c)
	f.Complete(2 * time.Second)
	p, done, err = f.Next(ctx, minChunk+6)
	if err != nil || !done || !bytes.Equal(p, c) {
		t.Fatalf("Next after Complete = %x, %v, %v; want the last write and done", p, done, err)
	}
}

// Next reports the end of a complete or aborted fragment, and Duration tells them apart.
func TestNextEnd(t *testing.T) {
	ctx := context.Background()
	h := NewHub(Options{})

	f := h.Begin(1, meta(1), memoryOnly)
	if d, ok := f.Duration(); ok || d != 0 {
		t.Errorf("Duration of an in-progress fragment = %v, %v; want 0, false", d, ok)
	}
	f.Write(context.Background(), []byte("abc"))
	f.Complete(1500 * time.Millisecond)
	f.Write(context.Background(), []byte("late")) // discarded
	f.Abort()                                     // does nothing to a complete fragment
	if p, done, err := f.Next(ctx, 1); string(p) != "bc" || !done || err != nil {
		t.Errorf("Next(1) = %q, %v, %v; want \"bc\", true, nil", p, done, err)
	}
	if p, done, err := f.Next(ctx, 3); p != nil || !done || err != nil {
		t.Errorf("Next at the end = %q, %v, %v; want nil, true, nil", p, done, err)
	}
	if d, ok := f.Duration(); !ok || d != 1500*time.Millisecond {
		t.Errorf("Duration = %v, %v; want 1.5s, true", d, ok)
	}

	g := h.Begin(1, meta(2), memoryOnly)
	g.Write(context.Background(), []byte("xy"))
	g.Abort()
	g.Complete(time.Second) // does nothing to an aborted fragment
	if got := readAll(t, g); string(got) != "xy" {
		t.Errorf("aborted fragment reads %q, want \"xy\"", got)
	}
	if d, ok := g.Duration(); ok || d != 0 {
		t.Errorf("Duration of an aborted fragment = %v, %v; want 0, false", d, ok)
	}
}

// A reader parked in Next wakes for a write, for the end of the fragment and for its context.
func TestNextWaits(t *testing.T) {
	h := NewHub(Options{})
	f := h.Begin(1, meta(1), memoryOnly)

	type result struct {
		p    []byte
		done bool
		err  error
	}
	next := func(ctx context.Context, off int) chan result {
		c := make(chan result, 1)
		go func() {
			p, done, err := f.Next(ctx, off)
			c <- result{p, done, err}
		}()
		eventually(t, "the reader waits", func() bool { return fragmentParked(f) })
		return c
	}

	c := next(context.Background(), 0)
	f.Write(context.Background(), []byte("frame"))
	if r := <-c; string(r.p) != "frame" || r.done || r.err != nil {
		t.Errorf("woken by Write: %q, %v, %v", r.p, r.done, r.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	c = next(ctx, 5)
	cancel()
	if r := <-c; r.p != nil || r.done || !errors.Is(r.err, context.Canceled) {
		t.Errorf("woken by cancel: %q, %v, %v", r.p, r.done, r.err)
	}

	c = next(context.Background(), 5)
	f.Complete(time.Second)
	if r := <-c; r.p != nil || !r.done || r.err != nil {
		t.Errorf("woken by Complete: %q, %v, %v", r.p, r.done, r.err)
	}
}

// Every fragment grows chunk by chunk, each chunk half the bytes written so far rounded up to
// a power of two: memory follows what was received, whatever the stream's previous fragments
// were.
func TestChunkSizing(t *testing.T) {
	h := NewHub(Options{})
	const size = 100 << 10
	var sizes [][]int
	for i := 1; i <= 3; i++ {
		f := h.Begin(1, meta(i), memoryOnly)
		for j := range size / 1000 {
			f.Write(context.Background(), pattern(j, 1000))
		}
		f.Write(context.Background(), pattern(i, size%1000+i-1)) // each fragment a byte longer than the last
		f.Complete(time.Second)
		var s []int
		for _, c := range f.chunks {
			s = append(s, len(c.b))
		}
		sizes = append(sizes, s)
	}
	const k = 1 << 10
	want := [][]int{{16 * k, 16 * k, 16 * k, 32 * k, 64 * k}, {16 * k, 16 * k, 16 * k, 32 * k, 64 * k}, {16 * k, 16 * k, 16 * k, 32 * k, 64 * k}}
	if !slices.EqualFunc(sizes, want, slices.Equal) {
		t.Errorf("chunk sizes %v, want %v", sizes, want)
	}
	if got := h.Stats().Bytes; got != 3*144*k {
		t.Errorf("Stats().Bytes = %d, want %d", got, 3*144*k)
	}
}
