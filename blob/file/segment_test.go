package file_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/internal/powerfs"
	"github.com/openkvs/openkvs/store"
)

// segmentOf returns the segment of an appended object's key.
func segmentOf(t *testing.T, key string) string {
	t.Helper()
	seg, _, _, ok := store.ParseAppendedKey(key)
	if !ok {
		t.Fatalf("%q is not an appended object's key", key)
	}
	return seg
}

func appendData(t *testing.T, l store.Log, data []byte) string {
	t.Helper()
	key, err := l.Append(context.Background(), bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// A log starts a new segment when the next object would pass the size, or
// when the segment is older than the age; an object larger than the size
// gets a segment of its own.
func TestSegmentRotation(t *testing.T) {
	b := openBlobs(t, t.TempDir())
	b.SegmentSize = 100
	l := b.Log("s1/g")
	defer l.Close()
	k1 := appendData(t, l, payload(1, 60))
	k2 := appendData(t, l, payload(2, 40)) // exactly full
	k3 := appendData(t, l, payload(3, 1))
	k4 := appendData(t, l, payload(4, 500))
	if segmentOf(t, k1) != segmentOf(t, k2) {
		t.Errorf("objects that fit went to segments %s and %s", segmentOf(t, k1), segmentOf(t, k2))
	}
	if segmentOf(t, k3) == segmentOf(t, k2) || segmentOf(t, k4) == segmentOf(t, k3) {
		t.Errorf("no new segment past the size: %s %s %s", k2, k3, k4)
	}

	aged := openBlobs(t, t.TempDir())
	aged.SegmentAge = time.Nanosecond
	al := aged.Log("s1/g")
	defer al.Close()
	if a, b := appendData(t, al, payload(1, 1)), appendData(t, al, payload(2, 1)); segmentOf(t, a) == segmentOf(t, b) {
		t.Errorf("a segment older than its age got another object: %s, %s", a, b)
	}
}

// Delete leaves a segment a log still appends to (a row for its newest
// object may be on its way) and removes it once the log is done with it.
func TestDeleteKeepsOpenSegment(t *testing.T) {
	ctx := context.Background()
	b := openBlobs(t, t.TempDir())
	l := b.Log("s1/g")
	key := appendData(t, l, payload(1, 10))
	if err := b.Delete(ctx, segmentOf(t, key)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, key); err != nil {
		t.Fatalf("an object of an open segment is gone after the segment's Delete: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, segmentOf(t, key)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open after the closed segment's Delete: %v, want ErrNotFound", err)
	}
}

// The key of an appended object names a place in a segment: Put refuses
// it rather than store an object that Open would never read.
func TestPutRefusesAppendedKey(t *testing.T) {
	b := openBlobs(t, t.TempDir())
	if err := b.Put(context.Background(), "s1/g/1@0+1", bytes.NewReader([]byte("x")), 1); err == nil {
		t.Error("Put of an appended object's key succeeded")
	}
}

// powerAppends are the sizes of the appends of TestAppendPowerLoss: with
// segments of 100 KB the third starts a new segment.
var powerAppends = []int{10, 80_000, 40_000, 1, 30_000}

// runAppends runs powerAppends, the last two at once, through one log on
// a new file system whose power fails after cut operations (never if cut
// is 0), and returns the keys of those that returned one.
func runAppends(t *testing.T, cut int) (*powerfs.FS, []string) {
	t.Helper()
	s := powerfs.New()
	if cut > 0 {
		s.CutAfter(cut)
	}
	keys := make([]string, len(powerAppends))
	b, err := openAfterKill(s)
	if err != nil {
		checkCutError(t, "open", err)
		return s, keys
	}
	b.SegmentSize = 100_000
	l := b.Log("s1/g")
	add := func(i int) {
		data := payload(i, powerAppends[i])
		key, err := l.Append(context.Background(), plainReader{bytes.NewReader(data)}, int64(len(data)))
		checkCutError(t, fmt.Sprintf("append %d", i), err)
		keys[i] = key
	}
	last := len(powerAppends) - 1
	for i := range last - 1 {
		add(i)
	}
	done := make(chan struct{})
	go func() { defer close(done); add(last) }()
	add(last - 1)
	select {
	case <-done:
	case <-time.After(maxWait):
		t.Fatalf("append %d did not return in %v", last, maxWait)
	}
	checkCutError(t, "close", l.Close())
	return s, keys
}

// TestAppendPowerLoss cuts the power after every operation of a sequence
// of appends in turn: every append that returned a key reads back exactly
// from what survived.
func TestAppendPowerLoss(t *testing.T) {
	s, keys := runAppends(t, 0)
	for i, k := range keys {
		if k == "" {
			t.Fatalf("with no power cut append %d failed", i)
		}
	}
	if segmentOf(t, keys[0]) == segmentOf(t, keys[2]) {
		t.Fatalf("the appends stayed in one segment: the power cuts would not test a new segment")
	}
	total := s.Ops()
	var failed []int
	for cut := 1; cut <= total; cut++ {
		s, keys := runAppends(t, cut)
		b, err := file.OpenFS(s.Durable(), "blobs")
		if err != nil {
			t.Fatalf("reopen after cut %d: %v", cut, err)
		}
		for i, key := range keys {
			if key == "" {
				continue
			}
			if err := checkObject(b, key, expected{required: true, contents: [][]byte{payload(i, powerAppends[i])}}); err != nil {
				failed = append(failed, cut)
				if len(failed) <= 3 {
					t.Errorf("power cut after %d of %d operations: %v", cut, total, err)
				}
				break
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d power cuts broke the promise, after operations %v", len(failed), failed)
	}
	t.Logf("%d power cuts", total)
}

// failingWrites is a file system whose new files fail their writes, half
// done, while fail is set.
type failingWrites struct {
	*powerfs.FS
	fail atomic.Bool
}

func (f *failingWrites) Create(name string) (powerfs.Handle, error) {
	h, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &failingHandle{Handle: h, fs: f}, nil
}

type failingHandle struct {
	powerfs.Handle
	fs *failingWrites
}

func (h *failingHandle) Write(p []byte) (int, error) {
	if h.fs.fail.Load() {
		n, _ := h.Handle.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return h.Handle.Write(p)
}

// After a write fails the segment's contents are unknown: the next append
// goes to a new segment, and what was appended before still reads back.
func TestFailedWriteEndsSegment(t *testing.T) {
	fsys := &failingWrites{FS: powerfs.New()}
	b, err := file.OpenFS(fsys, "blobs")
	if err != nil {
		t.Fatal(err)
	}
	l := b.Log("s1/g")
	defer l.Close()
	before := appendData(t, l, payload(1, 100))
	fsys.fail.Store(true)
	if key, err := l.Append(context.Background(), bytes.NewReader(payload(2, 100)), 100); err == nil {
		t.Fatalf("an append whose write failed returned %s", key)
	}
	fsys.fail.Store(false)
	after := appendData(t, l, payload(3, 100))
	if segmentOf(t, after) == segmentOf(t, before) {
		t.Errorf("the append after a failed write went to the same segment %s", segmentOf(t, after))
	}
	for key, want := range map[string][]byte{before: payload(1, 100), after: payload(3, 100)} {
		if err := checkObject(b, key, expected{required: true, contents: [][]byte{want}}); err != nil {
			t.Error(err)
		}
	}
}

// A log that closes parks its segment: the next log of the prefix (the
// stream's next session) appends to it. A parked segment can be deleted.
func TestParkedSegment(t *testing.T) {
	ctx := context.Background()
	b := openBlobs(t, t.TempDir())
	first := b.Log("s1/g")
	k1 := appendData(t, first, payload(1, 10))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := b.Log("s1/g")
	k2 := appendData(t, second, payload(2, 10))
	if segmentOf(t, k2) != segmentOf(t, k1) {
		t.Errorf("the next log of the prefix started segment %s, not the parked %s", segmentOf(t, k2), segmentOf(t, k1))
	}
	otherLog := b.Log("s2/g")
	defer otherLog.Close()
	if other := appendData(t, otherLog, payload(3, 1)); segmentOf(t, other) == segmentOf(t, k1) {
		t.Errorf("a log of another prefix took the parked segment")
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, segmentOf(t, k1)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, k1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open of an object of a deleted parked segment: %v, want ErrNotFound", err)
	}
	third := b.Log("s1/g")
	defer third.Close()
	k3 := appendData(t, third, payload(4, 10))
	if segmentOf(t, k3) == segmentOf(t, k1) {
		t.Errorf("a log appended to the deleted segment %s", segmentOf(t, k1))
	}
	if err := checkObject(b, k3, expected{required: true, contents: [][]byte{payload(4, 10)}}); err != nil {
		t.Error(err)
	}
}
