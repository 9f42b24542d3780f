package file_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/internal/powerfs"
	"github.com/openkvs/openkvs/store"
)

// blobPut is one Put of the power-loss sequence.
type blobPut struct {
	key  string
	data []byte
}

// payload returns n bytes that no other seed's payload shares a prefix with.
func payload(seed, n int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%d-", seed)), n)[:n]
}

// powerPuts writes into directories that a killed process created and
// never fsynced (see openAfterKill), creates directories at two levels,
// writes objects of several writes each (io.Copy copies 32 KiB at a time),
// writes one object while another Put in its directory completes (so that
// the directory is fsynced with a temporary file in it) and overwrites an
// object.
var powerPuts = []blobPut{
	{"s0/f/1", payload(0, 10)},
	{"s1/h/1", payload(1, 100)},
	{"s1/f/1", payload(2, 80_000)},
	{"s1/f/2", payload(3, 40_000)}, // paused half-way while the next Put runs
	{"s1/f/3", payload(4, 10)},
	{"s2/f/1", payload(5, 1)},
	{"s1/f/1", payload(6, 70_000)}, // an overwrite
}

// pausedPut is the index of the Put that pauses half-way.
const pausedPut = 3

// maxWait bounds every wait of these tests.
const maxWait = 10 * time.Second

// plainReader hides bytes.Reader's WriteTo, so io.Copy writes in chunks.
type plainReader struct{ io.Reader }

// pausedReader returns head, then closes paused and waits for resume
// before returning tail.
type pausedReader struct {
	head, tail     []byte
	paused, resume chan struct{}
	waited         bool
}

func (r *pausedReader) Read(p []byte) (int, error) {
	if len(r.head) == 0 && !r.waited {
		r.waited = true
		close(r.paused)
		<-r.resume
	}
	src := &r.head
	if len(r.head) == 0 {
		src = &r.tail
	}
	if len(*src) == 0 {
		return 0, io.EOF
	}
	n := copy(p, *src)
	*src = (*src)[n:]
	return n, nil
}

// runPuts runs powerPuts on a new file system whose power fails after cut
// operations (never if cut is 0). It returns the file system and which
// Puts returned nil.
func runPuts(t *testing.T, cut int) (*powerfs.FS, []bool) {
	t.Helper()
	s := powerfs.New()
	if cut > 0 {
		s.CutAfter(cut)
	}
	ok := make([]bool, len(powerPuts))
	b, err := openAfterKill(s)
	if err != nil {
		checkCutError(t, "open", err)
		return s, ok
	}
	for i := 0; i < len(powerPuts); i++ {
		if i == pausedPut {
			ok[i], ok[i+1] = putDuringPaused(t, b, powerPuts[i], powerPuts[i+1])
			i++
			continue
		}
		err := b.Put(context.Background(), powerPuts[i].key, plainReader{bytes.NewReader(powerPuts[i].data)}, int64(len(powerPuts[i].data)))
		checkCutError(t, "put "+powerPuts[i].key, err)
		ok[i] = err == nil
	}
	return s, ok
}

// openAfterKill opens Blobs on s as a process does after others were
// killed (SIGKILL: nothing lost) between their Mkdirs of blobs, blobs/s0
// and blobs/s0/f and the fsyncs of the parents: the directories exist, but
// their entries are not durable.
func openAfterKill(s *powerfs.FS) (*file.Blobs, error) {
	for _, dir := range []string{"blobs", "blobs/s0", "blobs/s0/f"} {
		if err := s.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
	}
	return file.OpenFS(s, "blobs")
}

// putDuringPaused starts Put p, runs Put q to its end while p waits
// half-way through its data, then lets p finish.
func putDuringPaused(t *testing.T, b *file.Blobs, p, q blobPut) (pOK, qOK bool) {
	t.Helper()
	half := len(p.data) / 2
	r := &pausedReader{head: p.data[:half], tail: p.data[half:], paused: make(chan struct{}), resume: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.Put(context.Background(), p.key, r, int64(len(p.data))) }()
	var pErr error
	finished := false
	select {
	case <-r.paused:
	case pErr = <-done: // the power failed before p read its data
		finished = true
	case <-time.After(maxWait):
		t.Fatalf("put %s neither paused nor returned in %v", p.key, maxWait)
	}
	qErr := b.Put(context.Background(), q.key, plainReader{bytes.NewReader(q.data)}, int64(len(q.data)))
	close(r.resume)
	if !finished {
		select {
		case pErr = <-done:
		case <-time.After(maxWait):
			t.Fatalf("put %s did not return in %v after resuming", p.key, maxWait)
		}
	}
	checkCutError(t, "put "+p.key, pErr)
	checkCutError(t, "put "+q.key, qErr)
	return pErr == nil, qErr == nil
}

// checkCutError fails the test on any error but the power cut.
func checkCutError(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, powerfs.ErrPowerCut) {
		t.Fatalf("%s: %v, want nil or the power cut", what, err)
	}
}

// expected is what a key may hold after the cut.
type expected struct {
	required bool     // a Put of it returned nil
	contents [][]byte // the last such Put's data, and what later failed Puts tried to write
}

// expectations applies the contract of Put: one that returned nil is
// durable; one that failed may have happened, but whole, or not at all.
func expectations(ok []bool) map[string]expected {
	m := map[string]expected{}
	for i, p := range powerPuts {
		e := m[p.key]
		if ok[i] {
			e = expected{required: true, contents: [][]byte{p.data}}
		} else {
			e.contents = append(e.contents, p.data)
		}
		m[p.key] = e
	}
	return m
}

// checkDurable reopens Blobs on what survived the cut and checks it
// against ok. It reports whether a temporary file survived, for Open to
// remove.
func checkDurable(s *powerfs.FS, ok []bool) (leftover bool, err error) {
	d := s.Durable()
	leftover = len(tempFiles(d)) > 0
	b, err := file.OpenFS(d, "blobs")
	if err != nil {
		return leftover, fmt.Errorf("reopen: %w", err)
	}
	if temps := tempFiles(d); len(temps) > 0 {
		return leftover, fmt.Errorf("temporary files %q after Open", temps)
	}
	want := expectations(ok)
	var listed []string
	err = b.List(context.Background(), "", func(bi store.BlobInfo) error {
		listed = append(listed, bi.Key)
		return nil
	})
	if err != nil {
		return leftover, err
	}
	for _, key := range listed {
		if _, known := want[key]; !known {
			return leftover, fmt.Errorf("object %s that no Put wrote", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if err := checkObject(b, key, want[key]); err != nil {
			return leftover, err
		}
	}
	return leftover, nil
}

// checkObject checks that key holds one of the allowed contents whole, or
// is absent if that is allowed.
func checkObject(b *file.Blobs, key string, want expected) error {
	r, err := b.Open(context.Background(), key)
	if errors.Is(err, store.ErrNotFound) {
		if want.required {
			return fmt.Errorf("%s is gone, though its Put returned nil before the cut", key)
		}
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if !slices.ContainsFunc(want.contents, func(c []byte) bool { return bytes.Equal(c, got) }) {
		var sizes []int
		for _, c := range want.contents {
			sizes = append(sizes, len(c))
		}
		return fmt.Errorf("%s holds %d bytes that no Put wrote (Puts wrote %v bytes)", key, len(got), sizes)
	}
	return nil
}

// tempFiles lists the temporary files in s.
func tempFiles(s *powerfs.FS) []string {
	var out []string
	for _, p := range s.Paths() {
		if strings.HasPrefix(path.Base(p), ".tmp-") {
			out = append(out, p)
		}
	}
	return out
}

// TestPowerLoss cuts the power after every operation of a sequence of
// Puts in turn and reopens Blobs on what survived: every Put that returned
// nil reads back exactly, no object is partial or foreign, and Open removes
// the temporary files left behind.
func TestPowerLoss(t *testing.T) {
	s, ok := runPuts(t, 0)
	if !slices.Equal(ok, []bool{true, true, true, true, true, true, true}) {
		t.Fatalf("with no power cut the Puts returned nil: %v", ok)
	}
	total := s.Ops()
	var failed []int
	leftovers := 0
	for cut := 1; cut <= total; cut++ {
		s, ok := runPuts(t, cut)
		leftover, err := checkDurable(s, ok)
		if leftover {
			leftovers++
		}
		if err != nil {
			failed = append(failed, cut)
			if len(failed) <= 3 {
				t.Errorf("power cut after %d of %d operations (Puts returned nil: %v): %v", cut, total, ok, err)
			}
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d power cuts broke the promise, after operations %v", len(failed), total, failed)
	}
	if leftovers == 0 {
		t.Errorf("no power cut left a temporary file behind: Open's clean-up went untested")
	}
	t.Logf("%d power cuts; %d left a temporary file for Open to remove", total, leftovers)
}

// A reader that writes itself out (io.WriterTo, as ingest's reader of a
// live fragment does) reaches the file in its own pieces: a 1 MB object
// from one buffer takes no more file operations than a 10-byte one.
func TestPutWritesWholeBuffers(t *testing.T) {
	ops := func(n int) int {
		fs := powerfs.New()
		b, err := file.OpenFS(fs, "blobs")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put(context.Background(), "s1/f/0", bytes.NewReader(payload(0, 1)), 1); err != nil {
			t.Fatal(err) // creates the directories
		}
		before := fs.Ops()
		if err := b.Put(context.Background(), "s1/f/1", bytes.NewReader(payload(1, n)), int64(n)); err != nil {
			t.Fatal(err)
		}
		return fs.Ops() - before
	}
	if small, large := ops(10), ops(1_000_000); large != small {
		t.Errorf("a Put of 1 MB took %d file operations, one of 10 bytes %d", large, small)
	}
}
