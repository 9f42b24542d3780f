// Package ingest runs PutMedia sessions: it splits the producer's MKV body
// into fragments (one per Cluster), numbers them, publishes each frame to
// the live hub as it arrives, stores complete fragments (blob first, then
// the catalog row) and acknowledges each step on the response stream
// (BUFFERING, RECEIVED, PERSISTED, IDLE, ERROR) as kvs-protocol.md §4
// describes.
//
// Choices where the protocol is unconfirmed:
//   - FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS (4004) is a fragment whose
//     Cluster timecode is lower than the previous fragment's on the same
//     connection; frames inside a fragment may be out of order (B-frames).
//   - A fragment may last at most MaxFragmentDuration (default 20 s, the
//     current documentation's figure; the old one said 10 s).
//   - IDLE is {"EventType":"IDLE"}, sent every IdleInterval (default 2 s)
//     while the body is silent; after IdleTimeout (30 s) the session ends
//     as if the body had ended.
//   - Streams that keep no data (retention 0) get no PERSISTED: their
//     fragments live only in the live hub's window.
//   - A second PutMedia connection for a stream takes over: the older one
//     ends at once and its unfinished fragment is dropped.
//   - The fragment duration is the span from the earliest frame to the end
//     of the latest (its BlockDuration, else its track's frame interval).
//
// In a cluster (Options.Owner), a session runs only on the node that holds
// its stream's lease, and every fragment-row commit is fenced by that
// lease. A PutMedia whose stream another live node owns is refused with
// ConnectionLimitExceededException: it is the error AWS throttles extra
// connections of a stream with, the official producer answers it by
// describing the stream and calling GetDataEndpoint again (kvs-protocol.md
// §4.5), which names the owner, and openkvs's own client retries it after
// a short backoff, resolving the endpoint again. A lease lost mid-session
// ends the session with ERROR 5001 (ARCHIVAL_ERROR, retriable) for the
// oldest fragment not yet PERSISTED, which the producer sends again
// wherever GetDataEndpoint sends it next.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
)

// Options are ingest limits; zero fields take the AWS defaults.
type Options struct {
	MaxFragmentSize     int64         // bytes in one fragment (50 MB)
	MaxFragmentDuration time.Duration // span of one fragment (20 s)
	MaxTracks           int           // tracks in a stream header (3)
	MaxHeaderSize       int64         // bytes of a stream header (mkv.DefaultMaxHeaderSize, 4 MiB)
	MaxMetadataTags     int           // producer tags in one fragment (10)
	CallsPerSecond      float64       // PutMedia calls per stream per second (5)
	BytesPerSecond      float64       // ingest rate per stream (12.5 MB/s)
	IdleInterval        time.Duration // period of IDLE ACKs on a silent body (2 s)
	IdleTimeout         time.Duration // silence after which the session ends (30 s)

	// Metrics and Storage count sessions, fragments, ACK latency and
	// catalog commits; nil counts nothing.
	Metrics *metrics.Ingest
	Storage *metrics.Storage

	// Owner, in a cluster, makes this node a stream's owner for each
	// session and fences its commits; nil with one node.
	Owner Ownership
}

func (o *Options) setDefaults() {
	if o.MaxFragmentSize == 0 {
		o.MaxFragmentSize = 50_000_000
	}
	if o.MaxFragmentDuration == 0 {
		o.MaxFragmentDuration = 20 * time.Second
	}
	if o.MaxTracks == 0 {
		o.MaxTracks = 3
	}
	if o.MaxHeaderSize == 0 {
		o.MaxHeaderSize = mkv.DefaultMaxHeaderSize
	}
	if o.MaxMetadataTags == 0 {
		o.MaxMetadataTags = 10
	}
	if o.CallsPerSecond == 0 {
		o.CallsPerSecond = 5
	}
	if o.BytesPerSecond == 0 {
		o.BytesPerSecond = 12.5e6
	}
	if o.IdleInterval == 0 {
		o.IdleInterval = 2 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Second
	}
}

// Manager runs the PutMedia sessions of all streams.
type Manager struct {
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
	opts    Options
	log     *slog.Logger

	mu      sync.Mutex
	active  map[int64]*Session      // the one session per stream
	limits  map[int64]*streamLimits // per-stream rate limits, kept across sessions
	stopped bool
}

type streamLimits struct {
	calls *rate.Limiter
	bytes *rate.Limiter
}

// NewManager returns a Manager storing into catalog and blobs and
// publishing to hub.
func NewManager(catalog store.Catalog, blobs store.Blobs, hub *live.Hub, opts Options, log *slog.Logger) *Manager {
	opts.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Manager{catalog: catalog, blobs: blobs, hub: hub, opts: opts, log: log,
		active: map[int64]*Session{}, limits: map[int64]*streamLimits{}}
}

// Options returns the limits in force.
func (m *Manager) Options() Options { return m.opts }

func (m *Manager) limitsFor(id int64) *streamLimits {
	l := m.limits[id]
	if l == nil {
		burst := int(m.opts.BytesPerSecond)
		if burst > 1<<20 {
			burst = 1 << 20
		}
		l = &streamLimits{
			calls: rate.NewLimiter(rate.Limit(m.opts.CallsPerSecond), max(1, int(m.opts.CallsPerSecond))),
			bytes: rate.NewLimiter(rate.Limit(m.opts.BytesPerSecond), burst),
		}
		m.limits[id] = l
	}
	return l
}

// errTakenOver ends a session when a newer connection for its stream starts.
var errTakenOver = errors.New("a newer PutMedia connection took over the stream")

// errStreamDeleted ends a session whose stream was deleted.
var errStreamDeleted = errors.New("stream deleted")

// errShutdown ends sessions when the server stops.
var errShutdown = errors.New("server shutting down")

// errLeaseLost ends a session whose node lost the stream's lease: the
// producer must reconnect to the stream's new owner.
var errLeaseLost = fail(ErrArchival, "this node no longer owns the stream; call GetDataEndpoint and connect again")

// Open admits a PutMedia call for stream: it applies the call-rate limit
// and ends any older session of the stream. Errors are API errors to send
// before the response starts.
func (m *Manager) Open(ctx context.Context, st *store.Stream) (*Session, error) {
	if st.Status != store.StatusActive {
		return nil, api.ResourceNotFound(api.MsgStreamNotFound)
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil, api.ServiceUnavailable("The server is shutting down.")
	}
	lim := m.limitsFor(st.ID)
	if !lim.calls.Allow() {
		m.mu.Unlock()
		return nil, api.ClientLimitExceeded("PutMedia is limited to %g calls per second per stream.", m.opts.CallsPerSecond)
	}
	m.mu.Unlock()
	claim, err := m.claim(ctx, st)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		claim.Release()
		return nil, api.ServiceUnavailable("The server is shutting down.")
	}
	old := m.active[st.ID]
	s := newSession(m, st, lim)
	s.claim = claim
	m.active[st.ID] = s
	m.mu.Unlock()
	if old != nil {
		old.stop(errTakenOver)
		select {
		case <-old.done:
		case <-ctx.Done():
			claim.Release()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// claim makes this node the stream's owner for a session (Options.Owner);
// with one node it claims nothing.
func (m *Manager) claim(ctx context.Context, st *store.Stream) (Claim, error) {
	if m.opts.Owner == nil {
		return noClaim{}, nil
	}
	c, err := m.opts.Owner.Claim(ctx, st.ID)
	switch {
	case errors.Is(err, store.ErrLeaseHeld):
		return nil, api.ConnectionLimitExceeded("Stream %s is being ingested by another node; call GetDataEndpoint and connect to the endpoint it returns.", st.Name)
	case errors.Is(err, store.ErrNotFound):
		return nil, api.ResourceNotFound(api.MsgStreamNotFound)
	case err != nil:
		m.log.Error("claim stream ownership", "stream", st.Name, "err", err)
		return nil, api.ServiceUnavailable("The stream's ownership could not be recorded; try again.")
	}
	return c, nil
}

// noClaim is a session's claim with one node: commits are not fenced.
type noClaim struct{}

func (noClaim) Lease() (*store.Lease, error) { return nil, nil }
func (noClaim) Lost() <-chan struct{}        { return nil }
func (noClaim) Release()                     {}

func (m *Manager) release(s *Session) {
	m.mu.Lock()
	if m.active[s.stream.ID] == s {
		delete(m.active, s.stream.ID)
	}
	m.mu.Unlock()
}

// maxDeleteWait bounds how long StreamChanged waits for a deleted stream's
// session to stop storing: a blob write in flight, at most one fragment.
const maxDeleteWait = 10 * time.Second

// StreamChanged ends the session of a deleted stream with STREAM_NOT_ACTIVE,
// cancels what it was still storing and waits until it stores nothing
// more, so that the stream's blobs can be deleted after it returns; then it
// drops the stream's live window. It is registered with the control plane.
func (m *Manager) StreamChanged(old, new *store.Stream) {
	if new != nil {
		return
	}
	m.mu.Lock()
	s := m.active[old.ID]
	delete(m.limits, old.ID)
	m.mu.Unlock()
	if s != nil {
		s.stop(errStreamDeleted)
		select {
		case <-s.persisted:
		case <-time.After(maxDeleteWait):
			m.log.Warn("deleted stream's session still storing; its blobs are left to the sweeper", "stream", old.Name)
		}
	}
	m.hub.Drop(old.ID)
}

// Shutdown ends every session and refuses new ones; it returns when all
// sessions have finished or ctx ends.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.stopped = true
	sessions := make([]*Session, 0, len(m.active))
	for _, s := range m.active {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	for _, s := range sessions {
		s.stop(errShutdown)
	}
	for _, s := range sessions {
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("ingest shutdown: %w", ctx.Err())
		}
	}
	return nil
}

// Producer is the state of a connected PutMedia session, for the stream
// status API.
type Producer struct {
	Stream     *store.Stream
	Since      time.Time // when the session started
	RemoteAddr string
	UserAgent  string
	// Bytes is the body bytes read so far.
	Bytes int64
	// Received and Persisted count the session's fragments so far.
	Received, Persisted int
	// Newest is the last fragment received whole; its zero value (empty
	// Number) means none yet.
	Newest FragmentInfo
}

// FragmentInfo describes a fragment received whole.
type FragmentInfo struct {
	Number       string
	ProducerTime time.Time
	ServerTime   time.Time
	Duration     time.Duration
	Size         int64
}

// Producers returns the sessions connected now, by stream name.
func (m *Manager) Producers() []Producer {
	m.mu.Lock()
	sessions := make([]*Session, 0, len(m.active))
	for _, s := range m.active {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	out := make([]Producer, 0, len(sessions))
	for _, s := range sessions {
		out = append(out, s.status())
	}
	slices.SortFunc(out, func(a, b Producer) int { return strings.Compare(a.Stream.Name, b.Stream.Name) })
	return out
}
