package streaming

import (
	"context"
	"sync"
	"time"

	"github.com/openkvs/openkvs/store"
)

// entry is one fragment of a session's playlist.
type entry struct {
	f     *store.Fragment
	index int64 // session index: HLS media sequence number, DASH $Number$
	disc  bool  // a discontinuity precedes it
	init  int   // its init segment's SequenceNumber: which distinct header
}

// session is the state of one streaming session on this node: which fragments
// it lists and how they are numbered. It can be rebuilt from the token: an
// ON_DEMAND session exactly, a live one from the stream's present.
type session struct {
	tok *Token
	limiters

	mu       sync.Mutex
	entries  []entry // listed, oldest first
	slidDisc int64   // discontinuities that slid out of the window
	next     int64   // index of the next fragment
	last     *store.Fragment
	headers  []string   // header blob key of each init SequenceNumber
	sums     [][32]byte // their contents' hashes: identical headers share an init
	filled   bool       // ON_DEMAND: the range was read; LIVE_REPLAY: End was reached
	due      time.Time  // LIVE_REPLAY: when the next fragment is added
	pending  []*store.Fragment
}

func newSession(tok *Token, o Options) *session {
	return &session{tok: tok, limiters: newLimiters(o), due: tok.Created}
}

// fragmentTime is a fragment's start on the session's timeline.
func (sess *session) fragmentTime(f *store.Fragment) time.Time {
	return sess.pick(f.ProducerTime, f.ServerTime)
}

// pick returns the timestamp of the session's selector.
func (sess *session) pick(producer, server time.Time) time.Time {
	if sess.tok.Field == store.ProducerTime {
		return producer
	}
	return server
}

// ended reports whether the playlist is complete.
func (sess *session) ended() bool {
	switch sess.tok.Mode {
	case ModeOnDemand:
		return true
	case ModeLiveReplay:
		return sess.filled && len(sess.pending) == 0
	}
	return false
}

// refresh brings sess's window up to date with the catalog.
func (s *Service) refresh(ctx context.Context, sess *session) error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return s.update(ctx, sess)
}

// update is refresh with sess.mu held.
func (s *Service) update(ctx context.Context, sess *session) error {
	tok := sess.tok
	switch tok.Mode {
	case ModeOnDemand:
		if sess.filled {
			return nil
		}
		rows, err := s.catalog.QueryFragments(ctx, tok.Stream, store.FragmentQuery{Field: tok.Field, From: tok.Start, To: tok.End, Limit: tok.MaxResults})
		if err != nil {
			return err
		}
		for _, f := range rows {
			if err := s.add(ctx, sess, f); err != nil {
				return err
			}
		}
		sess.filled = true
	case ModeLive:
		var rows []*store.Fragment
		var err error
		if sess.last == nil {
			rows, err = s.catalog.LatestFragments(ctx, tok.Stream, tok.MaxResults)
		} else {
			rows, err = s.catalog.FragmentsAfter(ctx, tok.Stream, sess.last.Number, 1000)
		}
		if err != nil {
			return err
		}
		for _, f := range rows {
			// A fragment older than the newest listed is never added
			// (kvs-playback.md §2).
			if sess.last != nil && sess.fragmentTime(f).Before(sess.fragmentTime(sess.last)) {
				continue
			}
			if err := s.add(ctx, sess, f); err != nil {
				return err
			}
		}
	case ModeLiveReplay:
		now := s.opts.Now()
		for !sess.due.After(now) {
			if len(sess.pending) == 0 && !sess.filled {
				if err := s.readReplay(ctx, sess); err != nil {
					return err
				}
			}
			if len(sess.pending) == 0 {
				break
			}
			f := sess.pending[0]
			sess.pending = sess.pending[1:]
			if err := s.add(ctx, sess, f); err != nil {
				return err
			}
			// The next fragment is added once this one has played.
			sess.due = sess.due.Add(max(f.Duration, time.Millisecond))
			// Read ahead now, so the playlist ends with its last fragment.
			if len(sess.pending) == 0 && !sess.filled {
				if err := s.readReplay(ctx, sess); err != nil {
					return err
				}
			}
		}
	}
	if over := len(sess.entries) - tok.MaxResults; over > 0 {
		for _, e := range sess.entries[:over] {
			if e.disc {
				sess.slidDisc++
			}
		}
		sess.entries = append(sess.entries[:0], sess.entries[over:]...)
	}
	return nil
}

// replayBatch is how many fragments a LIVE_REPLAY session reads ahead.
const replayBatch = 100

// readReplay reads the next fragments of a LIVE_REPLAY range.
func (s *Service) readReplay(ctx context.Context, sess *session) error {
	tok := sess.tok
	q := store.FragmentQuery{Field: tok.Field, From: tok.Start, To: tok.End, Limit: replayBatch}
	if q.To.IsZero() {
		q.To = time.UnixMilli(1 << 52) // no end: every fragment from Start on
	}
	if l := sess.last; l != nil {
		q.After = &store.FragmentCursor{Time: sess.fragmentTime(l), Number: l.Number}
	}
	rows, err := s.catalog.QueryFragments(ctx, tok.Stream, q)
	if err != nil {
		return err
	}
	sess.pending = rows
	// Without an End, the range grows with the stream; with one that has
	// passed, nothing more can come.
	if len(rows) == 0 && !tok.End.IsZero() && s.opts.Now().After(tok.End) {
		sess.filled = true
	}
	return nil
}

// add appends f to the window, numbering it and marking discontinuities and
// changes of codec setup.
func (s *Service) add(ctx context.Context, sess *session, f *store.Fragment) error {
	h, err := s.header(ctx, f.HeaderKey)
	if err != nil {
		return err
	}
	init := len(sess.sums) - 1
	if init < 0 || sess.sums[init] != h.sum {
		sess.headers, sess.sums = append(sess.headers, f.HeaderKey), append(sess.sums, h.sum)
		init++
	}
	prev := sess.last
	sess.last = f
	// Of fragments with the same producer timestamp only the one with the
	// larger number is listed (kvs-playback.md §2).
	if prev != nil && sess.tok.Field == store.ProducerTime && f.ProducerTime.Equal(prev.ProducerTime) &&
		len(sess.entries) > 0 && sess.entries[len(sess.entries)-1].f == prev {
		sess.entries[len(sess.entries)-1].f = f
		return nil
	}
	e := entry{f: f, index: sess.next, init: init}
	sess.next++
	switch sess.tok.Discontinuity {
	case DiscontinuityAlways:
		e.disc = true
	case DiscontinuityOnGap:
		e.disc = prev != nil && gap(sess.fragmentTime(f), sess.fragmentTime(prev).Add(prev.Duration))
	}
	// A new codec setup needs a new init segment, which HLS may only
	// switch to at a discontinuity.
	if prev != nil && init > 0 && len(sess.entries) > 0 && sess.entries[len(sess.entries)-1].init != init {
		e.disc = true
	}
	sess.entries = append(sess.entries, e)
	return nil
}

// lookup returns the listed entry with a session index, for DASH $Number$ URLs.
func (sess *session) lookup(index int64) (entry, bool) {
	for _, e := range sess.entries {
		if e.index == index {
			return e, true
		}
	}
	return entry{}, false
}

// gap reports whether a fragment starting at start, after one that ended at
// end, is a discontinuity: a gap or overlap of more than 50 ms.
func gap(start, end time.Time) bool {
	d := start.Sub(end)
	return d > discontinuityGap || d < -discontinuityGap
}
