package streaming

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/playback"
	"github.com/openkvs/openkvs/store"
)

// Options configure streaming sessions; zero fields take the AWS defaults
// (kvs-protocol.md §7.5 limits).
type Options struct {
	// Key signs session tokens; it must survive restarts (and be shared by
	// every node serving the same streams) for issued URLs to keep working.
	Key []byte
	// Per-session request rates: playlists and manifests (5 per second),
	// init segments (5) and media segments (10).
	PlaylistsPerSecond float64
	InitsPerSecond     float64
	FragmentsPerSecond float64
	// SessionsPerStream is how many sessions of one stream may be active;
	// creating one more revokes the oldest (10).
	SessionsPerStream int
	Logger            *slog.Logger
	// Now is the clock; tests may stop it.
	Now func() time.Time
	// Hub, when set, is the live hub of the streams: LIVE HLS sessions then
	// list the fragment being ingested as low-latency parts.
	Hub *live.Hub
}

func (o *Options) setDefaults() {
	o.PlaylistsPerSecond = cmp.Or(o.PlaylistsPerSecond, 5)
	o.InitsPerSecond = cmp.Or(o.InitsPerSecond, 5)
	o.FragmentsPerSecond = cmp.Or(o.FragmentsPerSecond, 10)
	o.SessionsPerStream = cmp.Or(o.SessionsPerStream, maxSessionsStream)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Service creates streaming sessions and serves their playlists, manifests
// and segments.
type Service struct {
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
	opts    Options

	mu       sync.Mutex
	sessions map[[8]byte]*session
	byStream map[int64][][8]byte // active sessions, oldest first
	revoked  map[[8]byte]time.Time
	headers  map[string]*header      // by blob key; reset when it grows past maxHeaders
	hubCache map[string]*hubFragment // complete hub fragments by number, parsed
}

// maxHeaders bounds the header cache: a few KiB each.
const maxHeaders = 1024

// header is a stored stream header with its parsed tracks.
type header struct {
	key  string
	data []byte
	sum  [32]byte
	info *playback.Fragment
}

// New returns a Service over the catalog and blobs.
func New(catalog store.Catalog, blobs store.Blobs, opts Options) (*Service, error) {
	opts.setDefaults()
	if len(opts.Key) < 16 {
		return nil, errors.New("streaming: the session key must have at least 16 bytes")
	}
	return &Service{catalog: catalog, blobs: blobs, hub: opts.Hub, opts: opts, sessions: map[[8]byte]*session{},
		byStream: map[int64][][8]byte{}, revoked: map[[8]byte]time.Time{}, headers: map[string]*header{}, hubCache: map[string]*hubFragment{}}, nil
}

// HLS creates an HLS session of st and returns its master playlist URL under
// endpoint, the data endpoint the client called.
func (s *Service) HLS(ctx context.Context, st *store.Stream, in *HLSInput, endpoint string) (*HLSOutput, error) {
	c := common{mode: cmp.Or(deref(in.PlaybackMode), ModeLive), selector: in.HLSFragmentSelector,
		expires: in.Expires, maxResults: in.MaxMediaPlaylistFragmentResults}
	var v api.Validator
	c.validate(&v, "HLSFragmentSelector", "MaxMediaPlaylistFragmentResults")
	v.Enum("ContainerFormat", in.ContainerFormat, ContainerFMP4, ContainerMPEGTS)
	v.Enum("DiscontinuityMode", in.DiscontinuityMode, DiscontinuityAlways, DiscontinuityNever, DiscontinuityOnGap)
	v.Enum("DisplayFragmentTimestamp", in.DisplayFragmentTimestamp, DisplayAlways, DisplayNever)
	if err := v.Err(); err != nil {
		return nil, err
	}
	tok, err := s.newToken(st, c, "HLSFragmentSelector")
	if err != nil {
		return nil, err
	}
	tok.Kind = kindHLS
	tok.Container = cmp.Or(deref(in.ContainerFormat), ContainerFMP4)
	// AWS's defaults: a marker at every fragment for server timestamps,
	// which jitter, none for the producer's own clock (kvs-playback.md §2).
	def := DiscontinuityAlways
	if tok.Field == store.ProducerTime {
		def = DiscontinuityNever
	}
	tok.Discontinuity = cmp.Or(deref(in.DiscontinuityMode), def)
	tok.DisplayTimestamp = deref(in.DisplayFragmentTimestamp) == DisplayAlways
	token, err := s.start(ctx, tok)
	if err != nil {
		return nil, err
	}
	return &HLSOutput{HLSStreamingSessionURL: endpoint + "/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=" + token}, nil
}

// DASH creates a DASH session of st and returns its manifest URL.
func (s *Service) DASH(ctx context.Context, st *store.Stream, in *DASHInput, endpoint string) (*DASHOutput, error) {
	c := common{mode: cmp.Or(deref(in.PlaybackMode), ModeLive), selector: in.DASHFragmentSelector,
		expires: in.Expires, maxResults: in.MaxManifestFragmentResults}
	var v api.Validator
	c.validate(&v, "DASHFragmentSelector", "MaxManifestFragmentResults")
	v.Enum("DisplayFragmentTimestamp", in.DisplayFragmentTimestamp, DisplayAlways, DisplayNever)
	v.Enum("DisplayFragmentNumber", in.DisplayFragmentNumber, DisplayAlways, DisplayNever)
	if err := v.Err(); err != nil {
		return nil, err
	}
	tok, err := s.newToken(st, c, "DASHFragmentSelector")
	if err != nil {
		return nil, err
	}
	tok.Kind = kindDASH
	tok.Container = ContainerFMP4
	tok.Discontinuity = DiscontinuityNever
	tok.DisplayTimestamp = deref(in.DisplayFragmentTimestamp) == DisplayAlways
	tok.DisplayNumber = deref(in.DisplayFragmentNumber) == DisplayAlways
	token, err := s.start(ctx, tok)
	if err != nil {
		return nil, err
	}
	return &DASHOutput{DASHStreamingSessionURL: endpoint + "/dash/v1/getDASHManifest.mpd?SessionToken=" + token}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// newToken checks what both session kinds share and fills in their token.
func (s *Service) newToken(st *store.Stream, c common, selectorName string) (*Token, error) {
	if err := c.rangeError(selectorName); err != nil {
		return nil, err
	}
	if st.RetentionHours == 0 {
		return nil, api.NoDataRetention("The stream %s keeps no data: playback needs data retention.", st.Name)
	}
	now := s.opts.Now()
	tok := &Token{Stream: st.ID, Mode: c.mode, Field: store.ServerTime, Created: now,
		Expires: now.Add(time.Duration(cmp.Or(deref64(c.expires), defaultExpires)) * time.Second)}
	rand.Read(tok.ID[:])
	if sel := c.selector; sel != nil {
		if deref(sel.FragmentSelectorType) == SelectProducerTimestamp {
			tok.Field = store.ProducerTime
		}
		if r := sel.TimestampRange; r != nil {
			if r.StartTimestamp != nil {
				tok.Start = r.StartTimestamp.Time
			}
			if r.EndTimestamp != nil {
				tok.End = r.EndTimestamp.Time
			}
		}
	}
	def := int64(defaultLiveMax)
	if c.mode == ModeOnDemand {
		def = defaultOnDemand
	}
	tok.MaxResults = int(cmp.Or(deref64(c.maxResults), def))
	return tok, nil
}

func deref64(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

// start opens the session: it must find fragments and their codecs must be
// playable; then it counts against the stream's session limit.
func (s *Service) start(ctx context.Context, tok *Token) (string, error) {
	sess := newSession(tok, s.opts)
	if err := s.refresh(ctx, sess); err != nil {
		return "", err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.entries) == 0 {
		return "", noFragments()
	}
	if newest := sess.entries[len(sess.entries)-1].f; tok.Mode == ModeLive && s.opts.Now().Sub(newest.ServerTime.Add(newest.Duration)) > liveLookback {
		return "", noFragments()
	}
	h, err := s.header(ctx, sess.headers[sess.entries[0].init])
	if err != nil {
		return "", err
	}
	if _, err := playable(h.info, tok.Kind); err != nil {
		return "", err
	}
	s.register(sess)
	return tok.seal(s.opts.Key), nil
}

func noFragments() error {
	return api.ResourceNotFound("No fragments found in the stream for the streaming request.")
}

// playable checks the tracks against what the playback APIs serve
// (kvs-protocol.md §7.5): H.264 or H.265 video as track 1 with an optional
// AAC track 2, or AAC alone; it returns the tracks' descriptions.
func playable(f *playback.Fragment, kind byte) ([]playback.TrackInfo, error) {
	var infos []playback.TrackInfo
	for _, t := range f.Tracks {
		info, err := t.Info()
		if err != nil {
			return nil, playback.APIError(err)
		}
		infos = append(infos, info)
	}
	switch {
	case len(infos) == 1 && infos[0].Number == 1:
	case len(infos) == 2 && infos[0].Number == 1 && infos[0].Video && infos[1].Number == 2 && !infos[1].Video:
	default:
		return nil, api.UnsupportedStreamMediaType("Playback needs track 1 of H.264 or H.265 video with an optional AAC track 2, or AAC alone as track 1.")
	}
	return infos, nil
}

// register makes sess one of its stream's active sessions, revoking the
// oldest beyond the limit.
func (s *Service) register(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for id, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, id)
		}
	}
	id, stream := sess.tok.ID, sess.tok.Stream
	active := s.byStream[stream][:0]
	for _, a := range s.byStream[stream] {
		if o := s.sessions[a]; o != nil && now.Before(o.tok.Expires) {
			active = append(active, a)
		} else {
			delete(s.sessions, a)
		}
	}
	for len(active) >= s.opts.SessionsPerStream {
		old := s.sessions[active[0]]
		s.revoked[active[0]] = old.tok.Expires
		delete(s.sessions, active[0])
		active = active[1:]
	}
	s.sessions[id] = sess
	s.byStream[stream] = append(active, id)
}

// session returns the session of a token from a playback URL: 403 when it is
// forged, expired or revoked. A valid token of a session this process does
// not know (it restarted, or another node issued it) starts its state anew.
func (s *Service) session(raw string) (*session, error) {
	tok, err := openToken(s.opts.Key, raw)
	if err != nil {
		return nil, api.SessionTokenRejected("Streaming session token is not valid.")
	}
	if !s.opts.Now().Before(tok.Expires) {
		return nil, api.SessionTokenRejected("Streaming session token is expired.")
	}
	s.mu.Lock()
	sess := s.sessions[tok.ID]
	_, revoked := s.revoked[tok.ID]
	s.mu.Unlock()
	if revoked {
		return nil, api.SessionTokenRejected("Streaming session was revoked: the stream has %d newer sessions.", s.opts.SessionsPerStream)
	}
	if sess == nil {
		sess = newSession(tok, s.opts)
		s.register(sess)
	}
	return sess, nil
}

// header returns a stored stream header, parsed, from the cache or the blobs.
func (s *Service) header(ctx context.Context, key string) (*header, error) {
	s.mu.Lock()
	h := s.headers[key]
	s.mu.Unlock()
	if h != nil {
		return h, nil
	}
	data, err := store.ReadBlob(ctx, s.blobs, key, -1, nil)
	if err != nil {
		return nil, fmt.Errorf("stream header: %w", err)
	}
	info, err := playback.ParseHeader(data)
	if err != nil {
		return nil, playback.APIError(err)
	}
	h = &header{key: key, data: data, sum: sha256.Sum256(data), info: info}
	s.mu.Lock()
	if len(s.headers) >= maxHeaders {
		clear(s.headers)
	}
	s.headers[key] = h
	s.mu.Unlock()
	return h, nil
}

// limiters are one session's request rates.
type limiters struct {
	playlist, init, fragment *rate.Limiter
	// Low-latency HLS requests, several per second and track by design,
	// are paced by the media (they wait for it), so they get budgets of
	// their own: lowLatencyFactor times those above.
	blocking, part *rate.Limiter
}

// lowLatencyFactor sizes the budgets of blocking playlist reloads and parts.
const lowLatencyFactor = 4

func newLimiters(o Options) limiters {
	limiter := func(perSecond float64) *rate.Limiter {
		return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return limiters{
		playlist: limiter(o.PlaylistsPerSecond),
		init:     limiter(o.InitsPerSecond),
		fragment: limiter(o.FragmentsPerSecond),
		blocking: limiter(lowLatencyFactor * o.PlaylistsPerSecond),
		part:     limiter(lowLatencyFactor * o.FragmentsPerSecond),
	}
}

func allow(l *rate.Limiter, what string) error {
	if !l.Allow() {
		return api.ClientLimitExceeded("Too many %s requests for this streaming session; retry after a short delay.", what)
	}
	return nil
}
