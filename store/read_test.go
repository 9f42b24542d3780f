package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/store"
)

// TestReadBlob reads an object whole, into a buffer with room and without,
// and refuses one of another size than the catalog says.
func TestReadBlob(t *testing.T) {
	ctx := context.Background()
	b, err := file.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("0123456789")
	if err := b.Put(ctx, "k", bytes.NewReader(want), int64(len(want))); err != nil {
		t.Fatal(err)
	}
	room := make([]byte, 0, 64)
	for _, tc := range []struct {
		size int64
		buf  []byte
	}{{-1, nil}, {10, nil}, {10, room}} {
		got, err := store.ReadBlob(ctx, b, "k", tc.size, tc.buf)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadBlob(size %d, cap %d) = %q, %v", tc.size, cap(tc.buf), got, err)
		}
		if tc.buf != nil && &got[0] != &room[:1][0] {
			t.Error("ReadBlob did not read into the buffer given")
		}
	}
	for _, size := range []int64{9, 11} {
		if _, err := store.ReadBlob(ctx, b, "k", size, nil); err == nil {
			t.Errorf("ReadBlob of a 10-byte object as %d bytes: no error", size)
		}
	}
	if _, err := store.ReadBlob(ctx, b, "missing", 10, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadBlob of a missing object: %v, want ErrNotFound", err)
	}
}
