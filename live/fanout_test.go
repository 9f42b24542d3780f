package live

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// Many readers following a stream from its first fragment, chaining with After, each receive
// exactly the bytes of every fragment, in order, while the producer writes without waiting.
func TestConcurrentReaders(t *testing.T) {
	const (
		readers   = 200
		fragments = 20
		writes    = 40 // per fragment, of 1 to 4000 bytes
	)
	// The payloads grow, so that some fragments outgrow their first chunk.
	want := make([][]byte, fragments)
	var sizes [fragments][writes]int
	for i := range want {
		for j := range sizes[i] {
			sizes[i][j] = 1 + (i*7919+j*104729)%(1000+150*i)
			want[i] = append(want[i], pattern(i*writes+j, sizes[i][j])...)
		}
	}

	h := NewHub(Options{})
	s := h.Stream(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for r := range readers {
		wg.Go(func() {
			prev := ""
			for i := range fragments {
				f, err := s.After(ctx, prev, true)
				if err != nil {
					t.Errorf("reader %d, fragment %d: After: %v", r, i, err)
					return
				}
				if f.Meta().Number != number(i+1) || f.Prev() != prev {
					t.Errorf("reader %d: got fragment %s after %q, want %s", r, f.Meta().Number, prev, number(i+1))
					return
				}
				for off := 0; ; {
					p, done, err := f.Next(ctx, off)
					if err != nil {
						t.Errorf("reader %d, fragment %d: Next(%d): %v", r, i, off, err)
						return
					}
					if off+len(p) > len(want[i]) || !bytes.Equal(p, want[i][off:off+len(p)]) {
						t.Errorf("reader %d, fragment %d: wrong bytes at %d", r, i, off)
						return
					}
					off += len(p)
					if done {
						if off != len(want[i]) {
							t.Errorf("reader %d, fragment %d: ended at %d of %d bytes", r, i, off, len(want[i]))
						}
						break
					}
				}
				prev = f.Meta().Number
			}
		})
	}

	for i := range fragments {
		f := h.Begin(1, meta(i+1), memoryOnly)
		off := 0
		for _, n := range sizes[i] {
			f.Write(context.Background(), want[i][off:off+n])
			off += n
		}
		f.Complete(time.Second)
	}
	wg.Wait()
	if st := h.Stats(); st.Fragments != fragments || st.Evictions != 0 {
		t.Errorf("Stats = %+v; want all %d fragments held", st, fragments)
	}
	grown := 0
	for _, f := range s.window {
		if len(f.chunks) > 1 {
			grown++
		}
	}
	if grown < fragments/4 {
		t.Errorf("%d of %d fragments outgrew their first chunk; the test wants a quarter to", grown, fragments)
	}
}

// Lookups racing with eviction return fragments that match them, never a freed slot.
func TestLookupsDuringEviction(t *testing.T) {
	const fragments = 300
	h := NewHub(Options{MaxStreamBytes: 3 * minChunk})
	s := h.Stream(1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				oldest := s.Oldest()
				f, err := s.After(ctx, oldest, false)
				if err != nil || (f != nil && compareNumbers(f.Meta().Number, oldest) <= 0) {
					t.Errorf("After(%q) = %v, %v", oldest, f, err)
					return
				}
				if g := s.Get(oldest); g != nil && g.Meta().Number != oldest {
					t.Errorf("Get(%q) = fragment %s", oldest, g.Meta().Number)
					return
				}
			}
		})
	}
	for i := 1; i <= fragments; i++ {
		fill(h, 1, i, memoryOnly).Complete(time.Second)
	}
	cancel()
	wg.Wait()
	if st := h.Stats(); st.Evictions != fragments-3 {
		t.Errorf("Stats = %+v; want %d evictions", st, fragments-3)
	}
}
