package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// liveReader follows one GetMedia NOW response and records, for each
// stamped frame, how long after the producer sent it the whole frame
// arrived.
type liveReader struct {
	body     *liveBody
	lat      []time.Duration // in arrival order
	received int
}

// read scans the payload until every frame of the body has arrived, the
// payload ends, or ctx ends (which closes it). A failed read shows as
// frames that never arrived.
func (r *liveReader) read(payload io.Reader, buf []byte) {
	total := r.body.frames()
	scan(payload, buf, stampMagic, 8, func(after []byte) bool {
		now := time.Now()
		if sent := r.body.sentAt(binary.BigEndian.Uint64(after)); !sent.IsZero() {
			r.lat = append(r.lat, now.Sub(sent))
		}
		r.received++
		return r.received < total
	})
}

// runLatency measures how long a frame takes from the producer to a
// GetMedia NOW reader, against a loopback TCP round trip of the same bytes,
// in alternating rounds.
func runLatency(ctx context.Context, e *env, sc *Scenario) error {
	srv, err := e.startServer(ctx, nil)
	if err != nil {
		return err
	}
	defer srv.stop()
	stream, err := e.createStream(ctx, srv, "live", 24)
	if err != nil {
		return err
	}
	var kvs, base []time.Duration
	missing := 0
	for round := range e.plan.latencyRounds {
		runKVS := func() error {
			lat, miss, err := e.liveRound(ctx, srv, stream)
			kvs, missing = append(kvs, lat...), missing+miss
			return err
		}
		runBase := func() error {
			lat, err := e.echoRound(ctx)
			base = append(base, lat...)
			return err
		}
		order := []func() error{runKVS, runBase}
		if round%2 == 1 {
			order = []func() error{runBase, runKVS}
		}
		for _, run := range order {
			if err := run(); err != nil {
				return err
			}
		}
		e.progress("live-latency round %d/%d done", round+1, e.plan.latencyRounds)
	}
	slices.Sort(kvs)
	slices.Sort(base)
	if len(kvs) == 0 || len(base) == 0 {
		return fmt.Errorf("no frame arrived")
	}
	p99 := ms(percentile(kvs, 0.99))
	sc.add(figure("p50", ms(percentile(kvs, 0.5)), "ms").against("TCP echo", ms(percentile(base, 0.5))),
		figure("p99", p99, "ms").against("TCP echo", ms(percentile(base, 0.99))).goal("< 10 ms", p99 < 10),
		figure("max", ms(kvs[len(kvs)-1]), "ms").against("TCP echo", ms(base[len(base)-1])))
	sc.note("%d frames of a %d kbit/s 30 fps camera (key frames %d bytes, others %d), each timed from the producer handing it to its PutMedia connection to the GetMedia NOW reader having its last byte; %d rounds alternating with the baseline (the same frame sizes at the same pace through a TCP echo server)",
		len(kvs), e.video.Bitrate/1000, len(e.video.frames[0]), len(e.video.frames[1]), e.plan.latencyRounds)
	if missing > 0 {
		sc.note("%d frames never reached the reader", missing)
	}
	return nil
}

// liveRound streams latencyFragments fragments in real time to stream with
// one GetMedia NOW reader, started first, and returns the frame latencies
// and how many frames did not arrive.
func (e *env) liveRound(ctx context.Context, srv *server, stream string) ([]time.Duration, int, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	payload, err := srv.getMedia(rctx, stream, "NOW")
	if err != nil {
		return nil, 0, err
	}
	defer payload.Close()
	body := newLiveBody(e.video, e.plan.latencyFragments, time.Now().Add(100*time.Millisecond), true)
	r := &liveReader{body: body}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.read(payload, make([]byte, 64<<10))
	}()
	if err := srv.putMedia(rctx, stream, body, func(ack) {}); err != nil {
		return nil, 0, err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cancel()
		<-done
	}
	return r.lat, body.frames() - r.received, nil
}

// echoRound sends the frames of latencyFragments fragments at the camera's
// pace through the baseline's TCP echo and returns each one's round trip.
func (e *env) echoRound(ctx context.Context) ([]time.Duration, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", e.baseline.Echo)
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	v := e.video
	frames := e.plan.latencyFragments * len(v.frames)
	sent := make(chan time.Time, frames)
	lat := make([]time.Duration, 0, frames)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, len(v.frames[0]))
		for k := range frames {
			if _, err := io.ReadFull(c, buf[:len(v.frames[k%len(v.frames)])]); err != nil {
				done <- fmt.Errorf("echo: %w", err)
				return
			}
			lat = append(lat, time.Since(<-sent))
		}
		done <- nil
	}()
	start := time.Now().Add(10 * time.Millisecond)
	for k := range frames {
		due := start.Add(time.Duration(k/len(v.frames))*v.FragmentDuration + v.frameAt(k%len(v.frames)))
		time.Sleep(time.Until(due))
		sent <- time.Now()
		if _, err := c.Write(v.frames[k%len(v.frames)]); err != nil {
			return nil, fmt.Errorf("echo: %w", err)
		}
	}
	if err := <-done; err != nil {
		return nil, err
	}
	return lat, nil
}

// fanoutStep is the outcome of one step of the fan-out search.
type fanoutStep struct {
	n                 int
	connected         int // readers that got a 200
	behind            int // readers that missed a frame or got one more than 1 s late
	maxLat, p99Lat    time.Duration
	connectErr        error
	serverCPU, ownCPU float64
	secs              float64
}

func (f *fanoutStep) pass() bool { return f.connected == f.n && f.behind == 0 }

func (f *fanoutStep) String() string {
	s := fmt.Sprintf("%d readers %s: %d behind, frame latency p99 %.0f ms, max %.0f ms",
		f.n, map[bool]string{true: "passed", false: "failed"}[f.pass()], f.behind, ms(f.p99Lat), ms(f.maxLat))
	if f.connected < f.n {
		s += fmt.Sprintf(", only %d connected (%v)", f.connected, f.connectErr)
	}
	if f.secs > 0 && f.serverCPU > 0 {
		s += fmt.Sprintf("; server CPU %.0f%%, bench CPU %.0f%% of one core", 100*f.serverCPU/f.secs, 100*f.ownCPU/f.secs)
	}
	return s
}

// runFanout finds the largest number of GetMedia readers of one live
// 4 Mbit/s stream that all keep up.
func runFanout(ctx context.Context, e *env, sc *Scenario) error {
	v := e.video
	if v.Bitrate != 4_000_000 {
		v = newVideo(4_000_000) // the scenario is defined at 4 Mbit/s
	}
	limit := e.plan.fanoutMax
	if fit := e.maxFiles - 256; fit < limit {
		limit = max(fit, 1)
		sc.note("at most %d readers: the limit on open files is %d", limit, e.maxFiles)
	}
	r := &ramp{start: min(e.plan.fanoutStart, limit), limit: limit}
	var steps []string
	_, n, err := search(ctx, r, e.plan.fanoutBudget, func(n int) (*fanoutStep, bool, error) {
		res, err := e.fanoutStep(ctx, v, n)
		if err != nil {
			return nil, false, err
		}
		steps = append(steps, res.String())
		e.progress("fan-out %s", res)
		return res, res.pass(), nil
	})
	sc.add(figure("largest number of readers keeping up", float64(n), "readers").atLeast(1000, n, limit))
	sc.note("each step: a fresh server (or the target), N GetMedia NOW readers connected first, then one producer sending %d fragments in real time; a reader keeps up if it receives every frame, none more than 1 s after the producer sent it", e.plan.fanoutFragments)
	sc.note("search: doubling from %d, then bisecting, within %s; steps: %s", e.plan.fanoutStart, e.plan.fanoutBudget, strings.Join(steps, "; "))
	if n == limit {
		sc.note("every step passed: %d readers is the search's limit, not the server's", limit)
	}
	if e.local() {
		sc.note("child started with --getmedia-connections N+10, --getmedia-calls-per-second 1e6 (the defaults, 3 and 5, allow 3 readers) and --max-conns-per-ip %d (the open-file limit; the default, 1024, would refuse the readers past it: they all dial from 127.0.0.1); the readers run in the bench process on the same cores", e.maxFiles)
	} else {
		sc.note("against %s: its own --getmedia-connections, --getmedia-calls-per-second and --max-conns-per-ip apply (3, 5 and 1024 by default)", e.opts.Target)
	}
	return err
}

// fanoutFlags let a server take n readers of one stream.
func fanoutFlags(n int) []string {
	return []string{"--getmedia-connections", strconv.Itoa(n + 10), "--getmedia-calls-per-second", "1e6"}
}

// fanoutStep runs one producer and n readers on a fresh server.
func (e *env) fanoutStep(ctx context.Context, v *video, n int) (*fanoutStep, error) {
	srv, err := e.startServer(ctx, nil, fanoutFlags(n)...)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	stream, err := e.createStream(ctx, srv, fmt.Sprintf("fan%d", n), 24)
	if err != nil {
		return nil, err
	}
	return e.fanout(ctx, v, n, stream, srv, []*server{srv})
}

// fanout connects n GetMedia NOW readers of stream, spread evenly over
// nodes, then sends the producer's fragments to srv and measures how the
// readers keep up. srv is one of nodes; the server CPU is theirs together.
func (e *env) fanout(ctx context.Context, v *video, n int, stream string, srv *server, nodes []*server) (*fanoutStep, error) {
	res := &fanoutStep{n: n}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	payloads := make([]io.ReadCloser, n)
	var mu sync.Mutex
	parallel(rctx, n, 32, func(i int) error {
		p, err := nodes[i%len(nodes)].getMedia(rctx, stream, "NOW")
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if res.connectErr == nil {
				res.connectErr = err
			}
			return nil // count it, keep connecting the others
		}
		payloads[i] = p
		res.connected++
		return nil
	})
	defer func() {
		for _, p := range payloads {
			if p != nil {
				p.Close()
			}
		}
	}()
	body := newLiveBody(v, e.plan.fanoutFragments, time.Now().Add(200*time.Millisecond), true)
	readers := make([]*liveReader, 0, n)
	var wg sync.WaitGroup
	for _, p := range payloads {
		if p == nil {
			continue
		}
		r := &liveReader{body: body}
		readers = append(readers, r)
		wg.Go(func() { r.read(p, make([]byte, 32<<10)) })
	}
	cpu0, own0, t0 := totalCPU(nodes), selfCPUSeconds(), time.Now()
	putErr := srv.putMedia(rctx, stream, body, func(ack) {})
	// A reader that keeps up has every frame within 1 s of the last one
	// being sent.
	waited := make(chan struct{})
	go func() {
		wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(1500 * time.Millisecond):
		cancel()
		<-waited
	}
	res.secs = time.Since(t0).Seconds()
	res.serverCPU, res.ownCPU = totalCPU(nodes)-cpu0, selfCPUSeconds()-own0
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if putErr != nil {
		return nil, putErr
	}
	var all []time.Duration
	for _, r := range readers {
		worst := time.Duration(0)
		for _, l := range r.lat {
			worst = max(worst, l)
		}
		if r.received < body.frames() || worst > time.Second {
			res.behind++
		}
		all = append(all, r.lat...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		res.maxLat, res.p99Lat = all[len(all)-1], percentile(all, 0.99)
	}
	return res, nil
}
