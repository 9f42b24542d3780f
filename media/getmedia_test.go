package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
	"github.com/openkvs/openkvs/synth"
)

// harness is a Service over a real catalog and blob store, with a hub the
// test publishes to directly.
type harness struct {
	t       *testing.T
	svc     *Service
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
	stream  *store.Stream
}

func newHarness(t *testing.T, retention int64) *harness {
	t.Helper()
	c, b := storetest.Embedded(t)
	st := &store.Stream{Name: "s", ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/s/1",
		Status: store.StatusActive, RetentionHours: retention, Version: "v", StorageTier: "HOT", CreationTime: time.Now()}
	if err := c.CreateStream(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	header := synth.Header(1)
	if err := b.Put(context.Background(), "h", bytes.NewReader(header), int64(len(header))); err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(live.Options{})
	return &harness{t: t, svc: New(c, b, hub, Options{CallsPerSecond: 1000}, nil), catalog: c, blobs: b, hub: hub, stream: st}
}

// cluster is fragment i's bytes: a Cluster of unknown size with 3 frames.
func cluster(i int) []byte {
	return synth.Cluster(uint64(i)*1000, synth.Frames(1, 3, 33)...)
}

// archive stores fragments with the given sequence numbers, one second apart.
func (h *harness) archive(seqs ...uint64) []string {
	h.t.Helper()
	return h.archiveData(cluster, seqs...)
}

// archiveData is archive with data(i) as fragment i's bytes.
func (h *harness) archiveData(data func(i int) []byte, seqs ...uint64) []string {
	h.t.Helper()
	var rows []*store.Fragment
	var numbers []string
	for i, seq := range seqs {
		server := time.UnixMilli(1_700_000_000_000 + int64(i)*1000)
		f := &store.Fragment{StreamID: h.stream.ID, Number: store.FragmentNumber(seq, server.UnixMilli()),
			ProducerTime: time.UnixMilli(int64(i) * 1000), ServerTime: server, Duration: 99 * time.Millisecond,
			Size: int64(len(data(i))), BlobKey: fmt.Sprintf("f%d", i), HeaderKey: "h"}
		if err := h.blobs.Put(context.Background(), f.BlobKey, bytes.NewReader(data(i)), f.Size); err != nil {
			h.t.Fatal(err)
		}
		rows = append(rows, f)
		numbers = append(numbers, f.Number)
	}
	if err := h.catalog.AddFragments(context.Background(), nil, rows); err != nil {
		h.t.Fatal(err)
	}
	return numbers
}

// deleteBefore deletes archived fragments older than fragment i, as the
// retention sweep does: rows, then blobs.
func (h *harness) deleteBefore(i int) {
	h.t.Helper()
	gone, err := h.catalog.DeleteFragmentsBefore(context.Background(), h.stream.ID, time.UnixMilli(1_700_000_000_000+int64(i)*1000), 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range gone {
		if err := h.blobs.Delete(context.Background(), f.BlobKey); err != nil {
			h.t.Fatal(err)
		}
	}
}

// deadline bounds a test's reads, so that a reader that should have ended
// but waits at the live edge fails the test instead of hanging it.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) reader(typ string) *Reader {
	h.t.Helper()
	r, err := h.svc.GetMedia(context.Background(), h.stream, &GetMediaInput{StartSelector: &StartSelector{StartSelectorType: &typ}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(r.Close)
	return r
}

// sink collects a payload and lets a test act after each flush.
type sink struct {
	buf             bytes.Buffer
	onFlush         func(payload []byte)
	writes, flushes int
}

func (s *sink) Write(p []byte) (int, error) {
	s.writes++
	return s.buf.Write(p)
}

func (s *sink) Flush() error {
	s.flushes++
	if s.onFlush != nil {
		s.onFlush(s.buf.Bytes())
	}
	return nil
}

// chunks is the number of whole chunks in a payload so far.
func chunks(p []byte) int { return bytes.Count(p, []byte(mkv.TagContinuationToken)) }

func parse(t *testing.T, payload []byte) []*mkv.Chunk {
	t.Helper()
	out, err := mkv.ReadChunks(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A retention cut that overtakes a reader on the archive, deleting the
// fragment it sent and the next ones, ends its payload with 4000 naming
// the last fragment it sent.
func TestRetentionCutOvertakesReader(t *testing.T) {
	h := newHarness(t, 1)
	numbers := h.archive(1, 2, 3, 4, 5)
	s := &sink{}
	s.onFlush = func(p []byte) {
		if chunks(p) == 1 {
			h.deleteBefore(3) // fragments 0, 1 and 2
			s.onFlush = nil
		}
	}
	err := h.reader(SelectEarliest).Run(deadline(t), s)
	var ib *inBand
	if !errors.As(err, &ib) || ib.id != errIDNotFound || ib.number != numbers[0] {
		t.Fatalf("Run: %v, want 4000 for %s", err, numbers[0])
	}
	got := parse(t, s.buf.Bytes())
	if len(got) != 2 || got[0].Tags[mkv.TagFragmentNumber] != numbers[0] {
		t.Fatalf("%d chunks, want fragment 0 and the error chunk", len(got))
	}
	want := &mkv.MediaError{FragmentNumber: numbers[0], ID: 4000, Code: "FRAGMENT_NOT_FOUND"}
	if e := got[1].Err(); e == nil || *e.(*mkv.MediaError) != *want {
		t.Errorf("error chunk %v, want %v", e, want)
	}
}

// A retention cut that deletes only fragments the reader has sent is no
// error: the next one follows in its producer session's sequence.
func TestRetentionCutBehindReader(t *testing.T) {
	h := newHarness(t, 1)
	numbers := h.archive(1, 2, 3, 4, 5)
	ctx, cancel := context.WithCancel(deadline(t))
	defer cancel()
	s := &sink{}
	s.onFlush = func(p []byte) {
		switch chunks(p) {
		case 2:
			h.deleteBefore(2) // fragments 0 and 1, both sent
		case 5:
			cancel() // the reader is at the live edge
		}
	}
	if err := h.reader(SelectEarliest).Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want it to wait at the live edge", err)
	}
	got := parse(t, s.buf.Bytes())
	for i, c := range got[:min(len(got), 5)] {
		if c.Tags[mkv.TagFragmentNumber] != numbers[i] || !bytes.Equal(c.Cluster, cluster(i)) {
			t.Errorf("chunk %d: fragment %s, want %s", i, c.Tags[mkv.TagFragmentNumber], numbers[i])
		}
	}
	if len(got) != 5 {
		t.Errorf("%d chunks, want 5", len(got))
	}
}

// A row whose blob is missing is a broken archive: 5000 naming it.
func TestMissingBlob(t *testing.T) {
	h := newHarness(t, 1)
	numbers := h.archive(1, 2)
	if err := h.blobs.Delete(context.Background(), "f0"); err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	err := h.reader(SelectEarliest).Run(deadline(t), s)
	var ib *inBand
	if !errors.As(err, &ib) || ib.id != errIDInternal || ib.number != numbers[0] {
		t.Fatalf("Run: %v, want 5000 for %s", err, numbers[0])
	}
	if got := parse(t, s.buf.Bytes()); len(got) != 1 || got[0].Err() == nil {
		t.Fatalf("payload of %d chunks, want one error chunk", len(got))
	}
}

// A fragment deleted between the reader finding its row and opening its
// blob is passed over by a reader that has sent nothing yet, and ends the
// payload of one that has.
func TestGoneBetweenRowAndBlob(t *testing.T) {
	h := newHarness(t, 1)
	numbers := h.archive(1, 2, 3)
	rows, err := h.catalog.FragmentsAfter(context.Background(), h.stream.ID, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	h.deleteBefore(1)
	r := h.reader(SelectEarliest)
	if err := r.gone(context.Background(), rows[0]); err != nil {
		t.Errorf("before the first chunk: %v, want the fragment passed over", err)
	}
	r.last, r.sent = numbers[0], true
	rows, err = h.catalog.FragmentsAfter(context.Background(), h.stream.ID, numbers[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	h.deleteBefore(2)
	var ib *inBand
	if err := r.gone(context.Background(), rows[0]); !errors.As(err, &ib) || ib.id != errIDNotFound || ib.number != numbers[0] {
		t.Errorf("after a chunk: %v, want 4000 for %s", err, numbers[0])
	}
}

// Shutdown ends readers that wait for fragments, cleanly.
func TestShutdownEndsWaitingReaders(t *testing.T) {
	h := newHarness(t, 1)
	h.archive(1)
	done := make(chan error, 2)
	for _, typ := range []string{SelectNow, SelectEarliest} {
		r := h.reader(typ)
		go func() { done <- r.Run(deadline(t), &sink{}) }()
	}
	h.svc.Shutdown()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after Shutdown: %v, want a clean end", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a reader did not end after Shutdown")
		}
	}
}

// clusterClosable tells a cut Cluster of known size, which nothing can
// close, from one of unknown size or a whole one.
func TestClusterClosable(t *testing.T) {
	unknown := synth.Cluster(0, synth.Frames(1, 3, 33)...)
	n := len(unknown) - 5 // the children after ID and unknown size
	known := append([]byte{0x1F, 0x43, 0xB6, 0x75, 0x01, 0, 0, 0, 0, 0, byte(n >> 8), byte(n)}, unknown[5:]...)
	tags := synth.Tags("name", "value") // producer metadata held before the Cluster
	for _, tc := range []struct {
		name  string
		bytes []byte
		cut   int // bytes left out at the end
		want  bool
	}{
		{"unknown size, whole", unknown, 0, true},
		{"unknown size, cut", unknown, 113, true},
		{"known size, whole", known, 0, true},
		{"known size, cut", known, 113, false},
		{"tags then known size, cut", append(append([]byte{}, tags...), known...), 113, false},
		{"tags then known size, whole", append(append([]byte{}, tags...), known...), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := live.NewHub(live.Options{}).Begin(1, live.Meta{Number: store.FragmentNumber(1, 0)}, false)
			f.Write(context.Background(), tc.bytes[:len(tc.bytes)-tc.cut])
			f.Abort()
			if got := clusterClosable(f, len(tc.bytes)-tc.cut); got != tc.want {
				t.Errorf("clusterClosable = %v, want %v", got, tc.want)
			}
		})
	}
}

// prefetching is a Blobs that records the Prefetch hints and Opens it is
// given, as an object store's read-ahead would see them.
type prefetching struct {
	store.Blobs
	events []string
}

func (p *prefetching) Prefetch(key string, size int64) {
	p.events = append(p.events, fmt.Sprintf("prefetch %s %d", key, size))
}

func (p *prefetching) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	p.events = append(p.events, "open "+key)
	return p.Blobs.Open(ctx, key)
}

// A reader catching up through the archive hints the two fragments after
// the one it sends, with their sizes, before it opens that one.
func TestCatchUpPrefetches(t *testing.T) {
	h := newHarness(t, 1)
	h.archive(1, 2, 3, 4)
	p := &prefetching{Blobs: h.blobs}
	h.svc.blobs = p
	ctx, cancel := context.WithCancel(deadline(t))
	s := &sink{onFlush: func(b []byte) {
		if chunks(b) == 4 {
			cancel()
		}
	}}
	if err := h.reader(SelectEarliest).Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want it ended by the test", err)
	}
	size := func(i int) string { return strconv.Itoa(len(cluster(i))) }
	want := []string{
		// The header is read once and kept; the first fragment is read
		// twice, the first time to see that it starts with a key frame.
		"prefetch f1 " + size(1), "prefetch f2 " + size(2), "open h", "open f0", "open f0",
		"prefetch f2 " + size(2), "prefetch f3 " + size(3), "open f1",
		"prefetch f3 " + size(3), "open f2",
		"open f3",
	}
	if diff := cmp.Diff(want, p.events); diff != "" {
		t.Errorf("Blobs calls (-want +got):\n%s", diff)
	}
}

// counting counts a catalog's FragmentsAfter queries.
type counting struct {
	store.Catalog
	after int
}

func (c *counting) FragmentsAfter(ctx context.Context, id int64, number string, limit int) ([]*store.Fragment, error) {
	c.after++
	return c.Catalog.FragmentsAfter(ctx, id, number, limit)
}

// A reader catching up through the archive queries the catalog once per
// page of archivePage fragments, not once per fragment, and sends every
// fragment in order.
func TestCatchUpReadsRowsInPages(t *testing.T) {
	h := newHarness(t, 1)
	const n = 2*archivePage + 22
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	numbers := h.archive(seqs...)
	c := &counting{Catalog: h.catalog}
	h.svc.catalog = c
	ctx, cancel := context.WithCancel(deadline(t))
	s := &sink{onFlush: func(b []byte) {
		if chunks(b) == n {
			cancel()
		}
	}}
	if err := h.reader(SelectEarliest).Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want it ended by the test", err)
	}
	got := parse(t, s.buf.Bytes())
	if len(got) != n {
		t.Fatalf("%d chunks, want %d", len(got), n)
	}
	for i, ch := range got {
		if ch.Tags[mkv.TagFragmentNumber] != numbers[i] || !bytes.Equal(ch.Cluster, cluster(i)) {
			t.Fatalf("chunk %d: fragment %s, want %s", i, ch.Tags[mkv.TagFragmentNumber], numbers[i])
		}
	}
	// Three pages, then one query that finds the end of the archive.
	if c.after != 4 {
		t.Errorf("%d FragmentsAfter queries, want 4", c.after)
	}
}

// A reader catching up sends an archived fragment as one write of its
// whole chunk (header, start Tags, Cluster, end Tags) and one flush: a few
// syscalls per fragment. A fragment larger than maxPiece goes out a
// maxPiece at a time, a write and a flush each, with the same bytes.
func TestCatchUpWritesWholeChunks(t *testing.T) {
	h := newHarness(t, 1)
	h.svc = New(h.catalog, h.blobs, h.hub, Options{CallsPerSecond: 1000, BytesPerSecond: 1e12}, nil)
	big := synth.Cluster(1000, synth.Frame{Track: 1, Key: true, Size: 2*maxPiece + 1000})
	data := func(i int) []byte {
		if i == 1 {
			return big
		}
		return cluster(i)
	}
	numbers := h.archiveData(data, 1, 2, 3)
	ctx, cancel := context.WithCancel(deadline(t))
	s := &sink{onFlush: func(b []byte) {
		if chunks(b) == 3 {
			cancel()
		}
	}}
	if err := h.reader(SelectEarliest).Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want it ended by the test", err)
	}
	got := parse(t, s.buf.Bytes())
	if len(got) != 3 {
		t.Fatalf("%d chunks, want 3", len(got))
	}
	for i, ch := range got {
		if ch.Tags[mkv.TagFragmentNumber] != numbers[i] || !bytes.Equal(ch.Cluster, data(i)) {
			t.Fatalf("chunk %d: fragment %s, want %s with its bytes", i, ch.Tags[mkv.TagFragmentNumber], numbers[i])
		}
	}
	// The big chunk is three pieces: two full ones, then the rest with the
	// end Tags.
	if s.writes != 1+3+1 || s.flushes != 1+3+1 {
		t.Errorf("%d writes and %d flushes, want 5 and 5", s.writes, s.flushes)
	}
}
