package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openkvs/openkvs/store"
)

// A node is alive while the session advisory lock on its nodes.lock_key is
// granted: its dedicated connection holds it, and PostgreSQL drops it
// within milliseconds of that connection closing, as it does when the
// node's process dies. A host that vanishes without closing its
// connection is noticed by the server's TCP keepalives (keepaliveParams);
// its leases expire meanwhile anyway. Heartbeats are kept for operators
// (Nodes) and do not decide liveness.
//
// nodeAlive is the SQL condition "the node named by the column owner is
// alive"; advisory locks belong to a database, hence the database check.
const nodeAlive = `EXISTS (SELECT 1 FROM nodes n JOIN pg_locks k ON k.locktype = 'advisory' AND k.granted
		AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND k.classid = ((n.lock_key >> 32) & 4294967295)::oid AND k.objid = (n.lock_key & 4294967295)::oid AND k.objsubid = 1
		WHERE n.node_id = %s)`

// keepaliveParams make the server drop a node's lock connection, and so
// its lock, about 20 s after its host stops answering.
var keepaliveParams = map[string]string{
	"tcp_keepalives_idle":     "10",
	"tcp_keepalives_interval": "5",
	"tcp_keepalives_count":    "2",
	"application_name":        "openkvs node lock",
}

// nodeLock is a joined node's dedicated connection and the lock it holds.
type nodeLock struct {
	mu   sync.Mutex
	key  int64
	conn *pgx.Conn
}

func (l *nodeLock) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.conn.Close(ctx)
		l.conn = nil
	}
}

// lock opens a connection for the node and takes its lock on it. Another
// live process holding the lock means the node ID is in use.
func (c *Catalog) lock(ctx context.Context, id string, key int64) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.dsn)
	if err != nil {
		return nil, err
	}
	for k, v := range keepaliveParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	if !got {
		conn.Close(ctx)
		return nil, fmt.Errorf("node %s is joined by another live process: %w", id, store.ErrExists)
	}
	return conn, nil
}

// Join registers the node and takes its liveness lock on a connection of
// its own, held until Leave or Close. Joining an ID that a live process
// holds fails with ErrExists.
func (c *Catalog) Join(ctx context.Context, id, url string) error {
	c.locksMu.Lock()
	defer c.locksMu.Unlock()
	if _, ok := c.locks[id]; ok {
		_, err := c.pool.Exec(ctx, `UPDATE nodes SET url = $2, heartbeat = now() WHERE node_id = $1`, id, url)
		if err != nil {
			return fmt.Errorf("join node %s: %w", id, err)
		}
		return nil
	}
	key := lockKey("openkvs node " + id)
	conn, err := c.lock(ctx, id, key)
	if err != nil {
		return fmt.Errorf("join node %s: %w", id, err)
	}
	_, err = c.pool.Exec(ctx, `INSERT INTO nodes (node_id, url, lock_key) VALUES ($1, $2, $3)
		ON CONFLICT (node_id) DO UPDATE SET url = EXCLUDED.url, lock_key = EXCLUDED.lock_key, heartbeat = now()`, id, url, key)
	if err != nil {
		conn.Close(ctx)
		if sqlState(err) == uniqueViolation {
			return fmt.Errorf("join node %s: its lock key collides with another node's; choose another ID: %w", id, store.ErrExists)
		}
		return fmt.Errorf("join node %s: %w", id, err)
	}
	c.locks[id] = &nodeLock{key: key, conn: conn}
	return nil
}

// Heartbeat refreshes the node's heartbeat and checks its lock connection;
// if that connection broke (a database restart, a network cut), it takes
// the lock again on a new one, or fails if another process has it. Leases
// taken from the node meanwhile stay taken: their epochs moved on.
func (c *Catalog) Heartbeat(ctx context.Context, id string) error {
	c.locksMu.Lock()
	l := c.locks[id]
	c.locksMu.Unlock()
	if l != nil {
		var err error
		l.mu.Lock()
		if l.conn == nil || l.conn.Ping(ctx) != nil {
			if l.conn != nil {
				l.conn.Close(ctx)
			}
			l.conn, err = c.lock(ctx, id, l.key)
		}
		l.mu.Unlock()
		if err != nil {
			return fmt.Errorf("heartbeat of node %s: liveness lock lost: %w", id, err)
		}
	}
	tag, err := c.pool.Exec(ctx, `UPDATE nodes SET heartbeat = now() WHERE node_id = $1`, id)
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("heartbeat of node %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// Leave releases the node's leases and jobs, removes it, and drops its
// liveness lock.
func (c *Catalog) Leave(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE stream_leases SET owner = '', expires_at = '-infinity' WHERE owner = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM singletons WHERE owner = $1`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM nodes WHERE node_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("leave node %s: %w", id, err)
	}
	c.locksMu.Lock()
	l := c.locks[id]
	delete(c.locks, id)
	c.locksMu.Unlock()
	if l != nil {
		l.close()
	}
	return nil
}

// Nodes returns every registered node, by ID.
func (c *Catalog) Nodes(ctx context.Context) ([]store.Node, error) {
	rows, err := c.pool.Query(ctx, `SELECT node_id, url, heartbeat, `+fmt.Sprintf(nodeAlive, "m.node_id")+`
		FROM nodes m ORDER BY node_id`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Node, error) {
		var n store.Node
		err := row.Scan(&n.ID, &n.URL, &n.Heartbeat, &n.Alive)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// ttlParam passes a TTL to SQL as milliseconds, the lease's expiry being
// now() + ttl on the database's clock.
func ttlParam(ttl time.Duration) int64 { return ttl.Milliseconds() }

// AcquireLease takes or renews stream's lease for owner (scaleout.md §3):
// the row is taken over when it expired, when its owner is no longer
// alive, or when it is released (owner ""). The epoch stays when owner
// held it already and grows otherwise, so every change of hands fences
// the previous owner's commits.
func (c *Catalog) AcquireLease(ctx context.Context, stream int64, owner string, ttl time.Duration) (store.Lease, error) {
	l := store.Lease{StreamID: stream, Owner: owner}
	err := c.pool.QueryRow(ctx, `INSERT INTO stream_leases AS l (stream_id, owner, epoch, expires_at)
		VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
		ON CONFLICT (stream_id) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
			epoch = CASE WHEN l.owner = EXCLUDED.owner THEN l.epoch ELSE l.epoch + 1 END
		WHERE l.owner = EXCLUDED.owner OR l.expires_at < now() OR NOT `+fmt.Sprintf(nodeAlive, "l.owner")+`
		RETURNING epoch`, stream, owner, ttlParam(ttl)).Scan(&l.Epoch)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Lease{}, fmt.Errorf("acquire lease of stream %d for %s: %w", stream, owner, store.ErrLeaseHeld)
	case sqlState(err) == foreignKeyViolation:
		return store.Lease{}, fmt.Errorf("acquire lease of stream %d: %w", stream, store.ErrNotFound)
	case err != nil:
		return store.Lease{}, fmt.Errorf("acquire lease of stream %d for %s: %w", stream, owner, err)
	}
	return l, nil
}

// RenewLeases extends every lease owner holds, expired ones too while no
// one took them.
func (c *Catalog) RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]store.Lease, error) {
	rows, err := c.pool.Query(ctx, `UPDATE stream_leases SET expires_at = now() + $2 * interval '1 millisecond'
		WHERE owner = $1 RETURNING stream_id, epoch`, owner, ttlParam(ttl))
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	leases, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Lease, error) {
		l := store.Lease{Owner: owner}
		err := row.Scan(&l.StreamID, &l.Epoch)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("renew leases of %s: %w", owner, err)
	}
	return leases, nil
}

// ReleaseLease ends the lease if it is still the current one. The row
// stays, with no owner, so that the next owner's epoch is higher still.
func (c *Catalog) ReleaseLease(ctx context.Context, l store.Lease) error {
	_, err := c.pool.Exec(ctx, `UPDATE stream_leases SET owner = '', expires_at = '-infinity'
		WHERE stream_id = $1 AND owner = $2 AND epoch = $3`, l.StreamID, l.Owner, l.Epoch)
	if err != nil {
		return fmt.Errorf("release lease of stream %d: %w", l.StreamID, err)
	}
	return nil
}

// LeaseOwner returns the live node holding stream's unexpired lease.
func (c *Catalog) LeaseOwner(ctx context.Context, stream int64) (store.Node, error) {
	n := store.Node{Alive: true}
	err := c.pool.QueryRow(ctx, `SELECT m.node_id, m.url, m.heartbeat FROM stream_leases l JOIN nodes m ON m.node_id = l.owner
		WHERE l.stream_id = $1 AND l.expires_at > now() AND `+fmt.Sprintf(nodeAlive, "l.owner"), stream).Scan(&n.ID, &n.URL, &n.Heartbeat)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Node{}, fmt.Errorf("owner of stream %d: %w", stream, store.ErrNotFound)
	}
	if err != nil {
		return store.Node{}, fmt.Errorf("owner of stream %d: %w", stream, err)
	}
	return n, nil
}

// AcquireSingleton takes or renews the named job for owner, under the
// leases' rule: taken over when expired or when its holder is not alive.
func (c *Catalog) AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	tag, err := c.pool.Exec(ctx, `INSERT INTO singletons AS s (name, owner, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
		WHERE s.owner = EXCLUDED.owner OR s.expires_at < now() OR NOT `+fmt.Sprintf(nodeAlive, "s.owner"),
		name, owner, ttlParam(ttl))
	if err != nil {
		return false, fmt.Errorf("acquire job %s for %s: %w", name, owner, err)
	}
	return tag.RowsAffected() == 1, nil
}
