package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/internal/sqlrow"
)

var _ store.Importer = (*Catalog)(nil)

// ImportStream inserts s under its own ID, or raises the sequence of the
// same stream imported before. The identity sequence is moved past s.ID
// before the row is inserted, so that from then on no CreateStream can
// take that ID.
func (c *Catalog) ImportStream(ctx context.Context, s *store.Stream, next uint64) (bool, error) {
	tags, err := sqlrow.EncodeTags(s.Tags)
	if err != nil {
		return false, fmt.Errorf("import stream %s: %w", s.Name, err)
	}
	created := false
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if err := reserveIDs(ctx, tx, s.ID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, name, arn FROM streams WHERE id = $1 OR name = $2 OR arn = $3`, s.ID, s.Name, s.ARN)
		if err != nil {
			return err
		}
		type held struct {
			id        int64
			name, arn string
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (held, error) {
			var h held
			return h, r.Scan(&h.id, &h.name, &h.arn)
		})
		if err != nil {
			return err
		}
		for _, h := range found {
			if h.id != s.ID || h.name != s.Name || h.arn != s.ARN {
				return fmt.Errorf("stream %d (%s, %s) is there: %w", h.id, h.name, h.arn, store.ErrExists)
			}
		}
		if len(found) == 1 {
			_, err := tx.Exec(ctx, `UPDATE streams SET next_seq = GREATEST(next_seq, $1) WHERE id = $2`, int64(next), s.ID)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO streams (id, name, arn, device_name, media_type, kms_key_id,
			version, status, created_ms, retention_hours, storage_tier, tags, image_generation, notification, next_seq)
			OVERRIDING SYSTEM VALUE VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
			s.ID, s.Name, s.ARN, s.DeviceName, s.MediaType, s.KMSKeyID, s.Version, s.Status, s.CreationTime.UnixMilli(),
			s.RetentionHours, s.StorageTier, tags, s.ImageGeneration, s.Notification, int64(next))
		created = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("import stream %s (ID %d): %w", s.Name, s.ID, err)
	}
	return created, nil
}

// ReserveStreamIDs moves the identity sequence past id.
func (c *Catalog) ReserveStreamIDs(ctx context.Context, id int64) error {
	if err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error { return reserveIDs(ctx, tx, id) }); err != nil {
		return fmt.Errorf("reserve stream IDs up to %d: %w", id, err)
	}
	return nil
}

// reserveIDs moves the streams' identity sequence to id unless it is
// there or past it. The table lock keeps CreateStream out until tx ends:
// an INSERT takes its lock before it draws the next ID, so none is drawn
// between the read of the sequence and setval, which would otherwise set
// it back over that ID.
func reserveIDs(ctx context.Context, tx pgx.Tx, id int64) error {
	if id < 1 {
		return errors.New("stream IDs start at 1")
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE streams IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT setval(seq, $1) FROM (SELECT pg_get_serial_sequence('streams', 'id')::regclass AS seq) s
		WHERE $1 > COALESCE(pg_sequence_last_value(seq), 0)`, id)
	return err
}
