package streaming

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/playback"
	"github.com/openkvs/openkvs/store"
)

// Low-latency HLS (RFC 8216bis §4.4.4.9, §4.4.5.2, §6.2.5.2): LIVE fMP4 sessions
// also list the fragment being ingested as parts of about partTarget, cut at
// frame boundaries from the bytes the live hub holds, with a preload hint for
// the next part and blocking playlist reloads. The tags are ignored by players
// that do not know them, which play the same playlist as plain HLS, so it is
// always on rather than an option.
const (
	partTarget   = 200 * time.Millisecond
	partHoldBack = 3 * partTarget // RFC 8216bis: at least three part targets
	// blockLimit bounds how long a blocking request waits for its part or
	// playlist: three target durations of 2 s fragments.
	blockLimit = 6 * time.Second
	// partedEntries is how many of the newest listed fragments keep their
	// parts in the playlist, so players that loaded parts find them.
	partedEntries = 2
)

// lowLatency reports whether the session's media playlists carry parts.
func (s *Service) lowLatency(sess *session) bool {
	return s.hub != nil && sess.tok.Mode == ModeLive && sess.tok.Kind == kindHLS && sess.tok.Container == ContainerFMP4
}

// hubFragment is a fragment as the live hub holds it now.
type hubFragment struct {
	live     *live.Fragment
	meta     live.Meta
	data     []byte // the bytes ingested so far
	complete bool
	duration time.Duration // when complete
	parsed   *playback.Fragment
}

// snapshot returns what the hub has of f now, parsed. A complete fragment
// never changes: it is parsed once and kept, since every playlist render of a
// low-latency session (blocking reloads wake at each frame) asks again for
// the newest ones.
func (s *Service) snapshot(f *live.Fragment) (*hubFragment, error) {
	number := f.Meta().Number
	s.mu.Lock()
	h := s.hubCache[number]
	s.mu.Unlock()
	if h != nil && h.live == f {
		return h, nil
	}
	h, err := readHub(f)
	if err != nil || !h.complete {
		return h, err
	}
	s.mu.Lock()
	if len(s.hubCache) >= maxHubCache {
		clear(s.hubCache)
	}
	s.hubCache[number] = h
	s.mu.Unlock()
	return h, nil
}

// maxHubCache bounds the complete hub fragments kept parsed: a few per
// stream with low-latency viewers.
const maxHubCache = 256

// readHub copies what the hub has of f without waiting, and parses it.
func readHub(f *live.Fragment) (*hubFragment, error) {
	h := &hubFragment{live: f, meta: f.Meta()}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		p, done, err := f.Next(cancelled, len(h.data))
		h.data = append(h.data, p...)
		if err != nil || done {
			break
		}
	}
	h.duration, h.complete = f.Duration()
	var err error
	if h.complete {
		h.parsed, err = playback.Parse(h.meta.Header, h.data)
	} else {
		h.parsed, err = playback.ParsePrefix(h.meta.Header, h.data)
	}
	if err != nil {
		return nil, playback.APIError(fmt.Errorf("fragment %s: %w", h.meta.Number, err))
	}
	return h, nil
}

// parts returns the track's parts in the hub's fragment.
func (h *hubFragment) parts(track uint64) ([]playback.Part, error) {
	t, err := h.parsed.Track(track)
	if err != nil {
		return nil, err
	}
	return t.Parts(partTarget, h.complete, h.duration), nil
}

// tail returns the fragments the hub holds beyond the session's newest listed
// one: complete ones the catalog has not listed yet, then the one in progress.
// It stops at a fragment with another codec setup, which waits for the catalog.
// sess.mu must be held.
//
// A fragment may leave the hub between the session's catalog read and this
// hub read, and then be in neither: the playlist would lose its newest
// fragment until the next reload. The hub lets an archived fragment go only
// once it is persisted, so when one newer than the newest listed has left,
// the window is brought up to date from the catalog again and the hub read
// once more.
func (s *Service) tail(ctx context.Context, sess *session) ([]*hubFragment, error) {
	stream := s.hub.Stream(sess.tok.Stream)
	out, err := s.hubTail(sess, stream)
	if ev := stream.Evicted(); err != nil || ev == "" || sess.last != nil && ev <= sess.last.Number {
		return out, err
	}
	if err := s.update(ctx, sess); err != nil {
		return nil, err
	}
	return s.hubTail(sess, stream)
}

// hubTail is tail from what the session lists now.
func (s *Service) hubTail(sess *session, stream *live.Stream) ([]*hubFragment, error) {
	after := ""
	if sess.last != nil {
		after = sess.last.Number
	}
	lastSum := sess.sums[len(sess.sums)-1]
	var out []*hubFragment
	for {
		f, err := stream.After(context.Background(), after, false)
		if err != nil || f == nil {
			return out, nil
		}
		after = f.Meta().Number
		if _, complete := f.Duration(); !complete && stream.Current() != f {
			continue // aborted: never archived, never listed
		}
		if sha256.Sum256(f.Meta().Header) != lastSum {
			return out, nil
		}
		h, err := s.snapshot(f)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
		if !h.complete {
			// The one in progress ends the tail, even if the next one
			// began meanwhile: only a playlist's last fragment may be
			// partial.
			return out, nil
		}
	}
}

// writeParts lists a fragment's parts of the track.
func writeParts(b *strings.Builder, parts []playback.Part, number, q string, track uint64) {
	for i, p := range parts {
		if !p.Final {
			break
		}
		fmt.Fprintf(b, "#EXT-X-PART:DURATION=%s,URI=\"%s\"", seconds(p.Duration), partURI(number, q, track, i))
		if p.Independent {
			b.WriteString(",INDEPENDENT=YES")
		}
		b.WriteString("\n")
	}
}

func partURI(number, q string, track uint64, part int) string {
	return fmt.Sprintf("getMP4MediaFragment.mp4?FragmentNumber=%s&%s&TrackNumber=%d&PartNumber=%d", number, q, track, part)
}

// finalParts counts the parts no more frames will join.
func finalParts(parts []playback.Part) int {
	n := 0
	for _, p := range parts {
		if p.Final {
			n++
		}
	}
	return n
}

// Blocking is a playlist request's _HLS_msn and _HLS_part (-1 when absent).
type Blocking struct {
	MSN, Part int64
}

// edge is where a rendered low-latency playlist ends.
type edge struct {
	msn   int64 // the newest fragment listed, whole or in parts
	parts int   // its final parts, -1 when it is listed whole
}

// reaches reports whether a playlist ending at e satisfies the blocking request.
func (e edge) reaches(b Blocking) bool {
	switch {
	case e.msn > b.MSN:
		return true
	case e.msn < b.MSN:
		return false
	case b.Part < 0:
		return e.parts < 0
	}
	return e.parts < 0 || int64(e.parts) > b.Part
}

// waitChange waits until the stream's hub changes after the snapshot: a new
// fragment begins, or the one in progress grows or ends.
func (s *Service) waitChange(ctx context.Context, sess *session, tail []*hubFragment) {
	stream := s.hub.Stream(sess.tok.Stream)
	if n := len(tail); n > 0 && !tail[n-1].complete {
		cur := tail[n-1]
		cur.live.Next(ctx, len(cur.data))
		return
	}
	after := stream.Latest()
	stream.After(ctx, after, true)
}

// hubSegment renders a whole fragment the hub holds but the catalog does not
// list yet, or one of its parts (part >= 0), waiting for the part to be final.
func (s *Service) hubSegment(ctx context.Context, sess *session, number string, track uint64, part int) ([]byte, error) {
	f := s.hub.Stream(sess.tok.Stream).Get(number)
	if f == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, blockLimit)
	defer cancel()
	for {
		h, err := s.snapshot(f)
		if err != nil {
			return nil, err
		}
		start := sinceEpoch(sess.pick(h.meta.ProducerTime, h.meta.ServerTime))
		seq := uint32(store.FragmentSequence(number))
		if part < 0 {
			if !h.complete {
				return nil, api.ResourceNotFound("Fragment %s is still being ingested: ask for its parts.", number)
			}
			body, err := h.parsed.MediaSegment(track, seq, start, h.duration)
			return body, playback.APIError(err)
		}
		parts, err := h.parts(track)
		if err != nil {
			return nil, playback.APIError(err)
		}
		if part < len(parts) && parts[part].Final {
			body, err := h.parsed.PartSegment(track, seq, start, parts[part])
			return body, playback.APIError(err)
		}
		if h.complete {
			return nil, api.ResourceNotFound("Fragment %s has no part %d.", number, part)
		}
		p, done, err := f.Next(ctx, len(h.data))
		if err != nil {
			return nil, api.ResourceNotFound("Part %d of fragment %s is not ready.", part, number)
		}
		if _, complete := f.Duration(); done && len(p) == 0 && !complete {
			return nil, api.ResourceNotFound("Fragment %s ended before its part %d.", number, part)
		}
	}
}

// NextPart serves the first part of the first fragment after the one numbered
// after, the preload hint of a playlist that ends between fragments; it waits
// for that fragment to begin and its part to be complete.
func (s *Service) NextPart(ctx context.Context, token, after string, track uint64) (*Segment, error) {
	sess, err := s.open(ctx, token, kindHLS, func(l limiters) error { return allow(l.part, "part") })
	if err != nil {
		return nil, err
	}
	if !s.lowLatency(sess) {
		return nil, api.InvalidArgument("PartAfter is for LIVE sessions of fragmented MP4.")
	}
	wait, cancel := context.WithTimeout(ctx, blockLimit)
	defer cancel()
	f, err := s.hub.Stream(sess.tok.Stream).After(wait, after, true)
	if err != nil {
		return nil, api.ResourceNotFound("No fragment began after %s.", after)
	}
	number := f.Meta().Number
	body, err := s.hubSegment(ctx, sess, number, track, 0)
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, api.ResourceNotFound("Fragment %s left the live hub.", number)
	}
	return &Segment{Body: body, ETag: fmt.Sprintf(`"m-%s-%d-%d-0"`, number, sess.tok.Field, track)}, nil
}
