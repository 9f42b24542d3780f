package live

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
)

// fill begins fragment i of a stream and writes minChunk bytes: one chunk of minChunk
// capacity once the stream's previous fragment had that size too.
func fill(h *Hub, stream int64, i int, archived bool) *Fragment {
	f := h.Begin(stream, meta(i), archived)
	f.Write(context.Background(), pattern(i, minChunk))
	return f
}

// checkStats compares the window's bookkeeping; pool_test.go checks RecycledBytes.
func checkStats(t *testing.T, h *Hub, step string, want Stats) {
	t.Helper()
	got := h.Stats()
	got.RecycledBytes = 0
	if got != want {
		t.Errorf("%s: Stats = %+v, want %+v", step, got, want)
	}
}

func checkOldest(t *testing.T, h *Hub, stream int64, step string, want string) {
	t.Helper()
	if got := h.Stream(stream).Oldest(); got != want {
		t.Errorf("%s: stream %d starts at %q, want %q", step, stream, got, want)
	}
}

// Archived fragments leave a full stream window only once persisted, oldest first, and an
// unpersisted fragment holds back the persisted ones after it.
func TestEvictStreamBytesArchived(t *testing.T) {
	h := NewHub(Options{MaxStreamBytes: 4 * minChunk})
	var fs []*Fragment
	for i := 1; i <= 5; i++ {
		f := fill(h, 1, i, toArchive)
		f.Complete(time.Second)
		fs = append(fs, f)
	}
	checkStats(t, h, "5 unpersisted", Stats{Bytes: 5 * minChunk, Fragments: 5, Streams: 1})
	held := h.Stream(1).Get(number(1)) // a reader's

	fs[1].Persisted()
	checkStats(t, h, "second persisted", Stats{Bytes: 5 * minChunk, Fragments: 5, Streams: 1})
	checkOldest(t, h, 1, "second persisted", number(1))

	fs[0].Persisted()
	checkStats(t, h, "first persisted", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
	checkOldest(t, h, 1, "first persisted", number(2))

	fill(h, 1, 6, toArchive) // in progress, counted
	checkStats(t, h, "sixth begun", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 1, Evictions: 2, EvictedBytes: 2 * minChunk})
	checkOldest(t, h, 1, "sixth begun", number(3))

	if h.Stream(1).Get(number(1)) != nil {
		t.Error("an evicted fragment is still found")
	}
	if got := readAll(t, held); !bytes.Equal(got, pattern(1, minChunk)) {
		t.Error("a reader holding an evicted fragment cannot read it whole")
	}
}

// Fragments begun with archived false leave a full window as soon as they are complete; the
// in-progress fragment never does, however large.
func TestEvictStreamBytesMemoryOnly(t *testing.T) {
	h := NewHub(Options{MaxStreamBytes: 2 * minChunk})
	fill(h, 1, 1, memoryOnly).Complete(time.Second)
	fill(h, 1, 2, memoryOnly).Complete(time.Second)
	checkStats(t, h, "window full", Stats{Bytes: 2 * minChunk, Fragments: 2, Streams: 1})

	f3 := fill(h, 1, 3, memoryOnly)
	checkStats(t, h, "third begun", Stats{Bytes: 2 * minChunk, Fragments: 2, Streams: 1, Evictions: 1, EvictedBytes: minChunk})
	checkOldest(t, h, 1, "third begun", number(2))

	f3.Write(context.Background(), pattern(33, 4*minChunk)) // one more chunk: 16 KiB written, need 64 KiB
	checkStats(t, h, "third grown", Stats{Bytes: 5 * minChunk, Fragments: 1, Streams: 1, Evictions: 2, EvictedBytes: 2 * minChunk})
	checkOldest(t, h, 1, "third grown", number(3))

	f3.Complete(time.Second) // larger than the window: evicted at once
	checkStats(t, h, "third complete", Stats{Evictions: 3, EvictedBytes: 7 * minChunk})
	checkOldest(t, h, 1, "third complete", "")
}

// A full hub evicts the oldest evictable fragment of any stream.
func TestEvictTotalBytes(t *testing.T) {
	h := NewHub(Options{MaxTotalBytes: 4 * minChunk})
	x1 := fill(h, 3, 1, toArchive)
	x1.Complete(time.Second)
	fill(h, 1, 1, memoryOnly).Complete(time.Second)
	fill(h, 2, 1, memoryOnly).Complete(time.Second)
	fill(h, 1, 2, memoryOnly).Complete(time.Second)
	checkStats(t, h, "hub full", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 3})

	fill(h, 2, 2, memoryOnly).Complete(time.Second)
	checkStats(t, h, "B2", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 3, Evictions: 1, EvictedBytes: minChunk})
	checkOldest(t, h, 1, "B2", number(2))
	checkOldest(t, h, 3, "B2", number(1)) // older, but not persisted

	fill(h, 1, 3, memoryOnly)
	checkStats(t, h, "A3", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 3, Evictions: 2, EvictedBytes: 2 * minChunk})
	checkOldest(t, h, 2, "A3", number(2))

	x1.Persisted()
	checkStats(t, h, "X1 persisted", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 3, Evictions: 2, EvictedBytes: 2 * minChunk})
	fill(h, 2, 3, memoryOnly)
	checkStats(t, h, "B3", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 2, Evictions: 3, EvictedBytes: 3 * minChunk})
	checkOldest(t, h, 3, "B3", "")
	checkOldest(t, h, 1, "B3", number(2))
	checkOldest(t, h, 2, "B3", number(2))
}

// Fragments begun more than MaxAge ago go, as far as the eviction rules allow, on any call.
func TestEvictAge(t *testing.T) {
	h := NewHub(Options{MaxAge: time.Minute})
	start := time.Unix(1_500_000_000, 0)
	now := start
	h.now = func() time.Time { return now }

	fill(h, 1, 1, memoryOnly).Complete(time.Second)
	now = now.Add(20 * time.Second)
	f2 := fill(h, 1, 2, toArchive)
	f2.Complete(time.Second)
	now = now.Add(20 * time.Second)
	fill(h, 1, 3, memoryOnly).Complete(time.Second)
	now = now.Add(20 * time.Second)
	f4 := fill(h, 1, 4, memoryOnly)
	fill(h, 2, 1, memoryOnly).Complete(time.Second)

	now = start.Add(time.Minute)
	checkOldest(t, h, 1, "60s", number(1)) // exactly MaxAge old: kept
	now = start.Add(61 * time.Second)
	checkOldest(t, h, 1, "61s", number(2))
	checkStats(t, h, "61s", Stats{Bytes: 4 * minChunk, Fragments: 4, Streams: 2, Evictions: 1, EvictedBytes: minChunk})

	now = start.Add(10 * time.Minute)
	checkOldest(t, h, 1, "unpersisted", number(2)) // and it holds back the third
	checkStats(t, h, "unpersisted", Stats{Bytes: 3 * minChunk, Fragments: 3, Streams: 1, Evictions: 2, EvictedBytes: 2 * minChunk})
	f2.Persisted()
	checkOldest(t, h, 1, "persisted", number(4)) // in progress: kept
	f4.Complete(time.Second)
	checkStats(t, h, "all complete", Stats{Evictions: 5, EvictedBytes: 5 * minChunk})
}

// An aborted fragment leaves the window at once; that is not an eviction.
func TestAbortLeavesWindow(t *testing.T) {
	h := NewHub(Options{})
	fill(h, 1, 1, toArchive).Complete(time.Second)
	f := fill(h, 1, 2, toArchive)
	f.Abort()
	checkStats(t, h, "aborted", Stats{Bytes: minChunk, Fragments: 1, Streams: 1})
	checkOldest(t, h, 1, "aborted", number(1))
	if g, _ := h.Stream(1).After(context.Background(), number(1), false); g != nil {
		t.Errorf("After finds the aborted fragment")
	}
	f.Write(context.Background(), []byte("late")) // no new chunk is counted for an aborted fragment
	f.Write(context.Background(), pattern(1, minChunk))
	checkStats(t, h, "written after abort", Stats{Bytes: minChunk, Fragments: 1, Streams: 1})
}

// A reader that stops reading blocks neither the producer nor the eviction of what it holds:
// 100 MB go through a window of 8 MiB while the reader sits on the first fragment.
func TestStalledReader(t *testing.T) {
	const (
		window   = 8 << 20
		fragment = 1 << 20
		write    = 64 << 10
		total    = 100 << 20
	)
	h := NewHub(Options{MaxStreamBytes: window})
	s := h.Stream(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan []byte)
	release := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		f, err := s.After(ctx, "", true)
		if err != nil {
			t.Error(err)
			return
		}
		p, _, err := f.Next(ctx, 0)
		if err != nil {
			t.Error(err)
			return
		}
		got <- p
		<-release // parked: holds f and p, reads nothing more
	}()

	buf := pattern(1, write)
	first := bytes.Clone(buf)
	for i := range total / fragment {
		f := h.Begin(1, meta(i+1), i%2 == 0)
		for range fragment / write {
			f.Write(context.Background(), buf)
			buf[0]++ // the producer reuses its buffer
		}
		f.Complete(time.Second)
		f.Persisted()
		if i == 0 {
			if p := <-got; !bytes.Equal(p, first) {
				t.Fatal("the reader got other bytes than the first write")
			}
		}
		if st := h.Stats(); st.Bytes > window {
			t.Fatalf("fragment %d: the hub holds %d bytes, more than the window", i, st.Bytes)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 4*window {
		t.Errorf("heap holds %d bytes after 100 MB through an 8 MiB window", ms.HeapAlloc)
	}
	close(release)
	<-stopped
}

// Evicted names the newest evicted fragment; aborts and drops do not move it.
func TestEvictedWatermark(t *testing.T) {
	h := NewHub(Options{MaxStreamBytes: 2 * minChunk})
	s := h.Stream(1)
	fill(h, 1, 1, memoryOnly).Complete(time.Second)
	fill(h, 1, 2, memoryOnly).Abort()
	if got := s.Evicted(); got != "" {
		t.Errorf("after an abort Evicted = %q, want none", got)
	}
	fill(h, 1, 3, memoryOnly).Complete(time.Second)
	fill(h, 1, 4, memoryOnly).Complete(time.Second) // three chunks: 1 goes
	if got := s.Evicted(); got != number(1) {
		t.Errorf("Evicted = %q, want %q", got, number(1))
	}
	fill(h, 1, 5, memoryOnly).Complete(time.Second) // 3 goes
	if got := s.Evicted(); got != number(3) {
		t.Errorf("Evicted = %q, want %q", got, number(3))
	}
}

// A persisted fragment of a stream that keeps an archive goes once begun more than
// ArchivedAge ago, on its stream's next event, long before MaxAge; a fragment of a stream that
// keeps none stays for MaxAge, and an unpersisted one stays whatever its age.
func TestEvictArchivedAge(t *testing.T) {
	h := NewHub(Options{MaxAge: time.Minute, ArchivedAge: 2 * time.Second})
	start := time.Unix(1_500_000_000, 0)
	now := start
	h.now = func() time.Time { return now }

	a1 := fill(h, 1, 1, toArchive)
	m1 := fill(h, 2, 1, memoryOnly)
	now = start.Add(time.Second)
	a1.Complete(time.Second)
	m1.Complete(time.Second)
	a1.Persisted()
	checkOldest(t, h, 1, "persisted at 1s", number(1)) // younger than ArchivedAge: kept

	now = start.Add(3 * time.Second)
	a2 := fill(h, 1, 2, toArchive)
	checkOldest(t, h, 1, "next begun at 3s", number(2))
	a2.Complete(time.Second)
	now = start.Add(6 * time.Second)
	checkOldest(t, h, 1, "complete at 6s", number(2))
	a2.Persisted()
	checkOldest(t, h, 1, "persisted at 6s", "")
	checkOldest(t, h, 2, "memory only at 6s", number(1))
	checkStats(t, h, "6s", Stats{Bytes: minChunk, Fragments: 1, Streams: 1, Evictions: 2, EvictedBytes: 2 * minChunk})
}
