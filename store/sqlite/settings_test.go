package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// TestConnectionSettings checks the settings that catalog rows' durability
// and integrity rest on, on several pooled connections held at once:
// database/sql opens connections as it needs them, and each applies the
// DSN's pragmas itself. journal_mode is kept in the database file;
// synchronous and foreign_keys belong to each connection.
func TestConnectionSettings(t *testing.T) {
	c, err := Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const n = 4
	var conns []*sql.Conn
	for range n {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conns = append(conns, conn)
	}
	if open := c.db.Stats().OpenConnections; open != n {
		t.Fatalf("%d connections open, want the %d held", open, n)
	}
	for i, conn := range conns {
		var mode string
		var synchronous, foreignKeys int
		for _, p := range []struct {
			pragma string
			dest   any
		}{{"journal_mode", &mode}, {"synchronous", &synchronous}, {"foreign_keys", &foreignKeys}} {
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(p.dest); err != nil {
				t.Fatalf("connection %d: read %s: %v", i, p.pragma, err)
			}
		}
		if mode != "wal" || synchronous != 2 || foreignKeys != 1 {
			t.Errorf("connection %d: journal_mode=%s synchronous=%d foreign_keys=%d; want wal, 2 (FULL) and 1",
				i, mode, synchronous, foreignKeys)
		}
	}
}
