// Package bench measures an openkvs server against its limits, each figure
// beside a baseline measured in the same run on the same machine: what a
// plain Go server does for the same job with the same bytes. It backs
// `openkvs bench`.
//
// Scenarios (each bounded in time; all traffic on loopback):
//   - ingest: one stream as fast as possible, in MB/s and server CPU seconds
//     per GB, against a plain HTTP POST of the same bytes to a handler that
//     writes them to a file with the same fsync cadence (one per fragment).
//   - ingest-concurrent: the largest number N of 4 Mbit/s real-time
//     producers for which every PERSISTED ACK comes within 1 s of its
//     fragment's end, against the baseline server's N' with the same
//     producers (a file, an fsync and an ACK line per fragment); then CPU
//     seconds per stream-minute and RSS per stream at a fixed N for both,
//     and for MediaMTX (RTSP publishers, fMP4 recording) when its binary is
//     given.
//   - catch-up: one GetMedia session reading stored fragments from the
//     start, in MB/s, against a plain HTTP GET of the same bytes from a file.
//   - live-latency: from the producer handing a frame to its connection to a
//     GetMedia NOW reader having the whole frame, p50/p99/max, against a
//     loopback TCP round trip of a frame of the same size.
//   - fan-out: the largest number of GetMedia readers of one live 4 Mbit/s
//     stream that all keep up (no frame more than 1 s late, none missing).
//   - list-fragments: p50/p99 latency of a 100-fragment ListFragments page
//     over 1,000,000 stored fragments.
//   - remux: stored fragments served as fMP4 media segments of an ON_DEMAND
//     HLS session, in MB of MKV per second, against `ffmpeg -c copy` of the
//     same MKV bytes to fragmented MP4 (not measured without ffmpeg).
//   - segment-ttfb: p50/p99 time to the first byte of an archived media
//     segment against that of a plain GET of a file of the same size.
//   - images: GetImages images per second, one JPEG a second over 300 s of
//     stored 720p H.264 (made with ffmpeg, which GetImages needs), against
//     one ffmpeg process extracting the same frames from the MKV file.
//
// Unless a target URL is given, every scenario runs its own `openkvs serve`
// child with a fresh data directory, so that one scenario's leftovers do
// not weigh on the next and the child's CPU time and RSS can be read from
// /proc. Baselines run in a second child (ServeBaseline). Where A/B rounds
// make sense, openkvs and its baseline alternate, so that drift on a noisy
// machine hits both.
//
// The "largest N" scenarios ramp up by doubling until a step fails, then
// bisect, within a time budget; the figure is the largest N that passed.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a bench run.
type Options struct {
	Quick bool // the CI smoke run: small sizes, under a minute
	// Target is the URL of a running server to measure; "" starts child
	// servers. Against a target nothing local is measured (CPU, RSS), no
	// limits can be raised, and ListFragments runs over fewer fragments.
	Target string
	// Executable is the openkvs binary: the bench runs its `serve` and its
	// `bench --baseline-server`.
	Executable string
	Bitrate    int      // bits per second of the synthetic camera (default 4 Mbit/s)
	Scenarios  []string // IDs of the scenarios to run; all when empty
	Progress   io.Writer
	// ServeFlags are added to every child server's flags, after the
	// bench's own (a scenario's flags come last and win).
	ServeFlags []string
	// Cluster runs the cluster scenarios (ClusterScenarioIDs) when no
	// Scenarios are named. Their nodes share the PostgreSQL Catalog and
	// the s3:// bucket Blobs.
	Cluster        bool
	Catalog, Blobs string
	// MediaMTX is the path of a MediaMTX binary (bench/peers/build-mediamtx.sh
	// builds one): ingest-concurrent then measures it at the same fixed N as
	// openkvs, RTSP publishers recording to fMP4. "" leaves it out.
	MediaMTX string
}

// ScenarioIDs lists every scenario, in the order they run.
var ScenarioIDs = []string{"ingest", "ingest-concurrent", "catch-up", "live-latency", "fan-out", "list-fragments", "remux", "segment-ttfb", "clip", "images"}

// plan holds the sizes of a run; full and quick runs differ only here.
type plan struct {
	deadline time.Duration // the whole run

	ingestRounds int   // A/B rounds
	ingestBytes  int64 // per round and side

	concurrentStart, concurrentMax int
	concurrentFragments            int           // per producer and step
	concurrentBudget               time.Duration // per search: openkvs, then the baseline
	concurrentFixed                int           // N of the CPU and RSS per stream figures

	catchUpBytes  int64
	catchUpRounds int

	latencyRounds    int
	latencyFragments int // per round and side

	fanoutStart, fanoutMax int
	fanoutFragments        int // per step
	fanoutBudget           time.Duration

	listRows    int
	listQueries int

	remuxBytes  int64 // stored, fetched once per round
	remuxRounds int

	ttfbFragments int // stored
	ttfbRequests  int // per side

	clipFragments int // stored, one GetClip call per round
	clipRounds    int
	imagesRange   time.Duration // of the stored stream, one image a second
	imagesSize    string        // of its video
	imagesRounds  int

	clusterDeadline                                time.Duration // added to deadline when cluster scenarios run
	clusterIngestBytes                             int64         // per round and side
	clusterIngestRounds                            int
	clusterLatencyStreams, clusterLatencyFragments int
	failoverKills                                  int
	clusterFanoutStart, clusterFanoutMax           int
	clusterFanoutBudget                            time.Duration // per node count
}

var fullPlan = plan{
	deadline:     12*time.Minute + 30*time.Second,
	ingestRounds: 4, ingestBytes: 256e6,
	concurrentStart: 50, concurrentMax: 2000, concurrentFragments: 4, concurrentBudget: 150 * time.Second, concurrentFixed: 100,
	catchUpBytes: 1e9, catchUpRounds: 9,
	latencyRounds: 2, latencyFragments: 8,
	fanoutStart: 125, fanoutMax: 8000, fanoutFragments: 5, fanoutBudget: 150 * time.Second,
	listRows: 1_000_000, listQueries: 2000,
	remuxBytes: 256e6, remuxRounds: 3,
	ttfbFragments: 100, ttfbRequests: 1000,
	clipFragments: 200, clipRounds: 3,
	imagesRange: 300 * time.Second, imagesSize: "1280x720", imagesRounds: 2,
	clusterDeadline: 8 * time.Minute, clusterIngestBytes: 128e6, clusterIngestRounds: 3,
	clusterLatencyStreams: 10, clusterLatencyFragments: 4, failoverKills: 10,
	clusterFanoutStart: 125, clusterFanoutMax: 4000, clusterFanoutBudget: 100 * time.Second,
}

var quickPlan = plan{
	deadline:     55 * time.Second,
	ingestRounds: 2, ingestBytes: 32e6,
	concurrentStart: 8, concurrentMax: 64, concurrentFragments: 2, concurrentBudget: 12 * time.Second, concurrentFixed: 8,
	catchUpBytes: 64e6, catchUpRounds: 3,
	latencyRounds: 1, latencyFragments: 2,
	fanoutStart: 10, fanoutMax: 100, fanoutFragments: 2, fanoutBudget: 10 * time.Second,
	listRows: 20_000, listQueries: 200,
	remuxBytes: 16e6, remuxRounds: 1,
	ttfbFragments: 8, ttfbRequests: 50,
	clipFragments: 10, clipRounds: 1,
	imagesRange: 20 * time.Second, imagesSize: "640x360", imagesRounds: 1,
	clusterDeadline: 100 * time.Second, clusterIngestBytes: 16e6, clusterIngestRounds: 1,
	clusterLatencyStreams: 2, clusterLatencyFragments: 2, failoverKills: 2,
	clusterFanoutStart: 10, clusterFanoutMax: 40, clusterFanoutBudget: 8 * time.Second,
}

// env is what every scenario shares.
type env struct {
	opts     Options
	plan     plan
	video    *video
	dir      string   // temporary directory of the run
	baseline *process // the baseline server child
	base     *api     // its client
	prefix   string   // of the stream names this run creates
	maxFiles int      // open files the bench and its children may hold

	mu      sync.Mutex
	created []string // streams created on a --target server, deleted at the end

	nodeSeq atomic.Int64 // keeps the node IDs of the run apart
}

// Run runs the scenarios and returns the report. A scenario that fails is
// reported with its error and the run goes on; Run's own error is for a run
// that could not start.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Bitrate == 0 {
		opts.Bitrate = 4_000_000
	}
	if opts.Bitrate < 100_000 || opts.Bitrate > 1_000_000_000 {
		return nil, fmt.Errorf("bitrate %d is outside 100 kbit/s to 1 Gbit/s", opts.Bitrate)
	}
	all := slices.Concat(ScenarioIDs, ClusterScenarioIDs)
	for _, id := range opts.Scenarios {
		if !slices.Contains(all, id) {
			return nil, fmt.Errorf("unknown scenario %q (have %v)", id, all)
		}
	}
	if len(opts.Scenarios) == 0 {
		opts.Scenarios = ScenarioIDs
		if opts.Cluster {
			opts.Scenarios = ClusterScenarioIDs
		}
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	e := &env{opts: opts, plan: fullPlan, video: newVideo(opts.Bitrate),
		prefix: "bench-" + strconv.FormatInt(time.Now().UnixMilli()%1e9, 36)}
	rep := &Report{Mode: "full", Target: opts.Target, Machine: machine(), Started: time.Now()}
	if opts.Quick {
		e.plan, rep.Mode = quickPlan, "quick"
	}
	for _, id := range ClusterScenarioIDs {
		if slices.Contains(opts.Scenarios, id) {
			e.plan.deadline += e.plan.clusterDeadline
			break
		}
	}
	ctx, cancel := context.WithTimeout(ctx, e.plan.deadline)
	defer cancel()
	// Fan-out holds a socket per reader in the bench and in the server.
	// Raising the soft limit explicitly also makes the children inherit it.
	e.maxFiles = raiseFileLimit()

	dir, err := os.MkdirTemp("", "openkvs-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	e.dir = dir
	e.baseline, err = startProcess(ctx, opts.Executable, "bench", "--baseline-server", "--baseline-data", filepath.Join(dir, "baseline"))
	if err != nil {
		return nil, fmt.Errorf("baseline server: %w", err)
	}
	defer e.baseline.stop()
	e.base = newAPI(e.baseline.URL)
	defer e.base.close()
	defer e.deleteCreated()

	scenarios := map[string]struct {
		title string
		run   func(context.Context, *env, *Scenario) error
	}{
		"ingest":            {"ingest, 1 stream, as fast as possible", runIngest},
		"ingest-concurrent": {"ingest, N real-time 4 Mbit/s streams", runConcurrent},
		"catch-up":          {"GetMedia catch-up read", runCatchUp},
		"live-latency":      {"live latency, producer to GetMedia reader", runLatency},
		"fan-out":           {"fan-out, readers of one live stream", runFanout},
		"list-fragments":    {"ListFragments, 100-result page", runListFragments},
		"remux":             {"remux, stored fragments to fMP4 media segments", runRemux},
		"segment-ttfb":      {"time to first byte of an archived media segment", runSegmentTTFB},
		"clip":              {"GetClip, stored fragments to one MP4 file", runClip},
		"images":            {"GetImages, one JPEG a second of stored H.264", runImages},
		"cluster-ingest":    {"ingest on PostgreSQL + S3 beside SQLite + files", runClusterIngest},
		"failover":          {"failover, kill -9 of a live stream's owner among 3 nodes", runFailover},
		"cluster-fan-out":   {"fan-out, readers of one live stream spread over 3 nodes", runClusterFanout},
	}
	for _, id := range all {
		if !slices.Contains(opts.Scenarios, id) {
			continue
		}
		sc := scenarios[id]
		s := &Scenario{ID: id, Title: sc.title}
		rep.Scenarios = append(rep.Scenarios, s)
		e.progress("%s ...", id)
		start := time.Now()
		if err := sc.run(ctx, e, s); err != nil {
			s.Error = err.Error()
			e.progress("%s failed: %v", id, err)
		}
		s.Seconds = time.Since(start).Seconds()
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Machine.LoadEnd = loadAverage()
	return rep, nil
}

// Failed reports whether a scenario failed or produced no figure.
func (r *Report) Failed() bool {
	for _, s := range r.Scenarios {
		if s.Error != "" || len(s.Figures) == 0 {
			return true
		}
	}
	return false
}

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns it.
func raiseFileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 1024
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return int(min(l.Cur, 1<<30))
}

// progress prints one line about the run so far.
// alternate runs one round of measurements, ours first in even rounds and
// last in odd ones, so that neither side always runs on a warmer machine.
// A nil baseline is left out.
func alternate(round int, ours, baseline func() error) error {
	order := []func() error{ours}
	if baseline != nil {
		order = append(order, baseline)
		if round%2 == 1 {
			slices.Reverse(order)
		}
	}
	for _, run := range order {
		if err := run(); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.opts.Progress, "bench: "+format+"\n", args...)
}

// local reports whether the bench runs its own servers.
func (e *env) local() bool { return e.opts.Target == "" }

// server is the openkvs under test in one scenario: a child, or the target.
type server struct {
	*api
	proc *process // nil for a target
	data string   // the child's data directory
}

// startServer starts an `openkvs serve` child on a fresh data directory,
// after prepare (if set) has filled it, with extra flags; against a target
// it returns the target and ignores both.
func (e *env) startServer(ctx context.Context, prepare func(data string) error, flags ...string) (*server, error) {
	if !e.local() {
		return &server{api: newAPI(e.opts.Target)}, nil
	}
	data, err := os.MkdirTemp(e.dir, "data-")
	if err != nil {
		return nil, err
	}
	if prepare != nil {
		if err := prepare(data); err != nil {
			return nil, err
		}
	}
	// Every client of the bench dials from the one loopback address: the
	// per-address connection limit (1024 by default) would cap the fan-out
	// and concurrent-streams scenarios, so it is raised to the open-file
	// limit, which bounds the connections the bench can make anyway.
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", data, "--log-format", "json",
		"--shutdown-timeout", "5s", "--max-conns-per-ip", strconv.Itoa(e.maxFiles)}, e.opts.ServeFlags...)
	args = append(args, flags...)
	p, err := startProcess(ctx, e.opts.Executable, args...)
	if err != nil {
		return nil, err
	}
	return &server{api: newAPI(p.URL), proc: p, data: data}, nil
}

// stop ends a child server and removes its data.
func (s *server) stop() error {
	s.close()
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop()
	if rerr := os.RemoveAll(s.data); err == nil {
		err = rerr
	}
	return err
}

// pid is the child's process id, 0 for a target.
func (s *server) pid() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid()
}

// cpu is the child's CPU time so far, 0 for a target.
func (s *server) cpu() float64 {
	if s.proc == nil {
		return 0
	}
	v, _ := CPUSeconds(s.proc.Pid())
	return v
}

// totalCPU is the CPU time of child servers together.
func totalCPU(servers []*server) float64 {
	var sum float64
	for _, s := range servers {
		sum += s.cpu()
	}
	return sum
}

// createStream creates a stream for this run; its name carries the run's
// prefix, so runs against one target do not collide.
func (e *env) createStream(ctx context.Context, s *server, name string, retentionHours int) (string, error) {
	full := e.prefix + "-" + name
	if err := s.createStream(ctx, full, retentionHours); err != nil {
		return "", fmt.Errorf("create stream: %w", err)
	}
	if s.proc == nil { // the target: the bench's own children are thrown away
		e.mu.Lock()
		e.created = append(e.created, full)
		e.mu.Unlock()
	}
	return full, nil
}

// deleteCreated deletes the streams this run created on a target server.
func (e *env) deleteCreated() {
	if len(e.created) == 0 {
		return
	}
	a := newAPI(e.opts.Target)
	defer a.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range e.created {
		errs = append(errs, a.deleteStream(ctx, name))
	}
	if err := errors.Join(errs...); err != nil {
		e.progress("could not delete every stream created on the target: %v", err)
	}
}
