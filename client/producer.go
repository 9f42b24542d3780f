package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// PutOptions configure a PutMedia upload.
type PutOptions struct {
	Endpoint string // data endpoint base URL (GetDataEndpoint with PUT_MEDIA), unless Resolve is set
	// Resolve, when set, returns the data endpoint before every connection,
	// as the official producer calls GetDataEndpoint again after a failure:
	// a stream may have moved to another node meanwhile.
	Resolve      func(context.Context) (string, error)
	Stream       string    // stream name
	TimecodeType string    // "ABSOLUTE" (default) or "RELATIVE"
	StartTime    time.Time // producer start timestamp; default now
	// Restamp rewrites each Cluster Timecode to StartTime plus the time
	// since the input's first Cluster, and sends them as ABSOLUTE, as the
	// official producer stamps frames with its wall clock
	// (kvs-protocol.md §4.1): two uploads of the same file then follow each
	// other in time instead of both starting at 0. A new EBML document in
	// the input continues from the later of now and its predecessor's last
	// frame. Without it, Cluster timecodes are sent as they are.
	Restamp bool
	// Realtime paces frames by their timecodes, so a file is sent as a
	// camera would send it.
	Realtime bool
	// AckOn is the event that lets a fragment go: "PERSISTED" (default) or
	// "RECEIVED" for streams that keep no data and so send no PERSISTED.
	AckOn string
	// RetryFor bounds how long Put goes on reconnecting once a connection
	// is lost (dropped, refused, throttled, answered with a server error or
	// a retriable ERROR) and none has been answered since; zero retries for
	// as long as there is input to deliver. Reconnects back off
	// exponentially from 250 ms to 10 s, with jitter.
	RetryFor time.Duration
	// MaxBuffer bounds the bytes of fragments read but not yet
	// acknowledged (default DefaultMaxBuffer). When it is reached Put stops
	// reading the input until acknowledgements free room: the upstream
	// (a file, a pipe from an encoder) waits rather than anything being
	// dropped. A single fragment larger than MaxBuffer is still read whole.
	MaxBuffer  int64
	HTTPClient *http.Client
	// Sign, when set, signs each PutMedia request (SigV4).
	Sign func(*http.Request) error
	// OnAck, when set, sees every ACK.
	OnAck func(Ack)
	// Logf, when set, is told about reconnects, a full buffer and
	// fragments that do not start with a key frame.
	Logf func(format string, args ...any)
}

// DefaultMaxBuffer is PutOptions.MaxBuffer's default: about 2 minutes of
// a 4 Mbit/s camera, to ride out a server restart.
const DefaultMaxBuffer = 64 << 20

// PutStats counts what an upload did.
type PutStats struct {
	Fragments  int   // fragments read from the input
	Acked      int   // fragments acknowledged with AckOn
	Bytes      int64 // input bytes read
	Reconnects int
}

// pending is a fragment kept until it is acknowledged, so it can be
// re-sent on a new connection.
type pending struct {
	header   []byte // stream header to send before it on a new connection
	timecode uint64 // Cluster Timecode as sent, which ACKs echo
	data     []byte
	complete bool
	acked    bool
}

// producer is the state of one Put call.
type producer struct {
	opts PutOptions
	logf func(string, ...any)
	full bool // the buffer filled and has not drained to half since; owned by readInput

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when anything below changes
	frags    []*pending    // unacknowledged fragments, oldest first
	base     int           // absolute index of frags[0]
	buffered int64         // bytes of data in frags
	inputEnd bool
	inputErr error
	stats    PutStats
}

// ErrAck is an ERROR acknowledgement that ended an upload.
type ErrAck struct{ Ack Ack }

func (e *ErrAck) Error() string {
	return fmt.Sprintf("PutMedia ERROR %d %s for fragment %s", e.Ack.ErrorID, e.Ack.ErrorCode, e.Ack.FragmentNumber)
}

// Put streams the MKV in r to the stream and returns once every fragment
// is acknowledged, the input fails, or ctx ends. After a dropped connection,
// a server error or a retriable ERROR it reconnects, backing off, and
// re-sends from the first fragment not yet acknowledged, for as long as
// RetryFor allows.
func Put(ctx context.Context, opts PutOptions, r io.Reader) (PutStats, error) {
	if opts.TimecodeType == "" || opts.Restamp {
		opts.TimecodeType = "ABSOLUTE"
	}
	if opts.StartTime.IsZero() {
		opts.StartTime = time.Now()
	}
	if opts.AckOn == "" {
		opts.AckOn = "PERSISTED"
	}
	if opts.MaxBuffer <= 0 {
		opts.MaxBuffer = DefaultMaxBuffer
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Resolve == nil {
		opts.Resolve = func(context.Context) (string, error) { return opts.Endpoint, nil }
	}
	p := &producer{opts: opts, logf: opts.Logf, changed: make(chan struct{})}
	if p.logf == nil {
		p.logf = nologf
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.readInput(ctx, r)

	b := &backoff{retryFor: opts.RetryFor, logf: p.logf}
	for {
		done, err := p.attempt(ctx, b)
		if done {
			return p.snapshot(), nil
		}
		var ea *ErrAck
		var ae *APIError
		switch {
		case ctx.Err() != nil:
			return p.snapshot(), err
		case p.inputFailed() != nil:
			return p.snapshot(), p.inputFailed()
		case errors.As(err, &ea) && !ea.Ack.Retriable(), errors.As(err, &ae) && !ae.throttled():
			return p.snapshot(), err
		}
		p.mu.Lock()
		if len(p.frags) == 0 {
			// Nothing was waiting for an ACK: a session the server ended
			// while the input was quiet, not a failure to send.
			b.progress()
		}
		p.mu.Unlock()
		if err := b.fail(ctx, "PutMedia", err); err != nil {
			return p.snapshot(), err
		}
		p.mu.Lock()
		p.stats.Reconnects++
		p.mu.Unlock()
	}
}

func (p *producer) snapshot() PutStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *producer) inputFailed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inputErr
}

// notify wakes whoever waits for a change; p.mu must be held.
func (p *producer) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// room waits until the buffer has room or holds no complete fragment that
// an acknowledgement could free, so that a fragment larger than the whole
// budget still gets through. It returns false when ctx ends. It says when
// the buffer fills, once until it has drained to half.
func (p *producer) room(ctx context.Context) bool {
	for {
		p.mu.Lock()
		buffered, changed := p.buffered, p.changed
		wait := buffered >= p.opts.MaxBuffer && len(p.frags) > 0 && p.frags[0].complete
		p.mu.Unlock()
		if buffered < p.opts.MaxBuffer/2 {
			p.full = false
		}
		if !wait {
			return true
		}
		if !p.full {
			p.full = true
			p.logf("buffer full: %.1f MiB read but not yet %s; reading the input only as fast as the server acknowledges",
				float64(buffered)/(1<<20), p.opts.AckOn)
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

// readInput splits the input into fragments for the senders.
func (p *producer) readInput(ctx context.Context, r io.Reader) {
	sp := mkv.NewSplitter(r, mkv.SplitterOptions{})
	var header *mkv.Header
	first := false
	var cur *pending
	lastSize := 0 // sizes the next fragment's buffer: appends then rarely re-copy
	var wallStart time.Time
	var mediaStart int64
	started := false
	st := stamper{start: p.opts.StartTime}
	keys := keyCheck{logf: p.logf}
	fail := func(err error) {
		p.mu.Lock()
		p.inputErr = err
		p.inputEnd = true
		p.notify()
		p.mu.Unlock()
	}
	for {
		if !p.room(ctx) {
			return
		}
		ev, err := sp.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			} else {
				err = fmt.Errorf("read input: %w", err)
			}
			fail(err)
			return
		}
		if p.opts.Realtime {
			if f, ok := ev.(*mkv.Frame); ok && cur != nil {
				t := (int64(cur.timecode) + int64(f.Timecode)) * int64(header.TimecodeScale)
				if !started {
					wallStart, mediaStart, started = time.Now(), t, true
				}
				if wait := time.Until(wallStart.Add(time.Duration(t - mediaStart))); wait > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
			}
		}
		data := ev.Bytes()
		var tc uint64 // a fragment's Cluster Timecode as sent
		switch e := ev.(type) {
		case *mkv.Header:
			header, first = e, true
			st.newDocument(e.TimecodeScale)
			keys.header(e)
		case *mkv.FragmentStart:
			tc = e.Timecode
			if p.opts.Restamp {
				if tc, err = st.timecode(e.Timecode); err == nil {
					data, err = mkv.SetClusterTimecode(e.Data, tc)
				}
				if err != nil {
					fail(fmt.Errorf("read input: fragment at offset %d: %w", e.Offset, err))
					return
				}
			}
			keys.start(tc)
		case *mkv.Frame:
			st.frame(e.Timecode)
			keys.frame(e)
		}
		p.mu.Lock()
		p.stats.Bytes += int64(len(ev.Bytes()))
		switch ev.(type) {
		case *mkv.FragmentStart:
			// The normalized header has an unknown-size Segment, so it can
			// precede any fragment, also on a resend.
			h := header.ChunkHeader
			if first {
				h, first = header.FirstChunkHeader, false
			}
			buf := make([]byte, 0, max(lastSize+lastSize/8, len(data)))
			cur = &pending{header: h, timecode: tc, data: append(buf, data...)}
			p.frags = append(p.frags, cur)
			p.buffered += int64(len(data))
			p.stats.Fragments++
		case *mkv.Frame, *mkv.FragmentData:
			cur.data = append(cur.data, data...)
			p.buffered += int64(len(data))
		case *mkv.FragmentEnd:
			cur.complete = true
			lastSize = len(cur.data)
			cur = nil
		}
		p.notify()
		p.mu.Unlock()
	}
}

// stamper turns an input's Cluster timecodes into absolute ones
// (PutOptions.Restamp), in TimecodeScale units.
type stamper struct {
	start     time.Time
	scale     int64 // TimecodeScale of the current document
	offset    int64 // added to the document's timecodes
	started   bool  // offset is set for the current document
	documents int
	last      uint64 // the latest Cluster Timecode, as sent
	latest    int64  // the latest frame, in nanoseconds since the epoch
}

// newDocument starts a new timecode base: the input's next EBML document.
func (s *stamper) newDocument(scale uint64) {
	s.scale, s.started = int64(scale), false
	s.documents++
}

// timecode is the absolute timecode of a Cluster with input timecode tc.
func (s *stamper) timecode(tc uint64) (uint64, error) {
	if !s.started {
		base := s.start.UnixNano()
		if s.documents > 1 {
			base = max(time.Now().UnixNano(), s.latest+1)
		}
		s.offset = (base+s.scale-1)/s.scale - int64(tc)
		s.started = true
	}
	abs := int64(tc) + s.offset
	if abs < 0 || int64(tc) < 0 {
		return 0, fmt.Errorf("cluster timecode %d cannot be made absolute", tc)
	}
	s.last = uint64(abs)
	return s.last, nil
}

// frame notes a frame's time, relative to the latest Cluster.
func (s *stamper) frame(rel int16) {
	s.latest = max(s.latest, (int64(s.last)+int64(rel))*s.scale)
}

// keyCheck warns, once, about a fragment whose first video frame is not a
// key frame: a reader starting at such a fragment decodes garbage until
// the next key frame. Encoders make them when their key frame interval is
// longer than the fragments their muxer cuts.
type keyCheck struct {
	logf     func(string, ...any)
	video    map[uint64]bool // the header's video tracks
	pending  bool            // the current fragment's first video frame is still to come
	timecode uint64
	warned   bool
}

func (k *keyCheck) header(h *mkv.Header) {
	k.video = map[uint64]bool{}
	for _, t := range h.Tracks {
		if t.Type == 1 {
			k.video[t.Number] = true
		}
	}
}

func (k *keyCheck) start(tc uint64) { k.pending, k.timecode = true, tc }

func (k *keyCheck) frame(f *mkv.Frame) {
	if !k.pending || !k.video[f.Track] {
		return
	}
	k.pending = false
	if !f.Keyframe && !k.warned {
		k.warned = true
		k.logf("warning: the fragment at timecode %d does not start with a key frame (and maybe others after it: this is said once); "+
			"a reader starting there cannot decode until the next key frame. Make the encoder's key frame interval equal to the "+
			"fragment length, e.g. ffmpeg -g 60 -cluster_time_limit 2100 at 30 fps", k.timecode)
	}
}

// attempt runs one PutMedia connection. done means every fragment of the
// input was acknowledged.
func (p *producer) attempt(ctx context.Context, b *backoff) (done bool, err error) {
	p.mu.Lock()
	if p.inputEnd && len(p.frags) == 0 {
		p.mu.Unlock()
		return p.inputErr == nil, p.inputErr
	}
	from := p.base
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	endpoint, err := p.opts.Resolve(ctx)
	if err != nil {
		return false, err
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/putMedia", pr)
	if err != nil {
		return false, err
	}
	req.Header.Set("x-amzn-stream-name", p.opts.Stream)
	req.Header.Set("x-amzn-fragment-timecode-type", p.opts.TimecodeType)
	ms := p.opts.StartTime.UnixMilli()
	req.Header.Set("x-amzn-producer-start-timestamp", strconv.FormatInt(ms/1000, 10)+"."+fmt.Sprintf("%03d", ms%1000))
	req.Header.Set("x-amzn-fragment-acknowledgment-required", "1")
	req.Header.Set("Content-Type", "application/json")
	if p.opts.Sign != nil {
		if err := p.opts.Sign(req); err != nil {
			return false, fmt.Errorf("sign PutMedia: %w", err)
		}
	}
	go func() { pw.CloseWithError(p.send(ctx, pw, from)) }()
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("PutMedia: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, apiError("PutMedia", resp)
	}
	if d := b.connected(); d > 0 {
		p.mu.Lock()
		n := len(p.frags)
		p.mu.Unlock()
		p.logf("reconnected after %v, re-sending %d fragments", d.Round(100*time.Millisecond), n)
	}
	acks := NewAckReader(resp.Body)
	for {
		a, err := acks.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.mu.Lock()
				done := p.inputEnd && len(p.frags) == 0 && p.inputErr == nil
				p.mu.Unlock()
				if done {
					return true, nil
				}
				return false, errors.New("PutMedia response ended before every fragment was acknowledged")
			}
			return false, err
		}
		if p.opts.OnAck != nil {
			p.opts.OnAck(a)
		}
		switch a.EventType {
		case "ERROR":
			return false, &ErrAck{Ack: a}
		case p.opts.AckOn:
			if p.acknowledge(a.FragmentTimecode) {
				b.progress()
			}
		}
	}
}

// acknowledge marks the oldest unacknowledged fragment with the timecode
// and lets go of the acknowledged prefix. It reports whether a fragment
// was acknowledged.
func (p *producer) acknowledge(timecode uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	found := false
	for _, f := range p.frags {
		if !f.acked && f.complete && f.timecode == timecode {
			f.acked, found = true, true
			p.stats.Acked++
			break
		}
	}
	for len(p.frags) > 0 && p.frags[0].acked {
		p.buffered -= int64(len(p.frags[0].data))
		p.frags[0] = nil
		p.frags = p.frags[1:]
		p.base++
	}
	p.notify()
	return found
}

// send writes fragments from absolute index from on, each preceded by its
// stream header where that differs from the last one written, following
// the input as it grows. It returns nil at the end of the input.
func (p *producer) send(ctx context.Context, w io.Writer, from int) error {
	var lastHeader []byte
	for i := from; ; i++ {
		sent := 0
		for {
			f, data, complete, end, changed := p.next(i, sent)
			if f == nil && end {
				return nil
			}
			if f != nil && sent == 0 && !bytes.Equal(f.header, lastHeader) {
				if _, err := w.Write(f.header); err != nil {
					return err
				}
				lastHeader = f.header
			}
			if len(data) > 0 {
				if _, err := w.Write(data); err != nil {
					return err
				}
				sent += len(data)
				continue
			}
			if complete {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
		}
	}
}

// next returns fragment i (nil if the input has not reached it), its bytes
// from offset on, whether it is complete and all of it is in data, whether
// the input ended, and the channel that signals the next change. Bytes are
// only ever appended, so data stays valid after the lock is released.
func (p *producer) next(i, offset int) (f *pending, data []byte, complete, end bool, changed chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch k := i - p.base; {
	case k < 0: // acknowledged already: nothing left to send of it
		return &pending{complete: true}, nil, true, p.inputEnd, p.changed
	case k < len(p.frags):
		f = p.frags[k]
		data, complete = f.data[offset:], f.complete
	}
	return f, data, complete, p.inputEnd, p.changed
}
