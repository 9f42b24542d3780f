package sweeper

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
)

type fixture struct {
	t       *testing.T
	catalog store.Catalog
	blobs   store.Blobs
	sw      *Sweeper
	now     time.Time
	busy    map[int64]bool
}

func newFixture(t *testing.T) *fixture {
	c, b := storetest.Embedded(t)
	f := &fixture{t: t, catalog: c, blobs: b, now: time.UnixMilli(1_700_000_000_000), busy: map[int64]bool{}}
	f.sw = &Sweeper{Catalog: c, Blobs: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Busy: func(id int64) bool { return f.busy[id] }, Now: func() time.Time { return f.now }}
	return f
}

func (f *fixture) stream(name string, retention int64) *store.Stream {
	st := &store.Stream{Name: name, ARN: "arn:" + name, Status: store.StatusActive, RetentionHours: retention}
	if err := f.catalog.CreateStream(context.Background(), st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) put(key string) {
	if err := f.blobs.Put(context.Background(), key, bytes.NewReader([]byte(key))); err != nil {
		f.t.Fatal(err)
	}
}

// fragment stores a fragment's blobs and row, age hours before now.
func (f *fixture) fragment(st *store.Stream, age time.Duration) *store.Fragment {
	seq, err := f.catalog.ReserveSequence(context.Background(), st.ID, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	fr := &store.Fragment{StreamID: st.ID, Number: store.FragmentNumber(seq, f.now.UnixMilli()),
		ServerTime: f.now.Add(-age), ProducerTime: f.now.Add(-age)}
	fr.BlobKey = fmt.Sprintf("s%d/f/%s", st.ID, fr.Number)
	fr.HeaderKey = fmt.Sprintf("s%d/h/header", st.ID)
	f.put(fr.BlobKey)
	f.put(fr.HeaderKey)
	if err := f.catalog.AddFragments(context.Background(), []*store.Fragment{fr}); err != nil {
		f.t.Fatal(err)
	}
	return fr
}

func (f *fixture) keys() []string {
	var keys []string
	f.blobs.List(context.Background(), "", func(k string) error { keys = append(keys, k); return nil })
	return keys
}

func (f *fixture) numbers(st *store.Stream) []string {
	rows, err := f.catalog.FragmentsAfter(context.Background(), st.ID, "", 100)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Number)
	}
	return out
}

func TestExpired(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 2)
	old := f.fragment(st, 3*time.Hour)
	keep := f.fragment(st, time.Hour)
	other := f.stream("none", 0) // keeps nothing: every fragment goes
	gone := f.fragment(other, time.Minute)
	if err := f.sw.Expired(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.numbers(st); !slices.Equal(got, []string{keep.Number}) {
		t.Errorf("fragments left of cam = %v, want only %s", got, keep.Number)
	}
	if got := f.numbers(other); len(got) != 0 {
		t.Errorf("retention-0 stream kept %v", got)
	}
	keys := f.keys()
	for _, k := range []string{old.BlobKey, gone.BlobKey, gone.HeaderKey} {
		if slices.Contains(keys, k) {
			t.Errorf("blob %s survived", k)
		}
	}
	for _, k := range []string{keep.BlobKey, keep.HeaderKey} {
		if !slices.Contains(keys, k) {
			t.Errorf("blob %s of a kept fragment was deleted", k)
		}
	}
}

// A header blob of a stream with a running ingest session is kept even
// when no row references it: the session may be about to add one.
func TestExpiredKeepsHeaderOfBusyStream(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 1)
	fr := f.fragment(st, 2*time.Hour)
	f.busy[st.ID] = true
	if err := f.sw.Expired(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := f.keys()
	if slices.Contains(keys, fr.BlobKey) || !slices.Contains(keys, fr.HeaderKey) {
		t.Errorf("blobs after sweep = %v: want the fragment gone and its header kept", keys)
	}
}

func TestOrphans(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 24)
	kept := f.fragment(st, time.Minute)
	// A crash between blob and row left a blob whose sequence was reserved.
	seq, _ := f.catalog.ReserveSequence(context.Background(), st.ID, 1)
	crashed := fmt.Sprintf("s%d/f/%s", st.ID, store.FragmentNumber(seq, f.now.UnixMilli()))
	f.put(crashed)
	// A blob of a stream that no longer exists.
	f.put("s999/f/1")
	f.put("s999/h/x")
	// Something that is not ours is left alone.
	f.put("notes.txt")
	if err := f.sw.Orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"notes.txt", kept.BlobKey, kept.HeaderKey}
	slices.Sort(want)
	if got := f.keys(); !slices.Equal(got, want) {
		t.Errorf("blobs after orphan sweep = %v, want %v", got, want)
	}
	// A blob whose sequence is reserved after the sweep started belongs
	// to a running session: Orphans must not touch it.
	seq, _ = f.catalog.ReserveSequence(context.Background(), st.ID, 1)
	fresh := fmt.Sprintf("s%d/f/%s", st.ID, store.FragmentNumber(seq+5, f.now.UnixMilli()))
	f.put(fresh)
	if err := f.sw.Orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.keys(), fresh) {
		t.Error("orphan sweep deleted a blob of a running session")
	}
}

func TestStreamDeleted(t *testing.T) {
	f := newFixture(t)
	a, b := f.stream("a", 1), f.stream("b", 1)
	f.fragment(a, 0)
	keep := f.fragment(b, 0)
	if err := f.sw.StreamDeleted(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{keep.BlobKey, keep.HeaderKey}
	slices.Sort(want)
	if got := f.keys(); !slices.Equal(got, want) {
		t.Errorf("blobs after deleting stream a = %v, want %v", got, want)
	}
}
