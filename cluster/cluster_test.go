package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/store"
)

const testTTL = 300 * time.Millisecond

func startNode(t *testing.T, c store.Cluster, id string) *Node {
	t.Helper()
	return startNodeTTL(t, c, id, testTTL)
}

func startNodeTTL(t *testing.T, c store.Cluster, id string, ttl time.Duration) *Node {
	t.Helper()
	n := New(c, Options{TTL: ttl, Logger: testLogger(t)})
	if err := n.Start(context.Background(), id, "http://"+id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func mustClaim(t *testing.T, n *Node, stream int64) ingest.Claim {
	t.Helper()
	c, err := n.Claim(context.Background(), stream)
	if err != nil {
		t.Fatalf("%s claims stream %d: %v", n.ID(), stream, err)
	}
	return c
}

func isLost(c ingest.Claim) bool {
	select {
	case <-c.Lost():
		return true
	default:
		return false
	}
}

func TestClaimAndRoute(t *testing.T) {
	mc := newMemCluster()
	a, b := startNode(t, mc, "a"), startNode(t, mc, "b")
	ca := mustClaim(t, a, 7)
	l, err := ca.Lease()
	if err != nil || *l != (store.Lease{StreamID: 7, Owner: "a", Epoch: 1}) {
		t.Fatalf("lease = %+v, %v; want stream 7, owner a, epoch 1", l, err)
	}
	if _, err := b.Claim(context.Background(), 7); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("b claims a's stream: err = %v, want ErrLeaseHeld", err)
	}
	st := &store.Stream{ID: 7, Name: "cam"}
	for _, tc := range []struct {
		n         *Node
		api, want string
	}{
		{b, "PUT_MEDIA", "http://a"}, {b, "GET_MEDIA", "http://a"}, {b, "LIST_FRAGMENTS", "http://self"},
		{b, "GET_HLS_STREAMING_SESSION_URL", "http://self"}, {a, "PUT_MEDIA", "http://self"}, {a, "GET_MEDIA", "http://self"},
	} {
		got, err := tc.n.DataEndpoint(context.Background(), st, tc.api, "http://self")
		if err != nil || got != tc.want {
			t.Errorf("%s DataEndpoint(%s) = %q, %v; want %q", tc.n.ID(), tc.api, got, err, tc.want)
		}
	}
	// A stream nobody owns is served by whichever node is asked.
	if got, _ := b.DataEndpoint(context.Background(), &store.Stream{ID: 8}, "PUT_MEDIA", "http://self"); got != "http://self" {
		t.Errorf("unowned stream: DataEndpoint = %q, want http://self", got)
	}
	// A second session on the owner shares the lease.
	ca2 := mustClaim(t, a, 7)
	if l2, _ := ca2.Lease(); l2.Epoch != 1 {
		t.Errorf("second claim's epoch = %d, want 1", l2.Epoch)
	}
	// A dead owner's stream is routed to, and claimed by, another node.
	mc.kill("a")
	if got, _ := b.DataEndpoint(context.Background(), st, "PUT_MEDIA", "http://self"); got != "http://self" {
		t.Errorf("dead owner: DataEndpoint = %q, want http://self", got)
	}
	cb := mustClaim(t, b, 7)
	if l, _ := cb.Lease(); l.Epoch != 2 {
		t.Errorf("takeover epoch = %d, want 2", l.Epoch)
	}
}

// TestLeaseLostAtRenewal: a lease missing from the renewal is lost at
// once: Lost closes and Lease refuses. The TTL is long so that only the
// renewal the test makes can lose it.
func TestLeaseLostAtRenewal(t *testing.T) {
	mc := newMemCluster()
	a := startNodeTTL(t, mc, "a", time.Hour)
	c := mustClaim(t, a, 1)
	a.renew(context.Background())
	if isLost(c) {
		t.Fatal("lease lost at a renewal that kept it")
	}
	mc.Join(context.Background(), "b", "http://b")
	mc.take(1, "b", time.Hour)
	a.renew(context.Background())
	if !isLost(c) {
		t.Fatal("lease kept after a renewal without it")
	}
	if _, err := c.Lease(); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Lease after loss: %v, want ErrLeaseLost", err)
	}
	// Lost for good: a new claim is refused while b holds the stream.
	if _, err := a.Claim(context.Background(), 1); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("claim after loss: %v, want ErrLeaseHeld", err)
	}
}

// TestLeaseGuard: a node that cannot renew counts on its lease only until
// the last renewal it sent plus TTL minus the margin, although the catalog
// still shows it as the owner until its expiry.
func TestLeaseGuard(t *testing.T) {
	mc := newMemCluster()
	a := startNode(t, mc, "a")
	c := mustClaim(t, a, 1)
	wait.For(t, "a renewal", func() bool { return mc.renews() >= 1 })
	mc.setFailRenew(errDown)
	failedFrom := time.Now()
	wait.For(t, "the claim to be lost", func() bool { return isLost(c) })
	lostAfter := time.Since(failedFrom)
	if lostAfter > testTTL {
		t.Errorf("lost %v after renewals began to fail; want at most the TTL %v", lostAfter, testTTL)
	}
	if _, err := c.Lease(); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Lease after the guard: %v, want ErrLeaseLost", err)
	}
	// The catalog's expiry comes no sooner than the guard.
	l, ok := mc.lease(1)
	if !ok || !l.expires.After(time.Now().Add(-testTTL/10)) {
		t.Errorf("catalog lease %+v (present %v) expired before the node gave it up", l, ok)
	}
}

// TestLinger: an unclaimed lease is kept for one TTL, so a reconnecting
// producer finds the same owner, then released for other nodes.
func TestLinger(t *testing.T) {
	mc := newMemCluster()
	a := startNode(t, mc, "a")
	c := mustClaim(t, a, 1)
	c.Release()
	c.Release() // twice is once
	c2 := mustClaim(t, a, 1)
	if l, _ := c2.Lease(); l.Epoch != 1 {
		t.Fatalf("reclaim within the linger: epoch %d, want 1", l.Epoch)
	}
	c2.Release()
	released := time.Now()
	wait.For(t, "the lease to be released", func() bool { _, ok := mc.lease(1); return !ok })
	if d := time.Since(released); d < testTTL {
		t.Errorf("released %v after the last session; want one TTL %v", d, testTTL)
	}
	if !isLost(c2) {
		t.Error("a released claim's lease is not marked gone")
	}
}

// TestStrayLease: a lease the catalog has for the node that no session
// holds (an earlier run's) is released at the next renewal.
func TestStrayLease(t *testing.T) {
	mc := newMemCluster()
	a := startNodeTTL(t, mc, "a", time.Hour)
	mc.take(5, "a", time.Hour)
	a.renew(context.Background())
	if _, ok := mc.lease(5); ok {
		t.Fatal("stray lease kept")
	}
}

func TestStopReleasesLeases(t *testing.T) {
	mc := newMemCluster()
	a := New(mc, Options{TTL: testTTL, Logger: testLogger(t)})
	if err := a.Start(context.Background(), "a", "http://a"); err != nil {
		t.Fatal(err)
	}
	c := mustClaim(t, a, 1)
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !isLost(c) {
		t.Error("claim not lost after Stop")
	}
	if _, ok := mc.lease(1); ok {
		t.Error("lease still in the catalog after Stop")
	}
	c.Release()
}

// TestSingleton: one node at a time runs the job; when it dies another
// takes over, and a node that cannot renew stops its job within the TTL.
func TestSingleton(t *testing.T) {
	mc := newMemCluster()
	var running, runs atomic.Int32
	var mu sync.Mutex
	where := ""
	job := func(id string) func(context.Context) {
		return func(ctx context.Context) {
			if running.Add(1) > 1 {
				t.Errorf("two nodes run the job at once")
			}
			runs.Add(1)
			mu.Lock()
			where = id
			mu.Unlock()
			<-ctx.Done()
			running.Add(-1)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := map[string]context.CancelFunc{}
	for _, id := range []string{"a", "b", "c"} {
		n := startNode(t, mc, id)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop[id] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.RunSingleton(ctx, "sweeper", job(id))
		}()
	}
	wait.For(t, "the job to run", func() bool { return running.Load() == 1 })
	// The other nodes keep trying for a while and never run it.
	n := mc.renews()
	wait.For(t, "several more rounds", func() bool { return mc.renews() >= n+6 })
	if got := runs.Load(); got != 1 {
		t.Fatalf("job started %d times with its node alive; want 1", got)
	}
	// The node running it dies: its loop ends and its liveness goes.
	mu.Lock()
	first := where
	mu.Unlock()
	stop[first]()
	wait.For(t, "the job to end with its node", func() bool { return running.Load() == 0 })
	mc.kill(first)
	wait.For(t, "another node to run the job", func() bool { return runs.Load() == 2 && running.Load() == 1 })
	mu.Lock()
	if where == first {
		t.Errorf("the dead node %s runs the job again", first)
	}
	mu.Unlock()
	// A node that cannot reach the catalog stops the job within the TTL.
	mc.setFailRenew(errDown)
	failed := time.Now()
	wait.For(t, "the job to stop without renewals", func() bool { return running.Load() == 0 })
	if d := time.Since(failed); d > testTTL {
		t.Errorf("job stopped %v after renewals began to fail; want at most the TTL %v", d, testTTL)
	}
}
