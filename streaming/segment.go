package streaming

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/playback"
	"github.com/openkvs/openkvs/store"
)

// Segment is a rendered init or media segment; it never changes, so it may be
// cached under its ETag.
type Segment struct {
	Body []byte
	ETag string
}

// open returns the session of a playback URL's token after its rate check.
func (s *Service) open(ctx context.Context, token string, kind byte, check func(limiters) error) (*session, error) {
	sess, err := s.session(token)
	if err != nil {
		return nil, err
	}
	if sess.tok.Kind != kind {
		return nil, api.SessionTokenRejected("Streaming session token is not valid for this resource.")
	}
	if err := check(sess.limiters); err != nil {
		return nil, err
	}
	return sess, ctx.Err()
}

// InitSegment renders the fMP4 init segment of a track, for the codec setup
// with the given SequenceNumber (kvs-protocol.md §7.5).
func (s *Service) InitSegment(ctx context.Context, token string, track uint64, seq int, dash bool) (*Segment, error) {
	kind := kindHLS
	if dash {
		kind = kindDASH
	}
	sess, err := s.open(ctx, token, kind, func(l limiters) error { return allow(l.init, "init fragment") })
	if err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, sess); err != nil {
		return nil, err
	}
	sess.mu.Lock()
	var key string
	if seq >= 0 && seq < len(sess.headers) {
		key = sess.headers[seq]
	}
	sess.mu.Unlock()
	if key == "" {
		return nil, api.ResourceNotFound("No codec setup %d in this streaming session.", seq)
	}
	h, err := s.header(ctx, key)
	if err != nil {
		return nil, err
	}
	body, err := h.info.InitSegment(track)
	if err != nil {
		return nil, playback.APIError(err)
	}
	return &Segment{Body: body, ETag: fmt.Sprintf(`"i-%x-%d"`, h.sum[:8], track)}, nil
}

// MediaSegment renders one track of a fragment as an fMP4 media segment, or
// (part >= 0, low-latency HLS) one of its parts. The fragment is named by its
// number, or (DASH templates) by its session index. A fragment the catalog does
// not list yet is served from the live hub.
func (s *Service) MediaSegment(ctx context.Context, token, fragment string, track uint64, dash bool, part int) (*Segment, error) {
	kind := kindHLS
	if dash {
		kind = kindDASH
	}
	check := func(l limiters) error { return allow(l.fragment, "media fragment") }
	if part >= 0 {
		check = func(l limiters) error { return allow(l.part, "part") }
	}
	sess, err := s.open(ctx, token, kind, check)
	if err != nil {
		return nil, err
	}
	if part >= 0 && !s.lowLatency(sess) {
		return nil, api.InvalidArgument("PartNumber is for LIVE sessions of fragmented MP4.")
	}
	etag := fmt.Sprintf(`"m-%s-%d-%d-%d"`, fragment, sess.tok.Field, track, part)
	if s.lowLatency(sess) && len(fragment) == numberDigits {
		// The newest fragments are in the hub, maybe not yet in the catalog.
		body, err := s.hubSegment(ctx, sess, fragment, track, part)
		if err != nil || body != nil {
			return &Segment{Body: body, ETag: etag}, err
		}
	}
	f, err := s.resolve(ctx, sess, fragment)
	if err != nil {
		return nil, err
	}
	frag, err := s.Fragment(ctx, f)
	if err != nil {
		return nil, err
	}
	start, seq := sinceEpoch(sess.fragmentTime(f)), uint32(store.FragmentSequence(f.Number))
	var body []byte
	if part < 0 {
		body, err = frag.MediaSegment(track, seq, start, f.Duration)
	} else {
		body, err = archivedPart(frag, track, seq, start, f.Duration, part)
	}
	if err != nil {
		return nil, playback.APIError(err)
	}
	return &Segment{Body: body, ETag: fmt.Sprintf(`"m-%s-%d-%d-%d"`, f.Number, sess.tok.Field, track, part)}, nil
}

// archivedPart renders a part of a fragment the hub no longer holds.
func archivedPart(frag *playback.Fragment, track uint64, seq uint32, start, duration time.Duration, part int) ([]byte, error) {
	t, err := frag.Track(track)
	if err != nil {
		return nil, err
	}
	parts := t.Parts(partTarget, true, duration)
	if part >= len(parts) {
		return nil, api.ResourceNotFound("The fragment has no part %d.", part)
	}
	return frag.PartSegment(track, seq, start, parts[part])
}

// TSFragment renders a fragment, every track, as one MPEG-TS segment.
func (s *Service) TSFragment(ctx context.Context, token, fragment string) (*Segment, error) {
	sess, err := s.open(ctx, token, kindHLS, func(l limiters) error { return allow(l.fragment, "TS fragment") })
	if err != nil {
		return nil, err
	}
	f, err := s.resolve(ctx, sess, fragment)
	if err != nil {
		return nil, err
	}
	frag, err := s.Fragment(ctx, f)
	if err != nil {
		return nil, err
	}
	body, err := frag.TS(sinceEpoch(sess.fragmentTime(f)), f.Duration)
	if err != nil {
		return nil, playback.APIError(err)
	}
	return &Segment{Body: body, ETag: fmt.Sprintf(`"t-%s-%d"`, f.Number, sess.tok.Field)}, nil
}

// sinceEpoch places a fragment on every session's timeline: time since the
// Unix epoch, so segments line up across sessions, restarts and nodes.
func sinceEpoch(t time.Time) time.Duration { return time.Duration(t.UnixNano()) }

// numberDigits is the length of every fragment number (store.FragmentNumber).
const numberDigits = 47

// resolve finds the fragment a segment URL names, in the session's stream.
func (s *Service) resolve(ctx context.Context, sess *session, fragment string) (*store.Fragment, error) {
	if len(fragment) != numberDigits {
		index, err := strconv.ParseInt(fragment, 10, 64)
		if err != nil || index < 0 {
			return nil, api.InvalidArgument("FragmentNumber %q is not a fragment number or session index.", fragment)
		}
		if err := s.refresh(ctx, sess); err != nil {
			return nil, err
		}
		sess.mu.Lock()
		e, ok := sess.lookup(index)
		sess.mu.Unlock()
		if !ok {
			return nil, api.ResourceNotFound("Fragment %d of this streaming session is no longer listed.", index)
		}
		return e.f, nil
	}
	rows, err := s.catalog.Fragments(ctx, sess.tok.Stream, []string{fragment})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, api.ResourceNotFound("Fragment %s is not in the stream's archive.", fragment)
	}
	return rows[0], nil
}

// Fragment reads and parses a stored fragment (GetImages reads them too);
// its errors are API errors where the fragment is gone or cannot be remuxed.
func (s *Service) Fragment(ctx context.Context, f *store.Fragment) (*playback.Fragment, error) {
	h, err := s.header(ctx, f.HeaderKey)
	if err != nil {
		return nil, err
	}
	data, err := store.ReadBlob(ctx, s.blobs, f.BlobKey, f.Size, nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.ResourceNotFound("Fragment %s is no longer in the stream's archive.", f.Number)
	}
	if err != nil {
		return nil, fmt.Errorf("fragment %s: %w", f.Number, err)
	}
	frag, err := playback.Parse(h.data, data)
	if err != nil {
		return nil, playback.APIError(fmt.Errorf("fragment %s: %w", f.Number, err))
	}
	return frag, nil
}
