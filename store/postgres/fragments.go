package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/internal/sqlrow"
)

func scanFragments(rows pgx.Rows) ([]*store.Fragment, error) {
	defer rows.Close()
	return sqlrow.All(rows, sqlrow.Fragment)
}

// addRequest is one AddFragments call waiting for a group commit.
type addRequest struct {
	lease *store.Lease
	fs    []*store.Fragment
	done  chan error
	lead  chan struct{} // this request's caller is to commit the next batch
}

// AddFragments inserts fragment rows, all or none. Concurrent calls share
// one transaction (group commit): one caller at a time, the leader,
// commits every request queued by then, and hands the lead to the first
// request that queued meanwhile, so that no caller waits for more than
// its own batch and the one before. With a lease, the request's rows are
// written only if the lease row still has its owner and epoch, in the
// same transaction (checkLeases).
func (c *Catalog) AddFragments(ctx context.Context, lease *store.Lease, fs []*store.Fragment) error {
	if lease != nil {
		for _, f := range fs {
			if f.StreamID != lease.StreamID {
				return fmt.Errorf("add fragment %s of stream %d under the lease of stream %d", f.Number, f.StreamID, lease.StreamID)
			}
		}
	}
	req := &addRequest{lease: lease, fs: fs, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	c.pendingMu.Lock()
	c.pending = append(c.pending, req)
	leader := !c.committing
	c.committing = true
	c.pendingMu.Unlock()
	if !leader {
		select {
		case err := <-req.done:
			return err
		case <-req.lead:
		}
	}
	c.pendingMu.Lock()
	batch := c.pending
	c.pending = nil
	c.pendingMu.Unlock()
	c.commitFragments(context.WithoutCancel(ctx), batch)
	c.pendingMu.Lock()
	if len(c.pending) > 0 {
		c.pending[0].lead <- struct{}{}
	} else {
		c.committing = false
	}
	c.pendingMu.Unlock()
	return <-req.done
}

// commitFragments commits a batch of requests in one transaction. Their
// leases are checked first, in one statement whose row locks last until
// the commit; then the rows of every request whose lease holds go in one
// INSERT. Only if that fails on a constraint are the requests inserted one
// by one, each in a savepoint, so that the one at fault fails alone. A
// failed commit fails them all.
func (c *Catalog) commitFragments(ctx context.Context, batch []*addRequest) {
	errs := make([]error, len(batch))
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := checkLeases(ctx, tx, batch, errs); err != nil {
			return err
		}
		var live []*addRequest
		for i, r := range batch {
			if errs[i] == nil {
				live = append(live, r)
			}
		}
		if len(live) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `SAVEPOINT batch`); err != nil {
			return err
		}
		err := insertFragments(ctx, tx, live...)
		if err == nil || !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT batch`); err != nil {
			return err
		}
		for i, r := range batch {
			if errs[i] != nil {
				continue
			}
			if _, err := tx.Exec(ctx, `SAVEPOINT request`); err != nil {
				return err
			}
			errs[i] = insertFragments(ctx, tx, r)
			end := `RELEASE SAVEPOINT request`
			if errs[i] != nil {
				end = `ROLLBACK TO SAVEPOINT request`
			}
			if _, err := tx.Exec(ctx, end); err != nil {
				return err
			}
			if errs[i] != nil && !errors.Is(errs[i], store.ErrExists) && !errors.Is(errs[i], store.ErrNotFound) {
				return errs[i]
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			errs[i] = fmt.Errorf("add %d fragments: %w", len(r.fs), err)
		}
		r.done <- errs[i]
	}
}

// checkLeases reads the lease rows of the batch's fenced requests FOR
// SHARE, outside any savepoint so that the locks last until the commit,
// and fails with ErrLeaseLost each request whose lease is no longer its
// stream's current one. A takeover (an UPDATE of a lease row) then waits
// for this commit, or this commit sees the takeover: never both missed.
func checkLeases(ctx context.Context, tx pgx.Tx, batch []*addRequest, errs []error) error {
	var streams []int64
	for _, r := range batch {
		if r.lease != nil && !slices.Contains(streams, r.lease.StreamID) {
			streams = append(streams, r.lease.StreamID)
		}
	}
	if len(streams) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT stream_id, owner, epoch FROM stream_leases WHERE stream_id = ANY($1) ORDER BY stream_id FOR SHARE`, streams)
	if err != nil {
		return err
	}
	current := map[int64]store.Lease{}
	var l store.Lease
	if _, err := pgx.ForEachRow(rows, []any{&l.StreamID, &l.Owner, &l.Epoch}, func() error {
		current[l.StreamID] = l
		return nil
	}); err != nil {
		return err
	}
	for i, r := range batch {
		if l := r.lease; l != nil && current[l.StreamID] != *l {
			errs[i] = fmt.Errorf("add fragments of stream %d with epoch %d of %s: %w", l.StreamID, l.Epoch, l.Owner, store.ErrLeaseLost)
		}
	}
	return nil
}

// insertFragments inserts the rows of requests in one statement.
func insertFragments(ctx context.Context, tx pgx.Tx, requests ...*addRequest) error {
	var (
		streams                      []int64
		numbers, blobs, headers      []string
		producer, server, dur, sizes []int64
	)
	for _, r := range requests {
		for _, f := range r.fs {
			streams, numbers, blobs, headers = append(streams, f.StreamID), append(numbers, f.Number), append(blobs, f.BlobKey), append(headers, f.HeaderKey)
			producer, server = append(producer, f.ProducerTime.UnixMilli()), append(server, f.ServerTime.UnixMilli())
			dur, sizes = append(dur, f.Duration.Milliseconds()), append(sizes, f.Size)
		}
	}
	n := len(numbers)
	_, err := tx.Exec(ctx, `INSERT INTO fragments (`+sqlrow.FragmentColumns+`)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])`,
		streams, numbers, producer, server, dur, sizes, blobs, headers)
	switch sqlState(err) {
	case uniqueViolation:
		return fmt.Errorf("add %d fragments: %w", n, store.ErrExists)
	case foreignKeyViolation:
		return fmt.Errorf("add %d fragments: stream gone: %w", n, store.ErrNotFound)
	}
	return err
}

// Fragments returns the rows for numbers, in the order asked.
func (c *Catalog) Fragments(ctx context.Context, id int64, numbers []string) ([]*store.Fragment, error) {
	if len(numbers) == 0 {
		return nil, nil
	}
	rows, err := c.pool.Query(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments WHERE stream_id = $1 AND number = ANY($2)`, id, numbers)
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
	query := `SELECT ` + sqlrow.FragmentColumns + ` FROM fragments WHERE stream_id = $1 AND ` + col + ` BETWEEN $2 AND $3`
	args := []any{id, q.From.UnixMilli(), q.To.UnixMilli()}
	if q.After != nil {
		query += ` AND (` + col + `, number) > ($4, $5)`
		args = append(args, q.After.Time.UnixMilli(), q.After.Number)
	}
	query += fmt.Sprintf(` ORDER BY %s, number LIMIT $%d`, col, len(args)+1)
	args = append(args, q.Limit)
	rows, err := c.pool.Query(ctx, query, args...)
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
	rows, err := c.pool.Query(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments
		WHERE stream_id = $1 AND number > $2 ORDER BY number LIMIT $3`, id, number, limit)
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
	rows, err := c.pool.Query(ctx, `SELECT `+sqlrow.FragmentColumns+` FROM fragments
		WHERE stream_id = $1 ORDER BY number DESC LIMIT $2`, id, limit)
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
	rows, err := c.pool.Query(ctx, `DELETE FROM fragments WHERE stream_id = $1 AND number IN (
		SELECT number FROM fragments WHERE stream_id = $1 AND server_ms < $2 ORDER BY server_ms, number LIMIT $3)
		RETURNING `+sqlrow.FragmentColumns, id, t.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("delete fragments before %s: %w", t, err)
	}
	out, err := scanFragments(rows)
	if err != nil {
		return nil, fmt.Errorf("delete fragments before %s: %w", t, err)
	}
	// RETURNING has no order; the sweeper and the suite expect time order.
	slices.SortFunc(out, func(a, b *store.Fragment) int {
		if c := a.ServerTime.Compare(b.ServerTime); c != 0 {
			return c
		}
		return strings.Compare(a.Number, b.Number)
	})
	return out, nil
}

// HasBlobKey reports whether a fragment row references key, or an object
// appended to it. blob_key is COLLATE "C", so the appended ones are the
// range from key+"@" up to key+"A" ('@' + 1) of its index.
func (c *Catalog) HasBlobKey(ctx context.Context, key string) (bool, error) {
	var found bool
	err := c.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM fragments WHERE blob_key = $1)
		OR EXISTS (SELECT 1 FROM fragments WHERE header_key = $1)
		OR EXISTS (SELECT 1 FROM fragments WHERE blob_key >= $2 AND blob_key < $3)`, key, key+"@", key+"A").Scan(&found)
	if err != nil {
		return false, fmt.Errorf("look up blob %s: %w", key, err)
	}
	return found, nil
}
