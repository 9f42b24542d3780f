package live

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestClassSize(t *testing.T) {
	for _, c := range []struct{ size, class, rounded int }{
		{1, 0, minChunk},
		{minChunk, 0, minChunk},
		{minChunk + 1, 1, 2 * minChunk},
		{3 * minChunk, 2, 4 * minChunk},
		{maxChunk, chunkClasses - 1, maxChunk},
		{maxChunk + 1, -1, maxChunk + pageSize},
	} {
		if got := classSize(c.size); got != c.rounded {
			t.Errorf("classSize(%d) = %d, want %d", c.size, got, c.rounded)
		}
		if got := class(classSize(c.size)); got != c.class {
			t.Errorf("class(%d) = %d, want %d", classSize(c.size), got, c.class)
		}
	}
	if got := class(3 * minChunk); got != -1 {
		t.Errorf("class(3 * minChunk) = %d, want -1: not a pooled capacity", got)
	}
}

// aged returns a hub whose clock the test moves, with archived fragments leaving it once
// persisted and a second old.
func aged() (*Hub, *time.Time) {
	now := time.Unix(1e9, 0)
	h := NewHub(Options{ArchivedAge: time.Second})
	h.now = func() time.Time { return now }
	return h, &now
}

// A fragment only its producer knew goes back to the pool as it leaves the hub: it cannot
// be held or read any more.
func TestRecycleUnshared(t *testing.T) {
	h, now := aged()
	f := fill(h, 1, 1, toArchive)
	f.Write(context.Background(), pattern(2, 3*minChunk))
	f.Complete(time.Second)
	f.Persisted()
	*now = now.Add(2 * time.Second)
	fill(h, 1, 2, toArchive) // evicts the first by age
	if h.Stream(1).Oldest() != number(2) {
		t.Fatal("the first fragment was not evicted")
	}
	if got, want := h.Stats().RecycledBytes, int64(minChunk+4*minChunk); got != want {
		t.Errorf("RecycledBytes = %d, want %d: the first fragment's two chunks", got, want)
	}
	if _, ok := f.Hold(); ok {
		t.Error("Hold of a recycled fragment succeeded")
	}
	if _, _, err := f.Next(context.Background(), 0); !errors.Is(err, errRecycled) {
		t.Errorf("Next on a recycled fragment: %v, want errRecycled", err)
	}
}

// A fragment a reader was handed is never recycled: the reader's views stay intact while
// later fragments fill the pool's chunks.
func TestSharedNeverRecycled(t *testing.T) {
	h, now := aged()
	f := fill(h, 1, 1, toArchive)
	want := pattern(1, minChunk)
	got, err := h.Stream(1).After(context.Background(), "", false)
	if err != nil || got != f {
		t.Fatalf("After = %v, %v", got, err)
	}
	view, _, err := got.Next(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Complete(time.Second)
	f.Persisted()
	for i := 2; i < 20; i++ {
		*now = now.Add(2 * time.Second)
		g := fill(h, 1, i, toArchive) // evicts the one before; reuses any chunk in the pool
		g.Complete(time.Second)
		g.Persisted()
	}
	if !bytes.Equal(view, want) {
		t.Error("a reader's view of an evicted fragment changed")
	}
	if b := readAll(t, got); !bytes.Equal(b, want) {
		t.Error("a reader cannot read an evicted fragment whole")
	}
	if got, want := h.Stats().RecycledBytes, int64(17*minChunk); got != want {
		t.Errorf("RecycledBytes = %d, want %d: all evicted fragments but the shared one", got, want)
	}
}

// A Hold keeps an evicted fragment readable until it is released; the release recycles it.
func TestHoldDefersRecycle(t *testing.T) {
	for _, name := range []string{"evict", "drop", "withdraw"} {
		t.Run(name, func(t *testing.T) {
			h, now := aged()
			f := fill(h, 1, 1, toArchive)
			f.Complete(time.Second)
			release, ok := f.Hold()
			if !ok {
				t.Fatal("Hold of a fragment in the window failed")
			}
			switch name {
			case "evict":
				f.Persisted()
				*now = now.Add(2 * time.Second)
				fill(h, 1, 2, toArchive)
			case "drop":
				h.Drop(1)
			case "withdraw":
				f.Withdraw()
			}
			if b := readAll(t, f); !bytes.Equal(b, pattern(1, minChunk)) {
				t.Error("a held fragment cannot be read whole after it left the hub")
			}
			if got := h.Stats().RecycledBytes; got != 0 {
				t.Errorf("RecycledBytes = %d while held", got)
			}
			release()
			if got := h.Stats().RecycledBytes; got != minChunk {
				t.Errorf("RecycledBytes = %d after the release, want %d", got, minChunk)
			}
			if _, ok := f.Hold(); ok {
				t.Error("the fragment was not recycled when its last Hold was released")
			}
		})
	}
}

// A fragment aborted while its producer may still be writing is never recycled: only
// Complete seals it.
func TestAbortedNotRecycled(t *testing.T) {
	h := NewHub(Options{})
	f := fill(h, 1, 1, toArchive)
	h.Begin(1, meta(2), toArchive) // takes over: the first is aborted and leaves the hub
	if b := readAll(t, f); !bytes.Equal(b, pattern(1, minChunk)) {
		t.Error("an aborted fragment's producer-side view changed")
	}
	f.Write(context.Background(), []byte("late"))
	f.Complete(time.Second)
	if _, ok := f.Hold(); !ok {
		t.Error("an aborted fragment was recycled")
	}
}

// Producers, readers and eviction run together; the race detector checks the pool's
// hand-over, and every reader sees exactly what was written.
func TestRecycleConcurrent(t *testing.T) {
	h := NewHub(Options{MaxStreamBytes: 4 * minChunk, ArchivedAge: time.Nanosecond})
	const streams, fragments = 4, 50
	content := func(i int) []byte {
		var b []byte
		for j := range 3 {
			b = append(b, pattern(i*10+j, minChunk/2)...)
		}
		return b
	}
	ctx, cancel := context.WithCancel(context.Background())
	var producers, readers sync.WaitGroup
	for id := int64(1); id <= streams; id++ {
		producers.Go(func() {
			for i := 1; i <= fragments; i++ {
				f := h.Begin(id, meta(i), toArchive)
				b := content(i)
				for j := range 3 {
					f.Write(ctx, b[j*minChunk/2:(j+1)*minChunk/2])
				}
				f.Complete(time.Second)
				release, ok := f.Hold()
				if !ok {
					t.Error("Hold of a fragment not yet persisted failed")
					return
				}
				if got := readAll(t, f); !bytes.Equal(got, b) {
					t.Errorf("the producer read fragment %d back wrong", i)
				}
				release()
				f.Persisted()
			}
		})
		readers.Go(func() {
			s := h.Stream(id)
			prev := ""
			for {
				f, err := s.After(ctx, prev, true)
				if err != nil {
					return // the producers are done
				}
				i := 0
				for k := 1; k <= fragments; k++ {
					if number(k) == f.Meta().Number {
						i = k
					}
				}
				if got := readAll(t, f); !bytes.Equal(got, content(i)) {
					t.Errorf("a reader read fragment %d back wrong", i)
				}
				prev = f.Meta().Number
			}
		})
	}
	producers.Wait()
	cancel()
	readers.Wait()
}
