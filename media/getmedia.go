package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/time/rate"

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

// Reader is one admitted GetMedia call.
type Reader struct {
	svc     *Service
	stream  *store.Stream
	sel     StartSelector
	release func()
	limiter *rate.Limiter
	buf     []byte
	last    string // number of the last fragment sent
}

// GetMedia validates a GetMedia request for stream st and admits it under
// the stream's limits. Errors are API errors for before the response
// starts; the caller must Close the Reader.
func (s *Service) GetMedia(ctx context.Context, st *store.Stream, in *GetMediaInput) (*Reader, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	release, err := s.admit(st.ID)
	if err != nil {
		return nil, err
	}
	burst := int(s.opts.BytesPerSecond)
	return &Reader{svc: s, stream: st, sel: *in.StartSelector, release: release,
		limiter: rate.NewLimiter(rate.Limit(s.opts.BytesPerSecond), min(burst, 1<<20))}, nil
}

// Close releases the reader's connection slot.
func (r *Reader) Close() { r.release() }

// position is where the reader goes next: a fragment to send first, or
// the number after which to go on.
type position struct {
	first     *next
	after     string
	notBefore time.Time // with timestamp selectors in the live phase: skip earlier fragments
	field     store.TimeField
}

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
// deleted, or an in-band error ends the response.
func (r *Reader) Run(ctx context.Context, sink Sink) error {
	ls := r.svc.hub.Stream(r.stream.ID)
	pos, err := r.start(ctx, ls)
	if err != nil {
		return r.end(sink, err)
	}
	n := pos.first
	r.last = pos.after
	for {
		if n == nil {
			if n, err = r.next(ctx, ls); err != nil {
				return r.end(sink, err)
			}
		}
		if pos.notBefore.IsZero() || !r.startTime(n, pos.field).Before(pos.notBefore) {
			if err := r.send(ctx, sink, n); err != nil {
				return r.end(sink, err)
			}
			pos.notBefore = time.Time{}
		}
		r.last = n.number()
		n = nil
	}
}

// end finishes the response: in-band errors are written as an error chunk.
func (r *Reader) end(sink Sink, err error) error {
	var ib *inBand
	if errors.As(err, &ib) {
		r.buf = mkv.AppendErrorChunk(r.buf[:0], nil, ib.number, ib.id, errCodes[ib.id])
		sink.Write(r.buf)
		sink.Flush()
	}
	if errors.Is(err, live.ErrDropped) {
		return nil // the stream was deleted: the payload just ends
	}
	return err
}

func (r *Reader) startTime(n *next, field store.TimeField) time.Time {
	if n.live != nil {
		m := n.live.Meta()
		if field == store.ServerTime {
			return m.ServerTime
		}
		return m.ProducerTime
	}
	if field == store.ServerTime {
		return n.archive.ServerTime
	}
	return n.archive.ProducerTime
}

// start works out where the selector points.
func (r *Reader) start(ctx context.Context, ls *live.Stream) (position, error) {
	switch *r.sel.StartSelectorType {
	case SelectEarliest:
		return position{}, nil
	case SelectFragmentNumber:
		return position{after: normalizeNumber(*r.sel.AfterFragmentNumber)}, nil
	case SelectContinuationToken:
		return position{after: normalizeNumber(*r.sel.ContinuationToken)}, nil
	case SelectNow:
		if cur := ls.Current(); cur != nil {
			return position{first: &next{live: cur}}, nil
		}
		if latest := ls.Latest(); latest != "" {
			return position{after: latest}, nil
		}
		// Nothing ingested since the server started: the first fragment to begin.
		f, err := ls.After(ctx, "", true)
		if err != nil {
			return position{}, err
		}
		return position{first: &next{live: f}}, nil
	}
	field := store.ProducerTime
	if *r.sel.StartSelectorType == SelectServerTimestamp {
		field = store.ServerTime
	}
	return r.startAt(ctx, ls, r.sel.StartTimestamp.Time, field)
}

// startAt finds the fragment holding t, else the first starting after it,
// in the archive and then in the live window; failing both, it waits for
// new fragments that start at or after t.
func (r *Reader) startAt(ctx context.Context, ls *live.Stream, t time.Time, field store.TimeField) (position, error) {
	rows, err := r.svc.catalog.QueryFragments(ctx, r.stream.ID, store.FragmentQuery{
		Field: field, From: t.Add(-r.svc.opts.MaxFragmentDuration), To: time.UnixMilli(1 << 52), Limit: 100})
	if err != nil {
		return position{}, &inBand{id: errIDInternal, err: err}
	}
	for _, f := range rows {
		start := f.ProducerTime
		if field == store.ServerTime {
			start = f.ServerTime
		}
		if !start.Add(f.Duration).After(t) {
			continue
		}
		return position{first: r.preferLive(ls, f)}, nil
	}
	for f, _ := ls.After(ctx, "", false); f != nil; f, _ = ls.After(ctx, f.Meta().Number, false) {
		start := r.startTime(&next{live: f}, field)
		switch d, complete := f.Duration(); {
		case !start.Before(t): // starts at or after t
		case complete && start.Add(d).After(t): // holds t
		case !complete && start.Add(r.svc.opts.MaxFragmentDuration).After(t): // in progress: may hold t
		default:
			continue
		}
		return position{first: &next{live: f}}, nil
	}
	return position{after: ls.Latest(), notBefore: t, field: field}, nil
}

// preferLive returns the hub's copy of an archived fragment when it has one.
func (r *Reader) preferLive(ls *live.Stream, f *store.Fragment) *next {
	if lf := ls.Get(f.Number); lf != nil {
		return &next{live: lf}
	}
	return &next{archive: f}
}

// next finds the fragment after r.last, waiting at the live edge.
func (r *Reader) next(ctx context.Context, ls *live.Stream) (*next, error) {
	for {
		if r.last != "" && ls.Get(r.last) != nil {
			// At the live edge: the successor is the next fragment begun.
			f, err := ls.After(ctx, r.last, true)
			if err != nil {
				return nil, err
			}
			if f.Prev() == r.last {
				return &next{live: f}, nil
			}
		}
		rows, err := r.svc.catalog.FragmentsAfter(ctx, r.stream.ID, r.last, 1)
		if err != nil {
			return nil, &inBand{id: errIDInternal, number: r.last, err: err}
		}
		if len(rows) == 1 {
			return r.preferLive(ls, rows[0]), nil
		}
		f, err := ls.After(ctx, r.last, false)
		if err != nil {
			return nil, err
		}
		if f == nil {
			// Wait until a fragment begins, then look again from the top:
			// it may have been archived and evicted meanwhile.
			if _, err := ls.After(ctx, r.last, true); err != nil {
				return nil, err
			}
			continue
		}
		// Fragments between r.last and f that are in neither the archive
		// nor the window were lost with the window of a stream that keeps
		// no data: the reader's position expired.
		if r.last != "" && f.Prev() != "" && f.Prev() != r.last && r.stream.RetentionHours == 0 {
			return nil, &inBand{id: errIDNotFound, number: r.last, err: errors.New("the fragments after it left the live window")}
		}
		return &next{live: f}, nil
	}
}

// send writes one fragment as a chunk.
func (r *Reader) send(ctx context.Context, sink Sink, n *next) error {
	if n.live != nil {
		return r.sendLive(ctx, sink, n.live)
	}
	return r.sendArchived(ctx, sink, n.archive)
}

func (r *Reader) sendLive(ctx context.Context, sink Sink, f *live.Fragment) error {
	m := f.Meta()
	r.buf = append(r.buf[:0], m.Header...)
	r.buf = mkv.AppendStartTags(r.buf, m.Number, m.ServerTime.UnixMilli(), m.ProducerTime.UnixMilli())
	if err := r.write(ctx, sink, r.buf); err != nil {
		return err
	}
	for off := 0; ; {
		p, done, err := f.Next(ctx, off)
		if err != nil {
			return err
		}
		if len(p) > 0 {
			if err := r.write(ctx, sink, p); err != nil {
				return err
			}
			off += len(p)
		}
		if done {
			break
		}
	}
	return r.endTags(ctx, sink, m.Number, m.ServerTime)
}

func (r *Reader) sendArchived(ctx context.Context, sink Sink, f *store.Fragment) error {
	header, err := r.svc.header(ctx, f.HeaderKey)
	if err != nil {
		return r.missing(f.Number, err)
	}
	blob, err := r.svc.blobs.Open(ctx, f.BlobKey)
	if err != nil {
		return r.missing(f.Number, err)
	}
	defer blob.Close()
	r.buf = append(r.buf[:0], header...)
	r.buf = mkv.AppendStartTags(r.buf, f.Number, f.ServerTime.UnixMilli(), f.ProducerTime.UnixMilli())
	if err := r.write(ctx, sink, r.buf); err != nil {
		return err
	}
	chunk := make([]byte, 256<<10)
	for {
		k, err := blob.Read(chunk)
		if k > 0 {
			if err := r.write(ctx, sink, chunk[:k]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &inBand{id: errIDInternal, number: f.Number, err: err}
		}
	}
	return r.endTags(ctx, sink, f.Number, f.ServerTime)
}

// missing turns a failed archive read into its in-band error.
func (r *Reader) missing(number string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return &inBand{id: errIDNotFound, number: number, err: err}
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
	for len(p) > 0 {
		k := min(len(p), r.limiter.Burst())
		if err := r.limiter.WaitN(ctx, k); err != nil {
			return err
		}
		if _, err := sink.Write(p[:k]); err != nil {
			return err
		}
		p = p[k:]
	}
	return sink.Flush()
}

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
