package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
)

// TestOpenExclusive: a catalog a server has open is refused; once it is
// closed it opens, with what was committed, and keeps every other opener
// out until it is closed.
func TestOpenExclusive(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	if _, err := sqlite.OpenExclusive(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenExclusive of a missing catalog: %v, want ErrNotExist", err)
	}
	server, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.CreateStream(ctx, &store.Stream{Name: "cam", ARN: "arn:cam", Tags: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenExclusive(path); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("OpenExclusive while a server has the catalog open: %v, want ErrInUse", err)
	}
	server.Close()
	c, err := sqlite.OpenExclusive(path)
	if err != nil {
		t.Fatalf("OpenExclusive once the server closed the catalog: %v", err)
	}
	if s, err := c.StreamByName(ctx, "cam"); err != nil || s.ARN != "arn:cam" {
		t.Errorf("stream read through OpenExclusive = %+v, %v", s, err)
	}
	if _, err := sqlite.OpenExclusive(path); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("a second OpenExclusive: %v, want ErrInUse", err)
	}
	c.Close()
	c, err = sqlite.OpenExclusive(path)
	if err != nil {
		t.Fatalf("OpenExclusive after the first closed: %v", err)
	}
	c.Close()
}
