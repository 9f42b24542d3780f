package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/server"
	"github.com/openkvs/openkvs/store/storetest"
	"github.com/openkvs/openkvs/streams"
	"github.com/openkvs/openkvs/synth"
)

// benchServer is an openkvs server over real storage, on loopback.
func benchServer(b *testing.B) (*httptest.Server, *streams.Service, *live.Hub) {
	catalog, blobs := storetest.Embedded(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	hub := live.NewHub(live.Options{})
	// The per-stream rate limit (12.5 MB/s) would measure itself: lift it.
	mgr := ingest.NewManager(catalog, blobs, hub, ingest.Options{BytesPerSecond: 1e12, CallsPerSecond: 1e6}, quiet)
	svc := streams.New(catalog, "us-east-1", "000000000000")
	srv := httptest.NewServer(server.New(server.Config{Logger: quiet, Ingest: mgr}, svc).Handler())
	b.Cleanup(srv.Close)
	return srv, svc, hub
}

// baselineServer copies each request body to a file and fsyncs after
// every fragmentSize bytes: the least a durable ingest must do.
func baselineServer(b *testing.B, fragmentSize int) *httptest.Server {
	dir := b.TempDir()
	var n sync.Mutex
	seq := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Lock()
		seq++
		name := filepath.Join(dir, fmt.Sprint(seq))
		n.Unlock()
		f, err := os.Create(name)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer os.Remove(name)
		defer f.Close()
		buf := make([]byte, 64<<10)
		since := 0
		for {
			k, err := r.Body.Read(buf)
			if k > 0 {
				f.Write(buf[:k])
				since += k
				if since >= fragmentSize {
					f.Sync()
					since = 0
				}
			}
			if err != nil {
				break
			}
		}
		f.Sync()
		w.Write([]byte("ok\n"))
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchStream is a synthetic 4 Mbit/s-shaped stream of n 2-second
// fragments (1 MB each).
func benchStream(n int) []byte {
	v := synth.Video{}
	out := synth.Header(1)
	for i := range n {
		for _, p := range v.Fragment(0, i) {
			out = append(out, p...)
		}
	}
	return out
}

// uploadAll sends body to every stream at once and waits for the end.
func uploadAll(b *testing.B, put func(i int) error, streams int) {
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			if err := put(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkPutMedia measures PutMedia ingest (every fragment durable and
// acknowledged PERSISTED) against the baseline handler, alternating the two
// in every iteration so that machine drift hits both. It reports both
// rates and their ratio (target >= 0.8).
func BenchmarkPutMedia(b *testing.B) {
	for _, streamsN := range []int{1, 100} {
		b.Run(fmt.Sprintf("streams=%d", streamsN), func(b *testing.B) {
			fragments := 20
			if streamsN > 1 {
				fragments = 4
			}
			body := benchStream(fragments)
			srv, svc, _ := benchServer(b)
			base := baselineServer(b, len(body)/fragments)
			for i := range streamsN {
				name := fmt.Sprintf("bench-%d", i)
				retention := int64(1)
				if _, err := svc.CreateStream(context.Background(), &streams.CreateStreamInput{StreamName: &name, DataRetentionInHours: &retention}); err != nil {
					b.Fatal(err)
				}
			}
			var openkvsTime, baseTime time.Duration
			b.SetBytes(int64(len(body) * streamsN))
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				uploadAll(b, func(i int) error {
					st, err := client.Put(context.Background(), client.PutOptions{Endpoint: srv.URL, Stream: fmt.Sprintf("bench-%d", i)}, bytes.NewReader(body))
					if err == nil && st.Acked != fragments {
						err = fmt.Errorf("%d of %d fragments acknowledged", st.Acked, fragments)
					}
					return err
				}, streamsN)
				openkvsTime += time.Since(start)
				start = time.Now()
				uploadAll(b, func(int) error {
					resp, err := http.Post(base.URL, "application/octet-stream", bytes.NewReader(body))
					if err != nil {
						return err
					}
					io.Copy(io.Discard, resp.Body)
					return resp.Body.Close()
				}, streamsN)
				baseTime += time.Since(start)
			}
			total := float64(len(body)*streamsN*b.N) / 1e6
			b.ReportMetric(total/openkvsTime.Seconds(), "openkvs-MB/s")
			b.ReportMetric(total/baseTime.Seconds(), "baseline-MB/s")
			b.ReportMetric(baseTime.Seconds()/openkvsTime.Seconds(), "ratio")
		})
	}
}

// BenchmarkPutMediaSessionHeap reports the heap held by each open,
// streaming PutMedia session (excluding the live window of fragments).
func BenchmarkPutMediaSessionHeap(b *testing.B) {
	const sessions = 100
	srv, svc, _ := benchServer(b)
	for range b.N {
		heapBefore := heapInUse()
		writers := make([]*io.PipeWriter, sessions)
		var wg sync.WaitGroup
		ready := make(chan struct{}, sessions)
		for i := range sessions {
			name := fmt.Sprintf("heap-%d-%d", b.N, i)
			retention := int64(1)
			svc.CreateStream(context.Background(), &streams.CreateStreamInput{StreamName: &name, DataRetentionInHours: &retention})
			pr, pw := io.Pipe()
			writers[i] = pw
			wg.Go(func() {
				client.Put(context.Background(), client.PutOptions{Endpoint: srv.URL, Stream: name,
					OnAck: func(a client.Ack) {
						if a.EventType == "BUFFERING" {
							ready <- struct{}{}
						}
					}}, pr)
			})
			pw.Write(synth.Header(1))
			pw.Write(synth.Cluster(0, synth.Frames(1, 1, 33)...))
		}
		for range sessions {
			<-ready
		}
		heapDuring := heapInUse()
		for _, w := range writers {
			w.Close()
		}
		wg.Wait()
		b.ReportMetric(float64(heapDuring-heapBefore)/sessions, "heap-B/session")
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
