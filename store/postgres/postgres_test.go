package postgres_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/postgres"
	"github.com/openkvs/openkvs/store/storetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// opener opens catalogs on one database per storetest dir, so that opening
// a dir again, or twice at once, is the same catalog.
func opener() storetest.OpenCatalog {
	var mu sync.Mutex
	dsns := map[string]string{}
	return func(t *testing.T, dir string) store.Catalog {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[dir]
		if !ok {
			dsn = testenv.Postgres(t)
			dsns[dir] = dsn
		}
		mu.Unlock()
		c, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

func TestConformance(t *testing.T) {
	storetest.TestCatalog(t, opener())
}

func TestCluster(t *testing.T) {
	storetest.TestCluster(t, opener())
}

// Nodes starting together migrate a new database once, one after another.
func TestConcurrentOpen(t *testing.T) {
	dsn := testenv.Postgres(t)
	const nodes = 4
	errs := make(chan error, nodes)
	for range nodes {
		go func() {
			c, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				c.Close()
			}
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var versions []int
	rows, _ := conn.Query(context.Background(), `SELECT version FROM schema_version`)
	if versions, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil || !slices.Equal(versions, []int{1}) {
		t.Fatalf("schema_version rows = %v, %v; want [1]", versions, err)
	}
}

func open(t *testing.T, dsn string) *postgres.Catalog {
	t.Helper()
	c, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A node ID is one process's: another joining with it while the first
// lives is refused, and may join once the first is gone.
func TestJoinTaken(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	first, second := open(t, dsn), open(t, dsn)
	if err := first.Join(ctx, "a", "http://a.test"); err != nil {
		t.Fatal(err)
	}
	if err := second.Join(ctx, "a", "http://a2.test"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("joining as a live node: %v, want ErrExists", err)
	}
	first.Close()
	wait.For(t, "the ID to be free", func() bool { return second.Join(ctx, "a", "http://a2.test") == nil })
}

// A node whose lock connection broke is seen dead, and its next heartbeat
// takes the lock again.
func TestLockConnectionLost(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	c := open(t, dsn)
	if err := c.Join(ctx, "a", "http://a.test"); err != nil {
		t.Fatal(err)
	}
	alive := func() bool {
		nodes, err := c.Nodes(ctx)
		if err != nil || len(nodes) != 1 {
			t.Fatalf("Nodes = %v, %v", nodes, err)
		}
		return nodes[0].Alive
	}
	if !alive() {
		t.Fatal("a joined node is not alive")
	}
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	err = admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'openkvs node lock'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d lock connections, %v; want 1", killed, err)
	}
	wait.For(t, "the node to be seen dead", func() bool { return !alive() })
	if err := c.Heartbeat(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if !alive() {
		t.Fatal("the node is not alive after a heartbeat took its lock again")
	}
}

func TestImporter(t *testing.T) {
	storetest.TestImporter(t, opener())
}
