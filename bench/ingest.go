package bench

import (
	"context"
	"fmt"
	"math"
	"os"
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
		sc.note("the baseline reads, writes and fsyncs in turn on one file; openkvs appends each fragment to its segment file while the fsync of the ones before is under way (one fsync covers every fragment written meanwhile) and commits their catalog rows in groups")
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
	s := newSearcher(r, budget, step)
	for !s.done {
		if err := s.advance(ctx); err != nil {
			return s.best, s.bestN, err
		}
	}
	return s.best, s.bestN, nil
}

// searcher is a search for the largest N that passes, one step at a time,
// so that two searches can take turns (searchBoth).
type searcher[T any] struct {
	r      *ramp
	step   func(n int) (T, bool, error)
	budget time.Duration // for its own steps, not another search's
	spent  time.Duration
	last   time.Duration // the previous step's duration
	done   bool
	best   T
	bestN  int
}

func newSearcher[T any](r *ramp, budget time.Duration, step func(n int) (T, bool, error)) *searcher[T] {
	return &searcher[T]{r: r, step: step, budget: budget}
}

// advance runs the next step, or marks the search done when the ramp or
// the budget is.
func (s *searcher[T]) advance(ctx context.Context) error {
	n, ok := s.r.next()
	if !ok || s.spent+s.last > s.budget {
		s.done = true
		return nil
	}
	start := time.Now()
	res, pass, err := s.step(n)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		s.done = true
		return err
	}
	s.last = time.Since(start)
	s.spent += s.last
	s.r.record(n, pass)
	if pass && n > s.bestN {
		s.best, s.bestN = res, n
	}
	return nil
}

// searchBoth runs two searches taking turns, step for step, the first one
// first in even rounds and last in odd ones, so that a change in the
// machine's load over the run weighs on both alike.
func searchBoth[T any](ctx context.Context, a, b *searcher[T]) error {
	for round := 0; !a.done || !b.done; round++ {
		order := []*searcher[T]{a, b}
		if round%2 == 1 {
			order = []*searcher[T]{b, a}
		}
		for _, s := range order {
			if s.done {
				continue
			}
			if err := s.advance(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// concurrentStep is the outcome of one step of the concurrent ingest.
type concurrentStep struct {
	n                 int
	acks, want        int
	maxAck, p99Ack    time.Duration
	p50Ack            time.Duration
	names             []string // of the streams
	failed            int      // producers whose call failed
	firstErr          error    // of those
	rssIdle, rssPeak  int64
	lateness          time.Duration // the most a producer sent a frame after its time
	serverCPU, ownCPU float64       // CPU seconds during the step
	secs              float64       // wall time of the streaming part
	steady            cpuWindow     // while all N producers stream
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

// rssPerStream is the step's RSS per stream in MiB: the growth from before
// the producers started to the peak, over N.
func rssPerStream(idle, peak int64, n int) float64 {
	return float64(peak-idle) / float64(n) / (1 << 20)
}

// cpuWindow is the CPU time of a server and of the bench over a stretch
// of wall time.
type cpuWindow struct {
	server, own, secs float64
}

// perStreamMinute is the server's CPU seconds per stream-minute with n
// streams: CPU seconds over stream-minutes of wall time.
func (w cpuWindow) perStreamMinute(n int) float64 {
	if w.secs == 0 || n == 0 {
		return 0
	}
	return w.server / (float64(n) * w.secs / 60)
}

// measureWindow reads the CPU time of the server (by serverCPU) and of the
// bench at from and at to. The returned function waits for the second
// reading, or gives up on it if the stretch has not ended or ctx ended:
// then ok is false.
func measureWindow(ctx context.Context, from, to time.Time, serverCPU func() float64) func() (w cpuWindow, ok bool) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var res cpuWindow
	var ok bool
	go func() {
		defer close(done)
		if !to.After(from) || !sleepUntil(ctx, from) {
			return
		}
		s0, o0 := serverCPU(), selfCPUSeconds()
		if !sleepUntil(ctx, to) {
			return
		}
		res, ok = cpuWindow{server: serverCPU() - s0, own: selfCPUSeconds() - o0, secs: to.Sub(from).Seconds()}, true
	}()
	return func() (cpuWindow, bool) {
		if time.Now().Before(to) {
			cancel()
		}
		<-done
		cancel()
		return res, ok
	}
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// streamSearch is the outcome of one search for the largest N.
type streamSearch struct {
	best  *concurrentStep // the step at the largest N that passed
	n     int
	steps map[int]*concurrentStep
	lines []string
	// bounded: a step failed, so N is what the server sustains, not where
	// the search stopped.
	bounded bool
}

// streamSearcher prepares a search for the largest number of real-time
// producers of step within the scenario's budget.
func (e *env) streamSearcher(who string, limit int, step func(n int) (*concurrentStep, error)) (*streamSearch, *searcher[*concurrentStep]) {
	s := &streamSearch{steps: map[int]*concurrentStep{}}
	r := &ramp{start: min(e.plan.concurrentStart, limit), limit: limit}
	return s, newSearcher(r, e.plan.concurrentBudget, func(n int) (*concurrentStep, bool, error) {
		res, err := step(n)
		if err != nil {
			return nil, false, err
		}
		s.steps[n] = res
		s.lines = append(s.lines, res.String())
		e.progress("ingest-concurrent, %s: %s", who, res)
		return res, res.pass(), nil
	})
}

// done records the outcome of the search of s.
func (s *streamSearch) done(r *searcher[*concurrentStep]) {
	s.best, s.n, s.bounded = r.best, r.bestN, r.r.fail != 0
}

// at returns the step of the search at n, running one if the search did
// not try n.
func (s *streamSearch) at(n int, step func(n int) (*concurrentStep, error)) (*concurrentStep, error) {
	if res, ok := s.steps[n]; ok {
		return res, nil
	}
	res, err := step(n)
	if err == nil {
		s.steps[n] = res
	}
	return res, err
}

// ofBaseline records the goal "N >= share of the baseline's N'" of two
// searches for the largest N that passes. Unless both were bounded by a
// step that failed, at least one N is where its search stopped, not what
// its server sustains: the goal was not tried.
func (f *Figure) ofBaseline(share float64, bounded bool) {
	text := fmt.Sprintf(">= %.1f of baseline", share)
	switch {
	case !bounded:
		f.Target, f.NotTried = text, "a search stopped before a step failed"
	case f.Ratio == nil:
		f.Target, f.NotTried = text, "the baseline passed no step"
	default:
		f.goal(text, *f.Ratio >= share)
	}
}

// runConcurrent finds the largest number N of real-time 4 Mbit/s producers
// whose every PERSISTED ACK comes within 1 s of the fragment's end, for
// openkvs and for the baseline server (N'), then compares the CPU and RSS
// per stream of openkvs, the baseline and (when given) MediaMTX at one
// fixed N.
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
	frags := e.plan.concurrentFragments
	kvsStep := func(n int) (*concurrentStep, error) { return e.concurrentStep(ctx, v, n) }
	// A fresh baseline child for each step, as openkvs gets: the RSS the
	// previous step left would hide this one's.
	baseStep := func(n int) (*concurrentStep, error) {
		data, err := os.MkdirTemp(e.dir, "baseline-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(data)
		p, err := startProcess(ctx, e.opts.Executable, "bench", "--baseline-server", "--baseline-data", data)
		if err != nil {
			return nil, fmt.Errorf("baseline server: %w", err)
		}
		defer p.stop()
		base := &server{api: newAPI(p.URL), proc: p}
		defer base.close()
		return e.realTime(ctx, base, v, n, frags, fmt.Sprintf("b%d", n))
	}

	// The two searches take turns, step for step, so that the machine's
	// load drifting over the run moves both.
	kvs, kr := e.streamSearcher("openkvs", limit, kvsStep)
	bs, br := e.streamSearcher("baseline", limit, baseStep)
	err := searchBoth(ctx, kr, br)
	kvs.done(kr)
	bs.done(br)
	// What passed before an error (or the run's deadline) still counts.
	f := figure("largest N, every ACK within 1 s", float64(kvs.n), "streams")
	sc.add(f)
	f.against("baseline server", float64(bs.n))
	f.ofBaseline(0.8, kvs.bounded && bs.bounded)
	if kvs.best != nil && kvs.best.rssPeak > 0 {
		sc.add(figure("server RSS at largest N", float64(kvs.best.rssPeak)/(1<<20), "MiB"))
	}
	sc.note("the baseline server (a child of the bench, fresh for each step) does the least per stream: reads the chunked body, finds where each Cluster starts, writes each fragment to a file of its own, fsyncs it and sends one PERSISTED ACK line; same producers, same pass rule")
	sc.note("each step: a fresh server (or the target) and N streams, each given one small fragment first (so that its storage directories exist); then N producers, started evenly over one fragment (2 s), each send %d fragments of 30 fps frames in real time on a new connection; a fragment ends when its producer starts the next Cluster (or ends the body)", frags)
	sc.note("search: doubling from %d, then bisecting, within %s each, the openkvs and baseline searches taking turns step for step; openkvs steps: %s; baseline steps: %s", e.plan.concurrentStart, e.plan.concurrentBudget,
		strings.Join(kvs.lines, "; "), strings.Join(bs.lines, "; "))
	if err != nil {
		return err
	}

	fixed := min(e.plan.concurrentFixed, limit)
	kf, err := kvs.at(fixed, kvsStep)
	if err != nil {
		return err
	}
	bf, err := bs.at(fixed, baseStep)
	if err != nil {
		return err
	}
	notAt100 := ""
	if fixed != 100 {
		notAt100 = fmt.Sprintf("the goal is set at N=100, this run measured N=%d", fixed)
	}
	cpuName, rssName := fmt.Sprintf("server CPU per stream, N=%d", fixed), fmt.Sprintf("RSS per stream, N=%d", fixed)
	const cpuUnit = "CPU s/stream-min"
	if e.local() {
		sc.add(figure(cpuName, kf.steady.perStreamMinute(fixed), cpuUnit).against("baseline server", bf.steady.perStreamMinute(fixed)))
		rss := figure(rssName, rssPerStream(kf.rssIdle, kf.rssPeak, fixed), "MiB").against("baseline server", rssPerStream(bf.rssIdle, bf.rssPeak, fixed))
		if notAt100 != "" {
			rss.Target, rss.NotTried = "<= 2 MiB", notAt100
		} else {
			rss.goal("<= 2 MiB", rss.Value <= 2)
		}
		sc.add(rss)
	}
	sc.note("CPU per stream at N=%d: the server's CPU seconds from one fragment after the first producer started to %d fragments after (while all N stream), over the stream-minutes of that stretch; the openkvs and baseline figures come from their searches' steps at N=%d (openkvs: %s; baseline: %s)",
		fixed, frags, fixed, kf, bf)
	sc.note("RSS per stream is (peak RSS - RSS before the producers started) / N; openkvs's includes each stream's fragments in memory (the one in progress and, until they are persisted and --live-archived-window old, the ones before) and the garbage the Go collector has not yet reclaimed")
	if e.local() {
		sc.note("child started with --max-conns-per-ip %d (the open-file limit; the default, 1024, would refuse producers past it: they all dial from 127.0.0.1)", e.maxFiles)
	} else {
		sc.note("against %s: no CPU or RSS figure for openkvs; its own --max-conns-per-ip applies (1024 by default)", e.opts.Target)
	}

	if e.opts.MediaMTX == "" {
		sc.note("MediaMTX not measured: give its binary with --peer mediamtx=PATH (bench/peers/build-mediamtx.sh builds it)")
		return nil
	}
	e.progress("ingest-concurrent, MediaMTX: N=%d ...", fixed)
	pm, err := e.mediamtxStep(ctx, e.opts.MediaMTX, v, fixed, frags)
	if err != nil {
		return fmt.Errorf("MediaMTX: %w", err)
	}
	e.progress("ingest-concurrent, MediaMTX: %s", pm)
	peer := "MediaMTX " + pm.version + ", RTSP publishers, fMP4 recording"
	if e.local() {
		cpu := figure(cpuName+", vs MediaMTX", kf.steady.perStreamMinute(fixed), cpuUnit).against(peer, pm.steady.perStreamMinute(fixed))
		switch {
		case notAt100 != "":
			cpu.Target, cpu.NotTried = "<= 0.6 of MediaMTX", notAt100
		case cpu.Ratio != nil:
			cpu.goal("<= 0.6 of MediaMTX", *cpu.Ratio <= 0.6)
		}
		sc.add(cpu, figure(rssName+", vs MediaMTX", rssPerStream(kf.rssIdle, kf.rssPeak, fixed), "MiB").against(peer, rssPerStream(pm.rssIdle, pm.rssPeak, fixed)))
	}
	sc.note("MediaMTX at N=%d: %s", fixed, pm)
	sc.note("MediaMTX never fsyncs its recordings (v1.20.1: internal/recorder writes each fMP4 part with a plain write and closes segments without Sync), nor acknowledges anything to its publishers; openkvs fsyncs every fragment before its PERSISTED ACK")
	return nil
}

func (p *peerStep) String() string {
	s := fmt.Sprintf("N=%d, %d publishers failed", p.n, p.failed)
	if p.firstErr != nil {
		s += fmt.Sprintf(" (%v)", p.firstErr)
	}
	s += fmt.Sprintf("; recorded %d segment files, %.1f MB of the %.1f MB of H.264 sent", p.files, float64(p.recordedBytes)/1e6, float64(p.sentBytes)/1e6)
	if p.steady.secs > 0 {
		s += fmt.Sprintf("; MediaMTX CPU %.0f%%, bench (the RTSP publishers) %.0f%% of one core while all N streamed", 100*p.steady.server/p.steady.secs, 100*p.steady.own/p.steady.secs)
	}
	s += fmt.Sprintf("; RSS %.0f MiB before the publishers, %.0f MiB at peak", float64(p.rssIdle)/(1<<20), float64(p.rssPeak)/(1<<20))
	if p.lateness > 100*time.Millisecond {
		s += fmt.Sprintf("; the bench sent frames up to %.0f ms late", ms(p.lateness))
	}
	return s
}

// concurrentStep runs n real-time producers on a fresh server.
func (e *env) concurrentStep(ctx context.Context, v *video, n int) (*concurrentStep, error) {
	srv, err := e.startServer(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	return e.realTime(ctx, srv, v, n, e.plan.concurrentFragments, fmt.Sprintf("c%d", n))
}

// realTime runs n real-time producers of frags fragments each on srv, each
// on a stream of its own named after tag, and measures when their
// PERSISTED ACKs come.
func (e *env) realTime(ctx context.Context, srv *server, v *video, n, frags int, tag string) (*concurrentStep, error) {
	names := make([]string, n)
	if err := parallel(ctx, n, 16, func(i int) error {
		var err error
		names[i], err = e.createStream(ctx, srv, fmt.Sprintf("%s-%d", tag, i), 24)
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
	res := &concurrentStep{n: n, want: n * frags, names: names}
	pid := srv.pid()
	if pid != 0 {
		res.rssIdle, _ = rssBytes(pid)
	}
	t0 := time.Now().Add(200 * time.Millisecond) // time to dial before the first frames are due
	stepCtx, cancel := context.WithDeadline(ctx, t0.Add(v.FragmentDuration*time.Duration(frags+1)+10*time.Second))
	defer cancel()
	var peakRSS func() int64
	if pid != 0 {
		peakRSS = sampleRSS(pid, 250*time.Millisecond)
	}
	cpu0, own0 := srv.cpu(), selfCPUSeconds()
	window := measureWindow(stepCtx, t0.Add(v.FragmentDuration), t0.Add(v.FragmentDuration*time.Duration(frags)), srv.cpu)

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
	res.steady, _ = window()
	if peakRSS != nil {
		res.rssPeak = peakRSS()
	}
	res.acks = len(lat)
	slices.Sort(lat)
	if len(lat) > 0 {
		res.maxAck, res.p99Ack, res.p50Ack = lat[len(lat)-1], percentile(lat, 0.99), percentile(lat, 0.5)
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
