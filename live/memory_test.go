package live

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A fragment's header counts against the limits, in each fragment that
// carries it.
func TestHeaderCounted(t *testing.T) {
	h := NewHub(Options{})
	m := meta(1)
	m.Header = make([]byte, 1000)
	f := h.Begin(1, m, memoryOnly)
	checkStats(t, h, "begun", Stats{Bytes: 1000, Fragments: 1, Streams: 1})
	f.Write(context.Background(), []byte("x"))
	checkStats(t, h, "written", Stats{Bytes: 1000 + minChunk, Fragments: 1, Streams: 1})
	f.Abort()
	checkStats(t, h, "aborted", Stats{})
}

// A Write that needs a chunk waits while the memory is held by fragments
// on their way to the archive, and goes on once one of them is persisted.
func TestWriteWaitsForRoom(t *testing.T) {
	h := NewHub(Options{MaxTotalBytes: 2 * minChunk, MemoryWait: time.Minute})
	a := fill(h, 1, 1, toArchive)
	a.Complete(time.Second)
	b := fill(h, 2, 1, toArchive)
	done := make(chan error, 1)
	go func() { done <- b.Write(context.Background(), pattern(2, minChunk)) }()
	eventually(t, "the write waits", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.freed != nil
	})
	select {
	case err := <-done:
		t.Fatalf("Write returned %v with no room", err)
	default:
	}
	a.Persisted()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Write still waits after the fragment holding the memory was persisted")
	}
	checkStats(t, h, "after the write", Stats{Bytes: 2 * minChunk, Fragments: 1, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
}

// With nothing evictable, a Write gives up after MemoryWait, as does a
// Reserve; a cancelled context ends the wait too.
func TestNoMemory(t *testing.T) {
	h := NewHub(Options{MaxTotalBytes: 2 * minChunk, MemoryWait: 20 * time.Millisecond})
	fill(h, 1, 1, toArchive).Complete(time.Second) // not persisted: held
	f := fill(h, 2, 1, toArchive)
	if err := f.Write(context.Background(), pattern(2, minChunk)); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Write with no room: %v, want ErrNoMemory", err)
	}
	if err := h.Reserve(context.Background(), 1); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Reserve with no room: %v, want ErrNoMemory", err)
	}
	if err := h.Reserve(context.Background(), 3*minChunk); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Reserve above MaxTotalBytes: %v, want ErrNoMemory", err)
	}
	long := NewHub(Options{MaxTotalBytes: minChunk, MemoryWait: time.Hour})
	fill(long, 1, 1, toArchive)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := long.Reserve(ctx, 1); !errors.Is(err, ErrNoMemory) {
		t.Fatalf("Reserve with a cancelled context: %v, want ErrNoMemory", err)
	}
	checkStats(t, long, "after the failures", Stats{Bytes: minChunk, Fragments: 1, Streams: 1})
}

// Reserved memory counts against MaxTotalBytes, evicts what it may, and
// wakes a waiting Write when released.
func TestReserveRelease(t *testing.T) {
	h := NewHub(Options{MaxTotalBytes: 3 * minChunk, MemoryWait: time.Minute})
	fill(h, 1, 1, memoryOnly).Complete(time.Second)
	if err := h.Reserve(context.Background(), 2*minChunk); err != nil {
		t.Fatal(err)
	}
	checkStats(t, h, "reserved", Stats{Bytes: 3 * minChunk, Reserved: 2 * minChunk, Fragments: 1, Streams: 1})
	if err := h.Reserve(context.Background(), minChunk); err != nil {
		t.Fatal(err)
	}
	checkStats(t, h, "reserved more", Stats{Bytes: 3 * minChunk, Reserved: 3 * minChunk, Evictions: 1, EvictedBytes: minChunk})
	f := h.Begin(2, meta(1), memoryOnly)
	done := make(chan error, 1)
	go func() { done <- f.Write(context.Background(), []byte("x")) }()
	eventually(t, "the write waits", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.freed != nil
	})
	h.Release(minChunk)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.Release(2 * minChunk)
	checkStats(t, h, "released", Stats{Bytes: minChunk, Fragments: 1, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
}

// A withdrawn fragment leaves the window wherever it is, is found no more,
// is no eviction, and no longer holds back the eviction of the fragments
// after it.
func TestWithdraw(t *testing.T) {
	h := NewHub(Options{MaxStreamBytes: 2 * minChunk})
	f1 := fill(h, 1, 1, toArchive)
	f1.Complete(time.Second)
	f2 := fill(h, 1, 2, toArchive)
	f2.Complete(time.Second)
	f3 := fill(h, 1, 3, toArchive)
	reader := make(chan []byte, 1)
	go func() { reader <- readAll(t, f3) }()
	f1.Withdraw() // failed to persist: it would hold the window for ever
	checkOldest(t, h, 1, "f1 withdrawn", number(2))
	f2.Persisted()
	f3.Withdraw() // in progress: aborted
	if got := <-reader; len(got) != minChunk {
		t.Errorf("a reader of the withdrawn in-progress fragment read %d bytes", len(got))
	}
	if _, complete := f3.Duration(); complete {
		t.Error("a withdrawn in-progress fragment reports a duration")
	}
	s := h.Stream(1)
	if g, _ := s.After(context.Background(), "", false); g != f2 {
		t.Errorf("After finds %v, want only f2", g)
	}
	if s.Evicted() != "" {
		t.Errorf("Evicted = %q after withdrawals", s.Evicted())
	}
	f4 := fill(h, 1, 4, toArchive)
	f4.Complete(time.Second)
	f4.Persisted()
	f5 := fill(h, 1, 5, toArchive)
	f5.Complete(time.Second)
	f5.Persisted()
	checkOldest(t, h, 1, "after more fragments", number(4))
	checkStats(t, h, "after more fragments", Stats{Bytes: 2 * minChunk, Fragments: 2, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
	f1.Withdraw() // twice: nothing happens
	f4.Withdraw() // in the middle of nothing: f4 is the oldest
	checkStats(t, h, "f4 withdrawn", Stats{Bytes: minChunk, Fragments: 1, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
}
