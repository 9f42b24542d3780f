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
	Endpoint     string    // data endpoint base URL (GetDataEndpoint with PUT_MEDIA)
	Stream       string    // stream name
	TimecodeType string    // "ABSOLUTE" (default) or "RELATIVE"
	StartTime    time.Time // producer start timestamp; default now
	// Realtime paces frames by their timecodes, so a file is sent as a
	// camera would send it.
	Realtime bool
	// AckOn is the event that lets a fragment go: "PERSISTED" (default) or
	// "RECEIVED" for streams that keep no data and so send no PERSISTED.
	AckOn string
	// MaxAttempts is how many connections in a row may fail without any
	// fragment being acknowledged before Put gives up (default 5).
	MaxAttempts int
	HTTPClient  *http.Client
	// Sign, when set, signs each PutMedia request (SigV4).
	Sign func(*http.Request) error
	// OnAck, when set, sees every ACK.
	OnAck func(Ack)
}

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
	timecode uint64
	data     []byte
	complete bool
	acked    bool
}

// producer is the state of one Put call.
type producer struct {
	opts PutOptions

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when anything below changes
	frags    []*pending    // unacknowledged fragments, oldest first
	base     int           // absolute index of frags[0]
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
// is acknowledged, the input fails, or ctx ends. After a dropped connection
// or a retriable ERROR it reconnects and re-sends from the first fragment
// not yet acknowledged.
func Put(ctx context.Context, opts PutOptions, r io.Reader) (PutStats, error) {
	if opts.TimecodeType == "" {
		opts.TimecodeType = "ABSOLUTE"
	}
	if opts.StartTime.IsZero() {
		opts.StartTime = time.Now()
	}
	if opts.AckOn == "" {
		opts.AckOn = "PERSISTED"
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 5
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	p := &producer{opts: opts, changed: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.readInput(ctx, r)

	failures := 0
	for {
		acked := p.snapshot().Acked
		done, err := p.attempt(ctx)
		if done {
			return p.snapshot(), nil
		}
		var ea *ErrAck
		if errors.As(err, &ea) && !ea.Ack.Retriable() || ctx.Err() != nil {
			return p.snapshot(), err
		}
		if p.inputFailed() != nil {
			return p.snapshot(), p.inputFailed()
		}
		if p.snapshot().Acked > acked {
			failures = 0
		}
		failures++
		if failures >= opts.MaxAttempts {
			return p.snapshot(), fmt.Errorf("PutMedia: %d connections failed without progress: %w", failures, err)
		}
		p.mu.Lock()
		p.stats.Reconnects++
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return p.snapshot(), ctx.Err()
		case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
		}
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
	for {
		ev, err := sp.Next()
		if err != nil {
			p.mu.Lock()
			if !errors.Is(err, io.EOF) {
				p.inputErr = fmt.Errorf("read input: %w", err)
			}
			p.inputEnd = true
			p.notify()
			p.mu.Unlock()
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
		p.mu.Lock()
		p.stats.Bytes += int64(len(ev.Bytes()))
		switch e := ev.(type) {
		case *mkv.Header:
			header, first = e, true
		case *mkv.FragmentStart:
			// The normalized header has an unknown-size Segment, so it can
			// precede any fragment, also on a resend.
			h := header.ChunkHeader
			if first {
				h, first = header.FirstChunkHeader, false
			}
			buf := make([]byte, 0, max(lastSize+lastSize/8, len(e.Data)))
			cur = &pending{header: h, timecode: e.Timecode, data: append(buf, e.Data...)}
			p.frags = append(p.frags, cur)
			p.stats.Fragments++
		case *mkv.Frame, *mkv.FragmentData:
			cur.data = append(cur.data, e.Bytes()...)
		case *mkv.FragmentEnd:
			cur.complete = true
			lastSize = len(cur.data)
			cur = nil
		}
		p.notify()
		p.mu.Unlock()
	}
}

// attempt runs one PutMedia connection. done means every fragment of the
// input was acknowledged.
func (p *producer) attempt(ctx context.Context) (done bool, err error) {
	p.mu.Lock()
	if p.inputEnd && len(p.frags) == 0 {
		p.mu.Unlock()
		return p.inputErr == nil, p.inputErr
	}
	from := p.base
	p.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.Endpoint+"/putMedia", pr)
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
			p.acknowledge(a.FragmentTimecode)
		}
	}
}

// acknowledge marks the oldest unacknowledged fragment with the timecode
// and lets go of the acknowledged prefix.
func (p *producer) acknowledge(timecode uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frags {
		if !f.acked && f.complete && f.timecode == timecode {
			f.acked = true
			p.stats.Acked++
			break
		}
	}
	for len(p.frags) > 0 && p.frags[0].acked {
		p.frags[0] = nil
		p.frags = p.frags[1:]
		p.base++
	}
	p.notify()
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
