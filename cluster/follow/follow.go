// Package follow brings the live edge of a stream that another node owns
// into this node's live hub, so that GetMedia readers on any node of a
// cluster are served as on the owner: the archive from
// the shared store, the live edge from the local hub.
//
// For each stream that has GetMedia readers here but is ingested elsewhere,
// a Follower keeps one internal GetMedia connection to the owner, whatever
// the number of local readers, and publishes each element of it into the
// hub as it arrives (client.GetOptions.OnPart), under the owner's fragment
// numbers and timestamps: local readers are a frame's network hop behind
// the owner's readers, and their continuation tokens are the owner's.
// Nothing received is stored: the owner persists.
//
// The connection resumes by continuation token after a drop, asking who
// owns the stream again each time (the owner may have died and another node,
// or this one, taken over). A fragment cut off by the drop goes on where it
// stopped when the owner sends it again (the owner repeats a fragment from
// its first byte; the bytes already published are passed over), and is
// aborted if the owner sends another instead. The connection closes when
// the last local reader leaves.
package follow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
)

// OwnerFunc says which node owns a stream now: the owner's base URL, or
// self when it is this node (or when no node does: then this node's hub is
// where a new producer's fragments will appear).
type OwnerFunc func(ctx context.Context, st *store.Stream) (url string, self bool, err error)

// ebmlID starts every chunk: its EBML header (RFC 8794 §11.2.1).
var ebmlID = []byte{0x1A, 0x45, 0xDF, 0xA3}

// errSelf is why a Follower does not connect while this node owns the stream.
var errSelf = errors.New("this node owns the stream")

// Options configure a Follower.
type Options struct {
	Owner   OwnerFunc     // required
	Catalog store.Catalog // where a new follow starts: after the newest archived fragment
	Hub     *live.Hub     // this node's hub, fed with the owner's live fragments
	// HTTPClient makes the internal GetMedia connections; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Sign signs each internal GetMedia (SigV4) when the owner checks
	// signatures; nil sends them unsigned.
	Sign func(*http.Request) error
	Log  *slog.Logger
}

// Follower keeps at most one internal GetMedia connection per stream,
// shared by every local reader of the stream. It implements media.Feed.
type Follower struct {
	opts Options

	mu      sync.Mutex
	streams map[int64]*session
	closing map[int64]*session // sessions whose last reader left, maybe still running
}

// New returns a Follower.
func New(opts Options) *Follower {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Follower{opts: opts, streams: map[int64]*session{}, closing: map[int64]*session{}}
}

// Follow registers a local reader of st, starting the internal connection
// if it is the first; release unregisters it, and the last release closes
// the connection.
//
// A first reader of a stream that another node owns finds the hub's window
// of it dropped: what it held is left from an earlier follow, or from
// before ownership moved, and may have gaps a new connection does not
// fill. Follow runs before the reader takes its hub handle, and no other
// reader holds one (there is none), so nothing sees the drop.
func (f *Follower) Follow(ctx context.Context, st *store.Stream) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.streams[st.ID]
	if s == nil {
		if old := f.closing[st.ID]; old != nil {
			<-old.done // it publishes nothing more
			delete(f.closing, st.ID)
		}
		_, self, err := f.opts.Owner(ctx, st)
		if err != nil {
			return nil, fmt.Errorf("find the owner of %s: %w", st.Name, err)
		}
		if !self {
			f.opts.Hub.Drop(st.ID)
		}
		runCtx, cancel := context.WithCancel(context.Background())
		s = &session{f: f, st: st, cancel: cancel, done: make(chan struct{}), fresh: !self}
		f.streams[st.ID] = s
		go s.run(runCtx)
	}
	s.readers++
	var once sync.Once
	return func() { once.Do(func() { f.leave(s) }) }, nil
}

// leave unregisters a reader of s.
func (f *Follower) leave(s *session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.readers--; s.readers > 0 {
		return
	}
	delete(f.streams, s.st.ID)
	f.closing[s.st.ID] = s
	s.cancel()
}

// Following returns the number of streams with an internal connection
// running or being set up.
func (f *Follower) Following() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

// session follows one stream for its local readers. Its fields below done
// belong to the run goroutine.
type session struct {
	f       *Follower
	st      *store.Stream
	readers int // guarded by f.mu
	cancel  context.CancelFunc
	done    chan struct{}

	fresh   bool // no fragment of the stream in the hub is to be continued
	ctx     context.Context
	header  []byte         // the chunk header being collected
	shared  []byte         // the header given to the hub last, reused while equal
	cur     *live.Fragment // the fragment being received, nil between fragments
	written int            // bytes of cur published
	skip    int            // bytes of cur the owner sends again after a resume
}

// Backoff between failed follows (a reconnect inside one is client.Get's).
const (
	minRetry = 250 * time.Millisecond
	maxRetry = 5 * time.Second
)

// run follows the stream until ctx ends.
func (s *session) run(ctx context.Context) {
	defer close(s.done)
	defer s.abort()
	s.ctx = ctx
	log := s.f.opts.Log.With("stream", s.st.Name)
	wait := minRetry
	for ctx.Err() == nil {
		start, err := s.start(ctx)
		if err == nil {
			_, err = client.Get(ctx, client.GetOptions{
				Resolve: s.resolve, Stream: s.st.Name, Start: start, Follow: true,
				HTTPClient: s.f.opts.HTTPClient, Sign: s.f.opts.Sign, OnPart: s.part,
				Logf: func(format string, args ...any) { log.Debug("follow: " + fmt.Sprintf(format, args...)) },
			}, s.fragment)
		}
		if ctx.Err() != nil {
			return
		}
		var me *mkv.MediaError
		if errors.As(err, &me) {
			// The owner lost this connection's place (its window or a
			// retention cut passed it): start again at the newest.
			s.fresh = true
		}
		log.Warn("follow: the owner's live stream failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetry)
	}
}

// start returns where the internal GetMedia starts: after the hub's latest
// fragment if there is one to continue, else after the newest archived one
// (not NOW: fragments complete on the owner but not yet archived would be
// missing from both the hub and the archive), else at the fragment the
// owner was receiving now, or the next one: its server time. Not NOW
// either, which the owner reads when the connection reaches it, seconds
// later if no node owns the stream yet (the connection backs off until one
// does): the fragments begun in between would be missing for local readers
// whose NOW came first.
func (s *session) start(ctx context.Context) (client.StartSelector, error) {
	if !s.fresh {
		if latest := s.f.opts.Hub.Stream(s.st.ID).Latest(); latest != "" {
			return client.StartSelector{Type: client.StartContinuationToken, ContinuationToken: latest}, nil
		}
	}
	s.fresh = false
	rows, err := s.f.opts.Catalog.LatestFragments(ctx, s.st.ID, 1)
	if err != nil {
		return client.StartSelector{}, fmt.Errorf("find the newest archived fragment: %w", err)
	}
	if len(rows) == 1 {
		return client.StartSelector{Type: client.StartContinuationToken, ContinuationToken: rows[0].Number}, nil
	}
	return client.StartSelector{Type: client.StartServerTimestamp, Timestamp: time.Now()}, nil
}

// resolve is the internal connection's endpoint: the owner's URL. While
// this node owns the stream, ingest feeds the hub, and the connection
// waits (client.Get backs off and asks again).
func (s *session) resolve(ctx context.Context) (string, error) {
	url, self, err := s.f.opts.Owner(ctx, s.st)
	if err != nil {
		return "", fmt.Errorf("find the owner of %s: %w", s.st.Name, err)
	}
	if self {
		return "", errSelf
	}
	return url, nil
}

// part publishes one element of the payload as it arrives.
func (s *session) part(p mkv.ChunkPart) error {
	switch p.Kind {
	case mkv.PartHeader:
		if bytes.HasPrefix(p.Data, ebmlID) {
			s.header = s.header[:0] // a chunk starts
		}
		s.header = append(s.header, p.Data...)
	case mkv.PartStartTags:
		if _, isErr := p.Tags[mkv.TagErrorID]; isErr {
			return nil // client.Get returns it
		}
		return s.begin(p.Tags)
	case mkv.PartBody:
		return s.write(p.Data)
	}
	return nil
}

// begin starts the fragment whose start tags were just read, or goes on
// with the one a dropped connection cut off.
func (s *session) begin(tags map[string]string) error {
	number := tags[mkv.TagFragmentNumber]
	server, err := mkv.ParseTimestamp(tags[mkv.TagServerTimestamp])
	if err != nil {
		return fmt.Errorf("fragment %s: %s %w", number, mkv.TagServerTimestamp, err)
	}
	producer, err := mkv.ParseTimestamp(tags[mkv.TagProducerTimestamp])
	if err != nil {
		return fmt.Errorf("fragment %s: %s %w", number, mkv.TagProducerTimestamp, err)
	}
	if s.cur != nil {
		if s.cur.Meta().Number == number {
			s.skip = s.written
			return nil
		}
		s.abort() // the owner never finished it
	}
	if !bytes.Equal(s.header, s.shared) {
		s.shared = bytes.Clone(s.header)
	}
	// Not archived: this node never persists it, so once complete it may go.
	s.cur = s.f.opts.Hub.Begin(s.st.ID, live.Meta{Number: number, ProducerTime: producer, ServerTime: server, Header: s.shared}, false)
	s.written, s.skip = 0, 0
	return nil
}

// write publishes bytes of the current fragment, passing over those the
// owner sends again after a resume.
func (s *session) write(p []byte) error {
	if s.cur == nil {
		return nil
	}
	if s.skip > 0 {
		k := min(s.skip, len(p))
		s.skip -= k
		p = p[k:]
	}
	if err := s.cur.Write(s.ctx, p); err != nil {
		// No room in the hub: local readers see the fragment end here, as
		// the owner's readers do when ingest runs out of memory.
		s.abort()
		return nil
	}
	s.written += len(p)
	return nil
}

// fragment completes the current fragment once its chunk is whole. The
// owner does not send a fragment's duration; the time it took to arrive
// (MILLIS_BEHIND_NOW of its end tags, for a fragment followed live) is the
// closest a reader can get, and only timestamp selectors that land inside
// the live window read it.
func (s *session) fragment(f *client.Fragment) error {
	if s.cur != nil && s.cur.Meta().Number == f.Number {
		s.cur.Complete(time.Duration(f.MillisBehindNow) * time.Millisecond)
	}
	s.cur = nil
	return nil
}

// abort ends the current fragment where it is.
func (s *session) abort() {
	if s.cur != nil {
		s.cur.Abort()
		s.cur = nil
	}
}
