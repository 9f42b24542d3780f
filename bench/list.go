package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/streams"
)

// listPage is the page size the ListFragments scenario asks for.
const listPage = 100

// listWarmup queries are not counted: they fill the server's caches.
const listWarmup = 20

// preloadRows is how many fragment rows one catalog transaction adds.
const preloadRows = 10_000

// preloadFragments creates stream name in the catalog of data directory
// data and adds rows rows of 2-second fragments, the newest a minute ago,
// as `openkvs serve` would find them after months of ingest. Only the rows
// are written: ListFragments reads nothing else. It returns the server
// timestamps of the first and last rows.
func preloadFragments(ctx context.Context, data, name string, rows int, size int64) (first, last time.Time, err error) {
	cat, err := sqlite.Open(filepath.Join(data, "catalog.db"))
	if err != nil {
		return first, last, fmt.Errorf("preload: %w", err)
	}
	defer cat.Close()
	// The server's defaults, so that the stream is what it would create.
	svc := streams.New(cat, "us-east-1", "000000000000")
	retention := int64(streams.MaxRetentionHours) // nothing may expire during the run
	if _, err := svc.CreateStream(ctx, &streams.CreateStreamInput{StreamName: &name, DataRetentionInHours: &retention}); err != nil {
		return first, last, fmt.Errorf("preload: create stream: %w", err)
	}
	st, err := cat.StreamByName(ctx, name)
	if err != nil {
		return first, last, fmt.Errorf("preload: %w", err)
	}
	seq, err := cat.ReserveSequence(ctx, st.ID, uint64(rows))
	if err != nil {
		return first, last, fmt.Errorf("preload: %w", err)
	}
	const step = 2 * time.Second
	last = time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	first = last.Add(-time.Duration(rows-1) * step)
	header := fmt.Sprintf("s%d/h/bench", st.ID)
	batch := make([]*store.Fragment, 0, preloadRows)
	for i := range rows {
		at := first.Add(time.Duration(i) * step)
		number := store.FragmentNumber(seq+uint64(i), at.UnixMilli())
		batch = append(batch, &store.Fragment{StreamID: st.ID, Number: number, ProducerTime: at.Add(-150 * time.Millisecond),
			ServerTime: at, Duration: step, Size: size, BlobKey: fmt.Sprintf("s%d/f/%s", st.ID, number), HeaderKey: header})
		if len(batch) == cap(batch) || i == rows-1 {
			if err := cat.AddFragments(ctx, nil, batch); err != nil {
				return first, last, fmt.Errorf("preload: %w", err)
			}
			batch = batch[:0]
		}
	}
	return first, last, nil
}

// listFragmentsInput is the ListFragments request.
type listFragmentsInput struct {
	StreamName       string
	MaxResults       int
	NextToken        string            `json:",omitempty"`
	FragmentSelector *fragmentSelector `json:",omitempty"`
}

type fragmentSelector struct {
	FragmentSelectorType string
	TimestampRange       struct{ StartTimestamp, EndTimestamp float64 }
}

type listFragmentsOutput struct {
	Fragments []struct{ FragmentNumber string }
	NextToken string
}

// runListFragments measures ListFragments pages over a large stored stream:
// random positions in time, by either timestamp, and every fourth query the
// next page of the previous one.
func runListFragments(ctx context.Context, e *env, sc *Scenario) error {
	rows := e.plan.listRows
	name := e.prefix + "-list"
	var first, last time.Time
	var preloadSecs float64
	prepare := func(data string) error {
		e.progress("list-fragments: preloading %d fragment rows", rows)
		start := time.Now()
		var err error
		first, last, err = preloadFragments(ctx, data, name, rows, e.video.size)
		preloadSecs = time.Since(start).Seconds()
		return err
	}
	srv, err := e.startServer(ctx, prepare, "--listfragments-calls-per-second", "1e6")
	if err != nil {
		return err
	}
	defer srv.stop()
	selectors := []string{"SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP"}
	if !e.local() {
		// No preload: ingest small fragments (a 100 kbit/s camera, within
		// the default rate limit); their server timestamps are all within
		// seconds, their producer timestamps 2 s apart.
		rows = min(rows, 2000)
		if name, err = e.createStream(ctx, srv, "list", 24); err != nil {
			return err
		}
		first = time.Now().Add(-time.Second)
		if err := ingestFast(ctx, srv, name, newVideo(100_000), rows); err != nil {
			return err
		}
		last = first.Add(time.Duration(rows+1) * 2 * time.Second)
		selectors = selectors[1:]
	}

	rng := rand.New(rand.NewPCG(7, uint64(rows)))
	// Leave room for two full pages after any start: the query's and the
	// next one's.
	span := max(last.Sub(first)-(2*listPage+10)*2*time.Second, time.Millisecond)
	var lat []time.Duration
	short := 0
	var prev listFragmentsOutput
	// A server the bench did not start applies its own ListFragments call
	// limit (5 per second per stream by default): stay within it.
	var pace <-chan time.Time
	if !e.local() {
		t := time.NewTicker(time.Second / 5)
		defer t.Stop()
		pace = t.C
	}
	for q := range listWarmup + e.plan.listQueries {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		in := listFragmentsInput{StreamName: name, MaxResults: listPage}
		if q%4 == 3 && prev.NextToken != "" {
			in.NextToken = prev.NextToken
		} else {
			sel := &fragmentSelector{FragmentSelectorType: selectors[q%len(selectors)]}
			from := first.Add(time.Duration(rng.Int64N(int64(span))))
			sel.TimestampRange.StartTimestamp = float64(from.UnixMilli()) / 1000
			sel.TimestampRange.EndTimestamp = float64(last.Add(time.Second).UnixMilli()) / 1000
			in.FragmentSelector = sel
		}
		start := time.Now()
		var out listFragmentsOutput
		if err := srv.call(ctx, "/listFragments", in, &out); err != nil {
			return err
		}
		if q >= listWarmup {
			lat = append(lat, time.Since(start))
		}
		if len(out.Fragments) != listPage {
			short++
		}
		prev = out
	}
	slices.Sort(lat)
	p99 := ms(percentile(lat, 0.99))
	sc.add(figure("p50", ms(percentile(lat, 0.5)), "ms"),
		figure("p99", p99, "ms").goal("< 20 ms", p99 < 20))
	if e.local() {
		sc.note("%d queries over %d stored fragments (rows preloaded into the catalog in %.0f s before the server started), after %d warm-up queries; a query is a full HTTP round trip with a %d-fragment JSON answer; child started with --listfragments-calls-per-second 1e6 (the default, 5, would measure the limit)",
			len(lat), rows, preloadSecs, listWarmup, listPage)
	} else {
		sc.note("against %s: no preload; %d queries over %d fragments this run ingested, 5 per second (the default ListFragments limit)", e.opts.Target, len(lat), rows)
	}
	if short > 0 {
		sc.note("%d pages held fewer than %d fragments", short, listPage)
	}
	return nil
}
