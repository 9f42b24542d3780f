package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/store"
)

// OpenBlobs opens blob storage kept in dir; opening the same dir again must
// see what was stored before.
type OpenBlobs func(t *testing.T, dir string) store.Blobs

// TestBlobs runs the blob conformance suite.
func TestBlobs(t *testing.T, open OpenBlobs) {
	t.Run("PutOpenDelete", func(t *testing.T) { testBlobRoundTrip(t, open) })
	t.Run("List", func(t *testing.T) { testBlobList(t, open) })
	t.Run("Persistence", func(t *testing.T) { testBlobPersistence(t, open) })
	t.Run("InvalidKeys", func(t *testing.T) { testBlobInvalidKeys(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testBlobConcurrent(t, open) })
	t.Run("Modified", func(t *testing.T) { testBlobModified(t, open) })
	t.Run("CancelledPut", func(t *testing.T) { testBlobCancelledPut(t, open) })
	t.Run("WrongSize", func(t *testing.T) { testBlobWrongSize(t, open) })
}

func readBlob(t *testing.T, b store.Blobs, key string) []byte {
	t.Helper()
	r, err := b.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

func testBlobRoundTrip(t *testing.T, open OpenBlobs) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	payload := bytes.Repeat([]byte{0x1f, 0x43, 0xb6, 0x75}, 100_000)
	if err := b.Put(ctx, "s1/f/0001", bytes.NewReader(payload), int64(len(payload))); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, "s1/f/0001"); !bytes.Equal(got, payload) {
		t.Fatalf("read back %d bytes, want the %d written", len(got), len(payload))
	}
	// Objects are immutable, but a second Put of the same key replaces it whole.
	if err := b.Put(ctx, "s1/f/0001", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, "s1/f/0001"); string(got) != "x" {
		t.Fatalf("after overwrite read %q", got)
	}
	if err := b.Put(ctx, "empty", bytes.NewReader(nil), 0); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, b, "empty"); len(got) != 0 {
		t.Fatalf("empty object read %d bytes", len(got))
	}
	if err := b.Delete(ctx, "s1/f/0001"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Open(ctx, "s1/f/0001"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open after Delete error = %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "s1/f/0001"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := b.Open(ctx, "never"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Open(never) error = %v, want ErrNotFound", err)
	}
}

func listKeys(t *testing.T, b store.Blobs, prefix string) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), prefix, func(bi store.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func testBlobList(t *testing.T, open OpenBlobs) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	for _, k := range []string{"s1/f/2", "s1/f/1", "s1/h/a", "s10/f/1", "s2/f/1"} {
		if err := b.Put(ctx, k, bytes.NewReader([]byte(k)), int64(len([]byte(k)))); err != nil {
			t.Fatal(err)
		}
	}
	for prefix, want := range map[string][]string{
		"":      {"s1/f/1", "s1/f/2", "s1/h/a", "s10/f/1", "s2/f/1"},
		"s1/":   {"s1/f/1", "s1/f/2", "s1/h/a"},
		"s1":    {"s1/f/1", "s1/f/2", "s1/h/a", "s10/f/1"},
		"s1/f/": {"s1/f/1", "s1/f/2"},
		"s3/":   nil,
	} {
		if diff := cmp.Diff(want, listKeys(t, b, prefix)); diff != "" {
			t.Errorf("List(%q) (-want +got):\n%s", prefix, diff)
		}
	}
	stop := errors.New("stop")
	n := 0
	err := b.List(ctx, "", func(store.BlobInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List stopped by callback: err %v after %d calls", err, n)
	}
}

func testBlobPersistence(t *testing.T, open OpenBlobs) {
	dir := t.TempDir()
	b := open(t, dir)
	if err := b.Put(context.Background(), "s9/h/x", bytes.NewReader([]byte("header")), 6); err != nil {
		t.Fatal(err)
	}
	b = open(t, dir)
	if got := readBlob(t, b, "s9/h/x"); string(got) != "header" {
		t.Fatalf("after reopen read %q", got)
	}
}

func testBlobInvalidKeys(t *testing.T, open OpenBlobs) {
	b := open(t, t.TempDir())
	for _, k := range []string{"", "/abs", "a/../b", "a//b", "..", "a/./b"} {
		if err := b.Put(context.Background(), k, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
	}
}

func testBlobConcurrent(t *testing.T, open OpenBlobs) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for j := range 4 {
				k := fmt.Sprintf("s%d/f/%d", i%3, i*10+j)
				if err := b.Put(ctx, k, bytes.NewReader([]byte(k)), int64(len([]byte(k)))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(listKeys(t, b, "")); n != 64 {
		t.Errorf("List after concurrent puts: %d keys, want 64", n)
	}
}

// testBlobModified checks that List reports when each object was stored:
// the sweeper's grace period on unreferenced blobs depends on it.
func testBlobModified(t *testing.T, open OpenBlobs) {
	ctx := context.Background()
	b := open(t, t.TempDir())
	before := time.Now().Add(-time.Second) // file systems may round times down
	if err := b.Put(ctx, "s1/h/1", bytes.NewReader([]byte("h")), 1); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	var got []store.BlobInfo
	if err := b.List(ctx, "", func(bi store.BlobInfo) error { got = append(got, bi); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "s1/h/1" || got[0].Modified.Before(before) || got[0].Modified.After(after) {
		t.Fatalf("List = %+v, want s1/h/1 modified between %v and %v", got, before, after)
	}
}

// testBlobCancelledPut checks that a Put whose context ended stores nothing.
func testBlobCancelledPut(t *testing.T, open OpenBlobs) {
	b := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(ctx, "s1/f/1", bytes.NewReader([]byte("x")), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if keys := listKeys(t, b, ""); len(keys) != 0 {
		t.Fatalf("cancelled Put left %v", keys)
	}
}

// testBlobWrongSize checks that a Put whose reader yields more or fewer
// bytes than its size is an error and stores nothing.
func testBlobWrongSize(t *testing.T, open OpenBlobs) {
	b := open(t, t.TempDir())
	ctx := context.Background()
	for _, size := range []int64{4, 6} {
		if err := b.Put(ctx, "s1/f/1", bytes.NewReader([]byte("fiver")), size); err == nil {
			t.Errorf("Put of 5 bytes with size %d succeeded", size)
		}
	}
	if keys := listKeys(t, b, ""); len(keys) != 0 {
		t.Fatalf("Put with a wrong size left %v", keys)
	}
}
