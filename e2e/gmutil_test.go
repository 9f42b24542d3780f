package e2e

// Helpers of the GetMedia, ListFragments and GetMediaForFragmentList
// end-to-end tests (getmedia_test.go, archive_test.go). Names start with gm
// so that they stay out of the way of other test files in the package.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// gmBase is the producer timestamp of a synthetic stream's first fragment
// (ABSOLUTE timecodes, in ms).
const gmBase = 1_700_000_000_000

// gmWait bounds every wait for the server in these tests.
const gmWait = 20 * time.Second

// gmFrag is one fragment of a synthetic stream as the producer sends it.
type gmFrag struct {
	pieces   [][]byte // the Cluster start, then one piece per frame
	data     []byte   // all pieces: the bytes GetMedia must return
	timecode uint64   // Cluster timecode: producer timestamp in ms
}

// gmFrags returns fragments from..from+n-1 of the synthetic video v.
func gmFrags(v synth.Video, from, n int) []gmFrag {
	out := make([]gmFrag, n)
	for i := range out {
		p := v.Fragment(gmBase, from+i)
		out[i] = gmFrag{pieces: p, data: bytes.Join(p, nil), timecode: gmBase + uint64(from+i)*uint64(gmDuration(v).Milliseconds())}
	}
	return out
}

// gmDuration is the fragment duration of v (synth.Video defaults to 2 s).
func gmDuration(v synth.Video) time.Duration {
	if v.FragmentDuration == 0 {
		return 2 * time.Second
	}
	return v.FragmentDuration
}

// gmProducer is a PutMedia session whose body the test writes piece by
// piece through a pipe, so it decides when the server sees each frame.
type gmProducer struct {
	t     *testing.T
	pw    *io.PipeWriter
	mu    sync.Mutex
	acks  []client.Ack
	lines []string      // each ACK exactly as sent, with its newline
	times []time.Time   // when each ACK line arrived
	wake  chan struct{} // closed and replaced on every ACK and at the end
	done  bool          // the response ended
	// endErr is what ended the response: io.EOF after a clean end of the
	// chunked body, else the error (a cut connection, a line that is no
	// ACK or has no newline); endedAt is when.
	endErr  error
	endedAt time.Time
}

// gmStartProducer opens a PutMedia session on stream with ABSOLUTE
// timecodes; headers may add or replace request headers.
func gmStartProducer(t *testing.T, srv *serverProc, stream string, headers ...string) *gmProducer {
	t.Helper()
	return gmStartProducerAt(t, srv.URL, stream, headers...)
}

// gmStartProducerAt is gmStartProducer on a data endpoint's URL.
func gmStartProducerAt(t *testing.T, url, stream string, headers ...string) *gmProducer {
	t.Helper()
	pr, pw := io.Pipe()
	// Longer than ctx's 30 s: a session may last the 30 s of silence that
	// end it (TestPutMediaSilentSession); every wait on it has its own
	// bound.
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(c, "POST", url+"/putMedia", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	p := &gmProducer{t: t, pw: pw, wake: make(chan struct{})}
	go func() {
		var end error
		defer func() { p.end(end) }()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			end = err
			return
		}
		defer resp.Body.Close()
		// Lines are read raw, not with client.AckReader, so that tests can
		// check the layout of each as the server wrote it.
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if line != "" {
					err = fmt.Errorf("ACK line %q without its newline: %w", line, err)
				}
				end = err
				return
			}
			var a client.Ack
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				end = fmt.Errorf("parse ACK %q: %w", line, err)
				return
			}
			p.mu.Lock()
			p.acks = append(p.acks, a)
			p.lines = append(p.lines, line)
			p.times = append(p.times, time.Now())
			p.mu.Unlock()
			p.notify(false)
		}
	}()
	t.Cleanup(func() { pw.CloseWithError(errors.New("test over")) })
	return p
}

func (p *gmProducer) notify(end bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = p.done || end
	close(p.wake)
	p.wake = make(chan struct{})
}

// end records what ended the response and wakes the waiters.
func (p *gmProducer) end(err error) {
	p.mu.Lock()
	p.endErr, p.endedAt = err, time.Now()
	p.mu.Unlock()
	p.notify(true)
}

// write sends bytes of the body.
func (p *gmProducer) write(pieces ...[]byte) {
	p.t.Helper()
	for _, b := range pieces {
		if _, err := p.pw.Write(b); err != nil {
			p.t.Fatalf("PutMedia body write: %v", err)
		}
	}
}

// waitAcks waits until n ACKs of the event type arrived and returns them.
func (p *gmProducer) waitAcks(event string, n int) []client.Ack {
	p.t.Helper()
	deadline := time.After(gmWait)
	for {
		p.mu.Lock()
		var got []client.Ack
		for _, a := range p.acks {
			if a.EventType == event {
				got = append(got, a)
			}
			if a.EventType == "ERROR" {
				p.mu.Unlock()
				p.t.Fatalf("PutMedia ERROR ACK %+v", a)
			}
		}
		wake, done := p.wake, p.done
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if done {
			p.t.Fatalf("PutMedia ended with %d %s ACKs, want %d", len(got), event, n)
		}
		select {
		case <-wake:
		case <-deadline:
			p.t.Fatalf("%d %s ACKs after %v, want %d", len(got), event, gmWait, n)
		}
	}
}

// waitError waits for an ERROR ACK and returns it with its index among
// the ACKs. An ACK before it for which wrong is true fails the test at
// once (a fragment acknowledged that should have been refused).
func (p *gmProducer) waitError(wrong func(client.Ack) bool) (client.Ack, int) {
	p.t.Helper()
	deadline := time.After(gmWait)
	for {
		p.mu.Lock()
		for i, a := range p.acks {
			if a.EventType == "ERROR" {
				p.mu.Unlock()
				return a, i
			}
			if wrong(a) {
				p.mu.Unlock()
				p.t.Fatalf("ACK %q where an ERROR was due", p.lines[i])
			}
		}
		wake, done, n := p.wake, p.done, len(p.acks)
		p.mu.Unlock()
		if done {
			p.t.Fatalf("PutMedia ended (%v) after %d ACKs, none of them an ERROR", p.endErr, n)
		}
		select {
		case <-wake:
		case <-deadline:
			p.t.Fatalf("no ERROR ACK within %v (%d ACKs)", gmWait, n)
		}
	}
}

// close ends the body and waits for the response to end.
func (p *gmProducer) close() {
	p.t.Helper()
	p.pw.Close()
	p.waitEnd()
}

// abort breaks the body off, as a producer losing its connection does.
func (p *gmProducer) abort() {
	p.t.Helper()
	p.pw.CloseWithError(errors.New("producer gone"))
	p.waitEnd()
}

func (p *gmProducer) waitEnd() {
	p.t.Helper()
	p.waitEndWithin(gmWait)
}

// waitEndWithin waits up to d for the response to end.
func (p *gmProducer) waitEndWithin(d time.Duration) {
	p.t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		wake, done := p.wake, p.done
		p.mu.Unlock()
		if done {
			return
		}
		select {
		case <-wake:
		case <-deadline:
			p.t.Fatalf("PutMedia response did not end within %v", d)
		}
	}
}

// numbers returns the fragment numbers of the event's ACKs by timecode.
func (p *gmProducer) numbers(event string) map[uint64]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[uint64]string{}
	for _, a := range p.acks {
		if a.EventType == event {
			out[a.FragmentTimecode] = a.FragmentNumber
		}
	}
	return out
}

// gmSession sends a header and the fragments in one session, ends it and
// waits for an ackOn ACK for each.
func gmSession(t *testing.T, srv *serverProc, stream, ackOn string, frags []gmFrag) *gmProducer {
	t.Helper()
	p := gmStartProducer(t, srv, stream)
	p.write(synth.Header(1))
	for _, f := range frags {
		p.write(f.data)
	}
	p.close()
	p.waitAcks(ackOn, len(frags))
	return p
}

// gmIngest sends a header and the fragments in one session and returns
// their numbers, in order, as the ackOn ACKs named them.
func gmIngest(t *testing.T, srv *serverProc, stream, ackOn string, frags []gmFrag) []string {
	t.Helper()
	byTimecode := gmSession(t, srv, stream, ackOn, frags).numbers(ackOn)
	out := make([]string, len(frags))
	for i, f := range frags {
		if out[i] = byTimecode[f.timecode]; out[i] == "" {
			t.Fatalf("no %s ACK for the fragment at %d", ackOn, f.timecode)
		}
	}
	return out
}

// gmMedia returns a kinesisvideomedia client for srv.
func gmMedia(srv *serverProc) *kinesisvideomedia.Client {
	return kinesisvideomedia.NewFromConfig(srv.awsConfig())
}

// gmArchived returns a kinesisvideoarchivedmedia client for srv.
func gmArchived(srv *serverProc) *kinesisvideoarchivedmedia.Client {
	return kinesisvideoarchivedmedia.NewFromConfig(srv.awsConfig())
}

// gmReader is an open GetMedia response read chunk by chunk. The payload
// is recorded as it arrives, so a test can also wait for part of a chunk
// (a live frame); a chunk is returned once whole: its end Tags (or error
// Tags) are in.
type gmReader struct {
	body   io.ReadCloser
	rec    *gmRecorder
	off    int // start of the next chunk in rec
	cancel context.CancelFunc
}

// gmGetMedia calls GetMedia with the SDK and returns the response or its error.
func gmGetMedia(t *testing.T, srv *serverProc, stream string, sel types.StartSelector) (*gmReader, error) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	out, err := gmMedia(srv).GetMedia(c, &kinesisvideomedia.GetMediaInput{StreamName: aws.String(stream), StartSelector: &sel})
	if err != nil {
		cancel()
		return nil, err
	}
	if aws.ToString(out.ContentType) != "video/webm" {
		t.Errorf("GetMedia Content-Type %q, want video/webm", aws.ToString(out.ContentType))
	}
	g := &gmReader{body: out.Payload, rec: gmRecord(out.Payload), cancel: cancel}
	t.Cleanup(g.close)
	return g, nil
}

// gmOpen is gmGetMedia that fails the test on an error.
func gmOpen(t *testing.T, srv *serverProc, stream string, sel types.StartSelector) *gmReader {
	t.Helper()
	g, err := gmGetMedia(t, srv, stream, sel)
	if err != nil {
		t.Fatalf("GetMedia %s: %v", sel.StartSelectorType, err)
	}
	return g
}

// nextErr returns the next whole chunk; io.EOF if the payload ended
// cleanly after the last one, another error if it ended inside a chunk.
func (g *gmReader) nextErr(t *testing.T) (*mkv.Chunk, error) {
	t.Helper()
	var c *mkv.Chunk
	var end error
	b := g.rec.waitFor(t, "a whole GetMedia chunk", func(b []byte, err error) bool {
		c, end = gmWholeChunk(b[g.off:]), err
		return c != nil || err != nil
	})
	if c != nil {
		g.off += len(c.Data)
		return c, nil
	}
	if g.off == len(b) {
		return nil, end
	}
	return nil, fmt.Errorf("payload ended (%v) inside a chunk: %d bytes left", end, len(b)-g.off)
}

// gmWholeChunk returns the chunk at the start of b if all of it is there:
// it ends with the AWS end Tags or is an error chunk.
func gmWholeChunk(b []byte) *mkv.Chunk {
	if len(b) == 0 {
		return nil
	}
	c, err := mkv.NewChunkReader(bytes.NewReader(b)).Next()
	if err != nil {
		return nil
	}
	if _, ok := c.Tags[mkv.TagContinuationToken]; ok || c.Err() != nil {
		return c
	}
	return nil
}

// next returns the next chunk, failing the test on an error.
func (g *gmReader) next(t *testing.T) *mkv.Chunk {
	t.Helper()
	c, err := g.nextErr(t)
	if err != nil {
		t.Fatalf("GetMedia chunk: %v", err)
	}
	return c
}

func (g *gmReader) close() {
	g.cancel()
	g.body.Close()
}

// gmSelector builds a StartSelector.
func gmSelector(typ types.StartSelectorType, arg any) types.StartSelector {
	s := types.StartSelector{StartSelectorType: typ}
	switch v := arg.(type) {
	case time.Time:
		s.StartTimestamp = aws.Time(v)
	case string:
		if typ == types.StartSelectorTypeContinuationToken {
			s.ContinuationToken = aws.String(v)
		} else {
			s.AfterFragmentNumber = aws.String(v)
		}
	}
	return s
}

// gmListAll returns every fragment of the stream by number, as ListFragments
// reports it. A fragment listed twice fails the test.
func gmListAll(t *testing.T, srv *serverProc, stream string) map[string]amtypes.Fragment {
	t.Helper()
	out := map[string]amtypes.Fragment{}
	frags, _ := gmPages(t, srv, &kinesisvideoarchivedmedia.ListFragmentsInput{
		StreamName: aws.String(stream),
		FragmentSelector: &amtypes.FragmentSelector{FragmentSelectorType: amtypes.FragmentSelectorTypeServerTimestamp,
			TimestampRange: &amtypes.TimestampRange{StartTimestamp: aws.Time(time.Unix(0, 0)), EndTimestamp: aws.Time(time.Unix(7e9, 0))}},
	})
	for _, f := range frags {
		n := aws.ToString(f.FragmentNumber)
		if _, ok := out[n]; ok {
			t.Fatalf("ListFragments of %s listed fragment %s twice", stream, n)
		}
		out[n] = f
	}
	return out
}

// gmPages calls ListFragments with in and follows NextToken to the last
// page, within a pageBound. It returns the fragments of every page in the
// order the server sent them, and the number of pages.
func gmPages(t *testing.T, srv *serverProc, in *kinesisvideoarchivedmedia.ListFragmentsInput) ([]amtypes.Fragment, int) {
	t.Helper()
	am := gmArchived(srv)
	bound := newPageBound(t, "ListFragments of "+aws.ToString(in.StreamName))
	req := *in
	var out []amtypes.Fragment
	for {
		bound.next()
		page, err := am.ListFragments(ctx(t), &req)
		if err != nil {
			t.Fatalf("ListFragments of %s, page %d (%d fragments before it): %v", aws.ToString(in.StreamName), bound.pages, len(out), err)
		}
		out = append(out, page.Fragments...)
		if page.NextToken == nil {
			return out, bound.pages
		}
		req = kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: in.StreamName, StreamARN: in.StreamARN,
			MaxResults: in.MaxResults, NextToken: page.NextToken}
	}
}

// gmTimestamp formats a time as the GetMedia timestamp tags do.
func gmTimestamp(t *time.Time) string { return mkv.FormatTimestampMillis(aws.ToTime(t).UnixMilli()) }

// gmCheckChunk checks a GetMedia chunk against the fragment it must carry:
// header, cluster bytes, and every tag value.
func gmCheckChunk(t *testing.T, c *mkv.Chunk, header, data []byte, number string, f amtypes.Fragment) {
	t.Helper()
	if c == nil {
		t.Fatalf("no chunk for fragment %s", number)
	}
	if got := c.Tags[mkv.TagFragmentNumber]; got != number {
		t.Fatalf("chunk of fragment %s, want %s", got, number)
	}
	if !bytes.Equal(c.Header, header) {
		t.Errorf("fragment %s: chunk header (%d bytes) differs from the producer's (%d bytes)", number, len(c.Header), len(header))
	}
	if got := append(append([]byte{}, c.Cluster...), c.Trailing...); !bytes.Equal(got, data) {
		t.Errorf("fragment %s: chunk carries %d cluster bytes that differ from the %d sent", number, len(got), len(data))
	}
	want := map[string]string{
		mkv.TagFragmentNumber:    number,
		mkv.TagServerTimestamp:   gmTimestamp(f.ServerTimestamp),
		mkv.TagProducerTimestamp: gmTimestamp(f.ProducerTimestamp),
		mkv.TagContinuationToken: number,
	}
	for name, v := range want {
		if got := c.Tags[name]; got != v {
			t.Errorf("fragment %s: %s = %q, want %q", number, name, got, v)
		}
	}
	behind, err := strconv.ParseInt(c.Tags[mkv.TagMillisBehindNow], 10, 64)
	if limit := time.Since(aws.ToTime(f.ServerTimestamp)).Milliseconds() + 1; err != nil || behind < 0 || behind > limit {
		t.Errorf("fragment %s: %s = %q, want an integer in [0, %d]", number, mkv.TagMillisBehindNow, c.Tags[mkv.TagMillisBehindNow], limit)
	}
	if len(c.Tags) != len(want)+1 {
		t.Errorf("fragment %s: tags %v, want exactly the five GetMedia tags", number, c.Tags)
	}
}

// gmRecorder reads a response body into memory as it arrives, so a test
// can wait for bytes that are not a whole chunk yet.
type gmRecorder struct {
	mu   sync.Mutex
	buf  []byte
	err  error // io.EOF after a clean end
	wake chan struct{}
}

func gmRecord(body io.Reader) *gmRecorder {
	r := &gmRecorder{wake: make(chan struct{})}
	go func() {
		p := make([]byte, 64<<10)
		for {
			n, err := body.Read(p)
			r.mu.Lock()
			r.buf = append(r.buf, p[:n]...)
			if err != nil {
				r.err = err
			}
			close(r.wake)
			r.wake = make(chan struct{})
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitFor waits until cond holds for the bytes received so far (and the
// error that ended them, if any) and returns those bytes.
func (r *gmRecorder) waitFor(t *testing.T, what string, cond func(b []byte, err error) bool) []byte {
	t.Helper()
	deadline := time.After(gmWait)
	for {
		r.mu.Lock()
		b, err, wake := r.buf, r.err, r.wake
		r.mu.Unlock()
		if cond(b, err) {
			return b
		}
		if err != nil {
			t.Fatalf("waiting for %s: body ended (%v) after %d bytes", what, err, len(b))
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("waiting for %s: not there within %v (%d bytes received)", what, gmWait, len(b))
		}
	}
}

// gmChunks parses a complete payload.
func gmChunks(t *testing.T, payload []byte) []*mkv.Chunk {
	t.Helper()
	out, err := mkv.ReadChunks(bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	return out
}

// gmSize8 is an 8-byte EBML size field.
func gmSize8(n int) []byte {
	b := []byte{0x01, 0, 0, 0, 0, 0, 0, 0}
	for i := 7; i > 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return b
}

// gmKnownSize turns a synthetic unknown-size Cluster (ID, FF, children)
// whose children are complete into one with its size, as ffmpeg writes.
func gmKnownSize(cluster []byte) []byte {
	out := append([]byte{}, cluster[:4]...)
	out = append(out, gmSize8(len(cluster)-5)...)
	return append(out, cluster[5:]...)
}

func gmFatalIf(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
