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

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
)

type fixture struct {
	t       *testing.T
	catalog store.Catalog
	blobs   store.Blobs
	files   *file.Blobs // blobs, to append to
	sw      *Sweeper
	now     time.Time // the sweeper's clock; blobs carry the real time they were written
}

func newFixture(t *testing.T) *fixture {
	c, b := storetest.Embedded(t)
	f := &fixture{t: t, catalog: c, blobs: b, files: b, now: time.Now()}
	f.sw = &Sweeper{Catalog: c, Blobs: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return f.now }}
	return f
}

// later moves the sweeper's clock past the grace period of every blob
// written so far.
func (f *fixture) later() { f.now = time.Now().Add(store.BlobGrace + time.Minute) }

func (f *fixture) stream(name string, retention int64) *store.Stream {
	st := &store.Stream{Name: name, ARN: "arn:" + name, Status: store.StatusActive, RetentionHours: retention}
	if err := f.catalog.CreateStream(context.Background(), st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) put(key string) {
	if err := f.blobs.Put(context.Background(), key, bytes.NewReader([]byte(key)), int64(len([]byte(key)))); err != nil {
		f.t.Fatal(err)
	}
}

// number reserves the next fragment number of st.
func (f *fixture) number(st *store.Stream) string {
	seq, err := f.catalog.ReserveSequence(context.Background(), st.ID, 1)
	if err != nil {
		f.t.Fatal(err)
	}
	return store.FragmentNumber(seq, f.now.UnixMilli())
}

// fragment stores a fragment's blobs and row, age before now, with a
// header blob shared by the fragments of one producer session.
func (f *fixture) fragment(st *store.Stream, age time.Duration, session string) *store.Fragment {
	fr := &store.Fragment{StreamID: st.ID, Number: f.number(st), ServerTime: f.now.Add(-age), ProducerTime: f.now.Add(-age)}
	fr.BlobKey = fmt.Sprintf("s%d/f/%s", st.ID, fr.Number)
	fr.HeaderKey = fmt.Sprintf("s%d/h/%s", st.ID, session)
	f.put(fr.BlobKey)
	f.put(fr.HeaderKey)
	if err := f.catalog.AddFragments(context.Background(), nil, []*store.Fragment{fr}); err != nil {
		f.t.Fatal(err)
	}
	return fr
}

// appended stores a fragment as fragment does, but appends its blob to l.
func (f *fixture) appended(st *store.Stream, l store.Log, age time.Duration) *store.Fragment {
	fr := &store.Fragment{StreamID: st.ID, Number: f.number(st), ServerTime: f.now.Add(-age), ProducerTime: f.now.Add(-age)}
	key, err := l.Append(context.Background(), bytes.NewReader([]byte(fr.Number)), int64(len(fr.Number)))
	if err != nil {
		f.t.Fatal(err)
	}
	fr.BlobKey = key
	fr.HeaderKey = fmt.Sprintf("s%d/h/appended", st.ID)
	if err := f.catalog.AddFragments(context.Background(), nil, []*store.Fragment{fr}); err != nil {
		f.t.Fatal(err)
	}
	return fr
}

// segment returns the segment of an appended fragment.
func segment(fr *store.Fragment) string {
	seg, _, _, _ := store.ParseAppendedKey(fr.BlobKey)
	return seg
}

func (f *fixture) keys() []string {
	var keys []string
	f.blobs.List(context.Background(), "", func(bi store.BlobInfo) error { keys = append(keys, bi.Key); return nil })
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

func (f *fixture) wantKeys(when string, want ...string) {
	f.t.Helper()
	slices.Sort(want)
	if got := f.keys(); !slices.Equal(got, want) {
		f.t.Errorf("blobs %s = %v, want %v", when, got, want)
	}
}

func TestExpired(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 2)
	old := f.fragment(st, 3*time.Hour, "1")
	keep := f.fragment(st, time.Hour, "2")
	other := f.stream("none", 0) // keeps nothing: every fragment goes
	gone := f.fragment(other, time.Minute, "3")
	if err := f.sw.Expired(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.numbers(st); !slices.Equal(got, []string{keep.Number}) {
		t.Errorf("fragments left of cam = %v, want only %s", got, keep.Number)
	}
	if got := f.numbers(other); len(got) != 0 {
		t.Errorf("retention-0 stream kept %v", got)
	}
	// Headers are left to the orphan pass, which deletes those that the
	// expired fragments left unreferenced once they are old enough.
	f.wantKeys("after the retention sweep", keep.BlobKey, keep.HeaderKey, old.HeaderKey, gone.HeaderKey)
	f.later()
	if err := f.sw.Orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after the orphan pass", keep.BlobKey, keep.HeaderKey)
}

// A segment goes with the last row that references it: the retention
// sweep deletes the segment whose fragments all expired and keeps the one
// that still holds a fragment, which reads back whole.
func TestExpiredSegments(t *testing.T) {
	f := newFixture(t)
	f.files.SegmentSize = 2 * int64(len(f.number(f.stream("sizing", 1))))
	st := f.stream("cam", 2)
	f.put(fmt.Sprintf("s%d/h/appended", st.ID))
	l := f.files.Log(fmt.Sprintf("s%d/g", st.ID))
	old1, old2 := f.appended(st, l, 3*time.Hour), f.appended(st, l, 3*time.Hour)
	old3, keep := f.appended(st, l, 3*time.Hour), f.appended(st, l, time.Hour)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if segment(old1) != segment(old2) || segment(old3) != segment(keep) || segment(old1) == segment(keep) {
		t.Fatalf("fragments in segments %s %s %s %s, want the first two in one, the others in another",
			segment(old1), segment(old2), segment(old3), segment(keep))
	}
	if err := f.sw.Expired(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after the retention sweep", segment(keep), keep.HeaderKey)
	data, err := store.ReadBlob(context.Background(), f.blobs, keep.BlobKey, int64(len(keep.Number)), nil)
	if err != nil || string(data) != keep.Number {
		t.Errorf("the kept fragment reads %q, %v; want %q", data, err, keep.Number)
	}
}

// TestExpiredBoundary puts fragments two seconds either side of each
// stream's retention cutoff: those older than retention go, the others
// stay. The sweeper's clock runs seven minutes ahead of the real one, so a
// sweep that read the real clock instead would keep the two-second-old
// ones as well; a cutoff off by minutes in either direction (an hour of
// retention counted as 90 or 30 minutes) keeps or deletes the wrong side.
func TestExpiredBoundary(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now().Add(7 * time.Minute)
	for _, hours := range []int64{1, 24} {
		st := f.stream(fmt.Sprintf("cam-%d", hours), hours)
		retention := time.Duration(hours) * time.Hour
		gone := f.fragment(st, retention+2*time.Second, "old")
		kept := f.fragment(st, retention-2*time.Second, "new")
		if err := f.sw.Expired(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.numbers(st); !slices.Equal(got, []string{kept.Number}) {
			t.Errorf("retention %d h: fragments left %v, want only %s (2 s younger than the retention); %s is 2 s older",
				hours, got, kept.Number, gone.Number)
		}
		if keys := f.keys(); slices.Contains(keys, gone.BlobKey) || !slices.Contains(keys, kept.BlobKey) {
			t.Errorf("retention %d h: blobs %v, want %s deleted and %s kept", hours, keys, gone.BlobKey, kept.BlobKey)
		}
	}
}

// TestExpiredDuringSession is the header leak of a retention sweep that
// ran while a session was open: the header blob the expired fragments used
// is unreferenced, and a later orphan pass must delete it.
func TestExpiredDuringSession(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 1)
	old := f.fragment(st, 2*time.Hour, "old-session")
	live := f.fragment(st, time.Second, "running-session")
	if err := f.sw.Expired(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.later()
	if err := f.sw.Orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after the orphan pass", live.BlobKey, live.HeaderKey)
	if slices.Contains(f.keys(), old.HeaderKey) {
		t.Errorf("header %s leaked", old.HeaderKey)
	}
}

func TestOrphans(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 24)
	kept := f.fragment(st, time.Minute, "1")
	// A crash between blob and row left a fragment blob and a header.
	crashed := fmt.Sprintf("s%d/f/%s", st.ID, f.number(st))
	f.put(crashed)
	header := fmt.Sprintf("s%d/h/unused", st.ID)
	f.put(header)
	// Blobs of a stream that no longer exists.
	f.put("s999/f/1")
	f.put("s999/h/x")
	// Something that is not ours is left alone.
	f.put("notes.txt")
	all := []string{"notes.txt", kept.BlobKey, kept.HeaderKey, crashed, header, "s999/f/1", "s999/h/x"}

	f.orphanPasses(all, "notes.txt", kept.BlobKey, kept.HeaderKey)
}

// orphanPasses runs an orphan pass within the grace period, which must
// leave the blobs all, and one after it, which must leave only kept.
func (f *fixture) orphanPasses(all []string, kept ...string) {
	f.t.Helper()
	// Within the grace period a blob may still get its row: nothing goes.
	if err := f.sw.Orphans(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.wantKeys("after an orphan pass within the grace period", all...)
	f.later()
	if err := f.sw.Orphans(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.wantKeys("after the grace period", kept...)
}

// The orphan pass deletes a segment that no row references once it is
// older than the grace period (a crash between appends and rows) and keeps
// a referenced one.
func TestOrphanSegments(t *testing.T) {
	f := newFixture(t)
	st := f.stream("cam", 24)
	f.put(fmt.Sprintf("s%d/h/appended", st.ID))
	used := f.files.Log(fmt.Sprintf("s%d/g", st.ID))
	kept := f.appended(st, used, time.Minute)
	crashed := f.files.Log(fmt.Sprintf("s%d/g", st.ID))
	key, err := crashed.Append(context.Background(), bytes.NewReader([]byte("no row")), 6)
	if err != nil {
		t.Fatal(err)
	}
	used.Close()
	crashed.Close()
	orphan, _, _, _ := store.ParseAppendedKey(key)
	f.orphanPasses([]string{segment(kept), orphan, kept.HeaderKey}, segment(kept), kept.HeaderKey)
}

// createAfterList is a catalog whose ListStreams creates a stream and
// writes its blobs just after answering, as a CreateStream and PutMedia
// racing the orphan pass at start-up do.
type createAfterList struct {
	store.Catalog
	f       *fixture
	created *store.Fragment
}

func (c *createAfterList) ListStreams(ctx context.Context, prefix, after string, limit int) ([]*store.Stream, error) {
	list, err := c.Catalog.ListStreams(ctx, prefix, after, limit)
	if c.created == nil {
		c.created = c.f.fragment(c.f.stream("new", 24), 0, "1")
	}
	return list, err
}

// TestOrphansConcurrentCreate is the orphan pass that deleted the blobs of
// a stream created while it ran (it compared blob keys with a snapshot of
// the stream IDs).
func TestOrphansConcurrentCreate(t *testing.T) {
	f := newFixture(t)
	racing := &createAfterList{Catalog: f.catalog, f: f}
	f.sw.Catalog = racing
	if err := f.sw.Orphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after the orphan pass", racing.created.BlobKey, racing.created.HeaderKey)
}

func TestStreamDeleted(t *testing.T) {
	f := newFixture(t)
	a, b := f.stream("a", 1), f.stream("b", 1)
	f.fragment(a, 0, "1")
	keep := f.fragment(b, 0, "1")
	if err := f.catalog.DeleteStream(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.sw.StreamDeleted(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after deleting stream a", keep.BlobKey, keep.HeaderKey)
	if ids, err := f.catalog.DeletedStreams(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("deleted streams still recorded after the clean-up: %v, %v", ids, err)
	}
}

// A clean-up that a crash cut short is finished by DeletedStreams, which
// Run calls at start-up, however young the blobs.
func TestDeletedStreamsResumed(t *testing.T) {
	f := newFixture(t)
	a, b := f.stream("a", 1), f.stream("b", 1)
	f.fragment(a, 0, "1")
	f.fragment(a, 0, "1")
	keep := f.fragment(b, 0, "1")
	if err := f.catalog.DeleteStream(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.sw.DeletedStreams(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.wantKeys("after the deleted-streams pass", keep.BlobKey, keep.HeaderKey)
	if ids, err := f.catalog.DeletedStreams(context.Background()); err != nil || len(ids) != 0 {
		t.Errorf("deleted streams still recorded: %v, %v", ids, err)
	}
}
