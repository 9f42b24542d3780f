package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// heldAcks is a PutMedia server that reads fragments but acknowledges
// none (and so reads no further) until release is closed.
func heldAcks(t *testing.T, release chan struct{}) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		sp := mkv.NewSplitter(r.Body, mkv.SplitterOptions{})
		var tc uint64
		for n := 0; ; {
			ev, err := sp.Next()
			if err != nil {
				return
			}
			switch e := ev.(type) {
			case *mkv.FragmentStart:
				tc = e.Timecode
			case *mkv.FragmentEnd:
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				n++
				fmt.Fprintf(w, "{\"EventType\":\"PERSISTED\",\"FragmentTimecode\":%d,\"FragmentNumber\":\"%047d\"}\n", tc, n)
				w.(http.Flusher).Flush()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// While the server acknowledges nothing, Put reads the input only until
// MaxBuffer holds unacknowledged fragments, says so, and then reads as
// acknowledgements free room.
func TestPutBuffer(t *testing.T) {
	const fragments, size, budget = 20, 100_000, 300_000
	in := synth.Header(1)
	for i := range fragments {
		frames := synth.Frames(1, 10, 100)
		for k := range frames {
			frames[k].Size = size / 10
		}
		in = append(in, synth.Cluster(uint64(i)*1000, frames...)...)
	}
	release := make(chan struct{})
	full := make(chan struct{}, 1)
	var mu sync.Mutex
	var logs []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(format, args...))
		if strings.HasPrefix(logs[len(logs)-1], "buffer full: ") {
			select {
			case full <- struct{}{}:
			default:
			}
		}
	}
	r := &countingReader{r: bytes.NewReader(in)}
	done := make(chan error, 1)
	var stats PutStats
	go func() {
		var err error
		stats, err = Put(testCtx(t), PutOptions{Endpoint: heldAcks(t, release), Stream: "cam", MaxBuffer: budget, Logf: logf}, r)
		done <- err
	}()
	wait.For(t, "Put's buffer to fill", func() bool {
		select {
		case <-full:
			return true
		case err := <-done:
			t.Fatalf("Put ended (%v) before its buffer was full", err)
		default:
		}
		if r.n.Load() == int64(len(in)) {
			t.Fatalf("Put read all %d bytes of the input with nothing acknowledged", len(in))
		}
		return false
	})
	// The budget, the fragment being read when it filled, and what the
	// MKV reader buffers ahead (64 KiB).
	if n := r.n.Load(); n < budget || n > budget+size+64<<10+1000 {
		t.Errorf("Put read %d bytes with nothing acknowledged, want %d to %d", n, budget, budget+size+64<<10+1000)
	}
	close(release)
	if err := <-done; err != nil || stats.Acked != fragments || stats.Bytes != int64(len(in)) {
		t.Fatalf("Put = %+v, %v; want all %d fragments acknowledged", stats, err, fragments)
	}
	mu.Lock()
	defer mu.Unlock()
	// Once the server acknowledges at once, the buffer may drain and fill
	// again: each time is said once.
	for _, l := range logs {
		if l != "buffer full: 0.3 MiB read but not yet PERSISTED; reading the input only as fast as the server acknowledges" {
			t.Errorf("Put said %q, want only that its buffer was full", logs)
			break
		}
	}
}

// A server that answers 503 is retried until RetryFor has passed since the
// connection was lost, each connection asking Resolve; one that answers
// 404 is not retried.
func TestPutRetry(t *testing.T) {
	for _, tc := range []struct {
		status   int
		typ      string
		retryFor time.Duration
		gaveUp   bool
	}{
		{503, "InternalFailure", time.Second, true},
		{404, "ResourceNotFoundException", 0, false},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				io.Copy(io.Discard, r.Body)
				w.Header().Set("x-amzn-ErrorType", tc.typ)
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			resolved := 0
			start := time.Now()
			_, err := Put(testCtx(t), PutOptions{Stream: "cam", RetryFor: tc.retryFor,
				Resolve: func(context.Context) (string, error) { resolved++; return srv.URL, nil }},
				bytes.NewReader(append(synth.Header(1), synth.Cluster(0, synth.Frames(1, 3, 33)...)...)))
			took := time.Since(start)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || strings.Contains(err.Error(), "gave up after") != tc.gaveUp {
				t.Errorf("Put error %v, want the %d (gave up: %v)", err, tc.status, tc.gaveUp)
			}
			n := int(calls.Load())
			if tc.gaveUp && (took < time.Second || took > 3*time.Second || n < 3) || !tc.gaveUp && n != 1 || resolved != n {
				t.Errorf("%d requests, %d resolves in %v", n, resolved, took)
			}
		})
	}
}
