package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// testChunk is one GetMedia chunk the fake server sends.
type testChunk struct {
	number  string
	cluster []byte
	data    []byte
}

// testChunks makes n chunks of one producer session: fragment k has
// server time 1700000000.000+k s, producer time 1000.250+2k s, and is
// 100+10k ms behind now; all have the same size.
func testChunks(n int) []testChunk {
	header := synth.Header(1)
	var out []testChunk
	for k := range n {
		number := fmt.Sprintf("%047d", k+1)
		cluster := synth.Cluster(uint64(2000*k), synth.Frames(1, 5, 33)...)
		data := mkv.AppendStartTags(bytes.Clone(header), number, 1700000000000+int64(k)*1000, 1000250+int64(k)*2000)
		data = append(data, cluster...)
		data = mkv.AppendEndTags(data, 100+int64(k)*10, number)
		out = append(out, testChunk{number: number, cluster: cluster, data: data})
	}
	return out
}

// fakeGetMedia serves chunks as GetMedia does, honoring EARLIEST and
// CONTINUATION_TOKEN. Connection i is cut after cuts[i] payload bytes
// (-1: not cut); once every chunk is sent, a response ends, or waits for
// the client to go when hang is set.
type fakeGetMedia struct {
	t      *testing.T
	chunks []testChunk
	cuts   []int
	hang   bool
	before func(w http.ResponseWriter, r *http.Request, call int) bool // true: request answered

	mu        sync.Mutex
	selectors []map[string]any
	bodies    [][]byte
}

func (f *fakeGetMedia) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in struct {
		StreamName    string
		StartSelector map[string]any
	}
	if err := json.Unmarshal(body, &in); err != nil || r.URL.Path != "/getMedia" || in.StreamName != "cam" {
		f.t.Errorf("request %s %q", r.URL.Path, body)
		http.Error(w, "bad request", 400)
		return
	}
	f.mu.Lock()
	call := len(f.selectors)
	f.selectors = append(f.selectors, in.StartSelector)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	if f.before != nil && f.before(w, r, call) {
		return
	}
	from := 0
	if in.StartSelector["StartSelectorType"] == StartContinuationToken {
		from = slices.IndexFunc(f.chunks, func(c testChunk) bool { return c.number == in.StartSelector["ContinuationToken"] }) + 1
	}
	var payload []byte
	for _, c := range f.chunks[from:] {
		payload = append(payload, c.data...)
	}
	w.Header().Set("Content-Type", "video/webm")
	if call < len(f.cuts) && f.cuts[call] >= 0 {
		w.Write(payload[:f.cuts[call]])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection without ending the chunked body
	}
	w.Write(payload)
	w.(http.Flusher).Flush()
	if f.hang {
		<-r.Context().Done()
	}
}

func (f *fakeGetMedia) start() string {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// collect returns a Get handler that keeps what it is given.
func collect(got *[]*Fragment) func(*Fragment) error {
	return func(f *Fragment) error {
		*got = append(*got, f)
		return nil
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetFragments(t *testing.T) {
	chunks := testChunks(3)
	f := &fakeGetMedia{t: t, chunks: chunks}
	var got []*Fragment
	stats, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", Start: StartSelector{Type: StartEarliest}}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d fragments, want 3", len(got))
	}
	header := synth.Header(1)
	for k, g := range got {
		c := chunks[k]
		want := &Fragment{
			Number: c.number, ContinuationToken: c.number, MillisBehindNow: 100 + int64(k)*10,
			ProducerTime: time.UnixMilli(1000250 + int64(k)*2000), ServerTime: time.UnixMilli(1700000000000 + int64(k)*1000),
			Header: header, Cluster: c.cluster, Data: c.data,
			Tags: map[string]string{
				mkv.TagFragmentNumber: c.number, mkv.TagContinuationToken: c.number, mkv.TagMillisBehindNow: fmt.Sprint(100 + k*10),
				mkv.TagServerTimestamp: fmt.Sprintf("17000000%02d.000", k), mkv.TagProducerTimestamp: fmt.Sprintf("%d.250", 1000+2*k),
			},
		}
		if diff := cmp.Diff(want, g, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("fragment %d (-want +got):\n%s", k, diff)
		}
	}
	if want := (GetStats{Fragments: 3, Bytes: int64(len(chunks[0].data) * 3)}); stats != want {
		t.Errorf("stats = %+v, want %+v", stats, want)
	}
	if diff := cmp.Diff([]map[string]any{{"StartSelectorType": "EARLIEST"}}, f.selectors); diff != "" {
		t.Errorf("selectors (-want +got):\n%s", diff)
	}
}

func TestGetResumesAfterCuts(t *testing.T) {
	chunks := testChunks(6)
	size := len(chunks[0].data) // every chunk has the same size
	f := &fakeGetMedia{t: t, chunks: chunks, cuts: []int{
		size + size/2, // inside chunk 2: chunk 1 delivered, chunk 2 dropped
		1,             // one byte: nothing delivered
		size,          // exactly after chunk 2's end tags: it is whole
		size - 1,      // one byte short of chunk 3's end: dropped
		2*size + 40,   // just inside chunk 5's header
		0,             // nothing at all
	}}
	var got []*Fragment
	stats, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", Start: StartSelector{Type: StartEarliest}}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	var numbers []string
	var clusters, want []byte
	for k, g := range got {
		numbers = append(numbers, g.Number)
		clusters = append(clusters, g.Cluster...)
		want = append(want, chunks[k].cluster...)
	}
	if len(got) != 6 || !bytes.Equal(clusters, want) {
		t.Errorf("fragments %v, want the 6 in order with their clusters", numbers)
	}
	token := func(k int) map[string]any {
		return map[string]any{"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": chunks[k].number}
	}
	wantSel := []map[string]any{{"StartSelectorType": "EARLIEST"}, token(0), token(0), token(1), token(1), token(3), token(3)}
	if diff := cmp.Diff(wantSel, f.selectors); diff != "" {
		t.Errorf("selectors (-want +got):\n%s", diff)
	}
	if stats.Reconnects != 6 || stats.Fragments != 6 {
		t.Errorf("stats = %+v, want 6 fragments, 6 reconnects", stats)
	}
}

func TestGetIdleDeliversLast(t *testing.T) {
	chunks := testChunks(3)
	f := &fakeGetMedia{t: t, chunks: chunks, hang: true}
	var got []*Fragment
	_, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", IdleTimeout: 50 * time.Millisecond}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	// The last chunk has no successor to close it: the silence does.
	if len(got) != 3 || got[2].Number != chunks[2].number {
		t.Errorf("%d fragments, want all 3", len(got))
	}
	if diff := cmp.Diff([]map[string]any{{"StartSelectorType": "NOW"}}, f.selectors); diff != "" {
		t.Errorf("selectors (-want +got):\n%s", diff)
	}
}

func TestGetIdleDropsCutChunk(t *testing.T) {
	chunks := testChunks(3)
	// The server stalls inside chunk 3, after its Cluster: it is not whole.
	f := &fakeGetMedia{t: t, chunks: chunks, hang: true}
	f.chunks = slices.Clone(chunks)
	f.chunks[2].data = f.chunks[2].data[:len(f.chunks[2].data)-len(mkv.AppendEndTags(nil, 120, chunks[2].number))]
	var got []*Fragment
	_, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", IdleTimeout: 50 * time.Millisecond}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("%d fragments, want 2", len(got))
	}
}

func TestGetFollow(t *testing.T) {
	chunks := testChunks(5)
	f := &fakeGetMedia{t: t, chunks: chunks}
	f.before = func(w http.ResponseWriter, r *http.Request, call int) bool {
		if call == 0 { // the first response ends cleanly after two chunks
			w.Write(append(bytes.Clone(chunks[0].data), chunks[1].data...))
			return true
		}
		return false
	}
	var got []*Fragment
	stats, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", Follow: true}, func(fr *Fragment) error {
		got = append(got, fr)
		if len(got) == 5 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4].Number != chunks[4].number || stats.Reconnects != 1 {
		t.Errorf("%d fragments, stats %+v; want 5 fragments and 1 reconnect", len(got), stats)
	}
	want := []map[string]any{{"StartSelectorType": "NOW"}, {"StartSelectorType": "CONTINUATION_TOKEN", "ContinuationToken": chunks[1].number}}
	if diff := cmp.Diff(want, f.selectors); diff != "" {
		t.Errorf("selectors (-want +got):\n%s", diff)
	}
}

func TestGetEndsWithoutFollow(t *testing.T) {
	f := &fakeGetMedia{t: t, chunks: testChunks(2)}
	var got []*Fragment
	stats, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam"}, collect(&got))
	if err != nil || len(got) != 2 || stats.Reconnects != 0 {
		t.Errorf("Get = %+v, %v with %d fragments; want 2 fragments, no reconnect", stats, err, len(got))
	}
}

func TestGetInBandError(t *testing.T) {
	chunks := testChunks(1)
	chunks = append(chunks, testChunk{data: mkv.AppendErrorChunk(nil, nil, chunks[0].number, 4000, "FRAGMENT_NOT_FOUND")})
	f := &fakeGetMedia{t: t, chunks: chunks}
	var got []*Fragment
	_, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", Follow: true}, collect(&got))
	var me *mkv.MediaError
	if !errors.As(err, &me) || me.ID != 4000 || me.Code != "FRAGMENT_NOT_FOUND" || me.FragmentNumber != chunks[0].number {
		t.Fatalf("Get error %v, want the in-band error 4000", err)
	}
	if len(got) != 1 || len(f.selectors) != 1 {
		t.Errorf("%d fragments, %d requests; want 1 fragment before the error and no reconnect", len(got), len(f.selectors))
	}
}

func TestGetAPIErrors(t *testing.T) {
	reply := func(status int, typ, msg string) func(http.ResponseWriter, *http.Request, int) bool {
		return func(w http.ResponseWriter, r *http.Request, call int) bool {
			if call > 0 {
				return false
			}
			w.Header().Set("x-amzn-ErrorType", typ+":http://internal.amazon.com/coral/com.amazon.coral.service/")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"__type":%q,"Message":%q}`, typ, msg)
			return true
		}
	}
	t.Run("not found", func(t *testing.T) {
		f := &fakeGetMedia{t: t, chunks: testChunks(1), before: reply(404, "ResourceNotFoundException", "The requested stream is not found or not active.")}
		_, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam"}, collect(new([]*Fragment)))
		want := &APIError{Op: "GetMedia", StatusCode: 404, Type: "ResourceNotFoundException", Message: "The requested stream is not found or not active."}
		var got *APIError
		if !errors.As(err, &got) || *got != *want || len(f.selectors) != 1 {
			t.Errorf("Get error %v after %d requests, want %v after 1", err, len(f.selectors), want)
		}
	})
	t.Run("connection limit", func(t *testing.T) {
		f := &fakeGetMedia{t: t, chunks: testChunks(1), before: reply(400, "ConnectionLimitExceededException", "too many")}
		var got []*Fragment
		stats, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam"}, collect(&got))
		if err != nil || len(got) != 1 || stats.Reconnects != 1 {
			t.Errorf("Get = %+v, %v with %d fragments; want a retry that reads the fragment", stats, err, len(got))
		}
	})
}

// A server that answers 503 to every call is retried with backoff until
// RetryFor has passed since the connection was lost; each connection asks
// Resolve for the endpoint.
func TestGetGivesUp(t *testing.T) {
	f := &fakeGetMedia{t: t, chunks: testChunks(1), before: func(w http.ResponseWriter, r *http.Request, call int) bool {
		w.Header().Set("x-amzn-ErrorType", "InternalFailure")
		w.WriteHeader(503)
		return true
	}}
	url := f.start()
	resolved := 0
	var logs []string
	start := time.Now()
	_, err := Get(testCtx(t), GetOptions{Stream: "cam", RetryFor: time.Second,
		Resolve: func(context.Context) (string, error) { resolved++; return url, nil },
		Logf:    func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }}, collect(new([]*Fragment)))
	took := time.Since(start)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 503 || !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("Get error %v, want it to give up after the 503s", err)
	}
	if took < time.Second || took > 3*time.Second {
		t.Errorf("Get gave up after %v, want RetryFor (1s) and one last try", took)
	}
	if n := len(f.selectors); resolved != n || n < 3 || len(logs) != n-1 {
		t.Errorf("%d requests, %d resolves, %d log lines %q; want one resolve per request, a line per retry and at least 3 requests", n, resolved, len(logs), logs)
	}
	if !strings.HasPrefix(logs[0], "connection lost: GetMedia: HTTP 503 InternalFailure: ; retrying in ") || !strings.HasSuffix(logs[0], " (attempt 1)") {
		t.Errorf("first log line %q", logs[0])
	}
}

// retryDelay doubles from 250 ms to 10 s, less a random part of up to half.
func TestRetryDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second, 6: 8 * time.Second, 7: 10 * time.Second, 1000: 10 * time.Second} {
		for range 100 {
			if d := retryDelay(n); d < want/2 || d > want {
				t.Fatalf("retryDelay(%d) = %v, want %v to %v", n, d, want/2, want)
			}
		}
	}
}

func TestGetRequest(t *testing.T) {
	f := &fakeGetMedia{t: t, chunks: testChunks(1)}
	var signed []byte
	f.before = func(w http.ResponseWriter, r *http.Request, call int) bool {
		if r.Header.Get("Authorization") != "signed" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		return false
	}
	sign := func(r *http.Request) error {
		body, err := r.GetBody()
		if err != nil {
			return err
		}
		signed, _ = io.ReadAll(body)
		r.Header.Set("Authorization", "signed")
		return nil
	}
	start := StartSelector{Type: StartProducerTimestamp, Timestamp: time.UnixMilli(1700000000500)}
	if _, err := Get(testCtx(t), GetOptions{Endpoint: f.start(), Stream: "cam", Start: start, Sign: sign}, collect(new([]*Fragment))); err != nil {
		t.Fatal(err)
	}
	want := `{"StreamName":"cam","StartSelector":{"StartSelectorType":"PRODUCER_TIMESTAMP","StartTimestamp":1700000000.500}}`
	if string(f.bodies[0]) != want || string(signed) != want {
		t.Errorf("body %s, signed %s; want %s", f.bodies[0], signed, want)
	}
}
