package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestCatalog(t, func(t *testing.T, dir string) store.Catalog {
		c, err := sqlite.Open(filepath.Join(dir, "catalog.db"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}
