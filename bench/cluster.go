package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ClusterScenarioIDs lists the scenarios of `openkvs bench --cluster`, in
// the order they run. They need Options.Catalog and Options.Blobs: nodes
// sharing a PostgreSQL catalog and an S3 bucket.
var ClusterScenarioIDs = []string{"cluster-ingest", "failover", "cluster-fan-out"}

// nodes is a set of `openkvs serve` children sharing the run's catalog and
// bucket, each on an address of its own that it keeps across a restart, so
// that its public URL stays the same.
type nodes struct {
	e     *env
	flags []string

	mu    sync.Mutex
	addrs []string
	ids   []string
	srvs  []*server // nil while a node is down
}

// startNodes starts n cluster nodes with extra flags.
func (e *env) startNodes(ctx context.Context, n int, flags ...string) (*nodes, error) {
	if e.opts.Catalog == "" || e.opts.Blobs == "" {
		return nil, errors.New("the cluster scenarios need --catalog (a PostgreSQL URL) and --blobs (an s3:// URL)")
	}
	if !e.local() {
		return nil, errors.New("the cluster scenarios start their own nodes: not with --target")
	}
	c := &nodes{e: e, flags: flags, srvs: make([]*server, n)}
	for i := range n {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c.addrs = append(c.addrs, addr)
		c.ids = append(c.ids, fmt.Sprintf("%s-n%d-%d", e.prefix, i, e.nodeSeq.Add(1)))
	}
	for i := range n {
		if err := c.start(ctx, i); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts node i (again).
func (c *nodes) start(ctx context.Context, i int) error {
	flags := append([]string{"--catalog", c.e.opts.Catalog, "--blobs", c.e.opts.Blobs,
		"--node-id", c.ids[i], "--addr", c.addrs[i]}, c.flags...)
	s, err := c.e.startServer(ctx, nil, flags...)
	if err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	c.mu.Lock()
	c.srvs[i] = s
	c.mu.Unlock()
	return nil
}

// node returns node i, nil while it is down.
func (c *nodes) node(i int) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srvs[i]
}

// all returns the nodes that are up.
func (c *nodes) all() []*server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []*server
	for _, s := range c.srvs {
		if s != nil {
			up = append(up, s)
		}
	}
	return up
}

// kill ends node i with SIGKILL, as a crash would.
func (c *nodes) kill(i int) {
	c.mu.Lock()
	s := c.srvs[i]
	c.srvs[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.close()
		s.proc.kill()
		os.RemoveAll(s.data)
	}
}

// stop stops every node that is up.
func (c *nodes) stop() {
	c.mu.Lock()
	srvs := slices.Clone(c.srvs)
	clear(c.srvs)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range srvs {
		if s != nil {
			wg.Go(func() { s.stop() })
		}
	}
	wg.Wait()
}

// deleteStreams deletes streams of the run from the shared catalog, so that
// the sweeper of the next nodes removes their objects.
func (c *nodes) deleteStreams(names ...string) {
	up := c.all()
	if len(up) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range names {
		if err := up[0].deleteStream(ctx, name); err != nil {
			c.e.progress("could not delete stream %s: %v", name, err)
		}
	}
}

// resolve asks the nodes that are up, from node first on, for the data
// endpoint of PutMedia to stream, as a producer behind a load balancer
// would, and returns the node it names.
func (c *nodes) resolve(ctx context.Context, stream string, first int) (*server, int, error) {
	var errs []error
	for k := range len(c.addrs) {
		i := (first + k) % len(c.addrs)
		s := c.node(i)
		if s == nil {
			continue
		}
		url, err := s.dataEndpoint(ctx, stream, "PUT_MEDIA")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j, addr := range c.addrs {
			if url == "http://"+addr {
				if t := c.node(j); t != nil {
					return t, j, nil
				}
			}
		}
		errs = append(errs, fmt.Errorf("GetDataEndpoint named %s, which is no node that is up", url))
	}
	return nil, 0, fmt.Errorf("resolve the data endpoint: %w", errors.Join(errs...))
}

// runClusterIngest measures ingest on PostgreSQL + S3 beside the embedded
// backends: one stream as fast as possible, and PERSISTED latency of
// real-time producers.
func runClusterIngest(ctx context.Context, e *env, sc *Scenario) error {
	flags := []string{"--putmedia-bytes-per-second", unlimitedRate, "--putmedia-calls-per-second", "100"}
	emb, err := e.startServer(ctx, nil, flags...)
	if err != nil {
		return err
	}
	defer emb.stop()
	c, err := e.startNodes(ctx, 1, flags...)
	if err != nil {
		return err
	}
	defer c.stop()
	node := c.node(0)
	embStream, err := e.createStream(ctx, emb, "cingest", 24)
	if err != nil {
		return err
	}
	stream, err := e.createStream(ctx, node, "cingest", 24)
	if err != nil {
		return err
	}
	defer c.deleteStreams(stream)

	n := e.fragmentsFor(e.plan.clusterIngestBytes)
	bytes := float64(newFastBody(e.video, n).Size())
	var secs, embSecs float64
	timed := func(s *server, name string, total *float64) func() error {
		return func() error {
			start := time.Now()
			err := ingestFast(ctx, s, name, e.video, n)
			*total += time.Since(start).Seconds()
			return err
		}
	}
	// Warm up both: connections, the first catalog writes, the bucket.
	if err := ingestFast(ctx, node, stream, e.video, 4); err != nil {
		return err
	}
	if err := ingestFast(ctx, emb, embStream, e.video, 4); err != nil {
		return err
	}
	for round := range e.plan.clusterIngestRounds {
		if err := alternate(round, timed(node, stream, &secs), timed(emb, embStream, &embSecs)); err != nil {
			return err
		}
		e.progress("cluster-ingest round %d/%d: PostgreSQL + S3 %.0f MB/s, embedded %.0f MB/s", round+1,
			e.plan.clusterIngestRounds, bytes*float64(round+1)/1e6/secs, bytes*float64(round+1)/1e6/embSecs)
	}
	total := bytes * float64(e.plan.clusterIngestRounds)
	sc.add(figure("throughput, PostgreSQL + S3", total/1e6/secs, "MB/s").against("SQLite + files", total/1e6/embSecs))

	streams, frags := e.plan.clusterLatencyStreams, e.plan.clusterLatencyFragments
	v := newVideo(4_000_000)
	var steps [2]*concurrentStep
	for round := range 2 {
		err := alternate(round, func() error {
			r, err := e.realTime(ctx, node, v, streams, frags, fmt.Sprintf("cl%d", round))
			steps[0] = r
			return err
		}, func() error {
			r, err := e.realTime(ctx, emb, v, streams, frags, fmt.Sprintf("cl%d", round))
			steps[1] = r
			return err
		})
		if err != nil {
			return err
		}
	}
	defer c.deleteStreams(steps[0].names...)
	for _, s := range steps {
		if s.acks != s.want {
			return fmt.Errorf("real-time producers: %s", s)
		}
	}
	sc.add(figure("PERSISTED p50 after the fragment end, PostgreSQL + S3", ms(steps[0].p50Ack), "ms").against("SQLite + files", ms(steps[1].p50Ack)),
		figure("PERSISTED p99 after the fragment end, PostgreSQL + S3", ms(steps[0].p99Ack), "ms").against("SQLite + files", ms(steps[1].p99Ack)))
	sc.note("throughput: %d rounds of %.0f MB (%d fragments of %.2f MB) each side, alternating, one node on the catalog and bucket given against a node of its own on SQLite and files; every fragment PERSISTED",
		e.plan.clusterIngestRounds, bytes/1e6, n, float64(e.video.size)/1e6)
	sc.note("PERSISTED latency: %d real-time 4 Mbit/s producers of %d 2-second fragments each, on each side (the second of two alternating rounds); from the producer starting the next Cluster to the ACK", streams, frags)
	sc.note("PERSISTED on S3 means the object store acknowledged the PUT: its durability is the store's (see the README)")
	return nil
}

// failoverProducer sends one real-time stream for as long as it runs,
// through whichever node GetDataEndpoint names, reconnecting at once when
// its connection fails, as a producer would.
type failoverProducer struct {
	c      *nodes
	stream string
	v      *video
	gen    atomic.Int64 // connection generation, one per PutMedia call
	acks   chan ackEvent
}

// ackEvent is an ACK the failover producer received.
type ackEvent struct {
	gen       int64
	node      int
	persisted bool
	at        time.Time
}

func (p *failoverProducer) run(ctx context.Context) {
	last := 0
	for ctx.Err() == nil {
		s, i, err := p.c.resolve(ctx, p.stream, last)
		if err != nil {
			pause(ctx, 20*time.Millisecond)
			continue
		}
		last = i
		gen := p.gen.Add(1)
		// A real-time body far longer than the run.
		body := newLiveBody(p.v, 1<<20, time.Now(), false)
		err = s.putMedia(ctx, p.stream, body, func(a ack) {
			ev := ackEvent{gen: gen, node: i, persisted: a.EventType == "PERSISTED", at: time.Now()}
			select {
			case p.acks <- ev:
			default: // nobody is waiting for it
			}
		})
		if err != nil {
			// Refused while the dead owner still looks alive: try again soon.
			pause(ctx, 20*time.Millisecond)
		}
	}
}

// pause waits for d or ctx's end.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// next returns the next ACK from a connection after generation gen that
// satisfies keep, or an error after timeout.
func (p *failoverProducer) next(ctx context.Context, gen int64, timeout time.Duration, keep func(ackEvent) bool) (ackEvent, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case ev := <-p.acks:
			if ev.gen > gen && keep(ev) {
				return ev, nil
			}
		case <-t.C:
			return ackEvent{}, fmt.Errorf("no ACK within %v", timeout)
		case <-ctx.Done():
			return ackEvent{}, ctx.Err()
		}
	}
}

// runFailover kills the node that owns a live stream, again and again, and
// measures the time from the kill to the first PERSISTED on the new owner.
func runFailover(ctx context.Context, e *env, sc *Scenario) error {
	c, err := e.startNodes(ctx, 3)
	if err != nil {
		return err
	}
	defer c.stop()
	stream, err := e.createStream(ctx, c.node(0), "failover", 24)
	if err != nil {
		return err
	}
	defer c.deleteStreams(stream)
	v := newVideo(4_000_000)
	p := &failoverProducer{c: c, stream: stream, v: v, acks: make(chan ackEvent, 64)}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx) })
	defer wg.Wait()
	defer stop()

	persisted := func(ev ackEvent) bool { return ev.persisted }
	var toFirst, toPersisted []time.Duration
	var owners []string
	for k := range e.plan.failoverKills {
		// Steady state: the producer's current connection has PERSISTED a
		// fragment; kill its node half-way through the next one.
		ev, err := p.next(ctx, p.gen.Load()-1, 30*time.Second, persisted)
		if err != nil {
			return fmt.Errorf("kill %d: before the kill: %w", k+1, err)
		}
		pause(ctx, v.FragmentDuration/2)
		gen := p.gen.Load()
		killed := time.Now()
		c.kill(ev.node)
		first, err := p.next(ctx, gen, 30*time.Second, func(ackEvent) bool { return true })
		if err != nil {
			return fmt.Errorf("kill %d of node %d: first ACK after: %w", k+1, ev.node, err)
		}
		done := first
		if !first.persisted {
			if done, err = p.next(ctx, gen, 30*time.Second, persisted); err != nil {
				return fmt.Errorf("kill %d of node %d: PERSISTED after: %w", k+1, ev.node, err)
			}
		}
		toFirst = append(toFirst, first.at.Sub(killed))
		toPersisted = append(toPersisted, done.at.Sub(killed))
		owners = append(owners, fmt.Sprintf("%d->%d", ev.node, done.node))
		e.progress("failover %d/%d: node %d killed; first ACK from node %d after %.0f ms, PERSISTED after %.0f ms",
			k+1, e.plan.failoverKills, ev.node, done.node, ms(first.at.Sub(killed)), ms(done.at.Sub(killed)))
		if err := c.start(ctx, ev.node); err != nil {
			return err
		}
	}
	slices.Sort(toFirst)
	slices.Sort(toPersisted)
	worst := toPersisted[len(toPersisted)-1]
	sc.add(figure("kill to first PERSISTED on the new owner, p50", ms(percentile(toPersisted, 0.5)), "ms"),
		figure("kill to first PERSISTED on the new owner, max", ms(worst), "ms").goal("< 5000 ms", worst < 5*time.Second),
		figure("kill to the new owner's first ACK, p50", ms(percentile(toFirst, 0.5)), "ms"))
	sc.note("3 nodes on the catalog and bucket given; one real-time 4 Mbit/s producer of 2-second fragments that, when its connection fails, asks the nodes still up for the data endpoint (as behind a load balancer) and starts a new PutMedia at once; %d times: once a fragment is PERSISTED, the node it came through is killed with SIGKILL 1 s later (mid-fragment) and started again after the failover; kills (old->new owner): %s",
		e.plan.failoverKills, strings.Join(owners, ", "))
	sc.note("the first PERSISTED comes at the end of the first fragment on the new connection, so it includes one fragment's duration (2 s); the first ACK is the new owner's ACK of that fragment's first bytes")
	return nil
}

// runClusterFanout finds the largest number of GetMedia readers of one live
// stream that keep up when they are spread over 3 nodes, beside 1 node.
func runClusterFanout(ctx context.Context, e *env, sc *Scenario) error {
	v := newVideo(4_000_000)
	limit := e.plan.clusterFanoutMax
	if fit := e.maxFiles - 256; fit < limit {
		limit = max(fit, 1)
		sc.note("at most %d readers: the limit on open files is %d", limit, e.maxFiles)
	}
	var found [2]int
	var steps [2][]string
	for k, count := range []int{1, 3} {
		r := &ramp{start: min(e.plan.clusterFanoutStart, limit), limit: limit}
		_, n, err := search(ctx, r, e.plan.clusterFanoutBudget, func(n int) (*fanoutStep, bool, error) {
			res, err := e.clusterFanoutStep(ctx, v, n, count)
			if err != nil {
				return nil, false, err
			}
			steps[k] = append(steps[k], res.String())
			e.progress("cluster-fan-out %d node(s): %s", count, res)
			return res, res.pass(), nil
		})
		if err != nil {
			return err
		}
		found[k] = n
	}
	sc.add(figure("largest number of readers keeping up, 3 nodes", float64(found[1]), "readers").against("1 node", float64(found[0])))
	sc.note("each step: fresh nodes on the catalog and bucket given; the stream is made and given one small fragment through node 0, which then owns it; N GetMedia NOW readers connect, spread evenly over the nodes (readers of other nodes are served by one internal connection per node to the owner), then one producer sends %d fragments in real time to node 0; a reader keeps up if it receives every frame, none more than 1 s after the producer sent it",
		e.plan.fanoutFragments)
	sc.note("all nodes and the readers share this machine's %d cores: more nodes add no CPU here, only the spread; on separate machines each node adds its own", machine().Cores)
	sc.note("1 node: %s", strings.Join(steps[0], "; "))
	sc.note("3 nodes: %s", strings.Join(steps[1], "; "))
	return nil
}

// clusterFanoutStep runs one producer and n readers on count fresh nodes.
func (e *env) clusterFanoutStep(ctx context.Context, v *video, n, count int) (*fanoutStep, error) {
	c, err := e.startNodes(ctx, count, fanoutFlags(n)...)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	owner := c.node(0)
	stream, err := e.createStream(ctx, owner, fmt.Sprintf("cfan%d-%d", count, n), 24)
	if err != nil {
		return nil, err
	}
	defer c.deleteStreams(stream)
	// Node 0 keeps the stream's lease for a while after this call ends, so
	// that the readers of the other nodes find their owner at once.
	if err := ingestFast(ctx, owner, stream, newVideo(100_000), 1); err != nil {
		return nil, fmt.Errorf("first fragment: %w", err)
	}
	return e.fanout(ctx, v, n, stream, owner, c.all())
}
