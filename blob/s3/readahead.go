package s3

import (
	"context"
	"io"
	"sync"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Read-ahead bounds: a catch-up reader asks for the next one or two
// fragments, so a budget of a few dozen fragments serves many readers.
const (
	aheadBudget = 64 << 20         // bytes of all objects whose GETs are held, together
	aheadMax    = aheadBudget / 8  // largest object fetched ahead
	aheadTTL    = 30 * time.Second // how long one waits to be opened
)

// readAhead holds GETs sent before a reader opens their objects: an
// object store's GET pays a round trip before its first byte, which a
// reader catching up through the archive would pay once per fragment. The
// answer is held as it arrives, not read into memory: the body streams to
// the reader once it opens the object, so only the first-byte latency is
// hidden and no copy is made (reading bodies whole ahead halved catch-up
// on loopback and won 2x at 20 ms of latency; holding them open wins
// both).
type readAhead struct {
	mu      sync.Mutex
	objects map[string]*ahead // by object key
	bytes   int64
}

// ahead is one GET sent ahead.
type ahead struct {
	size int64
	done chan struct{} // closed when body and err are set
	body io.ReadCloser
	err  error
}

func newReadAhead() *readAhead { return &readAhead{objects: map[string]*ahead{}} }

// Prefetch sends the GET of the object key, of size bytes, for an Open to
// come; it does nothing when the object is large, already on its way, or
// the read-ahead budget is spent. An answer nobody opens is dropped after
// aheadTTL. Each serves one Open.
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
	// Not the reader's context: the GET is for an Open to come. Ending it
	// ends the GET, or its held answer; an Open that took the answer ends
	// it by closing the body, however long the reader takes to read it.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(aheadTTL, func() {
		if ra.drop(k, a) {
			cancel()
		}
	})
	go func() {
		out, err := b.client.GetObject(ctx, &s3api.GetObjectInput{Bucket: &b.bucket, Key: &k})
		if err != nil {
			cancel()
			a.err = err
		} else {
			a.body = &cancelBody{out.Body, cancel}
		}
		close(a.done)
	}()
}

// cancelBody is a GET's body that ends the GET's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelBody) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// take removes the object k from the read-ahead and returns the body of
// its GET, waiting for the answer if it is on its way; nil if there is
// none or the GET failed (the caller then sends its own and sees why).
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
		// The GET goes on; close its body once it answers.
		go func() {
			<-a.done
			if a.body != nil {
				a.body.Close()
			}
		}()
		return nil
	}
	if a.err != nil {
		return nil
	}
	return a.body
}

// drop removes a if it is still the read-ahead's object k, and reports
// whether it was.
func (ra *readAhead) drop(k string, a *ahead) bool {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.objects[k] != a {
		return false
	}
	delete(ra.objects, k)
	ra.bytes -= a.size
	return true
}
