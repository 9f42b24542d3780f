package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
)

// TimecodeType says how Cluster timecodes become producer timestamps.
type TimecodeType int

// The two x-amzn-fragment-timecode-type values.
const (
	Absolute TimecodeType = iota // timecode × TimecodeScale is the epoch time
	Relative                     // producer start timestamp + timecode × TimecodeScale
)

// Params describe one PutMedia call once its headers have been validated.
type Params struct {
	TimecodeType TimecodeType
	StartTime    time.Time // producer start timestamp, used with Relative
	Body         io.Reader
	// SetReadDeadline, when set, lets the session end a body read that
	// blocks: on idle timeout, takeover, stream deletion or shutdown.
	SetReadDeadline func(time.Time) error
	// Ack writes and flushes one ACK line; an error means the client is gone.
	Ack func(line []byte) error
	// RemoteAddr and UserAgent describe the producer, for the status API
	// and the connect and disconnect log lines.
	RemoteAddr, UserAgent string
}

// seqBlock is how many fragment sequence numbers a session reserves in the
// catalog at a time.
const seqBlock = 64

// maxDrainBytes and maxDrainTime bound what is read of the body after an
// ERROR ACK: the producer stops sending when it sees the ERROR
// (kvs-protocol.md §4.5).
const (
	maxDrainBytes = 64 << 20
	maxDrainTime  = 10 * time.Second
)

// Session is one PutMedia connection.
type Session struct {
	m      *Manager
	stream *store.Stream
	lim    *streamLimits
	claim  Claim // the node's ownership of the stream
	done   chan struct{}
	// persisted is closed once the session stores nothing more: its
	// persister finished, or never started.
	persisted chan struct{}
	// stopped ends when the session is stopped from outside: waits for
	// memory end with it.
	stopped     context.Context
	cancelStop  context.CancelFunc
	persistCtx  context.Context // ends when the stream is deleted: nothing more is stored
	stopPersist context.CancelFunc

	mu          sync.Mutex
	cause       error       // why the session was stopped from outside
	halted      atomic.Bool // cause is set: checked between events without the lock
	setDeadline func(time.Time) error
	// For Manager.Producers, under mu.
	remote, agent         string
	started               time.Time
	nReceived, nPersisted int
	newest                FragmentInfo

	bytesIn      atomic.Int64 // body bytes read
	bytesCounted int64        // of bytesIn, added to the metrics; owned by Run

	// Owned by the Run goroutine.
	header       *mkv.Header
	headerMem    int64       // memory reserved in the hub for header
	firstHeader  *headerBlob // header of the next fragment, the first after header
	laterHeader  *headerBlob // header of the fragments after that one
	headerFirst  bool        // the next fragment is the first after header
	seqNext      uint64
	seqEnd       uint64
	cur          *fragment
	prevTimecode uint64
	havePrev     bool
	aborted      *fragment // the fragment an ERROR ACK names
	errorSent    bool      // an ERROR ACK was queued (by the persister, before s.persisted closes)
	p            Params
	acks         chan Ack
	persistQ     chan *fragment
}

// headerBlob is a stream header as the fragments that use it are stored
// with: the GetMedia chunk prefix, and the blob it was last written to.
type headerBlob struct {
	data []byte
	// Owned by the persister goroutine.
	key   string    // "" until stored
	putAt time.Time // when key was written
}

// fragment is the fragment being received.
type fragment struct {
	number       string
	timecode     uint64
	producerTime time.Time
	serverTime   time.Time
	receivedAt   time.Time     // when it was complete (RECEIVED)
	size         int64         // bytes so far; the bytes themselves are in live
	duration     time.Duration // set when complete
	header       *headerBlob
	live         *live.Fragment
	tracks       map[uint64]*trackSpan
	metadataTags int
}

// trackSpan follows one track's frames to derive the fragment's duration.
type trackSpan struct {
	last     int64 // relative timecode of the latest frame
	minStart int64 // earliest frame
	maxEnd   int64 // latest frame end with a known duration
	interval int64 // smallest positive step between consecutive frames
}

func newSession(m *Manager, st *store.Stream, lim *streamLimits) *Session {
	s := &Session{m: m, stream: st, lim: lim, done: make(chan struct{}), persisted: make(chan struct{}), started: time.Now()}
	s.stopped, s.cancelStop = context.WithCancel(context.Background())
	s.persistCtx, s.stopPersist = context.WithCancel(context.Background())
	return s
}

// stop ends the session from outside; a blocked body read, or a wait for
// memory, is cut short. A deleted stream's session also stops storing.
func (s *Session) stop(cause error) { s.setCause(cause, true) }

// halt ends the session at its next event without cutting a body read
// short: a read cut short by a deadline leaves the body unreadable, and
// after an ERROR ACK the body must be drained (Session.drain).
func (s *Session) halt(cause error) { s.setCause(cause, false) }

func (s *Session) setCause(cause error, interrupt bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause != nil {
		return
	}
	s.cause = cause
	s.halted.Store(true)
	s.cancelStop()
	if cause == errStreamDeleted {
		s.stopPersist()
	}
	if interrupt && s.setDeadline != nil {
		s.setDeadline(time.Now())
	}
}

func (s *Session) stopCause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// Run reads the body to its end, acknowledging as it goes. It returns the
// error that ended the session, nil for a clean end of body.
func (s *Session) Run(ctx context.Context, p Params) error {
	defer close(s.done)
	defer s.claim.Release()
	defer s.m.release(s)
	defer s.cancelStop()
	s.p = p
	s.mu.Lock()
	s.setDeadline = p.SetReadDeadline
	s.remote, s.agent = p.RemoteAddr, p.UserAgent
	stopped := s.cause != nil
	s.mu.Unlock()
	if stopped {
		close(s.persisted)
		return s.stopCause()
	}
	s.m.opts.Metrics.SessionStarted()
	defer s.m.opts.Metrics.SessionEnded()
	s.m.log.Info("producer connected", "stream", s.stream.Name, "remote_addr", p.RemoteAddr, "user_agent", p.UserAgent)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.claim.Lost():
			s.stop(errLeaseLost)
		case <-s.stopped.Done():
		}
	}()
	s.acks = make(chan Ack, 64)
	writerDone := make(chan struct{})
	go s.writeAcks(writerDone)
	s.persistQ = make(chan *fragment, 4)
	go s.persist()
	body := newBodyReader(ctx, s, p)
	idleCtx, stopIdle := context.WithCancel(ctx)
	idleDone := make(chan struct{})
	go s.sendIdle(idleCtx, body, idleDone)

	sp := mkv.NewSplitter(body, mkv.SplitterOptions{MaxElementSize: s.m.opts.MaxFragmentSize,
		MaxHeaderSize: s.m.opts.MaxHeaderSize, Memory: hubMemory{s}})
	err := s.receive(sp, body)
	sp.Close()
	s.setHeader(nil)

	stopIdle()
	<-idleDone
	close(s.persistQ)
	<-s.persisted
	if err == nil {
		err = s.stopCause() // a failure elsewhere (storage, ACK writes) that the body outlived
	}
	var ae *ackError
	// A lost lease may have failed a commit already: that ERROR names the
	// fragment the producer must send again from.
	if errors.As(err, &ae) && !(ae == errLeaseLost && s.errorSent) {
		s.ackError(ae.class)
	}
	if cause := s.stopCause(); s.errorSent && cause != errTakenOver && cause != errShutdown {
		s.drain(body)
	}
	close(s.acks)
	<-writerDone
	s.countBytes()
	s.logEnd(err)
	return err
}

// logEnd logs the end of the session: how long it lasted, what it stored
// and, unless its body simply ended, why it ended.
func (s *Session) logEnd(err error) {
	st := s.status()
	attrs := []any{"stream", s.stream.Name, "remote_addr", st.RemoteAddr, "user_agent", st.UserAgent,
		"duration", time.Since(st.Since).Round(time.Millisecond), "bytes", st.Bytes,
		"fragments_received", st.Received, "fragments_persisted", st.Persisted}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.m.log.Info("producer disconnected", attrs...)
}

// status is the session's state for Manager.Producers.
func (s *Session) status() Producer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Producer{Stream: s.stream, Since: s.started, RemoteAddr: s.remote, UserAgent: s.agent,
		Bytes: s.bytesIn.Load(), Received: s.nReceived, Persisted: s.nPersisted, Newest: s.newest}
}

// countBytes adds the body bytes read since the last call to the metrics:
// once per fragment, not per read.
func (s *Session) countBytes() {
	n := s.bytesIn.Load()
	s.m.opts.Metrics.Bytes(n - s.bytesCounted)
	s.bytesCounted = n
}

// receive splits the body into fragments until it ends.
func (s *Session) receive(sp *mkv.Splitter, body *bodyReader) error {
	for {
		ev, err := sp.Next()
		if err != nil {
			return s.endOfBody(err, body)
		}
		switch e := ev.(type) {
		case *mkv.Header:
			// A new header starts a new timecode base (the producer
			// restarted its MKV generator).
			err = s.setHeader(e)
		case *mkv.FragmentStart:
			err = s.begin(e)
		case *mkv.Frame:
			err = s.frame(e)
		case *mkv.FragmentData:
			err = s.data(e.Data, e.Tags)
		case *mkv.FragmentEnd:
			err = s.end()
		case *mkv.Trailer:
			// Elements after an end-of-fragment tag that no Cluster
			// followed belong to no fragment.
		}
		if err == nil && s.halted.Load() {
			err = s.stopCause()
		}
		if err != nil {
			s.abort()
			return err
		}
	}
}

// setHeader makes h the stream header of the fragments that follow (nil
// at the end of the session), with its memory reserved in the live hub.
func (s *Session) setHeader(h *mkv.Header) error {
	s.m.hub.Release(s.headerMem)
	s.header, s.headerMem = nil, 0
	if h == nil {
		return nil
	}
	if h.TimecodeScale < 1 || h.TimecodeScale > maxTimecodeScale {
		return fail(ErrInvalidMKV, "TimecodeScale %d ns is outside 1 ns to %d ns", h.TimecodeScale, maxTimecodeScale)
	}
	mem := headerMemory(h)
	if err := s.m.hub.Reserve(s.stopped, mem); err != nil {
		return fail(ErrInternal, "a stream header of %d bytes: %v", len(h.Data), err)
	}
	s.header, s.headerMem, s.headerFirst, s.havePrev = h, mem, true, false
	s.firstHeader = &headerBlob{data: h.FirstChunkHeader}
	s.laterHeader = s.firstHeader
	if !bytes.Equal(h.ChunkHeader, h.FirstChunkHeader) {
		s.laterHeader = &headerBlob{data: h.ChunkHeader}
	}
	return nil
}

// maxTimecodeScale is the coarsest TimecodeScale accepted: one second per
// timecode unit. Producers use one millisecond; the bound keeps every time
// computation far from overflow.
const maxTimecodeScale = 1_000_000_000

// headerMemory is what a stream header holds while it is the session's:
// the bytes received, both chunk prefixes and the codec private data.
func headerMemory(h *mkv.Header) int64 {
	n := cap(h.Data) + len(h.FirstChunkHeader) + len(h.ChunkHeader)
	for _, t := range h.Tracks {
		n += len(t.CodecPrivate)
	}
	return int64(n)
}

// hubMemory charges a session's parse buffers to the live hub, so that
// they count against --live-total-bytes with the fragments.
type hubMemory struct{ s *Session }

func (m hubMemory) Grow(n int) error { return m.s.m.hub.Reserve(m.s.stopped, int64(n)) }
func (m hubMemory) Shrink(n int)     { m.s.m.hub.Release(int64(n)) }

// endOfBody classifies what ended the body and finishes the open fragment.
func (s *Session) endOfBody(err error, body *bodyReader) error {
	if errors.Is(err, io.EOF) {
		return nil // the splitter closed the open fragment already
	}
	cause := s.stopCause()
	switch {
	case cause == errStreamDeleted:
		s.abort()
		return fail(ErrStreamNotActive, "stream %s was deleted", s.stream.Name)
	case cause != nil:
		s.abort()
		return cause
	case body.idle() && errors.Is(err, os.ErrDeadlineExceeded):
		// Silence for IdleTimeout ends the session like the end of the
		// body: what was received is complete up to its last frame.
		if s.cur != nil {
			if err := s.end(); err != nil {
				s.abort()
				return err
			}
		}
		return nil
	case errors.Is(err, live.ErrNoMemory):
		s.abort()
		return fail(ErrInternal, "no memory within --live-total-bytes for the stream: %v", err)
	case errors.Is(err, mkv.ErrHeaderTooLarge):
		s.abort()
		return fail(ErrInvalidMKV, "%v", err)
	case errors.Is(err, mkv.ErrTooLarge):
		s.abort()
		return fail(ErrFragmentTooLarge, "%v", err)
	case errors.Is(err, mkv.ErrMidFragment):
		// A producer that lost its connection resumed a fragment without
		// its header. A retriable error makes it roll back and send the
		// whole fragment again with one (kvs-protocol.md §4.5).
		s.abort()
		return fail(ErrStreamRead, "%v; send the fragment again from its start, after a stream header", err)
	case errors.Is(err, mkv.ErrInvalid):
		s.abort()
		return fail(ErrInvalidMKV, "%v", err)
	}
	s.abort()
	return fail(ErrStreamRead, "read body: %v", err)
}

// abort drops the open fragment: it is neither acknowledged nor stored.
func (s *Session) abort() {
	if s.cur != nil {
		if s.cur.live != nil {
			s.cur.live.Abort()
		}
		s.aborted, s.cur = s.cur, nil
	}
}

// nextNumber allocates the next fragment number.
func (s *Session) nextNumber(now time.Time) (string, error) {
	if s.seqNext == s.seqEnd {
		first, err := s.m.catalog.ReserveSequence(context.Background(), s.stream.ID, seqBlock)
		if err != nil {
			return "", fmt.Errorf("reserve fragment numbers: %w", err)
		}
		s.seqNext, s.seqEnd = first, first+seqBlock
	}
	n := store.FragmentNumber(s.seqNext, now.UnixMilli())
	s.seqNext++
	return n, nil
}

func (s *Session) scale() int64 { return int64(s.header.TimecodeScale) }

// maxSpan is the longest fragment allowed, in timecode units.
func (s *Session) maxSpan() int64 { return int64(s.m.opts.MaxFragmentDuration) / s.scale() }

// begin opens a fragment at a Cluster start and sends BUFFERING.
func (s *Session) begin(e *mkv.FragmentStart) error {
	now := time.Now()
	number, err := s.nextNumber(now)
	if err != nil {
		// The catalog could not be written: a storage failure, like a
		// full disk, which the producer may retry.
		return fail(ErrArchival, "%v", err)
	}
	f := &fragment{number: number, timecode: e.Timecode, serverTime: now.Truncate(time.Millisecond), tracks: map[uint64]*trackSpan{}}
	s.cur = f // so that an ERROR below names this fragment
	if n := len(s.header.Tracks); n > s.m.opts.MaxTracks {
		return fail(ErrTooManyTracks, "the stream header declares %d tracks; at most %d are allowed", n, s.m.opts.MaxTracks)
	}
	if s.havePrev && e.Timecode < s.prevTimecode {
		return fail(ErrTimecodeLower, "cluster timecode %d is lower than the previous fragment's %d", e.Timecode, s.prevTimecode)
	}
	offset := time.Duration(int64(e.Timecode) * s.scale())
	if int64(e.Timecode) < 0 || offset < 0 || offset/time.Duration(s.scale()) != time.Duration(e.Timecode) {
		return fail(ErrInvalidProducerTime, "cluster timecode %d overflows", e.Timecode)
	}
	if s.p.TimecodeType == Absolute {
		f.producerTime = time.Unix(0, 0).Add(offset)
	} else {
		f.producerTime = s.p.StartTime.Add(offset)
	}
	f.producerTime = f.producerTime.Truncate(time.Millisecond)
	if f.producerTime.Year() > 9999 {
		return fail(ErrInvalidProducerTime, "producer timestamp %v is out of range", f.producerTime)
	}
	f.header = s.laterHeader
	if s.headerFirst {
		f.header = s.firstHeader
		f.metadataTags = countMetadata(s.header.Tags)
		s.headerFirst = false
	}
	f.live = s.m.hub.Begin(s.stream.ID, live.Meta{Number: number, ProducerTime: f.producerTime, ServerTime: f.serverTime, Header: f.header.data}, s.stream.RetentionHours > 0)
	s.ack(Ack{EventType: AckBuffering, FragmentTimecode: f.timecode, FragmentNumber: number})
	return s.data(e.Data, e.Tags)
}

// data adds non-frame bytes to the open fragment.
func (s *Session) data(b []byte, tags []mkv.SimpleTag) error {
	f := s.cur
	if f.size+int64(len(b)) > s.m.opts.MaxFragmentSize {
		return fail(ErrFragmentTooLarge, "fragment exceeds %d bytes", s.m.opts.MaxFragmentSize)
	}
	f.metadataTags += countMetadata(tags)
	if f.metadataTags > s.m.opts.MaxMetadataTags {
		return fail(ErrMetadataLimit, "fragment carries %d metadata tags; at most %d are allowed", f.metadataTags, s.m.opts.MaxMetadataTags)
	}
	for _, t := range tags {
		if len(t.Name) > 128 || len(t.Value) > 256 {
			return fail(ErrMetadataLimit, "metadata tag %.40q exceeds 128-byte name or 256-byte value", t.Name)
		}
	}
	if err := f.live.Write(s.stopped, b); err != nil {
		if s.stopCause() != nil {
			return s.stopCause()
		}
		return fail(ErrInternal, "no memory within --live-total-bytes for the fragment: %v", err)
	}
	f.size += int64(len(b))
	return nil
}

// countMetadata counts producer metadata tags; names starting with AWS are
// the service's own (end-of-fragment and event markers).
func countMetadata(tags []mkv.SimpleTag) int {
	n := 0
	for _, t := range tags {
		if !strings.HasPrefix(t.Name, "AWS") {
			n++
		}
	}
	return n
}

// frame adds one block to the open fragment and publishes it live.
func (s *Session) frame(e *mkv.Frame) error {
	f := s.cur
	if !s.hasTrack(e.Track) {
		return fail(ErrTrackNumberMismatch, "block for track %d, which the header does not declare", e.Track)
	}
	tc := int64(e.Timecode)
	t := f.tracks[e.Track]
	if t == nil {
		t = &trackSpan{last: tc, minStart: tc, maxEnd: tc}
		f.tracks[e.Track] = t
	} else {
		if step := tc - t.last; step > 0 && (t.interval == 0 || step < t.interval) {
			t.interval = step
		}
		t.last = tc
		t.minStart = min(t.minStart, tc)
	}
	// Spans are compared in timecode units, where the bounds on tc (16 bits)
	// and on the scale keep every sum and product far from overflow.
	end := tc
	if e.HasDuration {
		if e.Duration > uint64(s.maxSpan()) {
			return fail(ErrFragmentTooLong, "a block lasts %d × %d ns; a fragment may span at most %v",
				e.Duration, s.scale(), s.m.opts.MaxFragmentDuration)
		}
		end += int64(e.Duration)
	}
	t.maxEnd = max(t.maxEnd, end)
	if span := f.span(); span > s.maxSpan() {
		return fail(ErrFragmentTooLong, "fragment spans %v; at most %v is allowed",
			time.Duration(span)*time.Duration(s.scale()), s.m.opts.MaxFragmentDuration)
	}
	return s.data(e.Data, nil)
}

func (s *Session) hasTrack(n uint64) bool {
	for _, t := range s.header.Tracks {
		if t.Number == n {
			return true
		}
	}
	return false
}

// span is the fragment's duration in timecode units: from its earliest
// frame to the end of its latest, a frame lasting its BlockDuration or
// else its track's frame interval.
func (f *fragment) span() int64 {
	var first, end int64
	seen := false
	for _, t := range f.tracks {
		e := max(t.maxEnd, t.last+t.interval)
		if !seen || t.minStart < first {
			first = t.minStart
		}
		if !seen || e > end {
			end = e
		}
		seen = true
	}
	return end - first
}

// end closes the open fragment: RECEIVED, then storage and PERSISTED.
func (s *Session) end() error {
	f := s.cur
	for _, t := range s.header.Tracks {
		if f.tracks[t.Number] == nil {
			return fail(ErrFramesMissing, "no frames for track %d in the fragment", t.Number)
		}
	}
	f.duration = time.Duration(f.span() * s.scale()).Truncate(time.Millisecond)
	f.live.Complete(f.duration)
	f.receivedAt = time.Now()
	s.ack(Ack{EventType: AckReceived, FragmentTimecode: f.timecode, FragmentNumber: f.number})
	s.m.opts.Metrics.Received()
	s.countBytes()
	s.mu.Lock()
	s.nReceived++
	s.newest = FragmentInfo{Number: f.number, ProducerTime: f.producerTime, ServerTime: f.serverTime, Duration: f.duration, Size: f.size}
	s.mu.Unlock()
	s.prevTimecode, s.havePrev = f.timecode, true
	s.cur = nil
	if s.stream.RetentionHours > 0 {
		s.persistQ <- f
	}
	return nil
}

// persistParallel is how many fragments of one session may be written to
// blob storage at once: with fast producers the file writes and fsyncs of
// consecutive fragments overlap.
const persistParallel = 4

// persistJob is a complete fragment on its way to storage.
type persistJob struct {
	f         *fragment
	headerKey string
	headerAt  time.Time  // when the header blob was written
	blobDone  chan error // the fragment blob (and header blob) are durable, or not
	blobAt    time.Time  // when the fragment blob was written; set before blobDone
	blobKey   string     // the fragment blob's key if it may exist (delete it if the row is not added); set before blobDone
}

// persist stores complete fragments: blobs in parallel, then rows strictly
// in fragment order, each only after its blobs are durable, then PERSISTED
// (DESIGN.md "Order of durability"). Rows in order mean an archive reader
// that follows fragment numbers never sees a later fragment before an
// earlier one. Persisting outlives the request (the fragments were
// RECEIVED) but not the stream: deletion cancels s.persistCtx.
func (s *Session) persist() {
	defer close(s.persisted)
	defer s.stopPersist()
	ctx := s.persistCtx
	jobs := make(chan *persistJob, persistParallel)
	indexed := make(chan struct{})
	go s.index(ctx, jobs, indexed)
	sem := make(chan struct{}, persistParallel)
	blobs := s.blobStore()
	defer blobs.close()
	for f := range s.persistQ {
		j := &persistJob{f: f, blobDone: make(chan error, 1)}
		var err error
		j.headerKey, j.headerAt, err = s.storeHeader(ctx, f)
		if err != nil {
			j.blobDone <- err
		} else {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				// The live hub holds the fragment's bytes: store them from there.
				key, err := blobs.put(ctx, f)
				j.blobKey, j.blobAt = key, time.Now()
				j.blobDone <- err
			}()
		}
		jobs <- j
	}
	close(jobs)
	<-indexed
}

// index adds fragment rows in order. Each catalog call takes every
// consecutive fragment whose blob is already durable, so a fast producer
// pays one commit for several fragments. After a failure it adds nothing
// more, so the archive has no gap; the fragments it could not add are
// withdrawn from the live hub, since they will never be in the archive.
func (s *Session) index(ctx context.Context, jobs <-chan *persistJob, done chan struct{}) {
	defer close(done)
	failed := false
	var held *persistJob
	for {
		j := held
		held = nil
		if j == nil {
			var ok bool
			if j, ok = <-jobs; !ok {
				return
			}
		}
		if failed {
			<-j.blobDone
			s.discard(ctx, []*persistJob{j})
			continue
		}
		var ready []*persistJob
		var bad *persistJob
		var badErr error
		if err := <-j.blobDone; err != nil {
			bad, badErr = j, err
		} else {
			ready = append(ready, j)
		}
	gather:
		for bad == nil && held == nil {
			select {
			case next, ok := <-jobs:
				if !ok {
					break gather
				}
				select {
				case err := <-next.blobDone:
					if err != nil {
						bad, badErr = next, err
					} else {
						ready = append(ready, next)
					}
				default:
					held = next // its blob is still being written
				}
			default:
				break gather
			}
		}
		if late := lateReference(ready); late >= 0 {
			s.discard(ctx, ready[late+1:])
			bad, badErr = ready[late], fmt.Errorf("its blobs were written longer than %v ago", store.MaxReferenceDelay)
			ready = ready[:late]
		}
		commitStart := time.Now()
		if len(ready) > 0 {
			if err := s.commit(ctx, s.rows(ready)); err != nil {
				bad, badErr = ready[0], err
				s.discard(ctx, ready[1:])
				ready = nil
			} else {
				s.m.opts.Storage.CatalogCommit(time.Since(commitStart))
			}
		}
		for _, r := range ready {
			s.ack(Ack{EventType: AckPersisted, FragmentTimecode: r.f.timecode, FragmentNumber: r.f.number})
			r.f.live.Persisted()
			s.m.opts.Metrics.Persisted(time.Since(r.f.receivedAt))
		}
		if len(ready) > 0 {
			s.mu.Lock()
			s.nPersisted += len(ready)
			s.mu.Unlock()
		}
		if bad != nil {
			failed = true
			s.failed(ctx, bad, badErr)
		}
	}
}

// commit adds fragment rows, fenced by the session's lease in a cluster.
func (s *Session) commit(ctx context.Context, rows []*store.Fragment) error {
	lease, err := s.claim.Lease()
	if err != nil {
		return err
	}
	return s.m.catalog.AddFragments(ctx, lease, rows)
}

// lateReference returns the index of the first job whose fragment or
// header blob was written too long ago for a row to reference it (the
// sweeper may take it for an orphan: store.MaxReferenceDelay), or -1.
func lateReference(jobs []*persistJob) int {
	for i, j := range jobs {
		if time.Since(j.blobAt) > store.MaxReferenceDelay || time.Since(j.headerAt) > store.MaxReferenceDelay {
			return i
		}
	}
	return -1
}

// failed ends the session after fragment j could not be stored: ERROR
// 5001, which the producer answers by sending it again. The stream's
// deletion is no storage failure: the session ends with STREAM_NOT_ACTIVE
// instead.
func (s *Session) failed(ctx context.Context, j *persistJob, err error) {
	s.discard(ctx, []*persistJob{j})
	f := j.f
	if ctx.Err() != nil || errors.Is(err, store.ErrNotFound) {
		s.stop(errStreamDeleted)
		return
	}
	s.m.log.Error("persist fragment", "stream", s.stream.Name, "fragment", f.number, "err", err)
	s.errorSent = true
	s.ack(Ack{EventType: AckError, FragmentTimecode: f.timecode, FragmentNumber: f.number, ErrorID: ErrArchival.ID, ErrorCode: ErrArchival.Code})
	if errors.Is(err, store.ErrLeaseLost) {
		// Another node owns the stream: nothing more may be stored here.
		s.stop(errLeaseLost)
		return
	}
	s.halt(fmt.Errorf("persist fragment %s: %w", f.number, err))
}

// discard gives up fragments whose rows were not added: they leave the
// live hub, so that readers no longer find them and their memory goes, and
// their blobs are deleted unless a row turns out to exist after all (a
// commit that failed late). A blob whose deletion fails is left for the
// sweeper's orphan pass.
func (s *Session) discard(ctx context.Context, jobs []*persistJob) {
	var numbers []string
	for _, j := range jobs {
		j.f.live.Withdraw()
		if j.blobKey != "" {
			numbers = append(numbers, j.f.number)
		}
	}
	if len(numbers) == 0 {
		return
	}
	// The lookup and deletes must run even after a deletion cancelled ctx.
	ctx = context.WithoutCancel(ctx)
	rows, err := s.m.catalog.Fragments(ctx, s.stream.ID, numbers)
	if err != nil {
		s.m.log.Warn("blobs of unstored fragments left to the sweeper", "stream", s.stream.Name, "err", err)
		return
	}
	kept := map[string]bool{}
	for _, r := range rows {
		kept[r.Number] = true
	}
	for _, j := range jobs {
		if j.blobKey == "" || kept[j.f.number] {
			continue
		}
		if err := s.m.blobs.Delete(ctx, j.blobKey); err != nil {
			s.m.log.Warn("blob of an unstored fragment left to the sweeper", "stream", s.stream.Name, "fragment", j.f.number, "err", err)
		}
	}
}

// rows returns the catalog rows of stored fragments.
func (s *Session) rows(jobs []*persistJob) []*store.Fragment {
	out := make([]*store.Fragment, len(jobs))
	for i, j := range jobs {
		f := j.f
		out[i] = &store.Fragment{
			StreamID:     s.stream.ID,
			Number:       f.number,
			ProducerTime: f.producerTime,
			ServerTime:   f.serverTime,
			Duration:     f.duration,
			Size:         f.size,
			BlobKey:      j.blobKey,
			HeaderKey:    j.headerKey,
		}
	}
	return out
}

// fragmentStore writes a session's fragment blobs: appended to the
// session's own log where the blobs can append (store.Appender), each an
// object of its own otherwise.
type fragmentStore struct {
	s   *Session
	log store.Log // nil: one object each
}

func (s *Session) blobStore() *fragmentStore {
	fs := &fragmentStore{s: s}
	if a, ok := s.m.blobs.(store.Appender); ok {
		fs.log = a.Log(fmt.Sprintf("s%d/g", s.stream.ID))
	}
	return fs
}

// put stores fragment f and returns its blob key. A Put that fails may
// still have stored the object (a commit lost in flight), so its key is
// returned with the error, for discard to delete; an append that fails
// leaves nothing any key refers to.
func (fs *fragmentStore) put(ctx context.Context, f *fragment) (string, error) {
	r := &fragmentReader{ctx: ctx, f: f.live}
	if fs.log != nil {
		return fs.log.Append(ctx, r, f.size)
	}
	key := fmt.Sprintf("s%d/f/%s", fs.s.stream.ID, f.number)
	return key, fs.s.m.blobs.Put(ctx, key, r, f.size)
}

func (fs *fragmentStore) close() {
	if fs.log == nil {
		return
	}
	if err := fs.log.Close(); err != nil {
		fs.s.m.log.Warn("close fragment log", "stream", fs.s.stream.Name, "err", err)
	}
}

// storeHeader writes the header blob of fragment f the first time a
// fragment uses it, under the key of that fragment's number, so no two
// sessions or streams share a header blob and deleting one can never
// break another. A header in use longer than half of
// store.MaxReferenceDelay is written again under a new key, so that rows
// always reference a recent blob (see the sweeper). Headers are few and
// small: this runs in the persist loop itself, before any row can
// reference the header.
func (s *Session) storeHeader(ctx context.Context, f *fragment) (string, time.Time, error) {
	h := f.header
	if h.key != "" && time.Since(h.putAt) < store.MaxReferenceDelay/2 {
		return h.key, h.putAt, nil
	}
	key := fmt.Sprintf("s%d/h/%s", s.stream.ID, f.number)
	if err := s.m.blobs.Put(ctx, key, bytes.NewReader(h.data), int64(len(h.data))); err != nil {
		return "", time.Time{}, fmt.Errorf("store header: %w", err)
	}
	h.key, h.putAt = key, time.Now()
	return h.key, h.putAt, nil
}

// ack queues an ACK for the writer goroutine, which keeps them in order.
func (s *Session) ack(a Ack) { s.acks <- a }

// ackError sends the ERROR ACK that ends the session. It names the
// fragment that failed, or, for an error between fragments, a fresh
// number with timecode 0 as real KVS does (kvs-protocol.md §4.3).
func (s *Session) ackError(c AckErrorClass) {
	s.errorSent = true
	a := Ack{EventType: AckError, ErrorID: c.ID, ErrorCode: c.Code}
	if f := s.aborted; f != nil {
		a.FragmentNumber, a.FragmentTimecode = f.number, f.timecode
	} else if n, err := s.nextNumber(time.Now()); err == nil {
		a.FragmentNumber = n
	} else {
		a.FragmentNumber = store.FragmentNumber(0, time.Now().UnixMilli())
	}
	s.ack(a)
}

// writeAcks writes queued ACKs; after a write error it discards the rest
// and stops the session, whose client is gone.
func (s *Session) writeAcks(done chan struct{}) {
	defer close(done)
	var line []byte
	broken := false
	for a := range s.acks {
		if broken {
			continue
		}
		if a.EventType == AckError {
			s.m.opts.Metrics.Error(a.ErrorID)
		}
		line = a.AppendJSON(line[:0])
		if err := s.p.Ack(line); err != nil {
			broken = true
			s.stop(fmt.Errorf("write ACK: %w", err))
		}
	}
}

// sendIdle sends IDLE while the body is silent.
func (s *Session) sendIdle(ctx context.Context, body *bodyReader, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.m.opts.IdleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if body.silentFor() >= s.m.opts.IdleInterval {
				select {
				case s.acks <- Ack{EventType: AckIdle}:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// drain reads what the producer still sends after an ERROR, bounded, so
// that closing does not reset a connection it is still writing to: a reset
// can discard the ERROR ACK before the producer reads it.
func (s *Session) drain(body *bodyReader) {
	if s.p.SetReadDeadline != nil {
		s.p.SetReadDeadline(time.Now().Add(maxDrainTime))
	}
	io.Copy(io.Discard, io.LimitReader(body.r, maxDrainBytes))
}

// fragmentReader reads a complete live fragment from the start, without
// copying it first. Each call holds the fragment (live.Fragment.Hold), so
// that its memory is not reused under the copy; a call after the fragment
// left the hub (its stream was deleted) fails.
type fragmentReader struct {
	ctx context.Context
	f   *live.Fragment
	off int
}

// errFragmentGone fails a read of a fragment whose memory went back to the
// live hub.
var errFragmentGone = errors.New("the fragment left memory before it was stored")

func (r *fragmentReader) Read(p []byte) (int, error) {
	release, ok := r.f.Hold()
	if !ok {
		return 0, errFragmentGone
	}
	defer release()
	view, done, err := r.f.Next(r.ctx, r.off)
	if err != nil {
		return 0, err
	}
	if len(view) == 0 && done {
		return 0, io.EOF
	}
	n := copy(p, view)
	r.off += n
	return n, nil
}

// WriteTo hands the live chunks to w directly, so io.Copy skips a buffer.
func (r *fragmentReader) WriteTo(w io.Writer) (int64, error) {
	release, ok := r.f.Hold()
	if !ok {
		return 0, errFragmentGone
	}
	defer release()
	var total int64
	for {
		view, done, err := r.f.Next(r.ctx, r.off)
		if err != nil {
			return total, err
		}
		if len(view) > 0 {
			n, err := w.Write(view)
			total += int64(n)
			r.off += n
			if err != nil {
				return total, err
			}
		}
		if done {
			return total, nil
		}
	}
}
