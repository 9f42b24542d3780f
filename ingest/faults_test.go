package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/synth"
)

// fragmentKeys returns the fragment blob keys of st.
func (h *harness) fragmentKeys(st *store.Stream) []string {
	h.t.Helper()
	var keys []string
	err := h.blobs.List(context.Background(), fmt.Sprintf("s%d/f/", st.ID), func(bi store.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return keys
}

// windowNumbers returns the numbers of the fragments the live hub holds
// for st.
func (h *harness) windowNumbers(st *store.Stream) []string {
	var out []string
	s := h.hub.Stream(st.ID)
	for f, _ := s.After(context.Background(), "", false); f != nil; f, _ = s.After(context.Background(), f.Meta().Number, false) {
		out = append(out, f.Meta().Number)
	}
	return out
}

// checkOnlyStored asserts that what is left of st, in blobs and in the live
// hub, is exactly the indexed fragments: nothing that failed to persist is
// still served or held. Fragments stored one object each leave no object
// without a row; appended ones (store.Appender) leave bytes that no key
// refers to, in a segment that goes with its last row.
func (h *harness) checkOnlyStored(st *store.Stream) {
	h.t.Helper()
	frags, _ := h.storedFragments(st)
	var numbers, keys []string
	for _, f := range frags {
		numbers = append(numbers, f.Number)
		if _, _, _, appended := store.ParseAppendedKey(f.BlobKey); !appended {
			keys = append(keys, f.BlobKey)
		}
	}
	if got := h.fragmentKeys(st); !slices.Equal(got, keys) {
		h.t.Errorf("fragment blobs %v, want only the indexed %v", got, keys)
	}
	if got := h.windowNumbers(st); !slices.Equal(got, numbers) {
		h.t.Errorf("live window holds %v, want only the indexed %v", got, numbers)
	}
}

// A fragment whose blob cannot be written is ERROR 5001; it and the
// fragments received after it leave the live hub (they will never be in
// the archive, so readers must not find them, and they must not hold its
// memory) and leave no blob behind.
func TestIngestArchivalErrorWithdraws(t *testing.T) {
	h := newHarness(t, Options{})
	h.m.blobs = &failingBlobs{Blobs: h.blobs, fail: goodFragment(1000)}
	st := h.stream("s", 24)
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(0), goodFragment(1000), goodFragment(2000), goodFragment(3000)))
	if err == nil {
		t.Fatal("session succeeded with failing storage")
	}
	if last := acks[len(acks)-1]; last.ErrorID != 5001 || last.FragmentTimecode != 1000 {
		t.Fatalf("last ACK %+v, want ERROR 5001 at 1000", last)
	}
	h.checkOnlyStored(st)
	if stats := h.hub.Stats(); stats.Fragments != 1 || stats.Reserved != 0 {
		t.Errorf("hub after the session: %+v, want only the stored fragment and nothing reserved", stats)
	}
}

// flakyCatalog fails AddFragments for rows of one fragment timecode, and
// can hold AddFragments until released.
type flakyCatalog struct {
	store.Catalog
	fail    time.Time     // producer time of the fragment whose rows fail
	hold    chan struct{} // when set, AddFragments waits for it to close
	entered chan struct{} // closed when AddFragments is first called
	once    sync.Once
}

func (c *flakyCatalog) AddFragments(ctx context.Context, lease *store.Lease, fs []*store.Fragment) error {
	if c.entered != nil {
		c.once.Do(func() { close(c.entered) })
	}
	if c.hold != nil {
		<-c.hold
	}
	for _, f := range fs {
		if f.ProducerTime.Equal(c.fail) {
			return errors.New("database or disk is full")
		}
	}
	return c.Catalog.AddFragments(ctx, lease, fs)
}

// A row that cannot be added is ERROR 5001 too, never PERSISTED, and its
// blob is deleted since no row references it. Rows of fragments whose
// blobs are ready together are added in one call: when fragment 0's row
// goes with fragment 1000's, neither is stored, and the ERROR names 0, the
// first fragment not stored.
func TestIngestCatalogError(t *testing.T) {
	h := newHarness(t, Options{})
	h.m.catalog = &flakyCatalog{Catalog: h.catalog, fail: time.UnixMilli(1000)}
	st := h.stream("s", 24)
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(0), goodFragment(1000), goodFragment(2000)))
	if err == nil {
		t.Fatal("session succeeded with a failing catalog")
	}
	first := uint64(0) // the first fragment not PERSISTED
	for _, a := range acks {
		if a.EventType == AckPersisted && a.FragmentTimecode != 0 {
			t.Errorf("PERSISTED for a fragment whose row failed: %+v", a)
		}
		if a.EventType == AckPersisted && a.FragmentTimecode == 0 {
			first = 1000
		}
	}
	if last := acks[len(acks)-1]; last.ErrorID != 5001 || last.FragmentTimecode != first {
		t.Fatalf("last ACK %+v, want ERROR 5001 at %d", last, first)
	}
	h.checkOnlyStored(st)
}

// PERSISTED follows the catalog commit: while the row is not committed the
// producer hears RECEIVED only.
func TestIngestPersistedAfterCommit(t *testing.T) {
	h := newHarness(t, Options{})
	cat := &flakyCatalog{Catalog: h.catalog, hold: make(chan struct{}), entered: make(chan struct{})}
	h.m.catalog = cat
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0), synth.Tags("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")))
	<-cat.entered
	if log.count(AckReceived) != 1 || log.count(AckPersisted) != 0 {
		t.Fatalf("with the commit held: %d RECEIVED, %d PERSISTED; want 1 and 0", log.count(AckReceived), log.count(AckPersisted))
	}
	close(cat.hold)
	wait.For(t, "PERSISTED after the commit", func() bool { return log.count(AckPersisted) == 1 })
	body.w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// blockingBlobs holds every fragment Put until its context ends and then
// until released, and then writes the blob anyway, as a write already past
// its last check of the context does.
type blockingBlobs struct {
	store.Blobs
	entered, release chan struct{}
	once             sync.Once
}

func (b *blockingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if !strings.Contains(key, "/f/") {
		return b.Blobs.Put(ctx, key, r, size)
	}
	b.once.Do(func() { close(b.entered) })
	<-ctx.Done()
	<-b.release
	return b.Blobs.Put(context.WithoutCancel(ctx), key, r, size)
}

// Deleting a stream cancels what its session was still storing, and
// StreamChanged returns only once nothing more will be stored, so that the
// stream's blobs can be deleted after it: no row or fragment blob appears
// later, and the producer hears STREAM_NOT_ACTIVE, not an archival error.
func TestIngestDeleteWhilePersisting(t *testing.T) {
	h := newHarness(t, Options{})
	blobs := &blockingBlobs{Blobs: h.blobs, entered: make(chan struct{}), release: make(chan struct{})}
	h.m.blobs = blobs
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0), goodFragment(1000)))
	<-blobs.entered // fragment 0 is RECEIVED and being stored
	if err := h.catalog.DeleteStream(context.Background(), st.ID); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{})
	go func() {
		h.m.StreamChanged(st, nil)
		close(changed)
	}()
	// Something not happening can only be watched for a while.
	select {
	case <-changed:
		t.Fatal("StreamChanged returned while a fragment blob was still being written")
	case <-time.After(200 * time.Millisecond):
	}
	close(blobs.release)
	select {
	case <-changed:
	case <-time.After(maxDeleteWait / 2):
		t.Fatal("StreamChanged did not return")
	}
	if keys := h.fragmentKeys(st); len(keys) != 0 {
		t.Errorf("fragment blobs %v after StreamChanged returned", keys)
	}
	var ae *ackError
	if err := <-done; !errors.As(err, &ae) || ae.class != ErrStreamNotActive {
		t.Fatalf("session error %v, want STREAM_NOT_ACTIVE", err)
	}
	for _, a := range log.acks(t) {
		if a.EventType == AckPersisted || a.ErrorID == ErrArchival.ID {
			t.Errorf("ACK %+v for a deleted stream", a)
		}
	}
}

// withScale returns synth.Header(1) with another TimecodeScale.
func withScale(scale uint64) []byte {
	elem := func(v uint64) []byte {
		b := []byte{0x2A, 0xD7, 0xB1, 0x01, 0, 0, 0, 0, 0, 0, 0x08}
		return binary.BigEndian.AppendUint64(b, v)
	}
	return bytes.Replace(synth.Header(1), elem(1_000_000), elem(scale), 1)
}

// blockGroup is a BlockGroup on track 1 at relative timecode 0 with a
// BlockDuration, as 8-byte-size elements.
func blockGroup(duration uint64) []byte {
	block := []byte{0xA1, 0x85, 0x81, 0x00, 0x00, 0x80, 0xAA} // track 1, timecode 0, key frame, 1 byte
	dur := binary.BigEndian.AppendUint64([]byte{0x9B, 0x88}, duration)
	return append(append([]byte{0xA0, 0x80 | byte(len(block)+len(dur))}, block...), dur...)
}

func TestIngestHeaderAndTimeLimits(t *testing.T) {
	big := synth.Header(1)
	big = append(big, synth.Tags("k", string(make([]byte, 5<<20)))...) // Tags before the first Cluster are header
	cases := []struct {
		name        string
		body        []byte
		class       AckErrorClass
		errTimecode uint64
	}{
		{"TimecodeScale 2^62", concat(withScale(1<<62), goodFragment(0)), ErrInvalidMKV, 0},
		{"TimecodeScale 2^64-1", concat(withScale(1<<64-1), goodFragment(0)), ErrInvalidMKV, 0},
		{"TimecodeScale over a second", concat(withScale(1_000_000_001), goodFragment(0)), ErrInvalidMKV, 0},
		{"BlockDuration 2^63", concat(synth.Header(1), synth.Cluster(5000), blockGroup(1<<63)), ErrFragmentTooLong, 5000},
		{"BlockDuration 2^64-1", concat(synth.Header(1), synth.Cluster(5000), blockGroup(1<<64-1)), ErrFragmentTooLong, 5000},
		{"header over 4 MiB", concat(big, goodFragment(0)), ErrInvalidMKV, 0},
		// A producer that resumed a fragment on a new connection: bare
		// SimpleBlocks. 4000 is retriable: the producer re-sends the whole
		// fragment with a header (kvs-protocol.md §4.5).
		{"body starts inside a fragment", goodFragment(3000)[13+9:], ErrStreamRead, 0},
		{"body starts with a Cluster", goodFragment(3000), ErrStreamRead, 0},
		{"garbage before the header", concat([]byte("hello"), synth.Header(1), goodFragment(0)), ErrInvalidMKV, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			st := h.stream("s", 24)
			acks, err := h.put(st, Params{}, tc.body)
			var ae *ackError
			if !errors.As(err, &ae) || ae.class != tc.class {
				t.Fatalf("session error %v, want %s", err, tc.class.Code)
			}
			last := acks[len(acks)-1]
			if last.EventType != AckError || last.ErrorID != tc.class.ID || last.FragmentTimecode != tc.errTimecode {
				t.Errorf("last ACK %+v, want ERROR %d at timecode %d", last, tc.class.ID, tc.errTimecode)
			}
			if frags, _ := h.storedFragments(st); len(frags) != 0 {
				t.Errorf("%d fragments stored", len(frags))
			}
			if stats := h.hub.Stats(); stats.Reserved != 0 {
				t.Errorf("hub after the session: %+v, want nothing reserved", stats)
			}
		})
	}
}

// bigFrameBody is a stream whose one fragment holds a frame of n bytes
// and is never completed.
func bigFrameBody(n int) []byte {
	return concat(synth.Header(1), synth.Cluster(0, synth.Frame{Track: 1, Key: true, Size: n}))
}

// Parse buffers, in-progress fragments and headers count against the live
// hub's total: sessions with large frames past the limit end with ERROR
// 5000 instead of taking the memory, and what ended sessions held is
// given back.
func TestIngestMemoryBounded(t *testing.T) {
	const limit = 16 << 20
	h := newHarnessLive(t, Options{}, live.Options{MaxTotalBytes: limit, MemoryWait: 100 * time.Millisecond})
	var peak, peakReserved int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			stats := h.hub.Stats()
			peak, peakReserved = max(peak, stats.Bytes), max(peakReserved, stats.Reserved)
			select {
			case <-stop:
				return
			default:
				time.Sleep(time.Millisecond) // sampling, not waiting for a condition
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	for i := range 10 {
		st := h.stream(fmt.Sprintf("s%d", i), 24)
		wg.Go(func() {
			acks, _ := h.put(st, Params{}, bigFrameBody(3<<20))
			last := acks[len(acks)-1]
			mu.Lock()
			outcomes[fmt.Sprint(last.EventType, last.ErrorID)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	if peak > limit {
		t.Errorf("the hub held %d bytes at its peak, over its %d-byte limit", peak, limit)
	}
	if peakReserved < 3<<20 {
		t.Errorf("at most %d bytes reserved: the parse buffer of a 3 MiB frame was not counted", peakReserved)
	}
	if outcomes["ERROR5000"] == 0 {
		t.Errorf("session outcomes %v: want some ERROR 5000 for lack of memory", outcomes)
	}
	// The sessions that got their frame in end it with the body: their
	// fragments are persisted and stay in the window, nothing else, unless
	// they were evicted (persisted, they may go) to make room for others.
	if stats := h.hub.Stats(); stats.Reserved != 0 || stats.Fragments+int(stats.Evictions) != outcomes["PERSISTED0"] {
		t.Errorf("hub after every session ended: %+v with outcomes %v, want nothing reserved and only the persisted fragments, in the window or evicted", stats, outcomes)
	}
}
