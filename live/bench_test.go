package live

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// follow reads the stream from its oldest fragment on, chaining with After, and passes every
// non-empty view to got, until ctx ends.
func follow(ctx context.Context, s *Stream, got func(p []byte)) {
	prev := ""
	for {
		f, err := s.After(ctx, prev, true)
		if err != nil {
			return
		}
		for off := 0; ; {
			p, done, err := f.Next(ctx, off)
			if err != nil {
				return
			}
			if len(p) > 0 {
				got(p)
			}
			off += len(p)
			if done {
				break
			}
		}
		prev = f.Meta().Number
	}
}

// BenchmarkWrite measures the producer's cost of a 1 KiB Write while readers follow the
// stream: they park at the live edge, and each Write wakes those that are parked.
func BenchmarkWrite(b *testing.B) {
	for _, readers := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			const perFragment = 1024 // writes: 1 MiB fragments
			h := NewHub(Options{MaxStreamBytes: 8 << 20})
			s := h.Stream(1)
			frame := pattern(1, 1024)
			f := h.Begin(1, meta(1), memoryOnly)
			f.Write(context.Background(), frame)

			ctx, cancel := context.WithCancel(context.Background())
			var started, wg sync.WaitGroup
			started.Add(readers)
			for range readers {
				wg.Go(func() {
					var once sync.Once
					follow(ctx, s, func([]byte) { once.Do(started.Done) })
				})
			}
			started.Wait()

			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for i := 1; b.Loop(); i++ {
				if i%perFragment == 0 {
					f.Complete(time.Second)
					f = h.Begin(1, meta(i/perFragment+1), memoryOnly)
				}
				f.Write(context.Background(), frame)
			}
			cancel()
			wg.Wait()
		})
	}
}

// BenchmarkFanout measures what 1000 readers of one 4 Mbit/s stream cost: per frame, every
// reader is woken and handed the frame.
func BenchmarkFanout(b *testing.B) {
	const readers = 1000
	_, bytes := lockstep(b, readers)
	elapsed := b.Elapsed()
	b.ReportMetric(float64(bytes)*readers/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N)/readers, "ns/frame/reader")
}

// BenchmarkLatency measures the time from the producer's Write call to each reader's Next
// returning the frame.
func BenchmarkLatency(b *testing.B) {
	for _, readers := range []int{1, 10, 1000} {
		b.Run(fmt.Sprintf("readers=%d", readers), func(b *testing.B) {
			lat, _ := lockstep(b, readers)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2]), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100]), "p99-ns")
			b.ReportMetric(float64(lat[len(lat)-1]), "max-ns")
		})
	}
}

// lockstep streams frames like a 4 Mbit/s camera at 30 frames/s (2 s fragments of a 120 KiB
// key frame and 59 frames of 6.5 KiB) to readers that follow the stream, one frame per
// iteration of b.Loop. Before writing the next frame it waits until every reader has the
// current one, as readers do between real frames 33 ms apart, so that every frame wakes
// every reader. It returns each reader's latency for each frame, from the start of Write to
// Next returning the frame's first bytes, and the bytes one reader received.
func lockstep(b *testing.B, readers int) (lat []time.Duration, bytes int64) {
	const framesPerFragment = 60
	key, delta := pattern(1, 120<<10), pattern(2, 6656)
	h := NewHub(Options{})
	s := h.Stream(1)

	var (
		// The producer sets frame and sent before each Write and after the previous ack:
		// Write orders them before the readers' reads, and the ack after them.
		frame   int
		sent    time.Time
		pending atomic.Int64 // bytes of the frame some reader has yet to receive
		ack     = make(chan struct{}, 1)
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	samples := make([][]time.Duration, readers)
	for r := range readers {
		wg.Go(func() {
			last := -1
			follow(ctx, s, func(p []byte) {
				if frame != last { // a frame split over two chunks comes as two views
					samples[r] = append(samples[r], time.Since(sent))
					last = frame
				}
				if pending.Add(-int64(len(p))) == 0 {
					ack <- struct{}{}
				}
			})
		})
	}

	var f *Fragment
	for i := 0; b.Loop(); i++ {
		p := delta
		if i%framesPerFragment == 0 {
			if f != nil {
				f.Complete(2 * time.Second)
			}
			f = h.Begin(1, meta(i/framesPerFragment+1), memoryOnly)
			p = key
		}
		pending.Store(int64(readers * len(p)))
		frame, sent = i, time.Now()
		f.Write(context.Background(), p)
		<-ack
		bytes += int64(len(p))
	}
	cancel()
	wg.Wait()
	for _, s := range samples {
		lat = append(lat, s...)
	}
	return lat, bytes
}
