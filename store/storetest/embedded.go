package storetest

import (
	"path/filepath"
	"testing"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/store/sqlite"
)

// Embedded opens the embedded backends (SQLite catalog, file blobs) in a
// temporary directory that ends with the test, for tests of the packages
// built on the store.
func Embedded(t testing.TB) (*sqlite.Catalog, *file.Blobs) {
	t.Helper()
	dir := t.TempDir()
	c, err := sqlite.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	b, err := file.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}
