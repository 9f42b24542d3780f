package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// unlimitedRate lifts a per-stream byte rate limit that would otherwise
// measure itself.
const unlimitedRate = "1e12"

// fragmentsFor is how many of the video's fragments make up n bytes.
func (e *env) fragmentsFor(n int64) int {
	return int(max(1, (n+e.video.size-1)/e.video.size))
}

// ingestFast sends n fragments of v to stream as fast as the server takes
// them and returns once every one is PERSISTED.
func ingestFast(ctx context.Context, s *server, stream string, v *video, n int) error {
	persisted := 0
	err := s.putMedia(ctx, stream, newFastBody(v, n), func(a ack) {
		if a.EventType == "PERSISTED" {
			persisted++
		}
	})
	if err == nil && persisted != n {
		err = fmt.Errorf("putMedia %s: %d of %d fragments PERSISTED", stream, persisted, n)
	}
	return err
}

// runIngest measures one stream ingested as fast as possible against the
// baseline upload, in alternating rounds.
func runIngest(ctx context.Context, e *env, sc *Scenario) error {
	srv, err := e.startServer(ctx, nil, "--putmedia-bytes-per-second", unlimitedRate, "--putmedia-calls-per-second", "100")
	if err != nil {
		return err
	}
	defer srv.stop()
	stream, err := e.createStream(ctx, srv, "ingest", 24)
	if err != nil {
		return err
	}
	n := e.fragmentsFor(e.plan.ingestBytes)
	bytes := float64(newFastBody(e.video, n).Size())
	cadence := int(e.video.size)

	type side struct {
		secs, cpu float64
		run       func(n int) error
		pid       func() int
	}
	kvs := &side{run: func(n int) error { return ingestFast(ctx, srv, stream, e.video, n) }, pid: srv.pid}
	base := &side{run: func(n int) error { return e.base.upload(ctx, newFastBody(e.video, n), cadence) }, pid: e.baseline.Pid}
	measure := func(s *side) error {
		cpu0 := cpuOf(s.pid())
		start := time.Now()
		if err := s.run(n); err != nil {
			return err
		}
		s.secs += time.Since(start).Seconds()
		s.cpu += cpuOf(s.pid()) - cpu0
		return nil
	}
	// Warm up both: connections, the catalog's first writes, page cache.
	if err := kvs.run(8); err != nil {
		return err
	}
	if err := base.run(8); err != nil {
		return err
	}
	for round := range e.plan.ingestRounds {
		order := []*side{kvs, base}
		if round%2 == 1 {
			order = []*side{base, kvs}
		}
		for _, s := range order {
			if err := measure(s); err != nil {
				return err
			}
		}
		e.progress("ingest round %d/%d: openkvs %.0f MB/s, baseline %.0f MB/s", round+1, e.plan.ingestRounds,
			bytes*float64(round+1)/1e6/kvs.secs, bytes*float64(round+1)/1e6/base.secs)
	}
	total := bytes * float64(e.plan.ingestRounds)
	sc.add(figure("throughput", total/1e6/kvs.secs, "MB/s").
		against("POST to file, fsync per fragment", total/1e6/base.secs))
	sc.Figures[0].goal(">= 0.8 of baseline", *sc.Figures[0].Ratio >= 0.8)
	if e.local() {
		sc.add(figure("server CPU", kvs.cpu/(total/1e9), "s/GB").against("baseline server", base.cpu/(total/1e9)))
		sc.note("%d rounds of %.0f MB (%d fragments of %.2f MB, %d kbit/s camera) each side, alternating; openkvs acknowledged every fragment PERSISTED",
			e.plan.ingestRounds, bytes/1e6, n, float64(e.video.size)/1e6, e.video.Bitrate/1000)
		sc.note("the baseline reads, writes and fsyncs in turn on one file; openkvs writes each fragment to a file of its own, overlaps the fsyncs of consecutive fragments and commits their catalog rows in groups")
		sc.note("child started with --putmedia-bytes-per-second %s (the default 12.5 MB/s per stream would cap the rate)", unlimitedRate)
	} else {
		sc.note("against %s: its own --putmedia-bytes-per-second applies (12.5 MB/s by default); no CPU figure", e.opts.Target)
	}
	return nil
}

// cpuOf is a process's CPU time, 0 for pid 0 (a target server).
func cpuOf(pid int) float64 {
	if pid == 0 {
		return 0
	}
	v, _ := CPUSeconds(pid)
	return v
}

// ramp finds the largest N that passes: doubling from start while steps
// pass (up to limit), halving while they fail, then bisecting until the
// gap is within an eighth of the passing N.
type ramp struct {
	start, limit int
	pass, fail   int // largest N that passed, smallest that failed; 0 for none
}

// next returns the next N to try, false when the search is done.
func (r *ramp) next() (int, bool) {
	switch {
	case r.pass == 0 && r.fail == 0:
		return r.start, true
	case r.fail == 0:
		if r.pass >= r.limit {
			return 0, false
		}
		return min(r.pass*2, r.limit), true
	case r.pass == 0:
		if r.fail <= 1 {
			return 0, false
		}
		return r.fail / 2, true
	case r.fail-r.pass <= max(1, r.pass/8):
		return 0, false
	}
	return (r.pass + r.fail) / 2, true
}

// record notes the outcome of a step.
func (r *ramp) record(n int, ok bool) {
	if ok {
		r.pass = max(r.pass, n)
	} else if r.fail == 0 || n < r.fail {
		r.fail = n
	}
}

// search runs step for each N the ramp proposes while the budget lasts; a
// step is not started unless the previous one's duration still fits.
func search[T any](ctx context.Context, r *ramp, budget time.Duration, step func(n int) (T, bool, error)) (best T, bestN int, err error) {
	end := time.Now().Add(budget)
	var last time.Duration
	for {
		n, ok := r.next()
		if !ok || time.Now().Add(last).After(end) {
			return best, bestN, nil
		}
		start := time.Now()
		res, pass, err := step(n)
		if err != nil {
			return best, bestN, err
		}
		if err := ctx.Err(); err != nil {
			return best, bestN, err
		}
		last = time.Since(start)
		r.record(n, pass)
		if pass && n > bestN {
			best, bestN = res, n
		}
	}
}

// concurrentStep is the outcome of one step of the concurrent ingest.
type concurrentStep struct {
	n                 int
	acks, want        int
	maxAck, p99Ack    time.Duration
	failed            int   // producers whose call failed
	firstErr          error // of those
	rssIdle, rssPeak  int64
	lateness          time.Duration // the most a producer sent a frame after its time
	serverCPU, ownCPU float64       // CPU seconds during the step
	secs              float64       // wall time of the streaming part
}

func (c *concurrentStep) pass() bool {
	return c.failed == 0 && c.acks == c.want && c.maxAck <= time.Second
}

func (c *concurrentStep) String() string {
	s := fmt.Sprintf("N=%d %s: %d/%d PERSISTED, slowest %.0f ms, p99 %.0f ms after the fragment end",
		c.n, map[bool]string{true: "passed", false: "failed"}[c.pass()], c.acks, c.want, ms(c.maxAck), ms(c.p99Ack))
	if c.failed > 0 {
		s += fmt.Sprintf(", %d producers failed (%v)", c.failed, c.firstErr)
	}
	if c.secs > 0 && c.serverCPU > 0 {
		s += fmt.Sprintf("; server CPU %.0f%%, bench CPU %.0f%% of one core", 100*c.serverCPU/c.secs, 100*c.ownCPU/c.secs)
	}
	if c.lateness > 100*time.Millisecond {
		s += fmt.Sprintf("; the bench sent frames up to %.0f ms late", ms(c.lateness))
	}
	return s
}

// runConcurrent finds the largest number of real-time 4 Mbit/s producers
// whose every PERSISTED ACK comes within 1 s of the fragment's end.
func runConcurrent(ctx context.Context, e *env, sc *Scenario) error {
	v := e.video
	if v.Bitrate != 4_000_000 {
		v = newVideo(4_000_000) // the scenario is defined at 4 Mbit/s
	}
	limit := e.plan.concurrentMax
	if fit := e.maxFiles - 256; fit < limit {
		limit = max(fit, 1)
		sc.note("at most %d streams: the limit on open files is %d", limit, e.maxFiles)
	}
	r := &ramp{start: min(e.plan.concurrentStart, limit), limit: limit}
	var steps []string
	best, n, err := search(ctx, r, e.plan.concurrentBudget, func(n int) (*concurrentStep, bool, error) {
		res, err := e.concurrentStep(ctx, v, n)
		if err != nil {
			return nil, false, err
		}
		steps = append(steps, res.String())
		e.progress("ingest-concurrent %s", res)
		return res, res.pass(), nil
	})
	// What passed before an error (or the run's deadline) still counts.
	sc.add(figure("largest N, every ACK within 1 s", float64(n), "streams").atLeast(500, n, limit))
	if best != nil && best.rssPeak > 0 {
		sc.add(figure("server RSS at that N", float64(best.rssPeak)/(1<<20), "MiB"),
			figure("RSS per stream", float64(best.rssPeak-best.rssIdle)/float64(n)/(1<<20), "MiB"))
		sc.note("RSS per stream is (peak RSS - RSS before the producers started) / N; it includes each stream's live window of recent fragments (bounded by --live-stream-bytes and --live-total-bytes) and the garbage the Go collector has not yet reclaimed")
	}
	sc.note("each step: a fresh server (or the target) and N streams, each given one small fragment first (so that its storage directories exist); then N producers, started evenly over one fragment (2 s), each send %d fragments of 30 fps frames in real time on a new connection; a fragment ends when its producer starts the next Cluster (or ends the body)", e.plan.concurrentFragments)
	sc.note("search: doubling from %d, then bisecting, within %s; steps: %s", e.plan.concurrentStart, e.plan.concurrentBudget, strings.Join(steps, "; "))
	if n == limit {
		sc.note("every step passed: %d streams is the search's limit, not the server's", limit)
	}
	if e.local() {
		sc.note("child started with --max-conns-per-ip %d (the open-file limit; the default, 1024, would refuse producers past it: they all dial from 127.0.0.1)", e.maxFiles)
	} else {
		sc.note("against %s: no RSS figure; its own --max-conns-per-ip applies (1024 by default)", e.opts.Target)
	}
	return err
}

// concurrentStep runs n real-time producers on a fresh server.
func (e *env) concurrentStep(ctx context.Context, v *video, n int) (*concurrentStep, error) {
	srv, err := e.startServer(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	names := make([]string, n)
	if err := parallel(ctx, n, 16, func(i int) error {
		var err error
		names[i], err = e.createStream(ctx, srv, fmt.Sprintf("c%d-%d", n, i), 24)
		return err
	}); err != nil {
		return nil, err
	}
	// One small fragment per stream first, in a call of its own: the run
	// then measures existing streams whose producers connect, not the
	// one-time creation of each new stream's storage directories.
	warm := newVideo(100_000)
	if err := parallel(ctx, n, 16, func(i int) error { return ingestFast(ctx, srv, names[i], warm, 1) }); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	res := &concurrentStep{n: n, want: n * e.plan.concurrentFragments}
	pid := srv.pid()
	if pid != 0 {
		res.rssIdle, _ = rssBytes(pid)
	}
	frags := e.plan.concurrentFragments
	t0 := time.Now().Add(200 * time.Millisecond) // time to dial before the first frames are due
	stepCtx, cancel := context.WithDeadline(ctx, t0.Add(v.FragmentDuration*time.Duration(frags+1)+10*time.Second))
	defer cancel()
	var peakRSS func() int64
	if pid != 0 {
		peakRSS = sampleRSS(pid, 250*time.Millisecond)
	}
	cpu0, own0 := srv.cpu(), selfCPUSeconds()

	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := t0.Add(v.FragmentDuration * time.Duration(i) / time.Duration(n))
			body := newLiveBody(v, frags, start, false)
			var endMu sync.Mutex
			ends := make([]time.Time, frags)
			body.fragmentEnd = func(k int, at time.Time) {
				endMu.Lock()
				ends[k] = at
				endMu.Unlock()
			}
			var mine []time.Duration
			err := srv.putMedia(stepCtx, names[i], body, func(a ack) {
				if a.EventType != "PERSISTED" {
					return
				}
				now := time.Now()
				k := int(a.FragmentTimecode / uint64(v.FragmentDuration.Milliseconds()))
				endMu.Lock()
				end := ends[min(k, frags-1)]
				endMu.Unlock()
				mine = append(mine, now.Sub(end))
			})
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			res.lateness = max(res.lateness, time.Duration(body.lateness.Load()))
			if err != nil {
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
			}
		})
	}
	wg.Wait()
	res.secs = time.Since(t0).Seconds()
	res.serverCPU, res.ownCPU = srv.cpu()-cpu0, selfCPUSeconds()-own0
	if peakRSS != nil {
		res.rssPeak = peakRSS()
	}
	res.acks = len(lat)
	slices.Sort(lat)
	if len(lat) > 0 {
		res.maxAck, res.p99Ack = lat[len(lat)-1], percentile(lat, 0.99)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// parallel runs fn(0..n-1) on at most workers goroutines and returns the
// first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// percentile returns the q-quantile of sorted values (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms is a duration in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
