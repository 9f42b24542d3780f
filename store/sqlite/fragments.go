package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/internal/sqlrow"
)

func scanFragments(rows *sql.Rows) ([]*store.Fragment, error) {
	defer rows.Close()
	return sqlrow.All(rows, sqlrow.Fragment)
}

// addRequest is one AddFragments call waiting for a group commit.
type addRequest struct {
	fs   []*store.Fragment
	done chan error
}

// AddFragments inserts fragment rows durably, all or none. Concurrent
// calls share one transaction and so one fsync (group commit): the caller
// that gets the write lock commits every request queued by then.
// The embedded catalog has one node and so no leases: a lease is an error.
func (c *Catalog) AddFragments(ctx context.Context, lease *store.Lease, fs []*store.Fragment) error {
	if lease != nil {
		return fmt.Errorf("add fragments of stream %d: %w: the embedded catalog has no leases", lease.StreamID, store.ErrLeaseLost)
	}
	req := &addRequest{fs: fs, done: make(chan error, 1)}
	c.pendingMu.Lock()
	c.pending = append(c.pending, req)
	c.pendingMu.Unlock()

	c.write.Lock()
	c.pendingMu.Lock()
	batch := c.pending
	c.pending = nil
	c.pendingMu.Unlock()
	if len(batch) > 0 {
		c.commitFragments(context.WithoutCancel(ctx), batch)
	}
	c.write.Unlock()
	return <-req.done
}

// commitFragments inserts a batch of requests in one transaction. Rows
// rarely violate a constraint, so the batch goes in whole first; if one
// does, the batch is inserted again with each request inside a savepoint,
// so that the offending request fails alone. A failed commit fails them all.
func (c *Catalog) commitFragments(ctx context.Context, batch []*addRequest) {
	errs := make([]error, len(batch))
	err := c.insertBatch(ctx, batch, nil)
	if errors.Is(err, errRowRejected) {
		err = c.insertBatch(ctx, batch, errs)
	}
	for i, r := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("add %d fragments: %w", len(r.fs), err)
		}
		r.done <- errs[i]
	}
}

// errRowRejected ends an insertBatch without savepoints at the first row
// that violates a constraint.
var errRowRejected = errors.New("a fragment row violates a constraint")

// insertBatch inserts the rows of batch in one transaction. With errs nil
// it uses no savepoint and a constraint violation fails it with
// errRowRejected; otherwise each request runs in a savepoint and its
// violation goes to errs, the other requests' rows being committed.
func (c *Catalog) insertBatch(ctx context.Context, batch []*addRequest, errs []error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt := tx.StmtContext(ctx, c.insertFragment)
	defer stmt.Close()
	for i, r := range batch {
		if errs != nil {
			if _, err := tx.ExecContext(ctx, `SAVEPOINT request`); err != nil {
				return err
			}
		}
		var rejected error
		for _, f := range r.fs {
			_, err := stmt.ExecContext(ctx, f.StreamID, f.Number, f.ProducerTime.UnixMilli(), f.ServerTime.UnixMilli(),
				f.Duration.Milliseconds(), f.Size, f.BlobKey, f.HeaderKey)
			switch {
			case isUniqueViolation(err):
				rejected = fmt.Errorf("add fragment %s: %w", f.Number, store.ErrExists)
			case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
				rejected = fmt.Errorf("add fragment %s: stream %d: %w", f.Number, f.StreamID, store.ErrNotFound)
			case err != nil:
				return err
			}
			if rejected != nil {
				break
			}
		}
		if errs == nil {
			if rejected != nil {
				return errRowRejected
			}
			continue
		}
		errs[i] = rejected
		end := `RELEASE request`
		if rejected != nil {
			end = `ROLLBACK TO request; RELEASE request`
		}
		if _, err := tx.ExecContext(ctx, end); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Fragments returns the rows for numbers, in the order asked.
func (c *Catalog) Fragments(ctx context.Context, id int64, numbers []string) ([]*store.Fragment, error) {
	if len(numbers) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(numbers)+1)
	args = append(args, id)
	for _, n := range numbers {
		args = append(args, n)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments WHERE stream_id = ? AND number IN (?`+
		strings.Repeat(",?", len(numbers)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("get fragments: %w", err)
	}
	found, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("get fragments: %w", err)
	}
	return sqlrow.InOrder(numbers, found), nil
}

// QueryFragments returns fragments in a time range, in (time, number) order.
func (c *Catalog) QueryFragments(ctx context.Context, id int64, q store.FragmentQuery) ([]*store.Fragment, error) {
	col := "producer_ms"
	if q.Field == store.ServerTime {
		col = "server_ms"
	}
	query := `SELECT ` + sqlrow.FragmentColumns + ` FROM fragments WHERE stream_id = ? AND ` + col + ` BETWEEN ? AND ?`
	args := []any{id, q.From.UnixMilli(), q.To.UnixMilli()}
	if q.After != nil {
		query += ` AND (` + col + ` > ? OR (` + col + ` = ? AND number > ?))`
		ms := q.After.Time.UnixMilli()
		args = append(args, ms, ms, q.After.Number)
	}
	query += ` ORDER BY ` + col + `, number LIMIT ?`
	args = append(args, q.Limit)
	rows, err := c.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query fragments: %w", err)
	}
	out, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("query fragments: %w", err)
	}
	return out, nil
}

// FragmentsAfter returns fragments in number order after number.
func (c *Catalog) FragmentsAfter(ctx context.Context, id int64, number string, limit int) ([]*store.Fragment, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments
		WHERE stream_id = ? AND number > ? ORDER BY number LIMIT ?`, id, number, limit)
	if err != nil {
		return nil, fmt.Errorf("fragments after %s: %w", number, err)
	}
	out, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("fragments after %s: %w", number, err)
	}
	return out, nil
}

// LatestFragments returns the newest fragments, oldest first.
func (c *Catalog) LatestFragments(ctx context.Context, id int64, limit int) ([]*store.Fragment, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments
		WHERE stream_id = ? ORDER BY number DESC LIMIT ?`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("latest fragments: %w", err)
	}
	out, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("latest fragments: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// DeleteFragmentsBefore removes and returns fragments older than t.
func (c *Catalog) DeleteFragmentsBefore(ctx context.Context, id int64, t time.Time, limit int) ([]*store.Fragment, error) {
	c.write.Lock()
	defer c.write.Unlock()
	rows, err := c.db.QueryContext(ctx, `DELETE FROM fragments WHERE stream_id = ? AND number IN (
		SELECT number FROM fragments WHERE stream_id = ? AND server_ms < ? ORDER BY server_ms LIMIT ?)
		RETURNING `+sqlrow.FragmentColumns, id, id, t.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("delete fragments before %s: %w", t, err)
	}
	out, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("delete fragments before %s: %w", t, err)
	}
	return out, nil
}

// HasBlobKey reports whether a fragment row references key, or an object
// appended to it. Keys compare as bytes, so the appended ones are the range
// from key+"@" up to key+"A" ('@' + 1) of the blob_key index.
func (c *Catalog) HasBlobKey(ctx context.Context, key string) (bool, error) {
	var one int
	err := c.db.QueryRowContext(ctx, `SELECT 1 FROM fragments WHERE blob_key = ? OR header_key = ?
		OR (blob_key >= ? AND blob_key < ?) LIMIT 1`, key, key, key+"@", key+"A").Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", key, err)
	}
	return true, nil
}
