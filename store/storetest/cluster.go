package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/store"
)

// ClusterCatalog is a catalog that nodes share: what TestCluster tests.
type ClusterCatalog interface {
	store.Catalog
	store.Cluster
}

// TestCluster runs the store.Cluster conformance suite. open must return
// a ClusterCatalog; two catalogs open on the same dir at once are two
// nodes' views of one shared catalog, and closing one without Leave is
// the crash of the nodes it joined.
func TestCluster(t *testing.T, open OpenCatalog) {
	tests := map[string]func(*testing.T, OpenCatalog){
		"Nodes":          testNodes,
		"Leases":         testLeases,
		"Leave":          testLeave,
		"CrashTakeover":  testCrashTakeover,
		"ExpiryTakeover": testExpiryTakeover,
		"Fencing":        testFencing,
		"Singleton":      testSingleton,
		"Secret":         testSecret,
		"FencingRace":    testFencingRace,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open) })
	}
}

// long is a TTL no test outlives: a lease held for it changes hands only
// by release or its node's death.
const long = time.Hour

func openCluster(t *testing.T, open OpenCatalog, dir string) ClusterCatalog {
	t.Helper()
	c, ok := open(t, dir).(ClusterCatalog)
	if !ok {
		t.Fatal("the catalog does not implement store.Cluster")
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func mustJoin(t *testing.T, c store.Cluster, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := c.Join(context.Background(), id, "http://"+id+".test:4567"); err != nil {
			t.Fatalf("Join(%s): %v", id, err)
		}
	}
}

func mustAcquire(t *testing.T, c store.Cluster, stream int64, owner string, ttl time.Duration) store.Lease {
	t.Helper()
	l, err := c.AcquireLease(context.Background(), stream, owner, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%d, %s): %v", stream, owner, err)
	}
	if l.StreamID != stream || l.Owner != owner || l.Epoch < 1 {
		t.Fatalf("AcquireLease(%d, %s) = %+v", stream, owner, l)
	}
	return l
}

// acquireWhenFree waits until owner gets stream's lease, which another
// node holds until it expires or dies.
func acquireWhenFree(t *testing.T, c store.Cluster, stream int64, owner string, ttl time.Duration) store.Lease {
	t.Helper()
	var l store.Lease
	wait.For(t, fmt.Sprintf("%s to take the lease of stream %d", owner, stream), func() bool {
		var err error
		l, err = c.AcquireLease(context.Background(), stream, owner, ttl)
		if err != nil && !errors.Is(err, store.ErrLeaseHeld) {
			t.Fatalf("AcquireLease(%d, %s): %v", stream, owner, err)
		}
		return err == nil
	})
	return l
}

func wantHeld(t *testing.T, c store.Cluster, stream int64, owner string) {
	t.Helper()
	if l, err := c.AcquireLease(context.Background(), stream, owner, long); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("AcquireLease(%d, %s) of a lease a live node holds = %+v, %v; want ErrLeaseHeld", stream, owner, l, err)
	}
}

func wantOwner(t *testing.T, c store.Cluster, stream int64, owner string) {
	t.Helper()
	n, err := c.LeaseOwner(context.Background(), stream)
	if owner == "" {
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LeaseOwner(%d) = %+v, %v; want ErrNotFound", stream, n, err)
		}
		return
	}
	if err != nil || n.ID != owner || n.URL != "http://"+owner+".test:4567" || !n.Alive {
		t.Fatalf("LeaseOwner(%d) = %+v, %v; want live node %s", stream, n, err, owner)
	}
}

// nodesByID returns c's nodes in ID order.
func nodesByID(t *testing.T, c store.Cluster) []store.Node {
	t.Helper()
	nodes, err := c.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(nodes, func(a, b store.Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes
}

func testNodes(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	nodes := nodesByID(t, c)
	want := []store.Node{{ID: "a", URL: "http://a.test:4567", Alive: true}, {ID: "b", URL: "http://b.test:4567", Alive: true}}
	ignoreHeartbeat := cmp.Comparer(func(a, b time.Time) bool { return true })
	if diff := cmp.Diff(want, nodes, ignoreHeartbeat); diff != "" {
		t.Fatalf("Nodes (-want +got):\n%s", diff)
	}
	before := nodes[0].Heartbeat
	if before.IsZero() {
		t.Fatal("a node's heartbeat is zero")
	}
	if err := c.Heartbeat(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctx, "a", "http://a2.test:4567"); err != nil {
		t.Fatalf("joining again with a new URL: %v", err)
	}
	nodes = nodesByID(t, c)
	if len(nodes) != 2 || nodes[0].URL != "http://a2.test:4567" || nodes[0].Heartbeat.Before(before) {
		t.Fatalf("after a heartbeat and a new URL, Nodes = %+v; want a at http://a2.test:4567, heartbeat not before %v", nodes, before)
	}
	if err := c.Heartbeat(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Heartbeat of an unknown node: %v, want ErrNotFound", err)
	}
	if err := c.Leave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if nodes := nodesByID(t, c); len(nodes) != 1 || nodes[0].ID != "a" {
		t.Fatalf("Nodes after b left = %+v", nodes)
	}
}

func testLeases(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	s := mustCreate(t, c, newStream("leased"))
	wantOwner(t, c, s.ID, "")
	la := mustAcquire(t, c, s.ID, "a", long)
	if again := mustAcquire(t, c, s.ID, "a", long); again != la {
		t.Fatalf("the holder acquiring again got %+v, want the same lease %+v", again, la)
	}
	wantHeld(t, c, s.ID, "b")
	wantOwner(t, c, s.ID, "a")
	renewed, err := c.RenewLeases(ctx, "a", long)
	if err != nil || !cmp.Equal(renewed, []store.Lease{la}) {
		t.Fatalf("RenewLeases(a) = %+v, %v; want [%+v]", renewed, err, la)
	}
	if renewed, err := c.RenewLeases(ctx, "b", long); err != nil || len(renewed) != 0 {
		t.Fatalf("RenewLeases(b) = %+v, %v; want none", renewed, err)
	}
	if _, err := c.AcquireLease(ctx, 987654, "a", long); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AcquireLease of a missing stream: %v, want ErrNotFound", err)
	}

	// Released, the lease is free at once, and its next holder's epoch is
	// higher, whoever it is.
	if err := c.ReleaseLease(ctx, la); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, c, s.ID, "")
	if renewed, _ := c.RenewLeases(ctx, "a", long); len(renewed) != 0 {
		t.Fatalf("RenewLeases(a) after its release = %+v; want none", renewed)
	}
	la2 := mustAcquire(t, c, s.ID, "a", long)
	if la2.Epoch <= la.Epoch {
		t.Fatalf("epoch after release and acquire = %d, want above %d", la2.Epoch, la.Epoch)
	}
	if err := c.ReleaseLease(ctx, la2); err != nil {
		t.Fatal(err)
	}
	lb := mustAcquire(t, c, s.ID, "b", long)
	if lb.Epoch <= la2.Epoch {
		t.Fatalf("epoch of the next holder = %d, want above %d", lb.Epoch, la2.Epoch)
	}
	// Releasing a lease that is no longer current changes nothing.
	if err := c.ReleaseLease(ctx, la); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, c, s.ID, "b")

	// A deleted stream's lease goes with it.
	if err := c.DeleteStream(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, c, s.ID, "")
	if _, err := c.AcquireLease(ctx, s.ID, "a", long); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("AcquireLease of a deleted stream: %v, want ErrNotFound", err)
	}
}

func testLeave(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	s := mustCreate(t, c, newStream("leaving"))
	lb := mustAcquire(t, c, s.ID, "b", long)
	if ok, err := c.AcquireSingleton(ctx, "job", "b", long); err != nil || !ok {
		t.Fatalf("AcquireSingleton(job, b) = %v, %v", ok, err)
	}
	if err := c.Leave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, c, s.ID, "")
	la := mustAcquire(t, c, s.ID, "a", long)
	if la.Epoch <= lb.Epoch {
		t.Fatalf("epoch after b left = %d, want above %d", la.Epoch, lb.Epoch)
	}
	if ok, err := c.AcquireSingleton(ctx, "job", "a", long); err != nil || !ok {
		t.Fatalf("AcquireSingleton(job, a) after its holder left = %v, %v; want true", ok, err)
	}
}

// testCrashTakeover closes a catalog without Leave, as a node's process
// dies: its leases and jobs are taken at once, not when they expire.
func testCrashTakeover(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	c := openCluster(t, open, dir)
	dying := openCluster(t, open, dir)
	mustJoin(t, c, "a")
	mustJoin(t, dying, "b")
	s1 := mustCreate(t, c, newStream("s1"))
	s2 := newStream("s2")
	s2.ARN += "2"
	mustCreate(t, c, s2)
	lb1 := mustAcquire(t, dying, s1.ID, "b", long)
	mustAcquire(t, dying, s2.ID, "b", long)
	if ok, err := dying.AcquireSingleton(ctx, "job", "b", long); err != nil || !ok {
		t.Fatalf("AcquireSingleton(job, b) = %v, %v", ok, err)
	}
	wantHeld(t, c, s1.ID, "a")
	wantOwner(t, c, s1.ID, "b")
	if ok, err := c.AcquireSingleton(ctx, "job", "a", long); err != nil || ok {
		t.Fatalf("AcquireSingleton(job, a) while b holds it = %v, %v; want false", ok, err)
	}

	if err := dying.Close(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "node b to be seen dead", func() bool {
		nodes := nodesByID(t, c)
		return len(nodes) == 2 && nodes[1].ID == "b" && !nodes[1].Alive
	})
	// Its unexpired lease names a dead node: no one owns the stream.
	wantOwner(t, c, s2.ID, "")
	la1 := mustAcquire(t, c, s1.ID, "a", long)
	if la1.Epoch <= lb1.Epoch {
		t.Fatalf("epoch after the takeover = %d, want above %d", la1.Epoch, lb1.Epoch)
	}
	wantOwner(t, c, s1.ID, "a")
	if ok, err := c.AcquireSingleton(ctx, "job", "a", long); err != nil || !ok {
		t.Fatalf("AcquireSingleton(job, a) after b died = %v, %v; want true", ok, err)
	}
}

func testExpiryTakeover(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	s := mustCreate(t, c, newStream("expiring"))
	mustAcquire(t, c, s.ID, "b", long)
	wantHeld(t, c, s.ID, "a")
	// b, alive, renews for a millisecond: the lease expires and goes.
	lb := mustAcquire(t, c, s.ID, "b", time.Millisecond)
	la := acquireWhenFree(t, c, s.ID, "a", long)
	if la.Epoch <= lb.Epoch {
		t.Fatalf("epoch after expiry = %d, want above %d", la.Epoch, lb.Epoch)
	}
	wantOwner(t, c, s.ID, "a")
	if renewed, err := c.RenewLeases(ctx, "b", long); err != nil || len(renewed) != 0 {
		t.Fatalf("RenewLeases(b) after its lease was taken = %+v, %v; want none", renewed, err)
	}
	wantHeld(t, c, s.ID, "b")
}

// testFencing checks that a commit under a lease that changed hands
// writes nothing, alone or grouped with commits under the current lease.
func testFencing(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	s := mustCreate(t, c, newStream("fenced"))
	la := mustAcquire(t, c, s.ID, "a", long)
	if err := c.AddFragments(ctx, &la, []*store.Fragment{fragment(s.ID, 1, 0)}); err != nil {
		t.Fatalf("AddFragments under the current lease: %v", err)
	}
	la = mustAcquire(t, c, s.ID, "a", time.Millisecond)
	// Expired but not taken: the lease is still the stream's current one.
	if err := c.AddFragments(ctx, &la, []*store.Fragment{fragment(s.ID, 2, 0)}); err != nil {
		t.Fatalf("AddFragments under an expired lease no one took: %v", err)
	}
	lb := acquireWhenFree(t, c, s.ID, "b", long)

	stale := fragment(s.ID, 3, 0)
	if err := c.AddFragments(ctx, &la, []*store.Fragment{stale}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("AddFragments under a lease taken over: %v, want ErrLeaseLost", err)
	}
	if ok, _ := c.HasBlobKey(ctx, stale.BlobKey); ok {
		t.Fatal("a commit refused for its lost lease left a row")
	}
	// Many at once, so that refused and accepted requests share group
	// commits: each fails or lands alone.
	const each = 10
	errs := make([]error, 2*each)
	var wg sync.WaitGroup
	for i := range 2 * each {
		wg.Go(func() {
			l := &lb
			if i%2 == 1 {
				l = &la
			}
			errs[i] = c.AddFragments(ctx, l, []*store.Fragment{fragment(s.ID, 10+2*i, 0), fragment(s.ID, 11+2*i, 0)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("request %d under the current lease: %v", i, err)
		}
		if i%2 == 1 && !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("request %d under the lost lease: %v, want ErrLeaseLost", i, err)
		}
	}
	rows, _ := c.FragmentsAfter(ctx, s.ID, "", 1000)
	if len(rows) != 2+2*each {
		t.Errorf("%d rows indexed, want %d: 2 before the takeover and 2 for each request under the current lease", len(rows), 2+2*each)
	}
	// A foreign lease, or one released, fences too.
	if err := c.AddFragments(ctx, &store.Lease{StreamID: s.ID, Owner: "a", Epoch: lb.Epoch}, []*store.Fragment{stale}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("AddFragments under the current epoch but another owner: %v, want ErrLeaseLost", err)
	}
	if err := c.ReleaseLease(ctx, lb); err != nil {
		t.Fatal(err)
	}
	if err := c.AddFragments(ctx, &lb, []*store.Fragment{stale}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("AddFragments under a released lease: %v, want ErrLeaseLost", err)
	}
	if ok, _ := c.HasBlobKey(ctx, stale.BlobKey); ok {
		t.Fatal("a commit refused for its lost lease left a row")
	}
}

func testSingleton(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	c := openCluster(t, open, t.TempDir())
	mustJoin(t, c, "a", "b")
	acquire := func(name, owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := c.AcquireSingleton(ctx, name, owner, ttl)
		if err != nil {
			t.Fatalf("AcquireSingleton(%s, %s): %v", name, owner, err)
		}
		return ok
	}
	if !acquire("sweeper", "a", long) || acquire("sweeper", "b", long) || !acquire("sweeper", "a", long) {
		t.Fatal("a job went to more than one node, or its holder could not renew it")
	}
	if !acquire("other", "b", long) {
		t.Fatal("another job was not free")
	}
	// Renewed for a millisecond, the job expires and goes to b.
	acquire("sweeper", "a", time.Millisecond)
	wait.For(t, "b to take the expired job", func() bool { return acquire("sweeper", "b", long) })
	if acquire("sweeper", "a", long) {
		t.Fatal("a took the job back from b, which holds it")
	}
}

// testFencingRace has two nodes take a stream's lease from each other
// over and over while both keep committing rows under the lease they last
// got: once a node has the lease, no row under an older epoch may commit.
// Each row's blob key names the epoch it was committed under; after each
// takeover the rows under older epochs are counted, and a count that grew
// by the end is a commit that passed a stale fence.
func testFencingRace(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustCreate(t, openCluster(t, open, dir), newStream("race"))
	type node struct {
		c         ClusterCatalog
		id        string
		lease     atomic.Pointer[store.Lease]
		committed atomic.Int64 // the last epoch a row was committed under
	}
	nodes := []*node{{c: openCluster(t, open, dir), id: "a"}, {c: openCluster(t, open, dir), id: "b"}}
	for _, n := range nodes {
		mustJoin(t, n.c, n.id)
	}
	epochOf := func(key string) (e int64) {
		fmt.Sscanf(key, "e%d/", &e)
		return e
	}
	var seq atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for _, n := range nodes {
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					l := n.lease.Load()
					if l == nil {
						time.Sleep(time.Millisecond)
						continue
					}
					f := fragment(s.ID, 0, 0)
					f.Number = store.FragmentNumber(seq.Add(1), 0)
					f.BlobKey = fmt.Sprintf("e%d/%s", l.Epoch, f.Number)
					err := n.c.AddFragments(ctx, l, []*store.Fragment{f})
					if err == nil {
						n.committed.Store(l.Epoch)
					} else if !errors.Is(err, store.ErrLeaseLost) {
						failed.CompareAndSwap(nil, &err)
						return
					}
				}
			})
		}
	}
	c := nodes[0].c
	countBelow := func(epoch int64) int {
		count, after := 0, ""
		for {
			rows, err := c.FragmentsAfter(ctx, s.ID, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rows {
				if epochOf(f.BlobKey) < epoch {
					count++
				}
			}
			if len(rows) < 1000 {
				return count
			}
			after = rows[len(rows)-1].Number
		}
	}
	const takeovers = 100
	type check struct {
		epoch int64
		below int
	}
	var checks []check
	for i := range takeovers {
		n := nodes[i%2]
		// A TTL of a millisecond: the other node may take it back at once,
		// while this one keeps committing under it until then.
		l := acquireWhenFree(t, n.c, s.ID, n.id, time.Millisecond)
		checks = append(checks, check{l.Epoch, countBelow(l.Epoch)})
		n.lease.Store(&l)
		wait.For(t, fmt.Sprintf("node %s to commit under epoch %d", n.id, l.Epoch), func() bool {
			return n.committed.Load() == l.Epoch || failed.Load() != nil
		})
	}
	close(stop)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("AddFragments: %v", *err)
	}
	staleRows := 0
	for _, ch := range checks {
		staleRows += countBelow(ch.epoch) - ch.below
	}
	all := countBelow(1 << 62)
	if staleRows != 0 {
		t.Fatalf("%d takeovers, %d rows: %d commits under an older epoch ended after a takeover", takeovers, all, staleRows)
	}
	t.Logf("%d takeovers, %d rows, 0 stale", takeovers, all)
}

// testSecret checks that every node gets the secret the first one stored,
// also when they ask together.
func testSecret(t *testing.T, open OpenCatalog) {
	ctx := context.Background()
	dir := t.TempDir()
	nodes := []ClusterCatalog{openCluster(t, open, dir), openCluster(t, open, dir), openCluster(t, open, dir)}
	got := make([][]byte, len(nodes))
	var wg sync.WaitGroup
	for i, c := range nodes {
		wg.Go(func() {
			v, err := c.Secret(ctx, "key", []byte{byte(i), 1, 2, 3})
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 4 || !bytes.Equal(got[i], got[0]) || !bytes.Equal(got[i][1:], []byte{1, 2, 3}) {
			t.Fatalf("nodes got secrets %v: want one of the values offered, the same for all", got)
		}
	}
	again, err := nodes[1].Secret(ctx, "key", []byte("other"))
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("Secret later = %q, %v; want %v", again, err, got[0])
	}
	other, err := nodes[2].Secret(ctx, "other", []byte("x"))
	if err != nil || string(other) != "x" {
		t.Fatalf("another secret = %q, %v; want x", other, err)
	}
}
