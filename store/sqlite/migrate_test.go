package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
)

// version0 is the schema openkvs created before stream IDs were
// AUTOINCREMENT, with two streams and a fragment of the newer one.
const version0 = `
CREATE TABLE streams (
	id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, arn TEXT NOT NULL UNIQUE,
	device_name TEXT NOT NULL, media_type TEXT NOT NULL, kms_key_id TEXT NOT NULL,
	version TEXT NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,
	retention_hours INTEGER NOT NULL, storage_tier TEXT NOT NULL, tags TEXT NOT NULL,
	next_seq INTEGER NOT NULL DEFAULT 1);
CREATE TABLE fragments (
	stream_id INTEGER NOT NULL REFERENCES streams(id) ON DELETE CASCADE, number TEXT NOT NULL,
	producer_ms INTEGER NOT NULL, server_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
	size INTEGER NOT NULL, blob_key TEXT NOT NULL, header_key TEXT NOT NULL,
	PRIMARY KEY (stream_id, number)) WITHOUT ROWID;
CREATE INDEX fragments_by_producer ON fragments(stream_id, producer_ms, number);
CREATE INDEX fragments_by_server ON fragments(stream_id, server_ms, number);
CREATE INDEX fragments_by_blob ON fragments(blob_key);
CREATE INDEX fragments_by_header ON fragments(header_key);
INSERT INTO streams VALUES (1, 'a', 'arn-a', '', '', 'k', 'v', 'ACTIVE', 1, 24, 'HOT', '{}', 65);
INSERT INTO streams VALUES (2, 'b', 'arn-b', '', '', 'k', 'v', 'ACTIVE', 1, 24, 'HOT', '{"t":"x"}', 129);
INSERT INTO fragments VALUES (2, '91343852333181432392682062683874585502641787168', 1, 2, 3, 4, 's2/f/x', 's2/h/y');
`

// TestMigrateVersion0 opens a catalog made by an older openkvs: its rows
// survive, and the ID of its newest stream is not given out again.
func TestMigrateVersion0(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(version0); err != nil {
		t.Fatal(err)
	}
	db.Close()

	c, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.StreamByName(ctx, "b")
	if err != nil || b.ID != 2 || b.Tags["t"] != "x" {
		t.Fatalf("stream b after migration = %+v, %v", b, err)
	}
	next, err := c.ReserveSequence(ctx, b.ID, 0)
	if err != nil || next != 129 {
		t.Fatalf("sequence of b after migration = %d, %v; want 129", next, err)
	}
	frags, err := c.FragmentsAfter(ctx, b.ID, "", 10)
	if err != nil || len(frags) != 1 || frags[0].BlobKey != "s2/f/x" {
		t.Fatalf("fragments of b after migration = %v, %v", frags, err)
	}
	if err := c.DeleteStream(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	again := &store.Stream{Name: "c", ARN: "arn-c", Status: store.StatusActive, CreationTime: time.UnixMilli(1)}
	if err := c.CreateStream(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.ID <= 2 {
		t.Fatalf("stream created after deleting stream 2 got ID %d", again.ID)
	}
}

// TestMigrateVersion1 opens a catalog of schema version 1, before streams
// had image generation and notification configurations: its streams keep
// their rows and have neither configuration.
func TestMigrateVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	version1 := strings.Replace(version0, "id INTEGER PRIMARY KEY,", "id INTEGER PRIMARY KEY AUTOINCREMENT,", 1) +
		`CREATE TABLE deleted_streams (id INTEGER PRIMARY KEY, deleted_ms INTEGER NOT NULL);
		PRAGMA user_version = 1;`
	if _, err := db.Exec(version1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	c, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := c.StreamByName(ctx, "b")
	if err != nil || b.ID != 2 || b.Tags["t"] != "x" || b.ImageGeneration != "" || b.Notification != "" {
		t.Fatalf("stream b after migration = %+v, %v", b, err)
	}
	upd := *b
	upd.ImageGeneration = `{"Status":"ENABLED"}`
	if err := c.UpdateStream(ctx, &upd, b.Version); err != nil {
		t.Fatal(err)
	}
	if got, err := c.StreamByName(ctx, "b"); err != nil || got.ImageGeneration != upd.ImageGeneration {
		t.Fatalf("stream b after update = %+v, %v", got, err)
	}
}
