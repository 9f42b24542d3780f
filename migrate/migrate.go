// Package migrate copies one openkvs catalog and its blobs into another:
// an embedded data directory (SQLite and files) into the shared backends
// of a cluster (PostgreSQL and an S3 bucket), for `openkvs migrate`.
//
// Streams keep their IDs (store.Importer): a blob's key names its stream
// by ID (s{id}/f/{number}, s{id}/h/{hash}, and s{id}/g/{segment}@{off}+{size}
// for a fragment appended to a segment file, which becomes an object of
// its own under that key), and the fragment rows, the sweeper's orphan
// pass and a deleted stream's clean-up all go by those keys, so with the
// same IDs every blob copies under its own key and every row copies as it
// is. Remapping IDs would mean rewriting every key and
// row, for nothing but the rare case of a target that already used those
// IDs, which is refused instead.
//
// A copy is idempotent, so that running it again after an interruption
// finishes it: streams already there are recognised by ID, name and ARN;
// fragment rows already there are left alone, and their blobs with them,
// since a row is added only after its blobs were copied and checked (the
// order of durability ingest keeps).
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/openkvs/openkvs/imagegen"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streaming"
)

// Target is where a copy goes: a shared catalog that imports streams, and
// blobs.
type Target struct {
	Catalog interface {
		store.Catalog
		store.Importer
		store.Cluster
	}
	Blobs store.Blobs
}

// Source is what a copy reads. Nothing may write to it meanwhile.
type Source struct {
	Catalog store.Catalog
	Blobs   store.Blobs
	// SessionKey signs the source's playback session tokens (nil for
	// none): it becomes the cluster's, so that playback URLs made before
	// the move keep working, unless the target has a key already.
	SessionKey []byte
}

// Options tunes a copy.
type Options struct {
	// Progress receives a line about each stream as its copy goes on, at
	// most about once a second, and when it is done; nil prints nothing.
	Progress io.Writer
	// Concurrency is how many blobs are copied at once (default 8): an
	// object store's PUT waits milliseconds for its answer.
	Concurrency int
}

// Summary is what a copy did.
type Summary struct {
	Streams    int   // streams in the source
	NewStreams int   // of them, imported by this run
	Fragments  int   // fragment rows in the source
	Copied     int   // of them, copied by this run (the others were there)
	Headers    int   // header blobs copied
	Images     int   // generated images copied
	Bytes      int64 // blob bytes copied
	Deleted    int   // deleted streams whose IDs were reserved
	// KeyKept reports whether the target signs playback session tokens
	// with the source's key.
	KeyKept  bool
	Duration time.Duration
}

// ConflictError is a copy refused because the target holds other streams
// under the names of the source's.
type ConflictError struct {
	Streams []string // "name (ID n in the target, m in the source)"
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("the target catalog already holds other streams named %s: openkvs migrate copies into a catalog "+
		"without streams of the same names (delete those streams there, or use another database)", strings.Join(e.Streams, ", "))
}

// batch is how many fragment rows are read, looked up in the target and
// added at a time.
const batch = 256

// Run copies src into dst: every stream (ID, ARN, version, status, tags,
// configurations, creation time, fragment sequence), every fragment row
// and the blobs it names, and the generated images. The IDs of streams
// deleted in src are reserved in dst. Each blob copied is read back from
// dst and checked against the source's size and CRC-32C before the row
// that names it is added.
func Run(ctx context.Context, src Source, dst Target, opts Options) (Summary, error) {
	start := time.Now()
	r := &run{src: src, dst: dst, opts: opts, headers: map[string]bool{}}
	if r.opts.Concurrency <= 0 {
		r.opts.Concurrency = 8
	}
	streams, err := listStreams(ctx, src.Catalog)
	if err != nil {
		return r.sum, err
	}
	r.sum.Streams = len(streams)
	if err := checkNames(ctx, streams, dst.Catalog); err != nil {
		return r.sum, err
	}
	deleted, err := src.Catalog.DeletedStreams(ctx)
	if err != nil {
		return r.sum, fmt.Errorf("source: %w", err)
	}
	if len(deleted) > 0 {
		if err := dst.Catalog.ReserveStreamIDs(ctx, slices.Max(deleted)); err != nil {
			return r.sum, fmt.Errorf("target: %w", err)
		}
	}
	r.sum.Deleted = len(deleted)
	for _, s := range streams {
		if err := r.stream(ctx, s); err != nil {
			return r.sum, fmt.Errorf("stream %s: %w", s.Name, err)
		}
	}
	if err := r.images(ctx); err != nil {
		return r.sum, err
	}
	if src.SessionKey != nil {
		key, err := dst.Catalog.Secret(ctx, streaming.SharedKeyName, src.SessionKey)
		if err != nil {
			return r.sum, fmt.Errorf("target: %w", err)
		}
		r.sum.KeyKept = bytes.Equal(key, src.SessionKey)
	}
	r.sum.Duration = time.Since(start)
	return r.sum, nil
}

// run is one copy under way.
type run struct {
	src     Source
	dst     Target
	opts    Options
	sum     Summary
	mu      sync.Mutex      // guards sum.Bytes while blobs copy
	headers map[string]bool // header keys copied by this run
}

func listStreams(ctx context.Context, c store.Catalog) ([]*store.Stream, error) {
	var all []*store.Stream
	after := ""
	for {
		page, err := c.ListStreams(ctx, "", after, 1000)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			return all, nil
		}
		after = page[len(page)-1].Name
	}
}

// checkNames refuses, before anything is written, a target that holds
// another stream under a source stream's name. ImportStream checks IDs
// and ARNs too, stream by stream.
func checkNames(ctx context.Context, streams []*store.Stream, dst store.Catalog) error {
	var conflicts []string
	for _, s := range streams {
		there, err := dst.StreamByName(ctx, s.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("target: %w", err)
		}
		if there.ID != s.ID || there.ARN != s.ARN {
			conflicts = append(conflicts, fmt.Sprintf("%s (ID %d in the target, %d in the source)", s.Name, there.ID, s.ID))
		}
	}
	if conflicts != nil {
		return &ConflictError{Streams: conflicts}
	}
	return nil
}

// stream imports s and copies its fragments in number order.
func (r *run) stream(ctx context.Context, s *store.Stream) error {
	// Reserving nothing returns the first sequence not yet handed out:
	// numbers reserved but never stored (a stream of retention 0 stores
	// none) were seen by readers all the same.
	next, err := r.src.Catalog.ReserveSequence(ctx, s.ID, 0)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	created, err := r.dst.Catalog.ImportStream(ctx, s, next)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("the target catalog holds another stream under its ID, name or ARN: %w", err)
	}
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if created {
		r.sum.NewStreams++
	}
	var total, copied int
	last := time.Now()
	for after := ""; ; {
		rows, err := r.src.Catalog.FragmentsAfter(ctx, s.ID, after, batch)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].Number
		n, err := r.fragments(ctx, s.ID, rows)
		if err != nil {
			return err
		}
		total += len(rows)
		copied += n
		if time.Since(last) >= time.Second {
			r.progress("stream %s (ID %d): %d fragments, %d copied...\n", s.Name, s.ID, total, copied)
			last = time.Now()
		}
	}
	r.sum.Fragments += total
	r.sum.Copied += copied
	state := "there already"
	if created {
		state = "new"
	}
	r.progress("stream %s (ID %d, %s): %d fragments, %d copied\n", s.Name, s.ID, state, total, copied)
	return nil
}

// fragments copies the blobs of the rows the target lacks, then adds
// those rows, and returns how many.
func (r *run) fragments(ctx context.Context, id int64, rows []*store.Fragment) (int, error) {
	numbers := make([]string, len(rows))
	for i, f := range rows {
		numbers[i] = f.Number
	}
	there, err := r.dst.Catalog.Fragments(ctx, id, numbers)
	if err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	have := make(map[string]*store.Fragment, len(there))
	for _, f := range there {
		have[f.Number] = f
	}
	var missing []*store.Fragment
	var headers []string
	for _, f := range rows {
		if t := have[f.Number]; t != nil {
			if t.BlobKey != f.BlobKey || t.Size != f.Size {
				return 0, fmt.Errorf("fragment %s in the target is another one (%s, %d bytes; here %s, %d bytes)",
					f.Number, t.BlobKey, t.Size, f.BlobKey, f.Size)
			}
			continue
		}
		missing = append(missing, f)
		if !r.headers[f.HeaderKey] {
			r.headers[f.HeaderKey] = true
			headers = append(headers, f.HeaderKey)
		}
	}
	if len(missing) == 0 {
		return 0, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	for _, key := range headers {
		g.Go(func() error { return r.copy(gctx, key, -1) })
	}
	for _, f := range missing {
		g.Go(func() error { return r.copy(gctx, f.BlobKey, f.Size) })
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	r.sum.Headers += len(headers)
	if err := r.dst.Catalog.AddFragments(ctx, nil, missing); err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	return len(missing), nil
}

// images copies the generated images the target lacks.
func (r *run) images(ctx context.Context) error {
	there := map[string]bool{}
	if err := r.dst.Blobs.List(ctx, imagegen.Prefix, func(b store.BlobInfo) error { there[b.Key] = true; return nil }); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	var keys []string
	if err := r.src.Blobs.List(ctx, imagegen.Prefix, func(b store.BlobInfo) error {
		if !there[b.Key] {
			keys = append(keys, b.Key)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.opts.Concurrency)
	for _, key := range keys {
		g.Go(func() error { return r.copy(gctx, key, -1) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.sum.Images = len(keys)
	if len(keys) > 0 {
		r.progress("generated images: %d copied\n", len(keys))
	}
	return nil
}

// copy copies the blob key, of size bytes (-1: whatever it has), reads
// the copy back and checks its size and CRC-32C. A fragment is at most
// 50 MB and a header 4 MiB: each is held in memory once.
func (r *run) copy(ctx context.Context, key string, size int64) error {
	in, err := r.src.Blobs.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	limit := size + 1 // one byte more tells a longer blob from a whole one
	if size < 0 {
		limit = math.MaxInt64
	}
	data, err := io.ReadAll(io.LimitReader(in, limit))
	in.Close()
	if err != nil {
		return fmt.Errorf("source: read blob %s: %w", key, err)
	}
	if size >= 0 && int64(len(data)) != size {
		return fmt.Errorf("source: blob %s has %d bytes, its fragment row says %d", key, len(data), size)
	}
	if err := r.dst.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := verify(ctx, r.dst.Blobs, key, int64(len(data)), crc32.Checksum(data, castagnoli)); err != nil {
		return err
	}
	r.mu.Lock()
	r.sum.Bytes += int64(len(data))
	r.mu.Unlock()
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// verify reads the blob key back from b and checks its size and CRC-32C.
func verify(ctx context.Context, b store.Blobs, key string, size int64, sum uint32) error {
	rc, err := b.Open(ctx, key)
	if err != nil {
		return fmt.Errorf("target: read back: %w", err)
	}
	defer rc.Close()
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("target: read back blob %s: %w", key, err)
	}
	if n != size || h.Sum32() != sum {
		return fmt.Errorf("target: blob %s reads back as %d bytes with CRC-32C %08x, want %d bytes with %08x", key, n, h.Sum32(), size, sum)
	}
	return nil
}

func (r *run) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, format, args...)
	}
}
