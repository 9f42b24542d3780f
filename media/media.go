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
// Choices where the protocol is unconfirmed (kvs-protocol.md §5.1, §5.5,
// §7.2):
//   - The start position is fixed before the 200 is sent: NOW is the moment
//     of the request.
//   - NOW starts with the fragment being ingested, else the next one to
//     begin.
//   - EARLIEST starts with the oldest fragment there is: in the archive, or
//     in the live window for streams without retention (or when the hub
//     still holds fragments a retention cut removed from the archive).
//   - FRAGMENT_NUMBER and CONTINUATION_TOKEN start after the given number
//     (continuation tokens are fragment numbers, as in every capture), with
//     the first fragment still there: a number that was deleted, or never
//     existed, is not an error.
//   - PRODUCER_TIMESTAMP and SERVER_TIMESTAMP start with the first fragment,
//     in time order, whose [start, start+duration) holds the time, else the
//     first that starts after it, both of the chosen timestamp. If none
//     exists yet the reader waits and takes the first new fragment that
//     does. A fragment still in progress that started before the time is
//     taken once it has been ingested long enough to reach the time;
//     until then the reader follows it to its end to learn its duration.
//   - The connection stays open at the live edge until the client goes,
//     the stream is deleted, or the server shuts down (Service.Shutdown);
//     in the last two cases the payload ends between chunks (a live
//     fragment that deletion or shutdown cuts short ends as an aborted one,
//     below).
//   - A fragment the producer aborts (connection lost, takeover) ends where
//     it stopped, with the end Tags, and the reader goes on with the next
//     fragment; one aborted before its first byte is left out.
//   - A fragment that fails to persist (ERROR 5001) leaves the live window
//     at once, with those its session received after it: a reader at the
//     live edge may already have had its frames, as live readers get them
//     before they are persisted (so they may come again, under a new
//     number, when the producer re-sends them); no reader finds it
//     afterwards, and the archive never lists it. A Cluster of
//     known size that is cut short cannot be closed (the end Tags would be
//     read as part of it): the response ends after its last whole element,
//     and the client resumes after the previous chunk's continuation token.
//   - In-band errors are a chunk of EBML header, Segment and one Tags with
//     AWS_KINESISVIDEO_FRAGMENT_NUMBER, _ERROR_ID and _ERROR_CODE, after
//     which the response ends. 4000 FRAGMENT_NOT_FOUND: fragments after the
//     last one this response sent are gone (deleted by retention while the
//     reader was on its way, or evicted from the live window of a stream
//     without retention); FRAGMENT_NUMBER names that last fragment sent, so
//     a new GetMedia after it starts with the oldest fragment left. The
//     hub's eviction mark, the archive, and the sequence numbers of one
//     producer session's fragments tell a gap from fragments that were
//     aborted or never existed; a retention cut that removes the fragment
//     a reader sent last, right where a new producer session begins, is
//     reported although nothing may be missing. Fragments that go while a
//     reader waits at the live edge are no gap. 5000 INTERNAL_ERROR:
//     storage failed (FRAGMENT_NUMBER names the fragment).
//   - MILLIS_BEHIND_NOW is the time from the fragment's server timestamp to
//     the end of its chunk, as the captures show (server timestamp plus
//     MILLIS_BEHIND_NOW grows with the wall clock from chunk to chunk).
//   - GetMediaForFragmentList writes the archived fragments asked for, in
//     the order asked, with the GetMedia start tag names and no end tags; a
//     number that is not archived gets a chunk of EBML header, Segment and
//     Tags with AWS_KINESISVIDEO_FRAGMENT_NUMBER, the GetMedia error tags
//     (_ERROR_ID 4000, _ERROR_CODE FRAGMENT_NOT_FOUND, which the KVS parser
//     library reads) and the documented AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE
//     (4000) and _EXCEPTION_MESSAGE, and the rest follow.
//   - GetMediaForFragmentList sends a number asked for several times each
//     time; its calls, connections and bytes are limited per stream as
//     AWS documents (5 per second, 5 connections, 25 MB/s), as are
//     ListFragments calls (5 per second).
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
	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/store"
)

// Options are read limits; zero fields take the AWS defaults
// (kvs-protocol.md §5.1, §7.1, §7.2).
type Options struct {
	CallsPerSecond      float64       // GetMedia calls per stream per second (5)
	MaxConnections      int           // concurrent GetMedia connections per stream (3)
	BytesPerSecond      float64       // GetMedia and GetMediaForFragmentList rate per session (25 MB/s)
	MaxFragmentDuration time.Duration // longest fragment ingest accepts (20 s), bounds timestamp searches

	ListCallsPerSecond      float64 // ListFragments calls per stream per second (5)
	FragmentListCallsPerSec float64 // GetMediaForFragmentList calls per stream per second (5)
	FragmentListConnections int     // concurrent GetMediaForFragmentList connections per stream (5)

	// Metrics counts GetMedia readers and bytes; nil counts nothing.
	Metrics *metrics.Media

	// Feed brings the live edge of streams another node owns into the hub
	// (scale-out); nil on a single node, where ingest feeds the hub.
	Feed Feed
}

// Feed keeps the hub fed with the live fragments of streams that another
// node ingests, for as long as GetMedia readers on this node want them.
type Feed interface {
	// Follow is called for each GetMedia reader before it takes its hub
	// handle; the reader calls release when it ends. It does nothing to
	// the hub while this node owns st.
	Follow(ctx context.Context, st *store.Stream) (release func(), err error)
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
	if o.ListCallsPerSecond == 0 {
		o.ListCallsPerSecond = 5
	}
	if o.FragmentListCallsPerSec == 0 {
		o.FragmentListCallsPerSec = 5
	}
	if o.FragmentListConnections == 0 {
		o.FragmentListConnections = 5
	}
}

// operation names the operations whose calls are limited per stream.
type operation int

const (
	opGetMedia operation = iota
	opListFragments
	opFragmentList
)

// limit is one operation's per-stream limits.
type limit struct {
	name           string
	callsPerSecond float64
	connections    int // 0: not limited
}

func (s *Service) limitOf(op operation) limit {
	switch op {
	case opListFragments:
		return limit{"ListFragments", s.opts.ListCallsPerSecond, 0}
	case opFragmentList:
		return limit{"GetMediaForFragmentList", s.opts.FragmentListCallsPerSec, s.opts.FragmentListConnections}
	}
	return limit{"GetMedia", s.opts.CallsPerSecond, s.opts.MaxConnections}
}

// Service reads media from the archive and the live hub.
type Service struct {
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
	opts    Options
	log     *slog.Logger

	mu           sync.Mutex
	limits       map[streamAPI]*streamLimits
	headers      map[string][]byte // header blobs by key: few, small, immutable
	headersBytes int64             // their size, reserved in the hub

	// stopping ends when Shutdown is called: readers stop waiting for
	// new fragments.
	stopping context.Context
	stop     context.CancelFunc
}

// streamAPI keys the limits of one operation on one stream.
type streamAPI struct {
	stream int64
	op     operation
}

type streamLimits struct {
	calls       *rate.Limiter
	connections int
	stream      *store.Stream // as last admitted, for Readers
}

// maxCachedHeaders bounds the header cache, in bytes; past it the cache
// starts over. Headers are a few hundred bytes to a few KiB (4 MiB at
// most); the cache's memory is counted in the live hub's total.
const maxCachedHeaders = 8 << 20

// New returns a Service over the given storage and hub.
func New(catalog store.Catalog, blobs store.Blobs, hub *live.Hub, opts Options, log *slog.Logger) *Service {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	stopping, stop := context.WithCancel(context.Background())
	return &Service{catalog: catalog, blobs: blobs, hub: hub, opts: opts, log: log,
		limits: map[streamAPI]*streamLimits{}, headers: map[string][]byte{}, stopping: stopping, stop: stop}
}

// Shutdown ends every GetMedia payload at its next chunk boundary: readers
// that wait for a fragment end at once, a reader inside a chunk finishes
// it (a live one when ingest, shutting down too, ends the fragment). An
// http.Server's Shutdown waits for handlers, and readers at the live edge
// would otherwise hold it until its timeout; register this with
// RegisterOnShutdown. New readers end as soon as they wait.
func (s *Service) Shutdown() { s.stop() }

// admit applies an operation's per-stream call rate and connection
// limits; release must be called when the connection ends.
func (s *Service) admit(st *store.Stream, op operation) (release func(), err error) {
	lim := s.limitOf(op)
	s.mu.Lock()
	defer s.mu.Unlock()
	key := streamAPI{st.ID, op}
	l := s.limits[key]
	if l == nil {
		l = &streamLimits{calls: rate.NewLimiter(rate.Limit(lim.callsPerSecond), max(1, int(lim.callsPerSecond)))}
		s.limits[key] = l
	}
	if lim.connections > 0 && l.connections >= lim.connections {
		return nil, api.ConnectionLimitExceeded("The stream already has %d %s connections, the most allowed.", lim.connections, lim.name)
	}
	if !l.calls.Allow() {
		return nil, api.ClientLimitExceeded("%s is limited to %g calls per second per stream.", lim.name, lim.callsPerSecond)
	}
	l.connections++
	l.stream = st
	return func() {
		s.mu.Lock()
		l.connections--
		s.mu.Unlock()
	}, nil
}

// StreamReaders is the number of GetMedia connections open on a stream.
type StreamReaders struct {
	Stream  *store.Stream
	Readers int
}

// Readers returns the GetMedia connections open now on each stream that
// has any, by stream ID.
func (s *Service) Readers() map[int64]StreamReaders {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]StreamReaders{}
	for key, l := range s.limits {
		if key.op == opGetMedia && l.connections > 0 {
			out[key.stream] = StreamReaders{Stream: l.stream, Readers: l.connections}
		}
	}
	return out
}

// StreamChanged forgets the limits of a deleted stream; it is registered
// with the control plane.
func (s *Service) StreamChanged(old, new *store.Stream) {
	if new != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.limits {
		if key.stream == old.ID {
			delete(s.limits, key)
		}
	}
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
	s.cacheHeader(key, h)
	return h, nil
}

// cacheHeader keeps a header blob in memory if the hub has room for it.
func (s *Service) cacheHeader(key string, h []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headersBytes+int64(len(h)) > maxCachedHeaders {
		s.hub.Release(s.headersBytes)
		s.headers, s.headersBytes = map[string][]byte{}, 0
	}
	if len(h) > maxCachedHeaders {
		return
	}
	// Caching is worth no wait: with no room, the next read opens the blob again.
	noWait, cancel := context.WithCancel(context.Background())
	cancel()
	if s.hub.Reserve(noWait, int64(len(h))) != nil {
		return
	}
	s.headers[key] = h
	s.headersBytes += int64(len(h))
}

// Sink is where chunks go: the HTTP response, flushed after each piece so
// that live bytes reach the reader at once.
type Sink interface {
	io.Writer
	Flush() error
}
