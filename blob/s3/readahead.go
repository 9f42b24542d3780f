package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Read-ahead bounds: a catch-up reader asks for the next one or two
// fragments, so a budget of a few dozen fragments serves many readers.
const (
	aheadBudget = 64 << 20         // bytes of all objects fetched ahead, together
	aheadMax    = aheadBudget / 8  // largest object fetched ahead
	aheadTTL    = 30 * time.Second // how long one waits to be opened
)

// readAhead holds objects fetched before a reader opens them: an object
// store's GET pays a round trip before its first byte, which a reader
// catching up through the archive would pay once per fragment.
type readAhead struct {
	mu      sync.Mutex
	objects map[string]*ahead // by object key
	bytes   int64
}

// ahead is one object being fetched, or fetched, ahead.
type ahead struct {
	size int64
	done chan struct{} // closed when data and err are set
	data []byte
	err  error
}

func newReadAhead() *readAhead { return &readAhead{objects: map[string]*ahead{}} }

// Prefetch starts fetching the object key, of size bytes, for an Open to
// come; it does nothing when the object is large, already on its way, or
// the read-ahead budget is spent. An object nobody opens is dropped after
// aheadTTL. Each fetched object serves one Open.
func (b *Blobs) Prefetch(key string, size int64) {
	k, err := b.key(key)
	if err != nil || size < 0 || size > aheadMax {
		return
	}
	ra := b.ahead
	ra.mu.Lock()
	if _, ok := ra.objects[k]; ok || ra.bytes+size > aheadBudget {
		ra.mu.Unlock()
		return
	}
	a := &ahead{size: size, done: make(chan struct{})}
	ra.objects[k] = a
	ra.bytes += size
	ra.mu.Unlock()
	go func() {
		// Not the reader's context: the fetch is for an Open to come.
		ctx, cancel := context.WithTimeout(context.Background(), aheadTTL)
		defer cancel()
		a.data, a.err = b.fetch(ctx, k, size)
		close(a.done)
		time.AfterFunc(aheadTTL, func() { ra.drop(k, a) })
	}()
}

// fetch reads the object k whole, expecting size bytes; one more byte, if
// the object has it, lets the reader see that its size is not size.
func (b *Blobs) fetch(ctx context.Context, k string, size int64) ([]byte, error) {
	out, err := b.client.GetObject(ctx, &s3api.GetObjectInput{Bucket: &b.bucket, Key: &k})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	if _, err := buf.ReadFrom(io.LimitReader(out.Body, size+1)); err != nil {
		return nil, fmt.Errorf("read ahead %s: %w", k, err)
	}
	return buf.Bytes(), nil
}

// take removes the object k from the read-ahead and returns a reader of
// it, waiting for it if it is on its way; nil if there is none or its
// fetch failed (the caller then fetches it itself and sees the error).
func (ra *readAhead) take(ctx context.Context, k string) io.ReadCloser {
	ra.mu.Lock()
	a := ra.objects[k]
	if a != nil {
		delete(ra.objects, k)
		ra.bytes -= a.size
	}
	ra.mu.Unlock()
	if a == nil {
		return nil
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return nil
	}
	if a.err != nil {
		return nil
	}
	return io.NopCloser(bytes.NewReader(a.data))
}

// drop removes a, if it is still the read-ahead's object k.
func (ra *readAhead) drop(k string, a *ahead) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.objects[k] == a {
		delete(ra.objects, k)
		ra.bytes -= a.size
	}
}
