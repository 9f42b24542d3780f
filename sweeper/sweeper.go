// Package sweeper deletes what the archive no longer needs: fragments past
// their stream's retention (row first, then blobs), the data of deleted
// streams, and blobs a crash left without a catalog row.
//
// A fragment blob is written before its row (DESIGN.md "Order of
// durability"), so a blob without a row may be one whose row is about to be
// written. Orphans are therefore looked for only once, at start-up, and only
// among fragments whose sequence number was reserved before start-up:
// nothing running can still add their rows. Header blobs are shared and
// written before the first fragment that uses them; they are deleted only
// when no row references them and no ingest session runs on the stream.
package sweeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/store"
)

// batch is how many fragments one catalog call deletes.
const batch = 1000

// Sweeper removes expired and orphaned data.
type Sweeper struct {
	Catalog store.Catalog
	Blobs   store.Blobs
	Log     *slog.Logger
	// Busy reports whether an ingest session runs on the stream; its header
	// blobs are then left alone.
	Busy func(streamID int64) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run sweeps every interval until ctx ends, starting with the orphan pass.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	if err := s.Orphans(ctx); err != nil && ctx.Err() == nil {
		s.Log.Error("orphan sweep", "err", err)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Expired(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error("retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// streams returns every stream in the catalog.
func (s *Sweeper) streams(ctx context.Context) ([]*store.Stream, error) {
	var all []*store.Stream
	after := ""
	for {
		page, err := s.Catalog.ListStreams(ctx, "", after, batch)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < batch {
			return all, nil
		}
		after = page[len(page)-1].Name
	}
}

// Expired deletes fragments older than their stream's retention; a stream
// that keeps no data (retention 0) keeps no fragments at all.
func (s *Sweeper) Expired(ctx context.Context) error {
	list, err := s.streams(ctx)
	if err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	for _, st := range list {
		cutoff := s.now().Add(-time.Duration(st.RetentionHours) * time.Hour)
		if st.RetentionHours == 0 {
			cutoff = s.now().Add(24 * time.Hour)
		}
		if err := s.expire(ctx, st, cutoff); err != nil {
			return fmt.Errorf("expire fragments of %s: %w", st.Name, err)
		}
	}
	return nil
}

func (s *Sweeper) expire(ctx context.Context, st *store.Stream, cutoff time.Time) error {
	headers := map[string]bool{}
	for {
		gone, err := s.Catalog.DeleteFragmentsBefore(ctx, st.ID, cutoff, batch)
		if err != nil {
			return err
		}
		for _, f := range gone {
			if err := s.Blobs.Delete(ctx, f.BlobKey); err != nil {
				return err
			}
			headers[f.HeaderKey] = true
		}
		if len(gone) < batch {
			break
		}
	}
	if len(headers) > 0 && (s.Busy == nil || !s.Busy(st.ID)) {
		for key := range headers {
			if err := s.deleteUnreferenced(ctx, key); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Sweeper) deleteUnreferenced(ctx context.Context, key string) error {
	used, err := s.Catalog.HasBlobKey(ctx, key)
	if err != nil || used {
		return err
	}
	return s.Blobs.Delete(ctx, key)
}

// Orphans deletes the blobs of streams that no longer exist and fragment
// blobs without a row whose sequence was reserved before this call.
func (s *Sweeper) Orphans(ctx context.Context) error {
	list, err := s.streams(ctx)
	if err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	known := map[int64]bool{}
	watermark := map[int64]uint64{}
	for _, st := range list {
		known[st.ID] = true
		// Reserving zero numbers reads the high-water mark.
		hw, err := s.Catalog.ReserveSequence(ctx, st.ID, 0)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("read sequence of %s: %w", st.Name, err)
		}
		watermark[st.ID] = hw
	}
	var orphans []string
	err = s.Blobs.List(ctx, "", func(key string) error {
		id, kind, name, ok := parseKey(key)
		switch {
		case !ok:
			return nil // not ours
		case !known[id]:
			orphans = append(orphans, key)
		case kind == "f" && store.FragmentSequence(name) < watermark[id]:
			used, err := s.Catalog.HasBlobKey(ctx, key)
			if err != nil {
				return err
			}
			if !used {
				orphans = append(orphans, key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, key := range orphans {
		if err := s.Blobs.Delete(ctx, key); err != nil {
			return err
		}
	}
	if len(orphans) > 0 {
		s.Log.Info("deleted orphaned blobs", "count", len(orphans))
	}
	return nil
}

// StreamDeleted deletes all blobs of a deleted stream.
func (s *Sweeper) StreamDeleted(ctx context.Context, id int64) error {
	prefix := fmt.Sprintf("s%d/", id)
	var keys []string
	if err := s.Blobs.List(ctx, prefix, func(k string) error { keys = append(keys, k); return nil }); err != nil {
		return fmt.Errorf("list blobs of stream %d: %w", id, err)
	}
	for _, k := range keys {
		if err := s.Blobs.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete blobs of stream %d: %w", id, err)
		}
	}
	return nil
}

// parseKey splits "s<id>/<kind>/<name>", the keys ingest writes.
func parseKey(key string) (id int64, kind, name string, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 || !strings.HasPrefix(parts[0], "s") {
		return 0, "", "", false
	}
	id, err := strconv.ParseInt(parts[0][1:], 10, 64)
	if err != nil {
		return 0, "", "", false
	}
	return id, parts[1], parts[2], true
}
