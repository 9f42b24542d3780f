// Package storetest is the conformance suite every store.Catalog and
// store.Blobs backend runs from its own tests, so that all backends behave
// the same way.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/store"
)

// OpenCatalog opens a catalog kept in dir; opening the same dir again must
// see what was committed before.
type OpenCatalog func(t *testing.T, dir string) store.Catalog

// TestCatalog runs the catalog conformance suite.
func TestCatalog(t *testing.T, open OpenCatalog) {
	tests := map[string]func(*testing.T, OpenCatalog){
		"StreamLifecycle":    testStreamLifecycle,
		"ListStreams":        testListStreams,
		"Persistence":        testPersistence,
		"ReserveSequence":    testReserveSequence,
		"FragmentIndex":      testFragmentIndex,
		"FragmentRetention":  testFragmentRetention,
		"SegmentReferences":  testSegmentReferences,
		"DeleteCascades":     testDeleteCascades,
		"ConcurrentSequence": testConcurrentSequence,
		"ConcurrentAdds":     testConcurrentAdds,
		"IDsNeverReused":     testIDsNeverReused,
		"DeletedStreams":     testDeletedStreams,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

func openTemp(t *testing.T, open OpenCatalog) store.Catalog {
	t.Helper()
	c := open(t, t.TempDir())
	t.Cleanup(func() { c.Close() })
	return c
}

var epoch = time.UnixMilli(1_700_000_000_123)

func newStream(name string) *store.Stream {
	return &store.Stream{
		Name:           name,
		ARN:            "arn:aws:kinesisvideo:us-east-1:000000000000:stream/" + name + "/1700000000123",
		DeviceName:     "dev",
		MediaType:      "video/h264",
		KMSKeyID:       "arn:aws:kms:us-east-1:000000000000:alias/aws/kinesisvideo",
		Version:        "v1",
		Status:         store.StatusActive,
		CreationTime:   epoch,
		RetentionHours: 24,
		StorageTier:    "HOT",
		Tags:           map[string]string{"k": "v"},
	}
}

func mustCreate(t *testing.T, c store.Catalog, s *store.Stream) *store.Stream {
	t.Helper()
	if err := c.CreateStream(context.Background(), s); err != nil {
		t.Fatalf("CreateStream(%s): %v", s.Name, err)
	}
	return s
}

func equalTime() cmp.Option {
	return cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })
}

func testStreamLifecycle(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("cam-1"))
	if s.ID == 0 {
		t.Fatal("CreateStream left ID zero")
	}
	got, err := c.StreamByName(ctx, "cam-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got, equalTime()); diff != "" {
		t.Errorf("StreamByName mismatch (-want +got):\n%s", diff)
	}
	got, err = c.StreamByARN(ctx, s.ARN)
	if err != nil || got.Name != "cam-1" {
		t.Fatalf("StreamByARN = %v, %v", got, err)
	}
	if err := c.CreateStream(ctx, newStream("cam-1")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate CreateStream error = %v, want ErrExists", err)
	}
	if _, err := c.StreamByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StreamByName(nope) error = %v, want ErrNotFound", err)
	}
	if _, err := c.StreamByARN(ctx, "arn:nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("StreamByARN(nope) error = %v, want ErrNotFound", err)
	}

	upd := *got
	upd.Version, upd.MediaType, upd.RetentionHours = "v2", "video/h265", 48
	upd.Tags = map[string]string{"a": "1", "b": ""}
	upd.ImageGeneration, upd.Notification = `{"Status":"ENABLED"}`, `{"Status":"DISABLED"}`
	if err := c.UpdateStream(ctx, &upd, "stale"); !errors.Is(err, store.ErrVersionMismatch) {
		t.Fatalf("UpdateStream with stale version error = %v, want ErrVersionMismatch", err)
	}
	if err := c.UpdateStream(ctx, &upd, "v1"); err != nil {
		t.Fatal(err)
	}
	got, _ = c.StreamByName(ctx, "cam-1")
	if diff := cmp.Diff(&upd, got, equalTime()); diff != "" {
		t.Errorf("after UpdateStream (-want +got):\n%s", diff)
	}

	if err := c.DeleteStream(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteStream(ctx, s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second DeleteStream error = %v, want ErrNotFound", err)
	}
	if err := c.UpdateStream(ctx, &upd, "v2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateStream of deleted stream error = %v, want ErrNotFound", err)
	}
	// The name is free again after deletion.
	mustCreate(t, c, newStream("cam-1"))
}

func testListStreams(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	for _, n := range []string{"b-2", "a_1", "b-1", "b%", "c", "B-3", "b-10"} {
		s := newStream(n)
		s.ARN += n
		mustCreate(t, c, s)
	}
	names := func(ss []*store.Stream) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	all, err := c.ListStreams(ctx, "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"B-3", "a_1", "b%", "b-1", "b-10", "b-2", "c"}, names(all)); diff != "" {
		t.Errorf("ListStreams all (-want +got):\n%s", diff)
	}
	// The prefix is literal and case-sensitive: "b" must not match "B-3",
	// "b-" must not treat "-" or "%" as wildcards.
	page, _ := c.ListStreams(ctx, "b-", "", 2)
	if diff := cmp.Diff([]string{"b-1", "b-10"}, names(page)); diff != "" {
		t.Errorf("ListStreams page 1 (-want +got):\n%s", diff)
	}
	page, _ = c.ListStreams(ctx, "b-", "b-10", 2)
	if diff := cmp.Diff([]string{"b-2"}, names(page)); diff != "" {
		t.Errorf("ListStreams page 2 (-want +got):\n%s", diff)
	}
	page, _ = c.ListStreams(ctx, "a_", "", 10)
	if diff := cmp.Diff([]string{"a_1"}, names(page)); diff != "" {
		t.Errorf("ListStreams a_ (-want +got):\n%s", diff)
	}
	page, _ = c.ListStreams(ctx, "zzz", "", 10)
	if len(page) != 0 {
		t.Errorf("ListStreams zzz = %v, want none", names(page))
	}
}

func testPersistence(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	keep := newStream("keep")
	keep.ImageGeneration, keep.Notification = `{"Format":"PNG"}`, `{"DestinationConfig":{}}`
	s := mustCreate(t, c, keep)
	first, err := c.ReserveSequence(ctx, s.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	f := fragment(s.ID, 1, 0)
	if err := c.AddFragments(ctx, nil, []*store.Fragment{f}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, dir)
	defer c.Close()
	got, err := c.StreamByName(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got, equalTime()); diff != "" {
		t.Errorf("stream after reopen (-want +got):\n%s", diff)
	}
	next, err := c.ReserveSequence(ctx, s.ID, 1)
	if err != nil || next != first+10 {
		t.Errorf("ReserveSequence after reopen = %d, %v; want %d", next, err, first+10)
	}
	frags, err := c.Fragments(ctx, s.ID, []string{f.Number})
	if err != nil || len(frags) != 1 {
		t.Fatalf("Fragments after reopen = %v, %v", frags, err)
	}
	if diff := cmp.Diff(f, frags[0], equalTime()); diff != "" {
		t.Errorf("fragment after reopen (-want +got):\n%s", diff)
	}
}

func testReserveSequence(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	a := mustCreate(t, c, newStream("a"))
	b := newStream("b")
	b.ARN += "b"
	mustCreate(t, c, b)
	x, _ := c.ReserveSequence(ctx, a.ID, 100)
	y, _ := c.ReserveSequence(ctx, a.ID, 5)
	z, _ := c.ReserveSequence(ctx, b.ID, 5)
	if x < 1 || y != x+100 || z < 1 {
		t.Errorf("ReserveSequence = %d, %d, %d; want first >= 1 and %d second", x, y, z, x+100)
	}
	// Reserving nothing tells the next sequence, as openkvs migrate reads
	// it, and reserves nothing.
	if next, err := c.ReserveSequence(ctx, a.ID, 0); err != nil || next != y+5 {
		t.Errorf("ReserveSequence of 0 = %d, %v; want %d", next, err, y+5)
	}
	if next, _ := c.ReserveSequence(ctx, a.ID, 1); next != y+5 {
		t.Errorf("ReserveSequence after one of 0 = %d, want %d", next, y+5)
	}
	if _, err := c.ReserveSequence(ctx, 999999, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReserveSequence on missing stream error = %v, want ErrNotFound", err)
	}
}

func testConcurrentSequence(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("race"))
	const workers, each = 8, 20
	results := make(chan uint64, workers*each)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range each {
				v, err := c.ReserveSequence(ctx, s.ID, 3)
				if err != nil {
					errs <- err
					return
				}
				results <- v
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(results)
	seen := map[uint64]bool{}
	for v := range results {
		for i := range uint64(3) {
			if seen[v+i] {
				t.Fatalf("sequence %d reserved twice", v+i)
			}
			seen[v+i] = true
		}
	}
}

// fragment builds a fragment row whose number sorts by seq.
func fragment(streamID int64, seq int, offsetMs int64) *store.Fragment {
	return &store.Fragment{
		StreamID:     streamID,
		Number:       fmt.Sprintf("9134385233318143238773030204476768872849578%04d", seq),
		ProducerTime: epoch.Add(time.Duration(offsetMs) * time.Millisecond),
		ServerTime:   epoch.Add(time.Duration(offsetMs+500) * time.Millisecond),
		Duration:     2000 * time.Millisecond,
		Size:         int64(1000 + seq),
		BlobKey:      fmt.Sprintf("s%d/f%d", streamID, seq),
		HeaderKey:    fmt.Sprintf("s%d/h", streamID),
	}
}

func numbers(fs []*store.Fragment) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Number)
	}
	return out
}

func testFragmentIndex(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("frag"))
	var all []*store.Fragment
	for i := 1; i <= 10; i++ {
		f := fragment(s.ID, i, int64(i)*2000)
		if i == 6 { // producer time equal to fragment 5: ties order by number
			f.ProducerTime = all[4].ProducerTime
		}
		if err := c.AddFragments(ctx, nil, []*store.Fragment{f}); err != nil {
			t.Fatal(err)
		}
		all = append(all, f)
	}
	if err := c.AddFragments(ctx, nil, []*store.Fragment{all[0]}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate AddFragment error = %v, want ErrExists", err)
	}
	if err := c.AddFragments(ctx, nil, []*store.Fragment{fragment(987654, 1, 0)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddFragments for a missing stream error = %v, want ErrNotFound", err)
	}
	// A batch is all or nothing.
	if err := c.AddFragments(ctx, nil, []*store.Fragment{fragment(s.ID, 50, 0), all[1]}); !errors.Is(err, store.ErrExists) {
		t.Errorf("AddFragments with a duplicate error = %v, want ErrExists", err)
	}
	if ok, _ := c.HasBlobKey(ctx, fragment(s.ID, 50, 0).BlobKey); ok {
		t.Error("a failed batch left a row behind")
	}

	got, err := c.Fragments(ctx, s.ID, []string{all[7].Number, "123", all[2].Number})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]*store.Fragment{all[7], all[2]}, got, equalTime()); diff != "" {
		t.Errorf("Fragments (-want +got):\n%s", diff)
	}

	// Inclusive range on producer time: fragments 3..7 (6 shares 5's time).
	q := store.FragmentQuery{Field: store.ProducerTime, From: all[2].ProducerTime, To: all[6].ProducerTime, Limit: 3}
	page1, err := c.QueryFragments(ctx, s.ID, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(numbers([]*store.Fragment{all[2], all[3], all[4]}), numbers(page1)); diff != "" {
		t.Errorf("QueryFragments page 1 (-want +got):\n%s", diff)
	}
	last := page1[len(page1)-1]
	q.After = &store.FragmentCursor{Time: last.ProducerTime, Number: last.Number}
	page2, _ := c.QueryFragments(ctx, s.ID, q)
	if diff := cmp.Diff(numbers([]*store.Fragment{all[5], all[6]}), numbers(page2)); diff != "" {
		t.Errorf("QueryFragments page 2 (-want +got):\n%s", diff)
	}
	q = store.FragmentQuery{Field: store.ServerTime, From: all[8].ServerTime, To: all[9].ServerTime.Add(time.Hour), Limit: 100}
	srv, _ := c.QueryFragments(ctx, s.ID, q)
	if diff := cmp.Diff(numbers(all[8:]), numbers(srv)); diff != "" {
		t.Errorf("QueryFragments by server time (-want +got):\n%s", diff)
	}

	after, _ := c.FragmentsAfter(ctx, s.ID, "", 2)
	if diff := cmp.Diff(numbers(all[:2]), numbers(after)); diff != "" {
		t.Errorf("FragmentsAfter(\"\") (-want +got):\n%s", diff)
	}
	after, _ = c.FragmentsAfter(ctx, s.ID, all[7].Number, 10)
	if diff := cmp.Diff(numbers(all[8:]), numbers(after)); diff != "" {
		t.Errorf("FragmentsAfter(8) (-want +got):\n%s", diff)
	}
	latest, err := c.LatestFragments(ctx, s.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(numbers(all[7:]), numbers(latest)); diff != "" {
		t.Errorf("LatestFragments(3) (-want +got):\n%s", diff)
	}
	if latest, _ := c.LatestFragments(ctx, s.ID, 100); len(latest) != len(all) {
		t.Errorf("LatestFragments(100) returned %d fragments, want all %d", len(latest), len(all))
	}
	for _, key := range []string{all[3].BlobKey, all[3].HeaderKey} {
		if ok, err := c.HasBlobKey(ctx, key); err != nil || !ok {
			t.Errorf("HasBlobKey(%s) = %v, %v; want true", key, ok, err)
		}
	}
	if ok, _ := c.HasBlobKey(ctx, "orphan"); ok {
		t.Error("HasBlobKey(orphan) = true")
	}
}

func testFragmentRetention(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("ret"))
	var all []*store.Fragment
	for i := 1; i <= 5; i++ {
		f := fragment(s.ID, i, int64(i)*2000)
		c.AddFragments(ctx, nil, []*store.Fragment{f})
		all = append(all, f)
	}
	gone, err := c.DeleteFragmentsBefore(ctx, s.ID, all[3].ServerTime, 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(numbers(all[:2]), numbers(gone)); diff != "" {
		t.Errorf("DeleteFragmentsBefore limit 2 (-want +got):\n%s", diff)
	}
	gone, _ = c.DeleteFragmentsBefore(ctx, s.ID, all[3].ServerTime, 10)
	if diff := cmp.Diff(numbers(all[2:3]), numbers(gone)); diff != "" {
		t.Errorf("DeleteFragmentsBefore rest (-want +got):\n%s", diff)
	}
	left, _ := c.FragmentsAfter(ctx, s.ID, "", 10)
	if diff := cmp.Diff(numbers(all[3:]), numbers(left)); diff != "" {
		t.Errorf("fragments left (-want +got):\n%s", diff)
	}
}

// A segment is referenced while any row references an object appended to
// it, and only then: neighbouring keys that share its first bytes are not
// in it.
func testSegmentReferences(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("segments"))
	seg := fmt.Sprintf("s%d/g/0001", s.ID)
	f := fragment(s.ID, 1, 0)
	f.BlobKey = store.AppendedKey(seg, 4096, f.Size)
	neighbours := []*store.Fragment{fragment(s.ID, 2, 2000), fragment(s.ID, 3, 4000)}
	neighbours[0].BlobKey = seg + "0@0+1"
	neighbours[1].BlobKey = seg + "A"
	if err := c.AddFragments(ctx, nil, append([]*store.Fragment{f}, neighbours...)); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{seg: true, f.BlobKey: true, seg + "0": true, "s1/g/000": false, seg + "@": false} {
		if ok, err := c.HasBlobKey(ctx, key); err != nil || ok != want {
			t.Errorf("HasBlobKey(%s) = %v, %v; want %v", key, ok, err, want)
		}
	}
	if _, err := c.DeleteFragmentsBefore(ctx, s.ID, f.ServerTime.Add(time.Millisecond), 10); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasBlobKey(ctx, seg); err != nil || ok {
		t.Errorf("HasBlobKey(%s) after its only fragment went = %v, %v; want false", seg, ok, err)
	}
}

func testDeleteCascades(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("gone"))
	f := fragment(s.ID, 1, 0)
	c.AddFragments(ctx, nil, []*store.Fragment{f})
	if err := c.DeleteStream(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.HasBlobKey(ctx, f.BlobKey); ok {
		t.Error("fragment row survived DeleteStream")
	}
}

// Concurrent batches, as many ingest sessions send them, all land, but for
// those with a taken number, which fail alone: a group commit must not
// fail or drop its other batches for them.
func testConcurrentAdds(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openTemp(t, open)
	s := mustCreate(t, c, newStream("many"))
	taken := fragment(s.ID, 999, 0)
	if err := c.AddFragments(ctx, nil, []*store.Fragment{taken}); err != nil {
		t.Fatal(err)
	}
	const good, bad = 20, 5
	errs := make(chan error, good)
	badErrs := make(chan error, bad)
	for w := range good {
		go func() {
			errs <- c.AddFragments(ctx, nil, []*store.Fragment{fragment(s.ID, w*2+1, 0), fragment(s.ID, w*2+2, 0)})
		}()
	}
	for w := range bad {
		go func() {
			badErrs <- c.AddFragments(ctx, nil, []*store.Fragment{fragment(s.ID, 500+w, 0), taken})
		}()
	}
	for range good {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range bad {
		if err := <-badErrs; !errors.Is(err, store.ErrExists) {
			t.Fatalf("a batch with a taken number: %v, want ErrExists", err)
		}
	}
	if all, _ := c.FragmentsAfter(ctx, s.ID, "", 100); len(all) != 2*good+1 {
		t.Errorf("%d fragments indexed, want %d", len(all), 2*good+1)
	}
}

// testIDsNeverReused deletes the newest stream and creates another, before
// and after a reopen: the new stream must get a new ID, since blob keys and
// work still in flight for the deleted stream name it by ID.
func testIDsNeverReused(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	seen := map[int64]bool{}
	for i := range 2 {
		a := mustCreate(t, c, newStream(fmt.Sprintf("a%d", i)))
		seen[a.ID] = true
		if err := c.DeleteStream(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		b := mustCreate(t, c, newStream(fmt.Sprintf("a%d", i)))
		if seen[b.ID] {
			t.Fatalf("round %d: the stream created after deleting stream %d got ID %d again", i, a.ID, b.ID)
		}
		seen[b.ID] = true
		if err := c.DeleteStream(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c = open(t, dir)
	}
	defer c.Close()
	last := mustCreate(t, c, newStream("after-reopen"))
	if seen[last.ID] {
		t.Fatalf("after a reopen the new stream got ID %d, which a deleted stream had", last.ID)
	}
}

// testDeletedStreams checks that a deleted stream stays recorded, across a
// reopen, until its clean-up is recorded as done.
func testDeletedStreams(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	c := open(t, dir)
	a := mustCreate(t, c, newStream("a"))
	b := newStream("b")
	b.ARN += "b"
	mustCreate(t, c, b)
	if ids, err := c.DeletedStreams(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("DeletedStreams before any deletion = %v, %v", ids, err)
	}
	for _, id := range []int64{a.ID, b.ID} {
		if err := c.DeleteStream(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c = open(t, dir)
	defer c.Close()
	if ids, err := c.DeletedStreams(ctx); err != nil || !cmp.Equal(ids, []int64{a.ID, b.ID}) {
		t.Fatalf("DeletedStreams after a reopen = %v, %v; want %v", ids, err, []int64{a.ID, b.ID})
	}
	if err := c.ForgetDeletedStream(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.ForgetDeletedStream(ctx, a.ID); err != nil {
		t.Fatalf("forgetting twice: %v", err)
	}
	if ids, err := c.DeletedStreams(ctx); err != nil || !cmp.Equal(ids, []int64{b.ID}) {
		t.Fatalf("DeletedStreams after forgetting %d = %v, %v; want [%d]", a.ID, ids, err, b.ID)
	}
	if err := c.DeleteStream(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting a deleted stream: %v, want ErrNotFound", err)
	}
}
