// Package postgres is the shared store.Catalog and store.Cluster: one
// PostgreSQL database that several openkvs nodes use at once, through
// github.com/jackc/pgx/v5.
//
// It keeps the embedded catalog's schema and queries where it can: names,
// fragment numbers and keys are text COLLATE "C", so that they order
// bytewise as in SQLite; the catalog's times are epoch milliseconds. The
// cluster's times (heartbeats, lease and job expiry) are the database's
// now(), never a node's clock.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/internal/sqlrow"
)

// schemaVersion is the layout this code reads and writes, kept in the
// schema_version table.
const schemaVersion = 1

// migrations[v] brings the schema from version v to v+1.
var migrations = []string{
	`CREATE TABLE streams (
		id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name             text COLLATE "C" NOT NULL UNIQUE,
		arn              text COLLATE "C" NOT NULL UNIQUE,
		device_name      text NOT NULL,
		media_type       text NOT NULL,
		kms_key_id       text NOT NULL,
		version          text NOT NULL,
		status           text NOT NULL,
		created_ms       bigint NOT NULL,
		retention_hours  bigint NOT NULL,
		storage_tier     text NOT NULL,
		tags             text NOT NULL,
		next_seq         bigint NOT NULL DEFAULT 1,
		image_generation text NOT NULL DEFAULT '',
		notification     text NOT NULL DEFAULT ''
	);
	CREATE TABLE fragments (
		stream_id   bigint NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
		number      text COLLATE "C" NOT NULL,
		producer_ms bigint NOT NULL,
		server_ms   bigint NOT NULL,
		duration_ms bigint NOT NULL,
		size        bigint NOT NULL,
		blob_key    text COLLATE "C" NOT NULL,
		header_key  text COLLATE "C" NOT NULL,
		PRIMARY KEY (stream_id, number)
	);
	CREATE INDEX fragments_by_producer ON fragments(stream_id, producer_ms, number);
	CREATE INDEX fragments_by_server ON fragments(stream_id, server_ms, number);
	CREATE INDEX fragments_by_blob ON fragments(blob_key);
	CREATE INDEX fragments_by_header ON fragments(header_key);
	CREATE TABLE deleted_streams (
		id         bigint PRIMARY KEY,
		deleted_ms bigint NOT NULL
	);
	CREATE TABLE nodes (
		node_id   text COLLATE "C" PRIMARY KEY,
		url       text NOT NULL,
		lock_key  bigint NOT NULL UNIQUE,
		heartbeat timestamptz NOT NULL DEFAULT now()
	);
	CREATE TABLE stream_leases (
		stream_id  bigint PRIMARY KEY REFERENCES streams(id) ON DELETE CASCADE,
		owner      text COLLATE "C" NOT NULL,
		epoch      bigint NOT NULL,
		expires_at timestamptz NOT NULL
	);
	CREATE INDEX stream_leases_by_owner ON stream_leases(owner);
	CREATE TABLE singletons (
		name       text COLLATE "C" PRIMARY KEY,
		owner      text COLLATE "C" NOT NULL,
		expires_at timestamptz NOT NULL
	);
	CREATE TABLE secrets (
		name  text COLLATE "C" PRIMARY KEY,
		value bytea NOT NULL
	)`,
}

// migrationLock is the transaction-level advisory lock key that
// serializes the schema migration of nodes starting together.
var migrationLock = lockKey("openkvs schema migration")

// Catalog is a store.Catalog and store.Cluster on one PostgreSQL database.
type Catalog struct {
	pool *pgxpool.Pool
	dsn  string

	// pending holds the fragment rows waiting for the next group commit;
	// committing is set while a leader commits (AddFragments).
	pendingMu  sync.Mutex
	pending    []*addRequest
	committing bool

	// locks holds each joined node's dedicated connection, which holds
	// its liveness lock for as long as it is open.
	locksMu sync.Mutex
	locks   map[string]*nodeLock
}

var (
	_ store.Catalog = (*Catalog)(nil)
	_ store.Cluster = (*Catalog)(nil)
)

// Open connects to the database dsn names (a postgres:// URL or a
// keyword=value string) and creates or migrates its schema.
func Open(ctx context.Context, dsn string) (*Catalog, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	return &Catalog{pool: pool, dsn: dsn, locks: map[string]*nodeLock{}}, nil
}

// migrate brings the schema to schemaVersion in one transaction, under an
// advisory lock so that nodes starting at once migrate one after another
// (the later ones find nothing left to do).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	version := 0
	err = tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`)
	}
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this openkvs understands (%d)", version, schemaVersion)
	}
	for v := version; v < schemaVersion; v++ {
		if _, err := tx.Exec(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, schemaVersion); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	return nil
}

// lockKey derives a 64-bit advisory lock key from s.
func lockKey(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

// Close closes the node connections and the pool. It does not leave the
// cluster: to the other nodes a closed catalog's nodes died, and their
// leases go at once.
func (c *Catalog) Close() error {
	c.locksMu.Lock()
	for id, l := range c.locks {
		l.close()
		delete(c.locks, id)
	}
	c.locksMu.Unlock()
	c.pool.Close()
	return nil
}

// sqlState returns the SQLSTATE code of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// SQLSTATE codes (PostgreSQL Appendix A).
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func scanStream(row pgx.Row) (*store.Stream, error) {
	s, err := sqlrow.Stream(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return s, err
}

// CreateStream inserts s and sets s.ID. The identity sequence never hands
// out an ID twice.
func (c *Catalog) CreateStream(ctx context.Context, s *store.Stream) error {
	tags, err := sqlrow.EncodeTags(s.Tags)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", s.Name, err)
	}
	err = c.pool.QueryRow(ctx, `INSERT INTO streams (name, arn, device_name, media_type, kms_key_id,
		version, status, created_ms, retention_hours, storage_tier, tags, image_generation, notification)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id`,
		s.Name, s.ARN, s.DeviceName, s.MediaType, s.KMSKeyID, s.Version, s.Status, s.CreationTime.UnixMilli(),
		s.RetentionHours, s.StorageTier, tags, s.ImageGeneration, s.Notification).Scan(&s.ID)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("create stream %s: %w", s.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create stream %s: %w", s.Name, err)
	}
	return nil
}

// StreamByName returns the stream named name.
func (c *Catalog) StreamByName(ctx context.Context, name string) (*store.Stream, error) {
	s, err := scanStream(c.pool.QueryRow(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return s, nil
}

// StreamByARN returns the stream whose ARN is arn.
func (c *Catalog) StreamByARN(ctx context.Context, arn string) (*store.Stream, error) {
	s, err := scanStream(c.pool.QueryRow(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams WHERE arn = $1`, arn))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", arn, err)
	}
	return s, nil
}

// ListStreams lists streams by name.
func (c *Catalog) ListStreams(ctx context.Context, prefix, after string, limit int) ([]*store.Stream, error) {
	// The prefix is literal: compared with left() rather than LIKE, where
	// _ and % are wildcards. left() counts characters, as length() does.
	rows, err := c.pool.Query(ctx, `SELECT `+sqlrow.StreamColumns+` FROM streams
		WHERE left(name, length($1)) = $1 AND name > $2 ORDER BY name LIMIT $3`,
		prefix, after, limit)
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
	tag, err := c.pool.Exec(ctx, `UPDATE streams SET device_name=$1, media_type=$2, kms_key_id=$3, version=$4,
		status=$5, retention_hours=$6, storage_tier=$7, tags=$8, image_generation=$9, notification=$10
		WHERE id=$11 AND version=$12`,
		s.DeviceName, s.MediaType, s.KMSKeyID, s.Version, s.Status, s.RetentionHours, s.StorageTier, tags,
		s.ImageGeneration, s.Notification, s.ID, oldVersion)
	if err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Nothing matched: tell a stream that is gone from a stale version.
	var exists bool
	if err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM streams WHERE id = $1)`, s.ID).Scan(&exists); err != nil {
		return fmt.Errorf("update stream %s: %w", s.Name, err)
	}
	if !exists {
		return fmt.Errorf("update stream %s: %w", s.Name, store.ErrNotFound)
	}
	return fmt.Errorf("update stream %s: %w", s.Name, store.ErrVersionMismatch)
}

// DeleteStream removes the stream and, by cascade, its fragment rows and
// lease, and records it in deleted_streams, in one transaction.
func (c *Catalog) DeleteStream(ctx context.Context, id int64) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM streams WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `INSERT INTO deleted_streams (id, deleted_ms) VALUES ($1, $2)`, id, time.Now().UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("delete stream %d: %w", id, err)
	}
	return nil
}

// DeletedStreams lists the deleted streams whose blobs may remain.
func (c *Catalog) DeletedStreams(ctx context.Context) ([]int64, error) {
	rows, err := c.pool.Query(ctx, `SELECT id FROM deleted_streams ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list deleted streams: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("list deleted streams: %w", err)
	}
	return ids, nil
}

// ForgetDeletedStream drops a deleted stream whose blobs are gone.
func (c *Catalog) ForgetDeletedStream(ctx context.Context, id int64) error {
	if _, err := c.pool.Exec(ctx, `DELETE FROM deleted_streams WHERE id = $1`, id); err != nil {
		return fmt.Errorf("forget deleted stream %d: %w", id, err)
	}
	return nil
}

// ReserveSequence advances the stream's sequence high-water mark by n; the
// row lock of the UPDATE orders concurrent reservations, on every node.
func (c *Catalog) ReserveSequence(ctx context.Context, id int64, n uint64) (uint64, error) {
	var next int64
	err := c.pool.QueryRow(ctx, `UPDATE streams SET next_seq = next_seq + $1 WHERE id = $2 RETURNING next_seq - $1`,
		int64(n), id).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("reserve sequence of stream %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("reserve sequence of stream %d: %w", id, err)
	}
	return uint64(next), nil
}
