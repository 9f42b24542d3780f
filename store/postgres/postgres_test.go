package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/openkvs/openkvs/internal/testenv"
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
