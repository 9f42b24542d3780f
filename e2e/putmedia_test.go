package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/synth"
)

func createStream(t *testing.T, srv *serverProc, name string, retention int32) {
	t.Helper()
	_, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(retention)})
	if err != nil {
		t.Fatal(err)
	}
}

func media(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "media", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored opens the data directory of a stopped server and returns the
// stream's indexed fragments in number order with their payloads.
func stored(t *testing.T, srv *serverProc, stream string) ([]*store.Fragment, [][]byte) {
	t.Helper()
	c, err := sqlite.Open(filepath.Join(srv.Data, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := file.Open(filepath.Join(srv.Data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.StreamByName(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	frags, err := c.FragmentsAfter(context.Background(), st.ID, "", 100000)
	if err != nil {
		t.Fatal(err)
	}
	var data [][]byte
	for _, f := range frags {
		r, err := b.Open(context.Background(), f.BlobKey)
		if err != nil {
			t.Fatalf("fragment %s: %v", f.Number, err)
		}
		d, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("fragment %s: %v", f.Number, err)
		}
		data = append(data, d)
	}
	return frags, data
}

func TestPutMediaClient(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	src := media(t, "h264_aac.mkv")
	var acks []client.Ack
	stats, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: "cam", OnAck: func(a client.Ack) { acks = append(acks, a) }}, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Fragments != 3 || stats.Acked != 3 || stats.Bytes != int64(len(src)) || stats.Reconnects != 0 {
		t.Errorf("stats = %+v, want 3 fragments, 3 acknowledged, %d bytes, no reconnects", stats, len(src))
	}
	var persisted []string // number@timecode, in ACK order
	for _, a := range acks {
		if a.EventType == "PERSISTED" {
			persisted = append(persisted, fmt.Sprintf("%s@%d", a.FragmentNumber, a.FragmentTimecode))
		}
	}
	srv.Stop()
	frags, data := stored(t, srv, "cam")
	want := synth.ClusterSpans(src)
	if len(frags) != len(want) {
		t.Fatalf("%d fragments stored, want %d", len(frags), len(want))
	}
	var stored []string
	for k, tc := range []int{0, 2005, 4010} { // the file's cluster timecodes
		if !bytes.Equal(data[k], want[k]) {
			t.Errorf("fragment %d: stored bytes differ from the file's cluster", k)
		}
		stored = append(stored, fmt.Sprintf("%s@%d", frags[k].Number, tc))
	}
	if diff := cmp.Diff(stored, persisted); diff != "" {
		t.Errorf("PERSISTED ACKs do not name the stored fragments in order (-stored +acked):\n%s", diff)
	}
}

func TestPutMediaRequestErrors(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 1)
	cases := []struct {
		name    string
		headers map[string]string
		status  int
		typ     string
		msg     string
	}{
		{"no stream", map[string]string{"x-amzn-fragment-timecode-type": "ABSOLUTE"}, 400, "InvalidArgumentException",
			"PutMedia needs the header x-amzn-stream-name or x-amzn-stream-arn."},
		{"bad timecode type", map[string]string{"x-amzn-stream-name": "cam", "x-amzn-fragment-timecode-type": "NOW"}, 400, "InvalidArgumentException",
			`Header x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE, not "NOW".`},
		{"relative without start", map[string]string{"x-amzn-stream-name": "cam", "x-amzn-fragment-timecode-type": "RELATIVE"}, 400, "InvalidArgumentException",
			"Header x-amzn-producer-start-timestamp is required with RELATIVE timecodes."},
		{"bad start", map[string]string{"x-amzn-stream-name": "cam", "x-amzn-fragment-timecode-type": "RELATIVE", "x-amzn-producer-start-timestamp": "yesterday"}, 400, "InvalidArgumentException",
			`Header x-amzn-producer-start-timestamp: producer start timestamp "yesterday": not epoch seconds.`},
		{"unknown stream", map[string]string{"x-amzn-stream-name": "nope", "x-amzn-fragment-timecode-type": "ABSOLUTE"}, 404, "ResourceNotFoundException",
			"The requested stream is not found or not active."},
		{"bad stream name", map[string]string{"x-amzn-stream-name": "no pe", "x-amzn-fragment-timecode-type": "ABSOLUTE"}, 400, "InvalidArgumentException",
			"1 validation error detected: Value 'no pe' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx(t), "POST", srv.URL+"/putMedia", bytes.NewReader(media(t, "h264.mkv")))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body: %v", err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("x-amzn-ErrorType") != tc.typ+":https://kinesisvideo.amazonaws.com/doc/2017-09-30/" {
				t.Errorf("status %d, type %q", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
			}
			if diff := cmp.Diff(map[string]string{"__type": tc.typ, "Message": tc.msg}, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// restamped is what `openkvs put` makes of an MKV file whose first
// Cluster it stamped with t0 ms (kvs-protocol.md §4.1, ABSOLUTE): the
// file's header with an unknown-size Segment, as GetMedia replays it, and
// each fragment's bytes with its Cluster Timecode moved by t0 minus the
// first one.
func restamped(t *testing.T, file []byte, t0 uint64) (header []byte, frags [][]byte) {
	t.Helper()
	sp := mkv.NewSplitter(bytes.NewReader(file), mkv.SplitterOptions{})
	first, have := uint64(0), false
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return header, frags
		}
		gmFatalIf(t, err, "split")
		switch e := ev.(type) {
		case *mkv.Header:
			header = bytes.Clone(e.FirstChunkHeader)
		case *mkv.FragmentStart:
			if !have {
				first, have = e.Timecode, true
			}
			b, err := mkv.SetClusterTimecode(e.Data, t0+e.Timecode-first)
			gmFatalIf(t, err, "restamp")
			frags = append(frags, b)
		case *mkv.Frame, *mkv.FragmentData:
			frags[len(frags)-1] = append(frags[len(frags)-1], e.Bytes()...)
		}
	}
}

// `openkvs put` stamps fragments with the producer's wall clock
// (ABSOLUTE): the first at the time put started, the others as far after
// it as in the file.
func TestPutCLI(t *testing.T) {
	srv := startServer(t)
	cmd := exec.CommandContext(ctx(t), binary, "put", "--endpoint", srv.URL, "--stream", "cli", "--create", "--retention", "2",
		filepath.Join("..", "testdata", "media", "unknown_size.mkv"))
	cmd.Env = awsEnv(t)
	before := time.Now().Truncate(time.Millisecond)
	out, err := cmd.CombinedOutput()
	after := time.Now()
	if err != nil {
		t.Fatalf("openkvs put: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "done: 3 fragments, 3 PERSISTED") {
		t.Errorf("openkvs put printed %q, want it to report 3 fragments PERSISTED", out)
	}
	info := describe(t, srv.control(), "cli")
	if aws.ToInt32(info.DataRetentionInHours) != 2 {
		t.Errorf("--create made retention %d, want 2", aws.ToInt32(info.DataRetentionInHours))
	}
	srv.Stop()
	frags, data := stored(t, srv, "cli")
	if len(frags) != 3 {
		t.Fatalf("%d fragments stored, want 3", len(frags))
	}
	t0 := frags[0].ProducerTime
	if t0.Before(before) || t0.After(after) {
		t.Errorf("first producer timestamp %v, want the time put ran, %v to %v", t0, before, after)
	}
	_, want := restamped(t, media(t, "unknown_size.mkv"), uint64(t0.UnixMilli()))
	for k := range want {
		if d := frags[k].ProducerTime.Sub(t0); d != time.Duration(k)*2*time.Second {
			t.Errorf("fragment %d: producer timestamp %v after the first, want %v", k, d, time.Duration(k)*2*time.Second)
		}
		if !bytes.Equal(data[k], want[k]) {
			t.Errorf("fragment %d differs from the file stamped from %d", k, t0.UnixMilli())
		}
	}
}

// cutProxy forwards TCP connections to target and cuts connection i (in
// the order they arrive) after cuts[i] bytes, as a network failure would:
// bytes from the client, or from the server with fromServer. Connections
// past the list are left whole.
type cutProxy struct {
	ln         net.Listener
	fromServer bool
	cuts       []int64
	mu         sync.Mutex
	conns      int
}

func newCutProxy(t *testing.T, target string, fromServer bool, cuts ...int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, fromServer: fromServer, cuts: cuts}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, strings.TrimPrefix(target, "http://"))
		}
	}()
	return p
}

// URL is the proxy's base URL.
func (p *cutProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Conns is how many connections the proxy has accepted.
func (p *cutProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *cutProxy) serve(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	p.mu.Lock()
	limit := int64(-1)
	if p.conns < len(p.cuts) {
		limit = p.cuts[p.conns]
	}
	p.conns++
	p.mu.Unlock()
	src, dst := io.Reader(c), io.Writer(up) // the direction that may be cut
	back, forth := io.Writer(c), io.Reader(up)
	if p.fromServer {
		src, dst, back, forth = up, c, up, c
	}
	go func() {
		// When the other direction ends, so does the connection: a client
		// that goes must not leave the server streaming to the proxy.
		io.Copy(back, forth)
		c.Close()
		up.Close()
	}()
	if limit >= 0 {
		io.CopyN(dst, src, limit)
		return // both ends close mid-stream
	}
	io.Copy(dst, src)
}

func TestPutMediaReconnect(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	// Ten 200 KB fragments; the first connection dies after about four.
	v := synth.Video{Bitrate: 800_000}
	var src []byte
	src = append(src, synth.Header(1)...)
	var want [][]byte
	for i := range 10 {
		frag := bytes.Join(v.Fragment(0, i), nil)
		want = append(want, frag)
		src = append(src, frag...)
	}
	proxy := newCutProxy(t, srv.URL, false, int64(len(src)*4/10))
	stats, err := client.Put(ctx(t), client.PutOptions{Endpoint: proxy.URL(), Stream: "cam"}, bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Reconnects < 1 || stats.Acked != 10 || stats.Fragments != 10 {
		t.Errorf("stats = %+v, want at least one reconnect and 10 fragments acknowledged", stats)
	}
	srv.Stop()
	_, data := stored(t, srv, "cam")
	// Every fragment is stored; one the first connection delivered but
	// could not acknowledge may be stored twice, as on AWS.
	seen := map[int]int{}
	for _, d := range data {
		k := indexOf(want, d)
		if k < 0 {
			t.Fatalf("a stored fragment (%d bytes) matches no fragment sent", len(d))
		}
		seen[k]++
	}
	for k := range want {
		if seen[k] == 0 {
			t.Errorf("fragment %d was never stored", k)
		}
	}
}

func indexOf(list [][]byte, b []byte) int {
	for i, x := range list {
		if bytes.Equal(x, b) {
			return i
		}
	}
	return -1
}

// TestPutMediaExpectContinue sends PutMedia as libcurl does under the
// official C and C++ producers, with Expect: 100-continue, and checks that
// 100 Continue comes before the producer sends any body: libcurl holds the
// body back until it does, or for its expect timeout of one second when
// the 200 comes first, which delayed every producer connection. Without
// the expectation there is no 100. The access log shows the 200.
func TestPutMediaExpectContinue(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 1)
	frag := gmFrags(synth.Video{Bitrate: 8_000}, 0, 1)[0]
	for _, expect := range []bool{true, false} {
		t.Run(fmt.Sprintf("expect %v", expect), func(t *testing.T) {
			conn := dial(t, srv)
			head := "POST /putMedia HTTP/1.1\r\nHost: kvs\r\nx-amzn-stream-name: cam\r\n" +
				"x-amzn-fragment-timecode-type: ABSOLUTE\r\nTransfer-Encoding: chunked\r\n"
			if expect {
				head += "Expect: 100-continue\r\n"
			}
			if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			var statuses []int // the responses that come before any body
			var resp *http.Response
			for resp == nil || resp.StatusCode < 200 {
				var err error
				if resp, err = http.ReadResponse(br, nil); err != nil {
					t.Fatalf("read response after %v: %v", statuses, err)
				}
				statuses = append(statuses, resp.StatusCode)
			}
			want := []int{200}
			if expect {
				want = []int{100, 200}
			}
			if !slices.Equal(statuses, want) {
				t.Errorf("statuses %v before the body, want %v", statuses, want)
			}

			// The session goes on as usual: the fragment is acknowledged.
			cw := httputil.NewChunkedWriter(conn)
			if _, err := cw.Write(append(synth.Header(1), frag.data...)); err != nil {
				t.Fatal(err)
			}
			if err := cw.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, "\r\n"); err != nil { // the end of the chunked body
				t.Fatal(err)
			}
			var acks []string
			r := client.NewAckReader(resp.Body)
			for a, err := r.Next(); err == nil; a, err = r.Next() {
				acks = append(acks, fmt.Sprintf("%s@%d", a.EventType, a.FragmentTimecode))
			}
			wantAcks := []string{fmt.Sprintf("BUFFERING@%d", frag.timecode), fmt.Sprintf("RECEIVED@%d", frag.timecode),
				fmt.Sprintf("PERSISTED@%d", frag.timecode)}
			if !slices.Equal(acks, wantAcks) {
				t.Errorf("ACKs %v, want %v", acks, wantAcks)
			}
		})
	}
	// The access log reports the final status, not the 100.
	srv.Stop()
	var statuses []int
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		var rec struct {
			Msg, Path string
			Status    int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Path == "/putMedia" {
			statuses = append(statuses, rec.Status)
		}
	}
	if !slices.Equal(statuses, []int{200, 200}) {
		t.Errorf("access log statuses of the PutMedia requests %v, want [200 200]", statuses)
	}
}
