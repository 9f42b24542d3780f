package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/testenv"
)

// BenchmarkPut and BenchmarkOpen time 1 MiB objects, one at a time, as
// ingest stores a fragment and a reader reads one; p50-ms is the median.
func BenchmarkPut(b *testing.B) {
	blobs := open(b, testenv.S3(b))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	b.SetBytes(int64(len(payload)))
	times := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if err := blobs.Put(context.Background(), fmt.Sprintf("s1/f/%d", i), bytes.NewReader(payload), int64(len(payload))); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}

func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	blobs := open(b, testenv.S3(b))
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	const objects = 20
	for i := range objects {
		if err := blobs.Put(ctx, fmt.Sprintf("s1/f/%d", i), bytes.NewReader(payload), int64(len(payload))); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(payload)))
	times := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		r, err := blobs.Open(ctx, fmt.Sprintf("s1/f/%d", i%objects))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != int64(len(payload)) {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}

func reportMedian(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
}
