package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
)

// In-band error IDs and codes (kvs-protocol.md §5.5; the code strings are
// openkvs's, AWS's are unknown).
const (
	errIDNotFound = 4000
	errIDInternal = 5000
)

var errCodes = map[int64]string{errIDNotFound: "FRAGMENT_NOT_FOUND", errIDInternal: "INTERNAL_ERROR"}

// inBand is a failure reported inside the payload, after which it ends.
type inBand struct {
	id     int64
	number string // the fragment it concerns
	err    error
}

func (e *inBand) Error() string {
	return fmt.Sprintf("%s for fragment %s: %v", errCodes[e.id], e.number, e.err)
}

func (e *inBand) Unwrap() error { return e.err }

var (
	// errGone: an archived fragment's header or payload is missing.
	errGone = errors.New("fragment data missing from the archive")
	// errEmpty: a live fragment was aborted before its first byte, so there
	// is nothing to send for it.
	errEmpty = errors.New("fragment aborted before its first byte")
	// errTruncated: a live fragment with a Cluster of known size was aborted
	// before its Cluster was whole. No bytes can close that chunk (the end
	// Tags would be read as part of the Cluster), so the response ends there.
	errTruncated = errors.New("fragment aborted inside its known-size Cluster")
)

// farFuture bounds open-ended time queries.
var farFuture = time.UnixMilli(1 << 52)

// Reader is one admitted GetMedia call, positioned where its selector
// points.
type Reader struct {
	svc     *Service
	stream  *store.Stream
	ls      *live.Stream
	release func()
	limiter *rate.Limiter
	buf     []byte

	// Where the reader is.
	first       *next  // the fragment to send first, when the selector named one
	last        string // number of the last fragment sent or passed over (or the selector's)
	sent        bool   // last is a fragment this reader sent: a gap after it is an error
	fromArchive bool   // last was read from the archive
	// fromWindow: start with the first fragment to begin in the live window;
	// the hub has seen none, so the archive holds only older ones.
	fromWindow bool

	// Timestamp selectors: until a fragment holding at (or starting after
	// it) is found, fragments that end before it are passed over.
	seeking bool
	at      time.Time
	field   store.TimeField
	// keys: until it sends its first fragment, a reader without a named
	// place to start passes over fragments that start mid-GOP (keyframe.go).
	keys keySeek

	// ahead: archived rows that follow aheadAfter, fetched a page at a
	// time, so a reader going through the archive pays one catalog query
	// per page rather than one per fragment. Rows are added in number
	// order, so none can appear between them later.
	ahead      []*store.Fragment
	aheadAfter string
}

// archivePage is how many rows a reader fetches at once from the archive.
const archivePage = 64

// GetMedia validates a GetMedia request for stream st, admits it under the
// stream's limits and fixes where it starts, so that NOW means the moment
// of the request, not of the first read. Errors are API errors for before
// the response starts; the caller must Close the Reader.
func (s *Service) GetMedia(ctx context.Context, st *store.Stream, in *GetMediaInput) (*Reader, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	release, err := s.admit(st, opGetMedia)
	if err != nil {
		return nil, err
	}
	if s.opts.Feed != nil {
		unfollow, err := s.opts.Feed.Follow(ctx, st)
		if err != nil {
			release()
			return nil, fmt.Errorf("follow the live edge of %s: %w", st.Name, err)
		}
		admitted := release
		release = func() { unfollow(); admitted() }
	}
	r := &Reader{svc: s, stream: st, release: release, ls: s.hub.Stream(st.ID), limiter: s.sessionLimiter()}
	// The live handle exists now, so a later DeleteStream drops it and ends
	// the reader; one that came first is seen here.
	if _, err := s.catalog.StreamByARN(ctx, st.ARN); err != nil {
		release()
		if errors.Is(err, store.ErrNotFound) {
			return nil, api.StreamNotFound()
		}
		return nil, fmt.Errorf("look up stream %s: %w", st.Name, err)
	}
	if err := r.start(ctx, in.StartSelector); err != nil {
		release()
		return nil, fmt.Errorf("GetMedia start %s: %w", *in.StartSelector.StartSelectorType, err)
	}
	return r, nil
}

// Close releases the reader's connection slot.
func (r *Reader) Close() { r.release() }

// next is one fragment to send: from the hub or from the archive.
type next struct {
	live    *live.Fragment
	archive *store.Fragment
}

func (n *next) number() string {
	if n.live != nil {
		return n.live.Meta().Number
	}
	return n.archive.Number
}

// Run writes chunks to sink until the client goes (ctx), the stream is
// deleted, the service shuts down, or an in-band error ends the response.
func (r *Reader) Run(ctx context.Context, sink Sink) error {
	// Waits between chunks also end when the service shuts down.
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.svc.stopping, cancel)()
	m := r.svc.opts.Metrics
	m.Reader(1)
	defer m.Reader(-1)
	counted := &countingSink{Sink: sink}
	sink = counted
	defer func() { m.Sent(counted.take()) }()
	behind := false // counted among the readers behind the live window
	defer func() {
		if behind {
			m.Behind(-1)
		}
	}()
	n := r.first
	for {
		m.Sent(counted.take()) // per chunk, not per frame
		var err error
		if n == nil {
			if behind {
				// The next fragment may be a wait at the live edge away.
				behind = false
				m.Behind(-1)
			}
			if n, err = r.next(wait); err != nil {
				return r.end(sink, err)
			}
		}
		take := true
		if r.seeking {
			if take, err = r.startsHere(wait, n); err != nil {
				return r.end(sink, err)
			}
			r.seeking = !take
		}
		if take && r.keys.on {
			if take, err = r.startsWithKey(wait, n); err != nil {
				return r.end(sink, err)
			}
			r.keys.on = !take
		}
		if take {
			if n.archive != nil && !behind {
				behind = true
				m.Behind(1)
			}
			err = r.send(ctx, sink, n)
			switch {
			case errors.Is(err, errGone):
				if err := r.gone(ctx, n.archive); err != nil {
					return r.end(sink, err)
				}
				n = nil // deleted before it could be read: look again from r.last
				continue
			case errors.Is(err, errEmpty):
				r.fromArchive = false // last names a live fragment now
			case err != nil:
				return r.end(sink, err)
			default:
				r.sent, r.fromArchive = true, n.archive != nil
			}
		}
		r.last = n.number()
		n = nil
	}
}

// countingSink counts the bytes written through it.
type countingSink struct {
	Sink
	n int64
}

func (c *countingSink) Write(p []byte) (int, error) {
	n, err := c.Sink.Write(p)
	c.n += int64(n)
	return n, err
}

// take returns the bytes counted since the last take.
func (c *countingSink) take() int64 {
	n := c.n
	c.n = 0
	return n
}

// end finishes the response: in-band errors are written as an error chunk.
func (r *Reader) end(sink Sink, err error) error {
	var ib *inBand
	switch {
	case errors.As(err, &ib):
		r.svc.opts.Metrics.InBandError(ib.id)
		if ib.id == errIDInternal {
			r.svc.log.Error("GetMedia: the archive failed", "stream", r.stream.Name, "fragment", ib.number, "err", ib.err)
		}
		r.buf = mkv.AppendErrorChunk(r.buf[:0], nil, ib.number, ib.id, errCodes[ib.id])
		if _, werr := sink.Write(r.buf); werr == nil {
			sink.Flush()
		}
		return err
	case errors.Is(err, live.ErrDropped):
		return nil // the stream was deleted: the payload just ends
	case r.svc.stopping.Err() != nil && errors.Is(err, context.Canceled):
		return nil // shutting down between chunks
	}
	return err
}

// start works out where the selector points.
func (r *Reader) start(ctx context.Context, sel *StartSelector) error {
	t := *sel.StartSelectorType
	r.keys.on = t != SelectFragmentNumber && t != SelectContinuationToken
	switch t {
	case SelectEarliest:
		return nil
	case SelectFragmentNumber:
		r.last = normalizeNumber(*sel.AfterFragmentNumber)
		return nil
	case SelectContinuationToken:
		r.last = normalizeNumber(*sel.ContinuationToken)
		return nil
	case SelectNow:
		// Latest before Current: a fragment that begins in between is then
		// either Current or after Latest, never skipped.
		latest := r.ls.Latest()
		if cur := r.ls.Current(); cur != nil {
			r.first = &next{live: cur}
			return nil
		}
		r.afterLatest(latest)
		return nil
	}
	field := store.ProducerTime
	if *sel.StartSelectorType == SelectServerTimestamp {
		field = store.ServerTime
	}
	return r.startAt(ctx, sel.StartTimestamp.Time, field)
}

// afterLatest places the reader before the next fragment to begin after
// latest, the hub's latest fragment ("" if the hub has seen none).
func (r *Reader) afterLatest(latest string) {
	r.last = latest
	r.fromWindow = latest == ""
}

// startAt finds the first fragment, in time order, that holds t or starts
// after it: in the archive, then among the fragments of the live window;
// failing both, the reader waits for new fragments and takes the first
// that does.
func (r *Reader) startAt(ctx context.Context, t time.Time, field store.TimeField) error {
	r.seeking, r.at, r.field = true, t, field
	// A fragment holding t starts at most MaxFragmentDuration before it.
	q := store.FragmentQuery{Field: field, From: t.Add(-r.svc.opts.MaxFragmentDuration), To: farFuture, Limit: 100}
	for {
		rows, err := r.svc.catalog.QueryFragments(ctx, r.stream.ID, q)
		if err != nil {
			return fmt.Errorf("find the fragment at %v: %w", t, err)
		}
		for _, f := range rows {
			if startOf(f, field).Add(f.Duration).After(t) {
				r.first = r.preferLive(f)
				return nil
			}
		}
		if len(rows) < q.Limit {
			break
		}
		last := rows[len(rows)-1]
		q.After = &store.FragmentCursor{Time: startOf(last, field), Number: last.Number}
	}
	latest := r.ls.Latest() // before the scan, as for NOW
	for f, _ := r.ls.After(ctx, "", false); f != nil; f, _ = r.ls.After(ctx, f.Meta().Number, false) {
		if !r.endsBefore(f) {
			r.first = &next{live: f}
			return nil
		}
	}
	r.afterLatest(latest)
	return nil
}

func startOf(f *store.Fragment, field store.TimeField) time.Time {
	if field == store.ServerTime {
		return f.ServerTime
	}
	return f.ProducerTime
}

func (r *Reader) liveStart(f *live.Fragment) time.Time {
	if r.field == store.ServerTime {
		return f.Meta().ServerTime
	}
	return f.Meta().ProducerTime
}

// endsBefore reports whether live fragment f surely ends at or before r.at.
func (r *Reader) endsBefore(f *live.Fragment) bool {
	start := r.liveStart(f)
	if d, ok := f.Duration(); ok {
		return !start.Add(d).After(r.at)
	}
	return !start.Add(r.svc.opts.MaxFragmentDuration).After(r.at)
}

// startsHere reports whether a timestamp selector starts with n: n holds
// r.at or starts after it. A fragment still in progress that started
// before r.at holds it once it has been ingested for long enough to reach
// it; until then the reader follows it to its end to learn its duration.
func (r *Reader) startsHere(ctx context.Context, n *next) (bool, error) {
	if n.archive != nil {
		return startOf(n.archive, r.field).Add(n.archive.Duration).After(r.at), nil
	}
	f := n.live
	start := r.liveStart(f)
	if !start.Before(r.at) {
		return true, nil
	}
	if r.endsBefore(f) {
		return false, nil
	}
	if _, complete := f.Duration(); !complete && !start.Add(time.Since(f.Meta().ServerTime)).Before(r.at) {
		return true, nil
	}
	for off := 0; ; {
		p, done, err := f.Next(ctx, off)
		if err != nil {
			return false, err
		}
		off += len(p)
		if done {
			break
		}
	}
	d, complete := f.Duration()
	return complete && start.Add(d).After(r.at), nil
}

// readAhead is how many archived fragments after the one being sent a
// reader asks its Blobs to fetch ahead: enough to hide an object store's
// first-byte latency behind sending one fragment. None when the Blobs
// cannot (files answer at once).
func (s *Service) readAhead() int {
	if _, ok := s.blobs.(store.Prefetcher); ok {
		return 2
	}
	return 0
}

// prefetch asks the Blobs to fetch the payloads of archived fragments
// the reader sends next, unless the hub holds them.
func (r *Reader) prefetch(rows []*store.Fragment) {
	p, ok := r.svc.blobs.(store.Prefetcher)
	if !ok {
		return
	}
	for _, f := range rows {
		if r.ls.Get(f.Number) == nil {
			p.Prefetch(f.BlobKey, f.Size)
		}
	}
}

// preferLive returns the hub's copy of an archived fragment when it has one.
func (r *Reader) preferLive(f *store.Fragment) *next {
	if lf := r.ls.Get(f.Number); lf != nil {
		return &next{live: lf}
	}
	return &next{archive: f}
}

// next finds the fragment after r.last, waiting at the live edge.
//
// The hub links each fragment to the one begun before it (Prev), so a
// successor found there proves that nothing was skipped. Otherwise the
// archive has the successor, or the fragments between r.last and the
// window's oldest were either aborted or withdrawn (never whole or never
// stored: nothing to send) or lost: evicted from the window and not (or no
// longer) archived. The hub's eviction mark tells the two apart; it is read
// before the archive is, so a fragment evicted meanwhile was persisted
// before the archive query and is found there. A reader on its way through
// the archive may also be overtaken by a retention cut (checkArchiveGap).
func (r *Reader) next(ctx context.Context) (*next, error) {
	if r.fromWindow {
		r.fromWindow = false
		f, err := r.ls.After(ctx, "", true)
		if err != nil {
			return nil, err
		}
		return &next{live: f}, nil
	}
	for {
		f, err := r.ls.After(ctx, r.last, false)
		if err != nil {
			return nil, err
		}
		if f != nil && r.last != "" && f.Prev() == r.last {
			return &next{live: f}, nil
		}
		evicted := r.ls.Evicted()
		rows, err := r.archiveAfter(ctx)
		if err != nil {
			return nil, internal(ctx, r.last, fmt.Errorf("find the next fragment: %w", err))
		}
		if len(rows) > 0 {
			row := rows[0]
			if f != nil && f.Meta().Number < row.Number {
				// Older than anything archived: the archive lost it to a
				// retention cut while the hub still holds it.
				if err := r.checkArchiveGap(ctx, f.Meta().Number); err != nil {
					return nil, err
				}
				return &next{live: f}, nil
			}
			if err := r.checkArchiveGap(ctx, row.Number); err != nil {
				return nil, err
			}
			r.prefetch(rows[1:min(len(rows), 1+r.svc.readAhead())])
			r.ahead, r.aheadAfter = rows[1:], row.Number
			return r.preferLive(row), nil
		}
		if r.sent && evicted > r.last {
			return nil, r.lost("the fragments after it left the live window and are not archived")
		}
		// Nothing is archived after r.last: the reader has reached the end
		// of the archive, unless a retention cut deleted r.last and
		// everything after it. Once that is ruled out, the fragments to
		// come are new ones.
		if err := r.checkArchiveGap(ctx, ""); err != nil {
			return nil, err
		}
		r.fromArchive = false
		if f != nil {
			return &next{live: f}, nil
		}
		// Nothing after r.last yet: wait for a fragment to begin, then look
		// again from the top.
		if _, err := r.ls.After(ctx, r.last, true); err != nil {
			return nil, err
		}
	}
}

// archiveAfter returns the archived rows after r.last, at least one if
// there is one: the rest of the page fetched last while it goes on from
// r.last, else a new page.
func (r *Reader) archiveAfter(ctx context.Context) ([]*store.Fragment, error) {
	if len(r.ahead) > 0 && r.aheadAfter == r.last {
		return r.ahead, nil
	}
	rows, err := r.svc.catalog.FragmentsAfter(ctx, r.stream.ID, r.last, archivePage)
	if err != nil {
		return nil, err
	}
	r.ahead, r.aheadAfter = rows, r.last
	return rows, nil
}

// checkArchiveGap makes sure that the fragment numbered number ("" for
// none yet) follows r.last with nothing deleted in between: if r.last came
// from the archive and is no longer there, a retention cut has passed the
// reader, and unless number is the following one in its producer
// session's sequence, fragments between them may be gone too.
func (r *Reader) checkArchiveGap(ctx context.Context, number string) error {
	if !r.sent || !r.fromArchive || (number != "" && store.FragmentSequence(number) == store.FragmentSequence(r.last)+1) {
		return nil
	}
	rows, err := r.svc.catalog.Fragments(ctx, r.stream.ID, []string{r.last})
	if err != nil {
		return internal(ctx, r.last, fmt.Errorf("look up the last fragment sent: %w", err))
	}
	if len(rows) == 0 {
		return r.lost("it and the fragments after it were deleted by retention")
	}
	return nil
}

// gone handles an archived fragment whose data could not be found. If its
// row is gone too, retention (or DeleteStream) deleted it after the reader
// found it: a reader that has sent nothing yet goes on with what is left;
// one that has is told that it lost its place. A row without data is a
// broken archive.
func (r *Reader) gone(ctx context.Context, f *store.Fragment) error {
	rows, err := r.svc.catalog.Fragments(ctx, r.stream.ID, []string{f.Number})
	switch {
	case err != nil:
		return internal(ctx, f.Number, fmt.Errorf("look up a fragment without data: %w", err))
	case len(rows) > 0:
		return &inBand{id: errIDInternal, number: f.Number, err: errGone}
	case !r.sent:
		return nil
	}
	if _, err := r.ls.After(ctx, r.last, false); err != nil {
		return err // the stream was deleted
	}
	return r.lost("the next fragment was deleted by retention")
}

// lost is the in-band error of a reader whose next fragments are gone. It
// names the last fragment sent: a new GetMedia after it starts with the
// oldest fragment still there.
func (r *Reader) lost(why string) error {
	return &inBand{id: errIDNotFound, number: r.last, err: errors.New(why)}
}

// send writes one fragment as a chunk.
func (r *Reader) send(ctx context.Context, sink Sink, n *next) error {
	if n.live != nil {
		return r.sendLive(ctx, sink, n.live)
	}
	return r.sendArchived(ctx, sink, n.archive)
}

// sendLive writes a fragment from the hub, each piece as soon as the
// producer's bytes are there. A fragment the producer aborts ends where it
// stopped: its bytes are whole elements, so a Cluster of unknown size is
// closed by the end Tags like a complete one.
func (r *Reader) sendLive(ctx context.Context, sink Sink, f *live.Fragment) error {
	p, done, err := f.Next(ctx, 0)
	if err != nil {
		return err
	}
	if len(p) == 0 && done {
		return errEmpty
	}
	m := f.Meta()
	r.buf = append(r.buf[:0], m.Header...)
	r.buf = mkv.AppendStartTags(r.buf, m.Number, m.ServerTime.UnixMilli(), m.ProducerTime.UnixMilli())
	if err := r.write(ctx, sink, r.buf); err != nil {
		return err
	}
	off := 0
	for {
		if err := r.write(ctx, sink, p); err != nil {
			return err
		}
		off += len(p)
		if done {
			break
		}
		if p, done, err = f.Next(ctx, off); err != nil {
			return err
		}
	}
	if _, complete := f.Duration(); !complete && !clusterClosable(f, off) {
		return errTruncated
	}
	return r.endTags(ctx, sink, m.Number, m.ServerTime)
}

// clusterClosable reports whether the first n bytes of f hold its whole
// Cluster, or a Cluster of unknown size, which the next level-1 element
// (the end Tags) closes (RFC 8794 §6.2).
func clusterClosable(f *live.Fragment, n int) bool {
	er := mkv.NewReader(&fragmentReader{f: f, end: n})
	for {
		e, err := er.Next()
		if err != nil {
			return false
		}
		if e.ID == mkv.IDCluster {
			return e.Unknown() || e.DataOffset()+e.Size <= int64(n)
		}
	}
}

// fragmentReader reads the first end bytes of an ended live fragment.
type fragmentReader struct {
	f        *live.Fragment
	off, end int
}

func (fr *fragmentReader) Read(p []byte) (int, error) {
	if fr.off >= fr.end {
		return 0, io.EOF
	}
	view, _, err := fr.f.Next(context.Background(), fr.off)
	if err != nil {
		return 0, err
	}
	k := copy(p, view[:min(len(view), fr.end-fr.off)])
	fr.off += k
	return k, nil
}

// sendArchived writes a fragment from the archive; errGone if its header
// or payload is missing, before anything is written.
func (r *Reader) sendArchived(ctx context.Context, sink Sink, f *store.Fragment) error {
	header, err := r.svc.header(ctx, f.HeaderKey)
	if err != nil {
		return openFailed(ctx, f.Number, err)
	}
	blob, err := r.svc.blobs.Open(ctx, f.BlobKey)
	if err != nil {
		return openFailed(ctx, f.Number, err)
	}
	defer blob.Close()
	r.buf = append(r.buf[:0], header...)
	r.buf = mkv.AppendStartTags(r.buf, f.Number, f.ServerTime.UnixMilli(), f.ProducerTime.UnixMilli())
	endTags := func(b []byte) []byte {
		return mkv.AppendEndTags(b, max(time.Since(f.ServerTime).Milliseconds(), 0), f.Number)
	}
	if err := sendBlob(ctx, r.limiter, sink, r.buf, blob, f.Size, endTags); err != nil {
		var re *readError
		if errors.As(err, &re) {
			return internal(ctx, f.Number, fmt.Errorf("read fragment: %w", re.err))
		}
		return err
	}
	return nil
}

// openFailed classifies a failure to open an archived fragment's data.
func openFailed(ctx context.Context, number string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("fragment %s: %w", number, errGone)
	}
	return internal(ctx, number, fmt.Errorf("open fragment: %w", err))
}

// internal is the in-band 5000 for a storage failure, unless the failure
// is that ctx ended: then the client went, or the service is shutting
// down, and nobody should be told.
func internal(ctx context.Context, number string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &inBand{id: errIDInternal, number: number, err: err}
}

// endTags closes a chunk: how far it is behind now, and the token to go
// on from (its fragment number).
func (r *Reader) endTags(ctx context.Context, sink Sink, number string, server time.Time) error {
	behind := max(time.Since(server).Milliseconds(), 0)
	r.buf = mkv.AppendEndTags(r.buf[:0], behind, number)
	return r.write(ctx, sink, r.buf)
}

// write sends p within the session's byte rate and flushes it.
func (r *Reader) write(ctx context.Context, sink Sink, p []byte) error {
	return pace(ctx, r.limiter, sink, p)
}

// sessionLimiter returns the byte-rate limiter of one read session.
func (s *Service) sessionLimiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(s.opts.BytesPerSecond), max(1, min(int(s.opts.BytesPerSecond), maxPiece)))
}

// pace sends p within lim's byte rate and flushes it.
func pace(ctx context.Context, lim *rate.Limiter, sink Sink, p []byte) error {
	for len(p) > 0 {
		k := min(len(p), lim.Burst())
		if err := lim.WaitN(ctx, k); err != nil {
			return err
		}
		if _, err := sink.Write(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return sink.Flush()
}

// readError is a failure to read stored data, as opposed to a failure to
// send it.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

// maxPiece bounds the buffer an archived chunk is sent from, and so a
// reader's memory: a fragment that does not fit (2 s fragments past about
// 4 Mbit/s) goes out in several pieces. It is also the largest burst of a
// session's byte rate, so that a piece is one write.
const maxPiece = 1 << 20

// pieces are the buffers of sendBlob, shared by the readers so that one
// waiting at the live edge holds none.
var pieces sync.Pool

// sendBlob sends, within lim's byte rate, a chunk of head, what blob
// yields (size bytes, as the catalog has it) and what tail appends (nil
// for nothing). Blob bytes are read into the buffer right after head, so a
// fragment that fits costs one read and one write of the whole chunk
// rather than a write per piece read; a read failure is a *readError.
func sendBlob(ctx context.Context, lim *rate.Limiter, sink Sink, head []byte, blob io.Reader, size int64, tail func([]byte) []byte) error {
	need := int(min(int64(len(head))+max(size, 0)+endTagsRoom, maxPiece))
	bp, _ := pieces.Get().(*[]byte)
	if bp == nil || cap(*bp) < need {
		b := make([]byte, 0, need)
		bp = &b
	}
	defer pieces.Put(bp)
	buf := append((*bp)[:0], head...)
	for {
		if len(buf) == cap(buf) {
			if err := pace(ctx, lim, sink, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		k, err := blob.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			break
		}
		if err != nil {
			if perr := pace(ctx, lim, sink, buf); perr != nil {
				return perr
			}
			return &readError{err}
		}
	}
	if tail != nil {
		if cap(buf)-len(buf) < endTagsRoom {
			if err := pace(ctx, lim, sink, buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = tail(buf)
	}
	return pace(ctx, lim, sink, buf)
}

// endTagsRoom is room enough for a chunk's end Tags, so that appending
// them does not grow the buffer.
const endTagsRoom = 256

// normalizeNumber makes a client's fragment number comparable with stored
// ones as a string: 47 digits, the width of every number openkvs makes.
func normalizeNumber(n string) string {
	n = strings.TrimLeft(n, "0")
	switch {
	case len(n) > 47:
		return strings.Repeat("9", 47) // after every fragment there is
	case len(n) < 47:
		return strings.Repeat("0", 47-len(n)) + n
	}
	return n
}
