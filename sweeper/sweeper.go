// Package sweeper deletes what the archive no longer needs: fragments past
// their stream's retention (row first, then blob), the data of deleted
// streams, and blobs that no catalog row references (left by a crash
// between a blob and its row, by a failed persist, by a deleted stream
// whose clean-up was cut short, or header blobs whose last fragment
// expired).
//
// A blob is written before the row that references it (DESIGN.md "Order of
// durability"), so a blob without a row may be one whose row is about to be
// written. The orphan pass therefore deletes only blobs older than a grace
// period (store.BlobGrace): writers never add a row for a blob written
// longer than store.MaxReferenceDelay ago, so an older unreferenced blob
// never gets one. The rule needs no knowledge of running sessions or of
// which streams existed when the pass began, so it is safe against streams
// created meanwhile and, later, against other nodes writing to the same
// bucket. Stream IDs are never reused, so a blob of a deleted stream can
// never be mistaken for one of a new stream.
package sweeper

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/store"
)

// batch is how many fragments one catalog call deletes or looks up.
const batch = 1000

// DefaultOrphanInterval is how often Run looks for unreferenced blobs after
// the pass at start-up: a walk of every blob, so far less often than the
// retention sweep.
const DefaultOrphanInterval = time.Hour

// Sweeper removes expired and orphaned data.
type Sweeper struct {
	Catalog store.Catalog
	Blobs   store.Blobs
	Log     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Grace is the age below which an unreferenced blob is left alone;
	// zero means store.BlobGrace.
	Grace time.Duration
	// OrphanInterval is the period of the orphan pass in Run; zero means
	// DefaultOrphanInterval.
	OrphanInterval time.Duration
	// Metrics counts the blobs deleted; nil counts nothing.
	Metrics *metrics.Sweeper
	// Started, when set, is called once Run has finished its start-up
	// passes (deleted streams, orphans, retention): the server is ready.
	Started func()
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run sweeps expired fragments every interval and orphaned blobs at once
// and then every OrphanInterval, until ctx ends.
func (s *Sweeper) Run(ctx context.Context, interval time.Duration) {
	orphans := time.NewTicker(cmp.Or(s.OrphanInterval, DefaultOrphanInterval))
	defer orphans.Stop()
	expired := time.NewTicker(interval)
	defer expired.Stop()
	s.logged(ctx, "deleted streams", s.DeletedStreams(ctx))
	s.logged(ctx, "orphan sweep", s.Orphans(ctx))
	started := s.Started
	for {
		s.logged(ctx, "retention sweep", s.Expired(ctx))
		if started != nil {
			started()
			started = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-orphans.C:
			s.logged(ctx, "orphan sweep", s.Orphans(ctx))
		case <-expired.C:
		}
	}
}

func (s *Sweeper) logged(ctx context.Context, what string, err error) {
	if err != nil && ctx.Err() == nil {
		s.Log.Error(what, "err", err)
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
// that keeps no data (retention 0) keeps no fragments at all. Header blobs
// that expired fragments leave unreferenced go in the next orphan pass.
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
	for {
		gone, err := s.Catalog.DeleteFragmentsBefore(ctx, st.ID, cutoff, batch)
		if err != nil {
			return err
		}
		segments := map[string]bool{}
		for _, f := range gone {
			if err := s.Blobs.Delete(ctx, f.BlobKey); err != nil {
				return err
			}
			s.Metrics.Deleted(metrics.SweepRetention, 1)
			if seg, _, _, ok := store.ParseAppendedKey(f.BlobKey); ok {
				segments[seg] = true
			}
		}
		if err := s.dropSegments(ctx, segments); err != nil {
			return err
		}
		if len(gone) < batch {
			return nil
		}
	}
}

// dropSegments deletes the segments (store.Appender) that no row
// references any more. Rows expire oldest first, so a segment goes with
// the batch that expires its newest row; segments are appended to for
// minutes, retention is at least an hour, so none of these gets another
// object.
func (s *Sweeper) dropSegments(ctx context.Context, segments map[string]bool) error {
	for _, seg := range slices.Sorted(maps.Keys(segments)) {
		used, err := s.Catalog.HasBlobKey(ctx, seg)
		if err != nil {
			return err
		}
		if used {
			continue
		}
		if err := s.Blobs.Delete(ctx, seg); err != nil {
			return err
		}
	}
	return nil
}

// Orphans deletes the blobs older than the grace period that no catalog
// row references: those of streams that no longer exist, fragment blobs
// without a row and header blobs no fragment uses.
func (s *Sweeper) Orphans(ctx context.Context) error {
	list, err := s.streams(ctx)
	if err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	o := &orphanPass{s: s, ctx: ctx, known: map[int64]bool{},
		cutoff: s.now().Add(-cmp.Or(s.Grace, store.BlobGrace))}
	for _, st := range list {
		o.known[st.ID] = true
	}
	err = s.Blobs.List(ctx, "", o.visit)
	if err == nil {
		err = o.flush()
	}
	if o.deleted > 0 {
		s.Log.Info("deleted unreferenced blobs", "count", o.deleted)
	}
	if err != nil {
		return fmt.Errorf("orphan sweep: %w", err)
	}
	return nil
}

// orphanPass is one walk of the blobs. Fragment blobs are looked up a
// batch at a time: List yields each stream's keys together, in order.
type orphanPass struct {
	s       *Sweeper
	ctx     context.Context
	known   map[int64]bool
	cutoff  time.Time
	stream  int64             // stream of the pending fragment blobs
	pending map[string]string // fragment number -> blob key, awaiting lookup
	deleted int
}

func (o *orphanPass) visit(bi store.BlobInfo) error {
	id, kind, name, ok := parseKey(bi.Key)
	if !ok || bi.Modified.After(o.cutoff) {
		return nil // not ours, or young enough to get a row yet
	}
	switch {
	case !o.known[id]:
		return o.delete(bi.Key)
	case kind == "f":
		if id != o.stream || len(o.pending) >= batch {
			if err := o.flush(); err != nil {
				return err
			}
			o.stream = id
		}
		o.pending[name] = bi.Key
		return nil
	}
	used, err := o.s.Catalog.HasBlobKey(o.ctx, bi.Key)
	if err != nil || used {
		return err
	}
	return o.delete(bi.Key)
}

// flush deletes the pending fragment blobs that no row references.
func (o *orphanPass) flush() error {
	if len(o.pending) > 0 {
		numbers := make([]string, 0, len(o.pending))
		for n := range o.pending {
			numbers = append(numbers, n)
		}
		rows, err := o.s.Catalog.Fragments(o.ctx, o.stream, numbers)
		if err != nil {
			return err
		}
		for _, f := range rows {
			if o.pending[f.Number] == f.BlobKey {
				delete(o.pending, f.Number)
			}
		}
		for _, key := range o.pending {
			if err := o.delete(key); err != nil {
				return err
			}
		}
	}
	o.pending = map[string]string{}
	return nil
}

func (o *orphanPass) delete(key string) error {
	if err := o.s.Blobs.Delete(o.ctx, key); err != nil {
		return err
	}
	o.s.Metrics.Deleted(metrics.SweepOrphan, 1)
	o.deleted++
	return nil
}

// StreamDeleted deletes all blobs of a deleted stream and then forgets it
// (store.Catalog.DeletedStreams). Call it once nothing writes to the stream
// any more (its ingest session has ended); if a crash cuts it short,
// DeletedStreams finishes it at the next start.
func (s *Sweeper) StreamDeleted(ctx context.Context, id int64) error {
	prefix := fmt.Sprintf("s%d/", id)
	var keys []string
	if err := s.Blobs.List(ctx, prefix, func(bi store.BlobInfo) error { keys = append(keys, bi.Key); return nil }); err != nil {
		return fmt.Errorf("list blobs of stream %d: %w", id, err)
	}
	for _, k := range keys {
		if err := s.Blobs.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete blobs of stream %d: %w", id, err)
		}
		s.Metrics.Deleted(metrics.SweepDeletedStream, 1)
	}
	return s.Catalog.ForgetDeletedStream(ctx, id)
}

// DeletedStreams finishes the clean-up of every deleted stream whose blobs
// may remain: a clean-up a crash or a shutdown cut short.
func (s *Sweeper) DeletedStreams(ctx context.Context) error {
	ids, err := s.Catalog.DeletedStreams(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.StreamDeleted(ctx, id); err != nil {
			return err
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
