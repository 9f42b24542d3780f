package postgres_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/postgres"
	"github.com/openkvs/openkvs/store/sqlite"
)

// benchStream creates a stream in c for a benchmark's rows.
func benchStream(b *testing.B, c store.Catalog) *store.Stream {
	s := &store.Stream{Name: "bench", ARN: "arn:bench", Status: store.StatusActive, Tags: map[string]string{}}
	if err := c.CreateStream(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	return s
}

func benchFragment(stream int64, seq uint64) *store.Fragment {
	now := time.Now()
	n := store.FragmentNumber(seq, now.UnixMilli())
	return &store.Fragment{StreamID: stream, Number: n, ProducerTime: now, ServerTime: now, Duration: 2 * time.Second,
		Size: 1 << 20, BlobKey: "f/" + n, HeaderKey: "h/1"}
}

// leased opens a fresh catalog, joins it as a node and gives that node
// the lease of a new stream.
func leased(b *testing.B) (*postgres.Catalog, *store.Stream, store.Lease) {
	ctx := context.Background()
	c, err := postgres.Open(ctx, testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if err := c.Join(ctx, "bench", "http://bench"); err != nil {
		b.Fatal(err)
	}
	s := benchStream(b, c)
	l, err := c.AcquireLease(ctx, s.ID, "bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return c, s, l
}

// BenchmarkFencedCommit commits one fragment row at a time under a lease,
// as one ingest session does, and reports the median commit time.
func BenchmarkFencedCommit(b *testing.B) {
	ctx := context.Background()
	c, s, l := leased(b)
	var times []time.Duration
	var seq uint64
	for b.Loop() {
		seq++
		start := time.Now()
		if err := c.AddFragments(ctx, &l, []*store.Fragment{benchFragment(s.ID, seq)}); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
}

// BenchmarkGroupCommit has 64 sessions commit one row each at a time, the
// commits of those waiting gathered into one transaction, on PostgreSQL
// (fenced and not) and on SQLite.
func BenchmarkGroupCommit(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, c store.Catalog, lease *store.Lease, s *store.Stream) {
		var seq atomic.Uint64
		b.SetParallelism(32) // 64 goroutines on 2 cores
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.AddFragments(ctx, lease, []*store.Fragment{benchFragment(s.ID, seq.Add(1))}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	}
	b.Run("postgres", func(b *testing.B) {
		c, err := postgres.Open(ctx, testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c, nil, benchStream(b, c))
	})
	b.Run("postgres-fenced", func(b *testing.B) {
		c, s, l := leased(b)
		run(b, c, &l, s)
	})
	b.Run("sqlite", func(b *testing.B) {
		c, err := sqlite.Open(filepath.Join(b.TempDir(), "catalog.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c, nil, benchStream(b, c))
	})
}
