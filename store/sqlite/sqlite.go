// Package sqlite is the embedded store.Catalog: one SQLite database in WAL
// mode under the data directory, through the pure-Go modernc.org/sqlite
// driver so that openkvs builds without cgo.
//
// What the catalog guarantees: a transaction that committed survives power
// loss. Every connection runs with journal_mode=WAL and synchronous=FULL,
// under which SQLite fsyncs the WAL at each commit, and a checkpoint fsyncs
// the WAL before copying it into the database and the database after; an
// interrupted transaction rolls back. foreign_keys is on, so a stream's
// fragment rows go with it. The pragmas are in the DSN because database/sql
// opens connections as it needs them and synchronous and foreign_keys are
// per connection; TestConnectionSettings checks all three on several
// pooled connections at once.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/internal/sqlrow"
)

// schemaVersion is the catalog layout this code reads and writes, kept in
// SQLite's user_version. Version 1 made stream IDs AUTOINCREMENT, so that
// an ID is never assigned twice (version 0 reused the ID of the newest
// stream once it was deleted), and added deleted_streams. Version 2 added
// the image generation and notification configurations.
const schemaVersion = 2

// deletedStreamsTable records deleted streams until their blobs are gone.
const deletedStreamsTable = `CREATE TABLE deleted_streams (
	id         INTEGER PRIMARY KEY,
	deleted_ms INTEGER NOT NULL
)`

// streamsTable creates the streams table (under a name, for the
// migration). Times are epoch milliseconds.
const streamsTable = `CREATE TABLE %s (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	name            TEXT NOT NULL UNIQUE,
	arn             TEXT NOT NULL UNIQUE,
	device_name     TEXT NOT NULL,
	media_type      TEXT NOT NULL,
	kms_key_id      TEXT NOT NULL,
	version         TEXT NOT NULL,
	status          TEXT NOT NULL,
	created_ms      INTEGER NOT NULL,
	retention_hours INTEGER NOT NULL,
	storage_tier    TEXT NOT NULL,
	tags            TEXT NOT NULL,
	next_seq        INTEGER NOT NULL DEFAULT 1,
	image_generation TEXT NOT NULL DEFAULT '',
	notification     TEXT NOT NULL DEFAULT ''
)`

// fragmentsSchema creates the fragment index. Fragment numbers are
// fixed-width strings, so the primary key orders them numerically.
const fragmentsSchema = `
CREATE TABLE fragments (
	stream_id   INTEGER NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
	number      TEXT NOT NULL,
	producer_ms INTEGER NOT NULL,
	server_ms   INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	size        INTEGER NOT NULL,
	blob_key    TEXT NOT NULL,
	header_key  TEXT NOT NULL,
	PRIMARY KEY (stream_id, number)
) WITHOUT ROWID;
CREATE INDEX fragments_by_producer ON fragments(stream_id, producer_ms, number);
CREATE INDEX fragments_by_server ON fragments(stream_id, server_ms, number);
CREATE INDEX fragments_by_blob ON fragments(blob_key);
CREATE INDEX fragments_by_header ON fragments(header_key);
`

// Catalog is a store.Catalog backed by one SQLite file.
type Catalog struct {
	db *sql.DB
	// write serializes writers in Go: SQLite allows one writer at a time
	// and makes the others sleep and retry, which costs milliseconds each.
	write sync.Mutex
	// pending holds fragment rows waiting for the next group commit.
	pendingMu sync.Mutex
	pending   []*addRequest
	// insertFragment is prepared once: group commits run it in their
	// transactions (database/sql keeps it prepared per connection).
	insertFragment *sql.Stmt
}

var _ store.Catalog = (*Catalog)(nil)

// Open opens (creating if needed) the catalog database at path.
func Open(path string) (*Catalog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create catalog directory: %w", err)
	}
	// synchronous(FULL): a committed fragment row survives power loss, which
	// PERSISTED promises. _txlock=immediate: writers queue on busy_timeout
	// instead of failing with SQLITE_BUSY when they upgrade a read lock.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := migrate(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return newCatalog(db, path)
}

// newCatalog returns the Catalog on the migrated database db.
func newCatalog(db *sql.DB, path string) (*Catalog, error) {
	insert, err := db.Prepare(`INSERT INTO fragments (` + sqlrow.FragmentColumns + `) VALUES (?,?,?,?,?,?,?,?)`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &Catalog{db: db, insertFragment: insert}, nil
}

// ErrInUse is returned by OpenExclusive for a catalog another process has
// open.
var ErrInUse = errors.New("catalog is in use by another process")

// OpenExclusive opens the existing catalog at path for this process alone,
// as `openkvs migrate` reads it: ErrInUse while another process (a server)
// has it open, and while it stays open no other process can use it (a
// server starting on it fails). One connection in SQLite's exclusive
// locking mode holds the database file's lock from its first write until
// it closes; in WAL mode that first write fails at once while another
// connection has the database open, since that connection holds the
// shared-memory index the exclusive mode does without.
func OpenExclusive(path string) (*Catalog, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	dsn := "file:" + path + "?_pragma=locking_mode(EXCLUSIVE)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=busy_timeout(0)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`BEGIN EXCLUSIVE; COMMIT`); err != nil {
		db.Close()
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY {
			return nil, fmt.Errorf("open catalog %s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("open catalog %s: %w", path, readOnly(err))
	}
	if err := migrate(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return newCatalog(db, path)
}

// ErrReadOnly is returned by Open for a catalog the process cannot write.
var ErrReadOnly = errors.New("catalog is not writable")

// migrate brings the database to schemaVersion. It always ends with a
// write (setting user_version), so that a catalog that cannot be written
// fails here, at start-up, rather than at the first PutMedia.
func migrate(ctx context.Context, db *sql.DB) error {
	// One connection: foreign_keys is per connection and must be off
	// while the streams table is rebuilt (SQLite's ALTER TABLE procedure).
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var version int
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this openkvs understands (%d)", version, schemaVersion)
	}
	var tables int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'streams'`).Scan(&tables); err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	var steps []string
	switch {
	case tables == 0:
		steps = []string{fmt.Sprintf(streamsTable, "streams"), fragmentsSchema, deletedStreamsTable}
	case version == 0:
		steps = []string{fmt.Sprintf(streamsTable, "streams_v1"),
			`INSERT INTO streams_v1 (id, name, arn, device_name, media_type, kms_key_id, version, status,
				created_ms, retention_hours, storage_tier, tags, next_seq) SELECT id, name, arn, device_name, media_type, kms_key_id, version, status,
				created_ms, retention_hours, storage_tier, tags, next_seq FROM streams`,
			`DROP TABLE streams`,
			`ALTER TABLE streams_v1 RENAME TO streams`,
			deletedStreamsTable}
	case version == 1:
		steps = []string{
			`ALTER TABLE streams ADD COLUMN image_generation TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE streams ADD COLUMN notification TEXT NOT NULL DEFAULT ''`}
	}
	steps = append(steps, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion))
	if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, `PRAGMA foreign_keys = ON`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return readOnly(fmt.Errorf("migrate schema: %w", err))
	}
	defer tx.Rollback()
	for _, step := range steps {
		if _, err := tx.ExecContext(ctx, step); err != nil {
			return readOnly(fmt.Errorf("migrate schema to version %d: %w", schemaVersion, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return readOnly(fmt.Errorf("migrate schema to version %d: %w", schemaVersion, err))
	}
	return nil
}

// readOnly marks SQLite's "attempt to write a readonly database" with
// ErrReadOnly.
func readOnly(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY {
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// Close closes the database.
func (c *Catalog) Close() error {
	c.insertFragment.Close()
	return c.db.Close()
}

func scanStream(row sqlrow.Scanner) (*store.Stream, error) {
	s, err := sqlrow.Stream(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return s, err
}

func isConstraint(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code() == c {
			return true
		}
	}
	return false
}

func isUniqueViolation(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// CreateStream inserts s and sets s.ID.
func (c *Catalog) CreateStream(ctx context.Context, s *store.Stream) error {
	c.write.Lock()
	defer c.write.Unlock()
	tags, err := sqlrow.EncodeTags(s.Tags)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", s.Name, err)
	}
	res, err := c.db.ExecContext(ctx, `INSERT INTO streams (name, arn, device_name, media_type, kms_key_id,
		version, status, created_ms, retention_hours, storage_tier, tags, image_generation, notification)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		s.Name, s.ARN, s.DeviceName, s.MediaType, s.KMSKeyID, s.Version, s.Status, s.CreationTime.UnixMilli(),
		s.RetentionHours, s.StorageTier, tags, s.ImageGeneration, s.Notification)
	if isUniqueViolation(err) {
		return fmt.Errorf("create stream %s: %w", s.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create stream %s: %w", s.Name, err)
	}
	s.ID, err = res.LastInsertId()
	return err
}

// StreamByName returns the stream named name.
func (c *Catalog) StreamByName(ctx context.Context, name string) (*store.Stream, error) {
	s, err := scanStream(c.db.QueryRowContext(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams WHERE name = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// StreamByARN returns the stream whose ARN is arn.
func (c *Catalog) StreamByARN(ctx context.Context, arn string) (*store.Stream, error) {
	s, err := scanStream(c.db.QueryRowContext(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams WHERE arn = ?`, arn))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", arn, err)
	}
	return s, nil
}

// ListStreams lists streams by name.
func (c *Catalog) ListStreams(ctx context.Context, prefix, after string, limit int) ([]*store.Stream, error) {
	// GLOB would be case-sensitive too, but LIKE with case_sensitive_like is
	// per-connection state; compare the prefix with substr instead.
	rows, err := c.db.QueryContext(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams
		WHERE substr(name, 1, ?) = ? AND name > ? ORDER BY name LIMIT ?`,
		len(prefix), prefix, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	defer rows.Close()
	out, err := sqlrow.All(rows, sqlrow.Stream)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return out, nil
}

// UpdateStream writes s if its stored version is oldVersion.
func (c *Catalog) UpdateStream(ctx context.Context, s *store.Stream, oldVersion string) error {
	tags, err := sqlrow.EncodeTags(s.Tags)
	if err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	c.write.Lock()
	defer c.write.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	defer tx.Rollback()
	var version string
	err = tx.QueryRowContext(ctx, `SELECT version FROM streams WHERE id = ?`, s.ID).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("update stream %s: %w", s.Name, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	if version != oldVersion {
		return fmt.Errorf("update stream %s: %w", s.Name, store.ErrVersionMismatch)
	}
	_, err = tx.ExecContext(ctx, `UPDATE streams SET device_name=?, media_type=?, kms_key_id=?, version=?,
		status=?, retention_hours=?, storage_tier=?, tags=?, image_generation=?, notification=? WHERE id=?`,
		s.DeviceName, s.MediaType, s.KMSKeyID, s.Version, s.Status, s.RetentionHours, s.StorageTier, tags,
		s.ImageGeneration, s.Notification, s.ID)
	if err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	return nil
}

// DeleteStream removes the stream and, by cascade, its fragment rows, and
// records it in deleted_streams, in one transaction.
func (c *Catalog) DeleteStream(ctx context.Context, id int64) error {
	c.write.Lock()
	defer c.write.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete stream %d: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM streams WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete stream %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete stream %d: %w", id, store.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO deleted_streams (id, deleted_ms) VALUES (?, ?)`, id, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("delete stream %d: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete stream %d: %w", id, err)
	}
	return nil
}

// DeletedStreams lists the deleted streams whose blobs may remain.
func (c *Catalog) DeletedStreams(ctx context.Context) ([]int64, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id FROM deleted_streams ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list deleted streams: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list deleted streams: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ForgetDeletedStream drops a deleted stream whose blobs are gone.
func (c *Catalog) ForgetDeletedStream(ctx context.Context, id int64) error {
	c.write.Lock()
	defer c.write.Unlock()
	if _, err := c.db.ExecContext(ctx, `DELETE FROM deleted_streams WHERE id = ?`, id); err != nil {
		return fmt.Errorf("forget deleted stream %d: %w", id, err)
	}
	return nil
}

// ReserveSequence advances the stream's sequence high-water mark by n.
func (c *Catalog) ReserveSequence(ctx context.Context, id int64, n uint64) (uint64, error) {
	c.write.Lock()
	defer c.write.Unlock()
	var next int64
	err := c.db.QueryRowContext(ctx, `UPDATE streams SET next_seq = next_seq + ? WHERE id = ? RETURNING next_seq - ?`,
		int64(n), id, int64(n)).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("reserve sequence of stream %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("reserve sequence of stream %d: %w", id, err)
	}
	return uint64(next), nil
}
