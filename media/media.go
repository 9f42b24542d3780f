// Package media serves the read side of Kinesis Video Streams: GetMedia
// (live and archived, every start selector), GetMediaForFragmentList and
// ListFragments. Each fragment goes out as a GetMedia chunk laid out as in
// the captures of real AWS output (kvs-protocol.md §5.3): the producer's
// header with an unknown-size Segment, the AWS start Tags, the producer's
// Cluster and trailing elements byte for byte, the AWS end Tags.
//
// A GetMedia reader moves through a stream in fragment-number order. Its
// next fragment comes from the live hub when the hub holds it (no disk
// round-trip; at the live edge each frame is written as soon as the
// producer's bytes arrived) and from the archive otherwise, so a reader
// that starts in the past reaches the live edge with no gap and no
// duplicate, and a reader that falls behind the hub's window goes on from
// the archive.
//
// Choices where the protocol is unconfirmed (kvs-protocol.md §5.1, §5.5):
//   - NOW starts with the fragment being ingested, else the next one.
//   - EARLIEST starts with the oldest archived fragment, else the oldest in
//     the live window (streams without retention).
//   - FRAGMENT_NUMBER and CONTINUATION_TOKEN start after the given number
//     (continuation tokens are fragment numbers, as in every capture).
//   - PRODUCER_TIMESTAMP and SERVER_TIMESTAMP start with the fragment whose
//     [start, start+duration) holds the time, else the first that starts
//     after it; if none exists yet, with the first new fragment that
//     starts at or after it.
//   - The connection stays open at the live edge until the client goes,
//     the stream is deleted, or the server stops.
//   - In-band errors are a chunk of EBML header, Segment and one Tags with
//     AWS_KINESISVIDEO_FRAGMENT_NUMBER, _ERROR_ID and _ERROR_CODE, after
//     which the response ends: 4000 FRAGMENT_NOT_FOUND when a fragment the
//     reader needs was deleted by retention or left the live window of a
//     stream without retention, 5000 INTERNAL_ERROR otherwise.
package media

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
)

// Options are read limits; zero fields take the AWS defaults.
type Options struct {
	CallsPerSecond      float64       // GetMedia calls per stream per second (5)
	MaxConnections      int           // concurrent GetMedia connections per stream (3)
	BytesPerSecond      float64       // per session (25 MB/s)
	MaxFragmentDuration time.Duration // longest fragment ingest accepts (20 s), bounds timestamp searches
}

func (o *Options) setDefaults() {
	if o.CallsPerSecond == 0 {
		o.CallsPerSecond = 5
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 3
	}
	if o.BytesPerSecond == 0 {
		o.BytesPerSecond = 25e6
	}
	if o.MaxFragmentDuration == 0 {
		o.MaxFragmentDuration = 20 * time.Second
	}
}

// Service reads media from the archive and the live hub.
type Service struct {
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
	opts    Options
	log     *slog.Logger

	mu      sync.Mutex
	limits  map[int64]*streamLimits
	headers map[string][]byte // header blobs by key: few, small, immutable
}

type streamLimits struct {
	calls       *rate.Limiter
	connections int
}

// maxCachedHeaders bounds the header cache; past it the cache starts over.
const maxCachedHeaders = 1024

// New returns a Service over the given storage and hub.
func New(catalog store.Catalog, blobs store.Blobs, hub *live.Hub, opts Options, log *slog.Logger) *Service {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Service{catalog: catalog, blobs: blobs, hub: hub, opts: opts, log: log,
		limits: map[int64]*streamLimits{}, headers: map[string][]byte{}}
}

// admit applies the per-stream call rate and connection limits; release
// must be called when the connection ends.
func (s *Service) admit(id int64) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits[id]
	if l == nil {
		l = &streamLimits{calls: rate.NewLimiter(rate.Limit(s.opts.CallsPerSecond), max(1, int(s.opts.CallsPerSecond)))}
		s.limits[id] = l
	}
	if l.connections >= s.opts.MaxConnections {
		return nil, api.ConnectionLimitExceeded("The stream already has %d GetMedia connections, the most allowed.", s.opts.MaxConnections)
	}
	if !l.calls.Allow() {
		return nil, api.ClientLimitExceeded("GetMedia is limited to %g calls per second per stream.", s.opts.CallsPerSecond)
	}
	l.connections++
	return func() {
		s.mu.Lock()
		l.connections--
		s.mu.Unlock()
	}, nil
}

// header returns a stored header blob, cached.
func (s *Service) header(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	h, ok := s.headers[key]
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	r, err := s.blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h, err = io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read header %s: %w", key, err)
	}
	s.mu.Lock()
	if len(s.headers) >= maxCachedHeaders {
		s.headers = map[string][]byte{}
	}
	s.headers[key] = h
	s.mu.Unlock()
	return h, nil
}

// Sink is where chunks go: the HTTP response, flushed after each piece so
// that live bytes reach the reader at once.
type Sink interface {
	io.Writer
	Flush() error
}
