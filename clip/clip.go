// Package clip serves GetClip (kvs-protocol.md §7.3): the fragments of a
// stream in a time range as one regular MP4 file, remuxed by playback without
// re-encoding. It chooses the fragments, applies the API's limits and reads the
// fragments from the store; it knows nothing about HTTP.
//
// The file's timeline starts at 0 at the first fragment's producer timestamp;
// each fragment lies at its producer timestamp's distance from it, so a gap
// in the recording lengthens the last frame before it. At most MaxFragments
// fragments and MaxBytes of media go into one clip, the first ones of the
// range (AWS: "at most the first 100 MB or 200 fragments"); the rest of the
// range is left out, as on AWS, and the caller asks again from the next
// fragment. A fragment whose tracks or codec private data differ from the
// first fragment's (a new producer session with another setup) ends the
// clip the same way: a later call starting at that fragment returns the
// rest. A new session with the same setup continues the clip.
package clip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/playback"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streams"
)

// Limits AWS documents for GetClip (kvs-protocol.md §7.3).
const (
	DefaultMaxFragments = 200
	DefaultMaxBytes     = 100 << 20
	maxRange            = 24 * time.Hour
	maxLimiters         = 10000 // per-stream rate limiters kept before starting afresh
)

// Fragment selector types of the model.
const (
	SelectProducerTimestamp = "PRODUCER_TIMESTAMP"
	SelectServerTimestamp   = "SERVER_TIMESTAMP"
)

// Options configure the service; zero fields take the AWS defaults.
type Options struct {
	// RequestsPerSecond is the GetClip calls one stream may take a second (1).
	RequestsPerSecond float64
	// MaxFragments and MaxBytes bound one clip (200 fragments, 100 MiB of media).
	MaxFragments int
	MaxBytes     int64
	// Now is the clock; tests may stop it.
	Now func() time.Time
}

// Input is the GetClip request.
type Input struct {
	streams.Ref
	ClipFragmentSelector *api.FragmentSelector `json:"ClipFragmentSelector"`
}

// Validate checks the request against the model.
func (in *Input) Validate() error {
	var v api.Validator
	sel := in.ClipFragmentSelector
	v.Required("ClipFragmentSelector", sel != nil)
	if sel != nil {
		v.Required("ClipFragmentSelector.FragmentSelectorType", sel.FragmentSelectorType != nil)
		v.Enum("ClipFragmentSelector.FragmentSelectorType", sel.FragmentSelectorType, SelectProducerTimestamp, SelectServerTimestamp)
		v.Required("ClipFragmentSelector.TimestampRange", sel.TimestampRange != nil)
		if r := sel.TimestampRange; r != nil {
			v.Required("ClipFragmentSelector.TimestampRange.StartTimestamp", r.StartTimestamp != nil)
			v.Required("ClipFragmentSelector.TimestampRange.EndTimestamp", r.EndTimestamp != nil)
		}
	}
	return v.Err()
}

// Service makes clips of the streams in a catalog and blobs.
type Service struct {
	catalog store.Catalog
	blobs   store.Blobs
	opts    Options

	mu       sync.Mutex
	limiters map[int64]*rate.Limiter
}

// New returns a Service.
func New(catalog store.Catalog, blobs store.Blobs, opts Options) *Service {
	opts.RequestsPerSecond = cmp.Or(opts.RequestsPerSecond, 1)
	opts.MaxFragments = cmp.Or(opts.MaxFragments, DefaultMaxFragments)
	opts.MaxBytes = cmp.Or(opts.MaxBytes, DefaultMaxBytes)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{catalog: catalog, blobs: blobs, opts: opts, limiters: map[int64]*rate.Limiter{}}
}

// Clip is a clip ready to write: its sample tables are built, its media
// is still in the store.
type Clip struct {
	svc       *Service
	file      *playback.Progressive
	fragments []*store.Fragment
	headers   map[string][]byte
	length    int64
	buf       []byte // the last fragment read: Parse copies what it keeps
}

// Length is the clip's size in bytes.
func (c *Clip) Length() int64 { return c.length }

// Fragments is how many fragments the clip holds.
func (c *Clip) Fragments() int { return len(c.fragments) }

// Clip chooses the fragments of a validated request and indexes their frames.
// Memory: the sample tables (about 150 bytes a frame) and one fragment at a
// time; writing holds at most two fragments.
func (s *Service) Clip(ctx context.Context, st *store.Stream, in *Input) (*Clip, error) {
	sel := in.ClipFragmentSelector
	start, end := sel.TimestampRange.StartTimestamp.Time, sel.TimestampRange.EndTimestamp.Time
	field := store.ProducerTime
	if *sel.FragmentSelectorType == SelectServerTimestamp {
		field = store.ServerTime
	}
	switch {
	case !end.After(start):
		return nil, api.InvalidArgument("ClipFragmentSelector.TimestampRange.EndTimestamp must be after StartTimestamp.")
	case end.Sub(start) > maxRange:
		return nil, api.InvalidArgument("ClipFragmentSelector.TimestampRange must not span more than 24 hours.")
	case field == store.ServerTime && end.After(s.opts.Now()):
		return nil, api.InvalidArgument("ClipFragmentSelector.TimestampRange.EndTimestamp must be in the past for SERVER_TIMESTAMP.")
	}
	if st.RetentionHours == 0 {
		return nil, api.NoDataRetention("The stream %s keeps no data: GetClip needs data retention.", st.Name)
	}
	if !s.limiter(st.ID).Allow() {
		return nil, api.ClientLimitExceeded("Too many GetClip requests for the stream %s: at most %g a second; retry after a short delay.", st.Name, s.opts.RequestsPerSecond)
	}
	rows, err := s.catalog.QueryFragments(ctx, st.ID, store.FragmentQuery{Field: field, From: start, To: end, Limit: s.opts.MaxFragments})
	if err != nil {
		return nil, fmt.Errorf("clip: query fragments: %w", err)
	}
	if len(rows) == 0 {
		return nil, api.ResourceNotFound("No fragments found in the stream for the clip's timestamp range.")
	}
	c := &Clip{svc: s, headers: map[string][]byte{}}
	origin := rows[0].ProducerTime
	for i, f := range rows {
		frag, err := c.read(ctx, f)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if c.file, err = playback.NewProgressive(frag); err != nil {
				return nil, playback.APIError(err)
			}
			if err := checkTracks(frag); err != nil {
				return nil, err
			}
		}
		limit := s.opts.MaxBytes
		if i == 0 {
			limit = math.MaxInt64 // a clip holds its first fragment, however large
		}
		err = c.file.Add(frag, f.ProducerTime.Sub(origin), f.Duration, limit)
		if i > 0 && (errors.Is(err, playback.ErrNewSetup) || errors.Is(err, playback.ErrFull)) {
			break // the clip ends before this fragment (package doc)
		}
		if err != nil {
			return nil, playback.APIError(fmt.Errorf("fragment %s: %w", f.Number, err))
		}
		c.fragments = append(c.fragments, f)
	}
	if c.length, err = c.file.Length(); err != nil {
		return nil, err
	}
	return c, nil
}

// checkTracks accepts what GetClip serves (kvs-protocol.md §7.3): H.264 or
// H.265 video as track 1 with an optional AAC track 2.
func checkTracks(f *playback.Fragment) error {
	var infos []playback.TrackInfo
	for _, t := range f.Tracks {
		info, err := t.Info()
		if err != nil {
			return playback.APIError(err)
		}
		infos = append(infos, info)
	}
	switch {
	case len(infos) == 1 && infos[0].Number == 1 && infos[0].Video:
	case len(infos) == 2 && infos[0].Number == 1 && infos[0].Video && infos[1].Number == 2 && !infos[1].Video:
	default:
		return api.UnsupportedStreamMediaType("GetClip needs track 1 of H.264 or H.265 video with an optional AAC track 2.")
	}
	return nil
}

// WriteTo writes the clip, reading each fragment again.
func (c *Clip) WriteTo(ctx context.Context, w io.Writer) error {
	return c.file.WriteTo(w, func(i int) (*playback.Fragment, error) {
		return c.read(ctx, c.fragments[i])
	})
}

// read reads and parses a stored fragment.
func (c *Clip) read(ctx context.Context, f *store.Fragment) (*playback.Fragment, error) {
	header, ok := c.headers[f.HeaderKey]
	if !ok {
		var err error
		if header, err = store.ReadBlob(ctx, c.svc.blobs, f.HeaderKey, -1, nil); err != nil {
			return nil, err
		}
		c.headers[f.HeaderKey] = header
	}
	data, err := store.ReadBlob(ctx, c.svc.blobs, f.BlobKey, f.Size, c.buf[:0])
	c.buf = data
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.ResourceNotFound("Fragment %s is no longer in the stream's archive.", f.Number)
	}
	if err != nil {
		return nil, err
	}
	frag, err := playback.Parse(header, data)
	if err != nil {
		return nil, playback.APIError(fmt.Errorf("fragment %s: %w", f.Number, err))
	}
	return frag, nil
}

// limiter returns the stream's GetClip rate limiter.
func (s *Service) limiter(stream int64) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[stream]
	if l == nil {
		if len(s.limiters) >= maxLimiters {
			clear(s.limiters)
		}
		l = rate.NewLimiter(rate.Limit(s.opts.RequestsPerSecond), max(1, int(s.opts.RequestsPerSecond)))
		s.limiters[stream] = l
	}
	return l
}
