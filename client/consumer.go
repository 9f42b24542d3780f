package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// GetMedia start selector types (kvs-protocol.md §5.1).
const (
	StartNow               = "NOW"                // the fragment being ingested, else the next one
	StartEarliest          = "EARLIEST"           // the oldest fragment the stream keeps
	StartFragmentNumber    = "FRAGMENT_NUMBER"    // the fragment after AfterFragmentNumber
	StartProducerTimestamp = "PRODUCER_TIMESTAMP" // the fragment holding Timestamp, by producer time
	StartServerTimestamp   = "SERVER_TIMESTAMP"   // the fragment holding Timestamp, by server time
	StartContinuationToken = "CONTINUATION_TOKEN" // where a previous read stopped
)

// StartSelector says where a GetMedia read begins (kvs-protocol.md §5.1).
type StartSelector struct {
	Type                string    // one of the Start* types; empty means StartNow
	AfterFragmentNumber string    // with StartFragmentNumber
	Timestamp           time.Time // with StartProducerTimestamp and StartServerTimestamp (ms precision)
	ContinuationToken   string    // with StartContinuationToken
}

// GetOptions configure a GetMedia read.
type GetOptions struct {
	Endpoint string // data endpoint base URL (GetDataEndpoint with GET_MEDIA), unless Resolve is set
	// Resolve, when set, returns the data endpoint before every connection,
	// so that a reconnect asks GetDataEndpoint again.
	Resolve func(context.Context) (string, error)
	Stream  string        // stream name
	Start   StartSelector // where to begin; resumes use continuation tokens
	// Follow reconnects when a response ends cleanly, as AWS ends GetMedia
	// connections after about 45 minutes (kvs-protocol.md §5.2), so a live
	// stream is followed for as long as ctx lasts. Without it a clean end
	// of the response ends Get. A dropped connection is resumed either way.
	Follow bool
	// IdleTimeout, when set, ends Get without error once the payload has
	// sent nothing for this long: the reader has caught up with a stream
	// that is not growing. The last fragment before the silence is still
	// delivered. Zero waits for as long as ctx lasts.
	IdleTimeout time.Duration
	// RetryFor bounds how long Get goes on reconnecting once a connection
	// is lost (dropped, refused, throttled, or answered with a server error)
	// and none has been answered since; zero retries for as long as ctx
	// lasts. Reconnects back off exponentially from 250 ms to 10 s, with
	// jitter.
	RetryFor   time.Duration
	HTTPClient *http.Client
	// Sign, when set, signs each GetMedia request (SigV4). The body is
	// JSON, and req.GetBody returns a copy of it to hash.
	Sign func(*http.Request) error
	// Logf, when set, is told about reconnects.
	Logf func(format string, args ...any)
	// OnPart, when set, is called with every element of the payload as soon
	// as it is read (mkv.ChunkReader.OnPart), so that a live fragment can be
	// passed on frame by frame before fn gets it whole. A chunk cut off by a
	// dropped connection has had some of its parts seen; after the resume it
	// comes again from its first part. An error from OnPart ends Get.
	OnPart func(mkv.ChunkPart) error
}

// GetStats counts what a read did.
type GetStats struct {
	Fragments  int   // fragments delivered
	Bytes      int64 // bytes of the delivered chunks
	Reconnects int   // connections opened after the first
}

// Fragment is one fragment of a GetMedia payload: a chunk (kvs-protocol.md
// §5.3) with its KVS tags decoded. Its byte slices are its own and may be
// kept.
type Fragment struct {
	Number            string    // AWS_KINESISVIDEO_FRAGMENT_NUMBER
	ProducerTime      time.Time // AWS_KINESISVIDEO_PRODUCER_TIMESTAMP
	ServerTime        time.Time // AWS_KINESISVIDEO_SERVER_TIMESTAMP: when KVS began receiving it
	MillisBehindNow   int64     // AWS_KINESISVIDEO_MILLIS_BEHIND_NOW: server time when sent minus ServerTime
	ContinuationToken string    // AWS_KINESISVIDEO_CONTINUATION_TOKEN: resumes after this fragment

	Header   []byte            // EBML header, unknown-size Segment and the producer's header elements
	Cluster  []byte            // the producer's Cluster, byte for byte
	Trailing []byte            // producer level-1 elements that followed the Cluster (metadata Tags, Cues)
	Tags     map[string]string // every SimpleTag of the chunk, the producer's and KVS's
	Data     []byte            // the whole chunk as received
}

// ErrStop, returned by a Get handler, ends Get without an error.
var ErrStop = errors.New("stop reading")

// errIdle records that a response ended because IdleTimeout passed.
var errIdle = errors.New("payload idle")

// partError is an error of GetOptions.OnPart, which ends Get as it is.
type partError struct{ err error }

func (e *partError) Error() string { return e.err.Error() }

// retry marks an error after which Get reconnects.
type retry struct{ err error }

func (r *retry) Error() string { return r.err.Error() }
func (r *retry) Unwrap() error { return r.err }

// Get reads the stream from opts.Start and calls fn with each complete
// fragment, in fragment-number order. After a dropped connection, or a
// response that ends while Follow is set, it reconnects with the
// continuation token of the last fragment delivered, so fn sees no fragment
// twice and none is skipped; a chunk cut off by the drop is discarded, never
// delivered. Get returns when the response ends (without Follow), the
// payload is idle for IdleTimeout, fn returns an error (ErrStop: none), the
// payload carries an in-band error (a *mkv.MediaError), a request fails for
// good (an *APIError), or ctx ends.
func Get(ctx context.Context, opts GetOptions, fn func(*Fragment) error) (GetStats, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Resolve == nil {
		opts.Resolve = func(context.Context) (string, error) { return opts.Endpoint, nil }
	}
	if opts.Logf == nil {
		opts.Logf = nologf
	}
	c := &consumer{opts: opts, fn: fn, backoff: backoff{retryFor: opts.RetryFor, logf: opts.Logf}}
	for {
		err := c.attempt(ctx)
		var r *retry
		switch {
		case err == nil, errors.Is(err, ErrStop):
			return c.stats, nil
		case ctx.Err() != nil:
			return c.stats, ctx.Err()
		case !errors.As(err, &r):
			return c.stats, err
		}
		if err := c.backoff.fail(ctx, "GetMedia", r.err); err != nil {
			return c.stats, err
		}
		c.stats.Reconnects++
	}
}

// consumer is the state of one Get call.
type consumer struct {
	opts    GetOptions
	fn      func(*Fragment) error
	token   string // continuation token of the last fragment delivered
	stats   GetStats
	backoff backoff
}

// attempt runs one GetMedia connection. It returns nil when Get is done, a
// *retry when it should reconnect, and any other error to end Get.
func (c *consumer) attempt(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.request(ctx)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if d := c.backoff.connected(); d > 0 {
		from := "at the start selector"
		if c.token != "" {
			from = "after fragment " + c.token
		}
		c.opts.Logf("reconnected after %v, resuming %s", d.Round(100*time.Millisecond), from)
	}
	p := &payload{body: resp.Body}
	if c.opts.IdleTimeout > 0 {
		p.idle = c.opts.IdleTimeout
		p.timer = time.AfterFunc(p.idle, func() { p.idled.Store(true); cancel() })
		p.timer.Stop() // armed by Read while it waits
		defer p.timer.Stop()
	}
	chunks := mkv.NewChunkReader(p)
	if c.opts.OnPart != nil {
		chunks.OnPart(func(part mkv.ChunkPart) error {
			if err := c.opts.OnPart(part); err != nil {
				return &partError{err}
			}
			return nil
		})
	}
	cut := false // the payload ended inside a chunk
	for {
		ch, err := chunks.Next()
		if err == io.EOF {
			break
		}
		var pe *partError
		if errors.As(err, &pe) {
			return pe.err
		}
		if err != nil {
			// A read failure shows as the end of the payload, so an error
			// here is either a chunk cut by that end or bad data.
			if p.done {
				cut = true
				break
			}
			return fmt.Errorf("GetMedia payload: %w", err)
		}
		if err := ch.Err(); err != nil {
			return err
		}
		token, whole := ch.Tags[mkv.TagContinuationToken]
		if !whole {
			// The end tags close every GetMedia chunk (kvs-protocol.md §5.3):
			// without them the payload ended inside the chunk.
			if p.done {
				cut = true
				break
			}
			return fmt.Errorf("GetMedia payload: chunk at offset %d has no %s", ch.Offset, mkv.TagContinuationToken)
		}
		f, err := newFragment(ch, token)
		if err != nil {
			return err
		}
		c.token = token
		c.backoff.progress()
		c.stats.Fragments++
		c.stats.Bytes += int64(len(ch.Data))
		if err := c.fn(f); err != nil {
			return err
		}
	}
	switch {
	case errors.Is(p.err, errIdle):
		return nil
	case p.err != nil:
		return &retry{fmt.Errorf("GetMedia connection dropped: %w", p.err)}
	case cut:
		return &retry{errors.New("GetMedia response ended inside a chunk")}
	case c.opts.Follow:
		// A clean end is how a server ends long responses: no failure.
		c.backoff.progress()
		return &retry{errors.New("GetMedia response ended")}
	}
	return nil
}

// request sends one GetMedia request, starting after the last fragment
// delivered if there is one.
func (c *consumer) request(ctx context.Context) (*http.Response, error) {
	sel := c.opts.Start
	if c.token != "" {
		sel = StartSelector{Type: StartContinuationToken, ContinuationToken: c.token}
	}
	body, err := json.Marshal(getMediaInput{StreamName: c.opts.Stream, StartSelector: sel.wire()})
	if err != nil {
		return nil, fmt.Errorf("GetMedia request: %w", err)
	}
	endpoint, err := c.opts.Resolve(ctx)
	var ae *APIError
	if errors.As(err, &ae) && !ae.throttled() {
		return nil, err
	}
	if err != nil {
		return nil, &retry{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/getMedia", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("GetMedia request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.opts.Sign != nil {
		if err := c.opts.Sign(req); err != nil {
			return nil, fmt.Errorf("sign GetMedia: %w", err)
		}
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, &retry{fmt.Errorf("GetMedia: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		e := apiError("GetMedia", resp)
		if e.throttled() {
			return nil, &retry{e}
		}
		return nil, e
	}
	return resp, nil
}

// getMediaInput is the GetMedia request body (kvs-protocol.md §5.1).
type getMediaInput struct {
	StreamName    string
	StartSelector wireSelector
}

type wireSelector struct {
	StartSelectorType   string
	AfterFragmentNumber string       `json:",omitempty"`
	StartTimestamp      *json.Number `json:",omitempty"` // epoch seconds
	ContinuationToken   string       `json:",omitempty"`
}

func (s StartSelector) wire() wireSelector {
	w := wireSelector{StartSelectorType: s.Type, AfterFragmentNumber: s.AfterFragmentNumber, ContinuationToken: s.ContinuationToken}
	if w.StartSelectorType == "" {
		w.StartSelectorType = StartNow
	}
	if s.Type == StartProducerTimestamp || s.Type == StartServerTimestamp {
		n := json.Number(mkv.FormatTimestampMillis(s.Timestamp.UnixMilli()))
		w.StartTimestamp = &n
	}
	return w
}

// payload is a response body as the chunk parser sees it. A failed read,
// or IdleTimeout passing, shows as a clean end (io.EOF) and is kept in err:
// the parser then hands back the chunk it was in if that ended at an
// element boundary, and the end tags tell whether it is whole.
type payload struct {
	body  io.Reader
	idle  time.Duration
	timer *time.Timer // cancels the request when it fires; runs only inside Read
	idled atomic.Bool

	done bool  // the body ended
	err  error // why, if not cleanly: errIdle or the read error
}

func (p *payload) Read(b []byte) (int, error) {
	if p.done {
		return 0, io.EOF
	}
	if p.timer != nil {
		p.timer.Reset(p.idle)
	}
	n, err := p.body.Read(b)
	if p.timer != nil {
		p.timer.Stop()
	}
	if err != nil {
		p.done = true
		switch {
		case p.idled.Load():
			p.err = errIdle
		case err != io.EOF:
			p.err = err
		}
		err = io.EOF
	}
	return n, err
}

// newFragment decodes a whole chunk's tags (kvs-protocol.md §5.4).
func newFragment(ch *mkv.Chunk, token string) (*Fragment, error) {
	f := &Fragment{ContinuationToken: token, Header: ch.Header, Cluster: ch.Cluster, Trailing: ch.Trailing, Tags: ch.Tags, Data: ch.Data}
	f.Number = ch.Tags[mkv.TagFragmentNumber]
	if f.Number == "" || ch.Cluster == nil {
		return nil, fmt.Errorf("GetMedia payload: chunk at offset %d has no %s or no Cluster", ch.Offset, mkv.TagFragmentNumber)
	}
	var err error
	if f.ProducerTime, err = tagTime(ch.Tags, mkv.TagProducerTimestamp); err != nil {
		return nil, fmt.Errorf("GetMedia fragment %s: %w", f.Number, err)
	}
	if f.ServerTime, err = tagTime(ch.Tags, mkv.TagServerTimestamp); err != nil {
		return nil, fmt.Errorf("GetMedia fragment %s: %w", f.Number, err)
	}
	if v, ok := ch.Tags[mkv.TagMillisBehindNow]; ok {
		if f.MillisBehindNow, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, fmt.Errorf("GetMedia fragment %s: %s %q is not a number", f.Number, mkv.TagMillisBehindNow, v)
		}
	}
	return f, nil
}

// tagTime parses a timestamp tag: epoch seconds with three decimals.
func tagTime(tags map[string]string, name string) (time.Time, error) {
	v, ok := tags[name]
	if !ok {
		return time.Time{}, fmt.Errorf("no %s", name)
	}
	t, err := mkv.ParseTimestamp(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %w", name, err)
	}
	return t, nil
}
