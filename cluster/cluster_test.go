package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const testTTL = 300 * time.Millisecond

// errDown is a catalog that cannot be reached.
var errDown = errors.New("catalog unreachable")

// flaky is a node's own connection to the real catalog (its own liveness
// lock, as a node process has) whose renewals fail on demand, as when the
// catalog cannot be reached.
type flaky struct {
	*postgres.Catalog
	fail   atomic.Bool
	renews atomic.Int32
}

func (f *flaky) RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]store.Lease, error) {
	f.renews.Add(1)
	if f.fail.Load() {
		return nil, errDown
	}
	return f.Catalog.RenewLeases(ctx, owner, ttl)
}

func (f *flaky) AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if f.fail.Load() {
		return false, errDown
	}
	return f.Catalog.AcquireSingleton(ctx, name, owner, ttl)
}

// testDB is one test's PostgreSQL database; each node opens it anew.
type testDB struct {
	t   *testing.T
	dsn string
}

func newDB(t *testing.T) *testDB { return &testDB{t: t, dsn: testenv.Postgres(t)} }

// open connects to the database as a node does.
func (db *testDB) open() *flaky {
	db.t.Helper()
	c, err := postgres.Open(context.Background(), db.dsn)
	if err != nil {
		db.t.Fatal(err)
	}
	db.t.Cleanup(func() { c.Close() })
	return &flaky{Catalog: c}
}

// stream creates a stream and returns its ID: leases are of streams.
func (db *testDB) stream(c store.Catalog, name string) int64 {
	db.t.Helper()
	st := &store.Stream{Name: name, ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/" + name + "/1",
		Status: store.StatusActive, RetentionHours: 24, Version: "v", StorageTier: "HOT", CreationTime: time.Now()}
	if err := c.CreateStream(context.Background(), st); err != nil {
		db.t.Fatal(err)
	}
	return st.ID
}

// dbLease is a stream's lease row as the catalog has it.
type dbLease struct {
	owner  string
	epoch  int64
	expiry time.Duration // from now on the database's clock; negative once expired
}

// lease returns stream's lease row; ok is false when there is none or it
// was released.
func (db *testDB) lease(stream int64) (l dbLease, ok bool) {
	db.t.Helper()
	var ms int64
	err := db.query(func(conn *pgx.Conn) error {
		return conn.QueryRow(context.Background(), `SELECT owner, epoch,
			CASE WHEN expires_at = '-infinity' THEN -1 ELSE (extract(epoch FROM expires_at - now()) * 1000)::bigint END
			FROM stream_leases WHERE stream_id = $1`, stream).Scan(&l.owner, &l.epoch, &ms)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return dbLease{}, false
	}
	if err != nil {
		db.t.Fatal(err)
	}
	l.expiry = time.Duration(ms) * time.Millisecond
	return l, l.owner != ""
}

// expire ends stream's lease on the database's clock, as the passing of
// its TTL without renewals would.
func (db *testDB) expire(stream int64) {
	db.t.Helper()
	err := db.query(func(conn *pgx.Conn) error {
		_, err := conn.Exec(context.Background(), `UPDATE stream_leases SET expires_at = now() - interval '1 second' WHERE stream_id = $1`, stream)
		return err
	})
	if err != nil {
		db.t.Fatal(err)
	}
}

func (db *testDB) query(fn func(*pgx.Conn) error) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return fn(conn)
}

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
	db := newDB(t)
	ca, cb := db.open(), db.open()
	// a's lease outlives the test: only its death can let b take over.
	a, b := startNodeTTL(t, ca, "a", time.Hour), startNode(t, cb, "b")
	id, other := db.stream(ca, "cam"), db.stream(ca, "other")
	claimA := mustClaim(t, a, id)
	l, err := claimA.Lease()
	if err != nil || *l != (store.Lease{StreamID: id, Owner: "a", Epoch: 1}) {
		t.Fatalf("lease = %+v, %v; want stream %d, owner a, epoch 1", l, err, id)
	}
	if _, err := b.Claim(context.Background(), id); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("b claims a's stream: err = %v, want ErrLeaseHeld", err)
	}
	st := &store.Stream{ID: id, Name: "cam"}
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
	for _, tc := range []struct {
		n    *Node
		url  string
		self bool
	}{{a, "", true}, {b, "http://a", false}} {
		if url, self, err := tc.n.Owner(context.Background(), st); url != tc.url || self != tc.self || err != nil {
			t.Errorf("%s Owner = %q, %v, %v; want %q, %v", tc.n.ID(), url, self, err, tc.url, tc.self)
		}
	}
	// A stream nobody owns is served by whichever node is asked.
	if got, _ := b.DataEndpoint(context.Background(), &store.Stream{ID: other}, "PUT_MEDIA", "http://self"); got != "http://self" {
		t.Errorf("unowned stream: DataEndpoint = %q, want http://self", got)
	}
	// A second session on the owner shares the lease.
	claimA2 := mustClaim(t, a, id)
	if l2, _ := claimA2.Lease(); l2.Epoch != 1 {
		t.Errorf("second claim's epoch = %d, want 1", l2.Epoch)
	}
	// A dead owner's stream is routed to, and claimed by, another node
	// without waiting for its lease to expire: its process's connections
	// closing ends its liveness lock, once PostgreSQL has ended their
	// backends (which it does after the client has gone).
	ca.Close()
	wait.For(t, "the dead owner's stream routed to the node asked", func() bool {
		got, _ := b.DataEndpoint(context.Background(), st, "PUT_MEDIA", "http://self")
		return got == "http://self"
	})
	claimB := mustClaim(t, b, id)
	if l, _ := claimB.Lease(); l.Epoch != 2 {
		t.Errorf("takeover epoch = %d, want 2", l.Epoch)
	}
}

// TestLeaseLostAtRenewal: a lease missing from the renewal is lost at
// once: Lost closes and Lease refuses. The TTL is long so that only the
// renewal the test makes can lose it.
func TestLeaseLostAtRenewal(t *testing.T) {
	db := newDB(t)
	ca := db.open()
	a := startNodeTTL(t, ca, "a", time.Hour)
	id := db.stream(ca, "cam")
	c := mustClaim(t, a, id)
	a.renew(context.Background())
	if isLost(c) {
		t.Fatal("lease lost at a renewal that kept it")
	}
	b := startNodeTTL(t, db.open(), "b", time.Hour)
	db.expire(id)
	mustClaim(t, b, id)
	a.renew(context.Background())
	if !isLost(c) {
		t.Fatal("lease kept after a renewal without it")
	}
	if _, err := c.Lease(); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("Lease after loss: %v, want ErrLeaseLost", err)
	}
	// Lost for good: a new claim is refused while b holds the stream.
	if _, err := a.Claim(context.Background(), id); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("claim after loss: %v, want ErrLeaseHeld", err)
	}
}

// TestLeaseGuard: a node that cannot renew counts on its lease only until
// the last renewal it sent plus TTL minus the margin, although the catalog
// still shows it as the owner until its expiry.
func TestLeaseGuard(t *testing.T) {
	db := newDB(t)
	ca := db.open()
	a := startNode(t, ca, "a")
	id := db.stream(ca, "cam")
	c := mustClaim(t, a, id)
	wait.For(t, "a renewal", func() bool { return ca.renews.Load() >= 1 })
	ca.fail.Store(true)
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
	l, ok := db.lease(id)
	if !ok || l.owner != "a" || l.expiry < -testTTL/10 {
		t.Errorf("catalog lease %+v (present %v) expired before the node gave it up", l, ok)
	}
}

// TestLinger: an unclaimed lease is kept for one TTL, so a reconnecting
// producer finds the same owner, then released for other nodes.
func TestLinger(t *testing.T) {
	db := newDB(t)
	ca := db.open()
	a := startNode(t, ca, "a")
	id := db.stream(ca, "cam")
	c := mustClaim(t, a, id)
	c.Release()
	c.Release() // twice is once
	c2 := mustClaim(t, a, id)
	if l, _ := c2.Lease(); l.Epoch != 1 {
		t.Fatalf("reclaim within the linger: epoch %d, want 1", l.Epoch)
	}
	c2.Release()
	released := time.Now()
	wait.For(t, "the lease to be released", func() bool { _, ok := db.lease(id); return !ok })
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
	db := newDB(t)
	ca := db.open()
	a := startNodeTTL(t, ca, "a", time.Hour)
	id := db.stream(ca, "cam")
	if _, err := ca.AcquireLease(context.Background(), id, "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	a.renew(context.Background())
	if l, ok := db.lease(id); ok {
		t.Fatalf("stray lease kept: %+v", l)
	}
}

func TestStopReleasesLeases(t *testing.T) {
	db := newDB(t)
	ca := db.open()
	a := New(ca, Options{TTL: testTTL, Logger: testLogger(t)})
	if err := a.Start(context.Background(), "a", "http://a"); err != nil {
		t.Fatal(err)
	}
	id := db.stream(ca, "cam")
	c := mustClaim(t, a, id)
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !isLost(c) {
		t.Error("claim not lost after Stop")
	}
	if l, ok := db.lease(id); ok {
		t.Errorf("lease still in the catalog after Stop: %+v", l)
	}
	c.Release()
}

// TestSingleton: one node at a time runs the job; when it dies another
// takes over, and a node that cannot renew stops its job within the TTL.
func TestSingleton(t *testing.T) {
	db := newDB(t)
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
	catalogs := map[string]*flaky{}
	for _, id := range []string{"a", "b", "c"} {
		catalogs[id] = db.open()
		n := startNode(t, catalogs[id], id)
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
	n := catalogs["a"].renews.Load()
	wait.For(t, "several more rounds", func() bool { return catalogs["a"].renews.Load() >= n+6 })
	if got := runs.Load(); got != 1 {
		t.Fatalf("job started %d times with its node alive; want 1", got)
	}
	// The node running it dies: its loop ends and its liveness goes.
	mu.Lock()
	first := where
	mu.Unlock()
	stop[first]()
	wait.For(t, "the job to end with its node", func() bool { return running.Load() == 0 })
	catalogs[first].Close()
	wait.For(t, "another node to run the job", func() bool { return runs.Load() == 2 && running.Load() == 1 })
	mu.Lock()
	if where == first {
		t.Errorf("the dead node %s runs the job again", first)
	}
	mu.Unlock()
	// A node that cannot reach the catalog stops the job within the TTL.
	for _, c := range catalogs {
		c.fail.Store(true)
	}
	failed := time.Now()
	wait.For(t, "the job to stop without renewals", func() bool { return running.Load() == 0 })
	if d := time.Since(failed); d > testTTL {
		t.Errorf("job stopped %v after renewals began to fail; want at most the TTL %v", d, testTTL)
	}
}
