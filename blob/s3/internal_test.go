package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/store"
)

// A GET sent ahead serves the next Open of its object, once: deleted after
// the GET was answered, the object is still read by the first Open and
// not by the second.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if err := b.Put(ctx, "s1/f/1", bytes.NewReader(payload), int64(len(payload))); err != nil {
		t.Fatal(err)
	}
	b.Prefetch("s1/f/1", int64(len(payload)))
	b.Prefetch("s1/f/2", aheadMax+1) // too large: not fetched
	b.ahead.mu.Lock()
	a, big := b.ahead.objects[b.prefix+"s1/f/1"], b.ahead.objects[b.prefix+"s1/f/2"]
	b.ahead.mu.Unlock()
	if a == nil || big != nil {
		t.Fatalf("read-ahead holds s1/f/1: %v, s1/f/2: %v; want only s1/f/1", a != nil, big != nil)
	}
	<-a.done
	if err := b.Delete(ctx, "s1/f/1"); err != nil {
		t.Fatal(err)
	}
	r, err := b.Open(ctx, "s1/f/1")
	if err != nil {
		t.Fatalf("Open of a prefetched object: %v", err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("prefetched Open read %d bytes (%v), want the %d written", len(got), err, len(payload))
	}
	if _, err := b.Open(ctx, "s1/f/1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Open of the deleted object: %v, want ErrNotFound", err)
	}
	if b.ahead.bytes != 0 {
		t.Errorf("read-ahead still counts %d bytes", b.ahead.bytes)
	}
}

// exact refuses a body of another length itself, whether or not the
// server would notice (with SigV4 over plain HTTP a longer body fails its
// signature; over TLS a sent Content-Length cuts it short unnoticed).
func TestExact(t *testing.T) {
	for _, size := range []int64{4, 6} {
		if _, err := exact(bytes.NewReader([]byte("fiver")), size); err == nil {
			t.Errorf("exact of 5 seekable bytes with size %d succeeded", size)
		}
		if _, err := exact(io.MultiReader(bytes.NewReader([]byte("fiver"))), size); err == nil {
			t.Errorf("exact of 5 unseekable bytes with size %d succeeded", size)
		}
	}
	r := bytes.NewReader([]byte("xfiver"))
	r.Seek(1, io.SeekStart)
	body, err := exact(r, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(body); string(got) != "fiver" {
		t.Errorf("exact read %q from offset 1, want fiver", got)
	}
}
