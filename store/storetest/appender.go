package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/store"
)

// OpenAppender opens blob storage kept in dir that can append
// (store.Appender); opening the same dir again must see what was stored.
type OpenAppender func(t *testing.T, dir string) interface {
	store.Blobs
	store.Appender
}

// TestAppender runs the conformance suite of store.Appender.
func TestAppender(t *testing.T, open OpenAppender) {
	t.Run("RoundTrip", func(t *testing.T) { testAppendRoundTrip(t, open) })
	t.Run("WrongSize", func(t *testing.T) { testAppendWrongSize(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testAppendConcurrent(t, open) })
	t.Run("Persistence", func(t *testing.T) { testAppendPersistence(t, open) })
	t.Run("SeparateLogs", func(t *testing.T) { testAppendSeparateLogs(t, open) })
	t.Run("Cancelled", func(t *testing.T) { testAppendCancelled(t, open) })
}

func appendAll(t *testing.T, l store.Log, objects [][]byte) []string {
	t.Helper()
	var keys []string
	for _, o := range objects {
		key, err := l.Append(context.Background(), bytes.NewReader(o), int64(len(o)))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// Appended objects read back exactly, under keys that name the one
// segment they share, which List yields as the only object, holding them
// all in order. Deleting an appended object keeps it; deleting the segment
// takes all.
func testAppendRoundTrip(t *testing.T, open OpenAppender) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	l := b.Log("s1/g")
	objects := [][]byte{payloadOf(1, 300_000), payloadOf(2, 0), payloadOf(3, 17)}
	keys := appendAll(t, l, objects)
	segment, _, _, ok := store.ParseAppendedKey(keys[0])
	if !ok || !strings.HasPrefix(segment, "s1/g/") {
		t.Fatalf("Append returned key %q, want an appended object's key under s1/g/", keys[0])
	}
	var off int64
	for i, key := range keys {
		want := store.AppendedKey(segment, off, int64(len(objects[i])))
		if key != want {
			t.Errorf("object %d has key %s, want %s", i, key, want)
		}
		off += int64(len(objects[i]))
		if got := readBlob(t, b, key); !bytes.Equal(got, objects[i]) {
			t.Errorf("object %d read back %d bytes, want its %d", i, len(got), len(objects[i]))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{segment}, listKeys(t, b, "s1/")); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if got := readBlob(t, b, segment); !bytes.Equal(got, bytes.Join(objects, nil)) {
		t.Errorf("the segment holds %d bytes, want the %d appended", len(got), off)
	}
	if err := b.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, keys[0]); !bytes.Equal(got, objects[0]) {
		t.Errorf("after Delete of an appended object it reads %d bytes, want its %d", len(got), len(objects[0]))
	}
	if err := b.Delete(ctx, segment); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{keys[2], segment} {
		if _, err := b.Open(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Open(%s) after its segment's Delete: %v, want ErrNotFound", key, err)
		}
	}
}

// An append whose reader yields too few or too many bytes fails; the
// appends after it are not disturbed by what it left.
func testAppendWrongSize(t *testing.T, open OpenAppender) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	l := b.Log("s1/g")
	defer l.Close()
	first := appendAll(t, l, [][]byte{payloadOf(1, 100)})
	if key, err := l.Append(ctx, bytes.NewReader(payloadOf(2, 10)), 20); err == nil {
		t.Errorf("a short append returned %s, want an error", key)
	}
	if key, err := l.Append(ctx, bytes.NewReader(payloadOf(3, 30)), 20); err == nil {
		t.Errorf("a long append returned %s, want an error", key)
	}
	if key, err := l.Append(ctx, &failingReader{payloadOf(4, 50)}, 100); err == nil {
		t.Errorf("an append whose reader failed returned %s, want an error", key)
	}
	next := appendAll(t, l, [][]byte{payloadOf(5, 40)})
	if got := readBlob(t, b, first[0]); !bytes.Equal(got, payloadOf(1, 100)) {
		t.Errorf("the first object reads %d bytes, want 100", len(got))
	}
	if got := readBlob(t, b, next[0]); !bytes.Equal(got, payloadOf(5, 40)) {
		t.Errorf("the object after the failures reads %q, want %q", got, payloadOf(5, 40))
	}
}

// failingReader yields its bytes and then an error.
type failingReader struct{ data []byte }

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("reader failed")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// Appends from many goroutines at once each get their own bytes.
func testAppendConcurrent(t *testing.T, open OpenAppender) {
	b := open(t, t.TempDir())
	l := b.Log("s1/g")
	defer l.Close()
	const writers, each = 8, 20
	keys := make([][]string, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				data := payloadOf(w*each+i, 1000+w*100+i)
				key, err := l.Append(context.Background(), bytes.NewReader(data), int64(len(data)))
				if err != nil {
					errs <- err
					return
				}
				keys[w] = append(keys[w], key)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range writers {
		for i, key := range keys[w] {
			want := payloadOf(w*each+i, 1000+w*100+i)
			if got := readBlob(t, b, key); !bytes.Equal(got, want) {
				t.Fatalf("writer %d object %d (%s) reads %d bytes, not its own %d", w, i, key, len(got), len(want))
			}
		}
	}
}

// Appended objects survive a reopen.
func testAppendPersistence(t *testing.T, open OpenAppender) {
	dir := t.TempDir()
	b := open(t, dir)
	l := b.Log("s7/g")
	objects := [][]byte{payloadOf(1, 5000), payloadOf(2, 6000)}
	keys := appendAll(t, l, objects)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, dir)
	for i, key := range keys {
		if got := readBlob(t, again, key); !bytes.Equal(got, objects[i]) {
			t.Errorf("after reopening %s reads %d bytes, want %d", key, len(got), len(objects[i]))
		}
	}
}

// Two logs with one prefix, as two sessions of one stream, never share a
// segment.
func testAppendSeparateLogs(t *testing.T, open OpenAppender) {
	b := open(t, t.TempDir())
	l1, l2 := b.Log("s1/g"), b.Log("s1/g")
	k1 := appendAll(t, l1, [][]byte{payloadOf(1, 10)})
	k2 := appendAll(t, l2, [][]byte{payloadOf(2, 20)})
	l1.Close()
	l2.Close()
	s1, _, _, _ := store.ParseAppendedKey(k1[0])
	s2, _, _, _ := store.ParseAppendedKey(k2[0])
	if s1 == s2 {
		t.Errorf("two logs appended to one segment %s", s1)
	}
	if got := listKeys(t, b, "s1/g/"); len(got) != 2 {
		t.Errorf("List yields %v, want the two segments", got)
	}
}

// An append with an ended context fails and writes nothing anyone reads.
func testAppendCancelled(t *testing.T, open OpenAppender) {
	b := open(t, t.TempDir())
	l := b.Log("s1/g")
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if key, err := l.Append(ctx, bytes.NewReader([]byte("x")), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %q, %v; want context.Canceled", key, err)
	}
}

// payloadOf returns n bytes that no other seed's payload shares a prefix
// with.
func payloadOf(seed, n int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%d-", seed)), n+1)[:n]
}
