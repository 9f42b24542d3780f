package live

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWindowLookups(t *testing.T) {
	ctx := context.Background()
	h := NewHub(Options{})
	s := h.Stream(7)
	if f, err := s.After(ctx, "", false); f != nil || err != nil {
		t.Fatalf("After on an empty stream = %v, %v; want nil, nil", f, err)
	}
	if s.Oldest() != "" || s.Current() != nil || s.Get(number(1)) != nil {
		t.Fatal("an empty stream has fragments")
	}

	f1 := h.Begin(7, meta(1), toArchive)
	if h.Stream(7) != s {
		t.Fatal("Begin replaced the handle readers already had")
	}
	f1.Complete(time.Second)
	f2 := h.Begin(7, meta(2), toArchive)
	f2.Complete(time.Second)
	f3 := h.Begin(7, meta(3), toArchive)

	for _, c := range []struct {
		after string
		want  *Fragment
	}{
		{"", f1},
		{"0", f1},
		{"95", f1}, // numerically smaller, though greater as a string
		{number(0), f1},
		{number(1), f2},
		{number(2), f3},
		{number(3), nil},
		{"9" + number(1), nil},
	} {
		if got, err := s.After(ctx, c.after, false); got != c.want || err != nil {
			t.Errorf("After(%q) = %v, %v; want %v", c.after, got, err, c.want)
		}
	}
	if s.Get(number(2)) != f2 || s.Get(number(4)) != nil || s.Get("") != nil {
		t.Error("Get does not find exactly the fragments in the window")
	}
	if got := s.Oldest(); got != number(1) {
		t.Errorf("Oldest = %q, want %q", got, number(1))
	}
	if s.Current() != f3 {
		t.Error("Current is not the in-progress fragment")
	}
	if f1.Prev() != "" || f2.Prev() != number(1) || f3.Prev() != number(2) {
		t.Errorf("Prev = %q, %q, %q", f1.Prev(), f2.Prev(), f3.Prev())
	}
	if m := f2.Meta(); m.Number != number(2) {
		t.Errorf("Meta = %+v", m)
	}
	f3.Complete(time.Second)
	if s.Current() != nil {
		t.Error("Current is set between fragments")
	}
}

// After with wait parks until a fragment begins, its context ends or the stream is dropped.
func TestAfterWaits(t *testing.T) {
	h := NewHub(Options{})
	s := h.Stream(1)
	type result struct {
		f   *Fragment
		err error
	}
	after := func(ctx context.Context, n string) chan result {
		c := make(chan result, 1)
		go func() {
			f, err := s.After(ctx, n, true)
			c <- result{f, err}
		}()
		eventually(t, "the reader waits", func() bool { return streamParked(s) })
		return c
	}

	c := after(context.Background(), "")
	f1 := h.Begin(1, meta(1), memoryOnly)
	if r := <-c; r.f != f1 || r.err != nil {
		t.Errorf("woken by Begin: %v, %v; want the new fragment", r.f, r.err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	c = after(ctx, number(1))
	cancel()
	if r := <-c; r.f != nil || !errors.Is(r.err, context.Canceled) {
		t.Errorf("woken by cancel: %v, %v", r.f, r.err)
	}

	c = after(context.Background(), number(1))
	h.Drop(1)
	if r := <-c; r.f != nil || !errors.Is(r.err, ErrDropped) {
		t.Errorf("woken by Drop: %v, %v; want ErrDropped", r.f, r.err)
	}
}

func TestDrop(t *testing.T) {
	ctx := context.Background()
	h := NewHub(Options{})
	old := h.Begin(1, meta(1), memoryOnly)
	old.Complete(time.Second)
	cur := h.Begin(1, meta(2), toArchive)
	cur.Write(context.Background(), []byte("abc"))
	other := h.Begin(2, meta(1), memoryOnly)
	other.Write(context.Background(), []byte("x"))
	s := h.Stream(1)
	held := s.Get(number(1)) // a reader's

	h.Drop(1)
	h.Drop(3) // unknown: nothing happens

	if f, err := s.After(ctx, "", false); f != nil || !errors.Is(err, ErrDropped) {
		t.Errorf("After on a dropped stream = %v, %v; want ErrDropped", f, err)
	}
	if s.Current() != nil || s.Oldest() != "" || s.Get(number(1)) != nil {
		t.Error("a dropped stream still has fragments")
	}
	cur.Write(context.Background(), []byte("def")) // the producer has not noticed yet: discarded
	if got := readAll(t, cur); string(got) != "abc" {
		t.Errorf("the dropped in-progress fragment reads %q, want \"abc\"", got)
	}
	if got := readAll(t, held); len(got) != 0 {
		t.Errorf("a dropped fragment held by a reader reads %q", got)
	}
	want := Stats{Bytes: minChunk, Fragments: 1, Streams: 1}
	if got := h.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v (only stream 2 left)", got, want)
	}

	// The ID may come back as a new stream, with its own numbers.
	f := h.Begin(1, meta(1), memoryOnly)
	if s2 := h.Stream(1); s2 == s || s2.Current() != f || f.Prev() != "" {
		t.Error("Begin after Drop did not start a new stream")
	}
}

// A Begin while a fragment is in progress (a new producer session took over) aborts it.
func TestBeginAbortsInProgress(t *testing.T) {
	h := NewHub(Options{})
	s := h.Stream(1)
	f1 := h.Begin(1, meta(1), toArchive)
	f1.Write(context.Background(), []byte("partial"))
	f2 := h.Begin(1, meta(2), toArchive)
	if got := readAll(t, f1); string(got) != "partial" {
		t.Errorf("the interrupted fragment reads %q", got)
	}
	if _, ok := f1.Duration(); ok {
		t.Error("the interrupted fragment is complete")
	}
	if s.Get(number(1)) != nil || s.Oldest() != number(2) || f2.Prev() != number(1) {
		t.Error("the interrupted fragment is still in the window")
	}
	f1.Complete(time.Second) // the old session ends late: nothing happens
	if s.Current() != f2 {
		t.Error("the old session's Complete ended the new fragment")
	}
}

// A Begin with a number that does not follow the stream's latest comes from a stale session:
// its fragment goes nowhere and the stream is unchanged.
func TestBeginStaleNumber(t *testing.T) {
	h := NewHub(Options{})
	s := h.Stream(1)
	f5 := h.Begin(1, meta(5), toArchive)
	f5.Write(context.Background(), []byte("live"))
	for _, n := range []string{number(5), number(4), "", "0"} {
		f := h.Begin(1, Meta{Number: n}, toArchive)
		f.Write(context.Background(), []byte("stale"))
		f.Complete(time.Second)
		f.Persisted()
		if got := readAll(t, f); len(got) != 0 {
			t.Errorf("Begin(%q): the stale fragment reads %q", n, got)
		}
		if _, ok := f.Duration(); ok {
			t.Errorf("Begin(%q): the stale fragment is complete", n)
		}
	}
	if s.Current() != f5 || s.Oldest() != number(5) {
		t.Error("a stale Begin changed the stream")
	}
	checkStats(t, h, "after stale Begins", Stats{Bytes: minChunk, Fragments: 1, Streams: 1})
	if f := h.Begin(2, Meta{Number: "1"}, toArchive); f != h.Stream(2).Current() {
		t.Error("numbers are not per stream")
	}
}

func TestCompareNumbers(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "0", 0},
		{"", "1", -1},
		{"007", "7", 0},
		{"95", "100", -1},
		{"100", "95", 1},
		{number(1), number(2), -1},
		{number(2), number(2), 0},
	} {
		if got := compareNumbers(c.a, c.b); got != c.want {
			t.Errorf("compareNumbers(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
