package s3_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/openkvs/openkvs/blob/s3"
	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t testing.TB, rawURL string) *s3.Blobs {
	t.Helper()
	b, err := s3.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	urls := map[string]string{} // the suite's dir -> its location, for reopening
	storetest.TestBlobs(t, func(t *testing.T, dir string) store.Blobs {
		mu.Lock()
		u, ok := urls[dir]
		if !ok {
			u = testenv.S3(t)
			urls[dir] = u
		}
		mu.Unlock()
		return open(t, u)
	})
}

func TestOpenErrors(t *testing.T) {
	u := testenv.S3(t)
	endpoint := u[strings.Index(u, "?"):]
	for _, bad := range []string{
		"http://bucket/prefix",
		"s3:///prefix",
		"s3://bucket/prefix?endpoint=http://127.0.0.1:1&color=blue",
		"s3://no-such-bucket/prefix" + endpoint, // Open checks the bucket
	} {
		if _, err := s3.Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

// Two prefixes of one bucket are two separate stores.
func TestPrefixes(t *testing.T) {
	ctx := context.Background()
	a, b := open(t, testenv.S3(t)), open(t, testenv.S3(t))
	if err := a.Put(ctx, "s1/f/1", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(bi store.BlobInfo) error { keys = append(keys, bi.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("List of another prefix = %v, want none", keys)
	}
	if _, err := b.Open(ctx, "s1/f/1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Open under another prefix: %v, want ErrNotFound", err)
	}
}

// onlyReader hides every method of its reader but Read: a body that cannot
// seek, as ingest's fragment reader.
type onlyReader struct{ io.Reader }

func TestUnseekableBody(t *testing.T) {
	ctx := context.Background()
	b := open(t, testenv.S3(t))
	for _, size := range []int64{4, 6} {
		if err := b.Put(ctx, "s1/f/1", onlyReader{strings.NewReader("fiver")}, size); err == nil {
			t.Errorf("Put of 5 unseekable bytes with size %d succeeded", size)
		}
	}
	if _, err := b.Open(ctx, "s1/f/1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a Put with a wrong size stored the object: %v", err)
	}
	if err := b.Put(ctx, "s1/f/1", onlyReader{strings.NewReader("fiver")}, 5); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, "s1/f/1"); got != "fiver" {
		t.Errorf("read back %q, want fiver", got)
	}
}

func read(t *testing.T, b *s3.Blobs, key string) string {
	t.Helper()
	r, err := b.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
