package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openkvs/openkvs/synth"
)

// TestAccessLog sends requests of several kinds, each answered with an id
// in x-amzn-RequestId, and checks that the server's JSON log holds exactly
// one "request" line with that id for each, naming its method, path and
// status; but none for /healthz, a probe, logged at debug level only.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	srv := startServer(t) // --log-format json
	createStream(t, srv, "cam", 1)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	putMedia := bytes.Join([][]byte{synth.Header(1), synth.Cluster(gmBase, synth.Frames(1, 3, 33)...)}, nil)
	requests := []struct {
		method, path string
		body         []byte
		headers      map[string]string
		status       int
	}{
		{"POST", "/describeStream", []byte(`{"StreamName":"cam"}`), nil, 200},
		{"POST", "/describeStream", []byte(`{"StreamName":"nope"}`), nil, 404},
		{"POST", "/listStreams", []byte(`{"MaxResults":`), nil, 400},
		{"GET", "/listStreams", nil, nil, 405},
		{"POST", "/noSuchOperation", []byte(`{}`), nil, 404},
		{"GET", "/healthz", nil, nil, 200},
		{"POST", "/putMedia", putMedia, map[string]string{"x-amzn-stream-name": "cam", "x-amzn-fragment-timecode-type": "ABSOLUTE"}, 200},
	}
	ids := map[string]int{} // request id -> index in requests
	for i, r := range requests {
		req, err := http.NewRequestWithContext(ctx(t), r.method, srv.URL+r.path, bytes.NewReader(r.body))
		gmFatalIf(t, err, "request")
		req.Header.Set("Content-Type", "application/json")
		for k, v := range r.headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		gmFatalIf(t, err, "%s %s", r.method, r.path)
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		gmFatalIf(t, err, "%s %s: response body", r.method, r.path)
		id := resp.Header.Get("x-amzn-RequestId")
		if resp.StatusCode != r.status || !uuid.MatchString(id) {
			t.Fatalf("%s %s: %d with request id %q, want %d and a UUID", r.method, r.path, resp.StatusCode, id, r.status)
		}
		if _, dup := ids[id]; dup {
			t.Fatalf("request id %s given twice", id)
		}
		ids[id] = i
	}

	type line struct {
		Msg, Method, Path string
		ID                string `json:"request_id"`
		Status            int
	}
	// The log line is written when the handler returns, which may be a
	// moment after the client has the response.
	var found map[string][]line
	eventually(t, 10*time.Second, "a request log line for every request", func() error {
		found = map[string][]line{}
		for _, s := range strings.Split(srv.logs.String(), "\n") {
			var l line
			if json.Unmarshal([]byte(s), &l) == nil && l.Msg == "request" {
				found[l.ID] = append(found[l.ID], l)
			}
		}
		for id, i := range ids {
			if len(found[id]) == 0 && requests[i].path != "/healthz" {
				return fmt.Errorf("none for %s %s (%s)", requests[i].method, requests[i].path, id)
			}
		}
		return nil
	})
	for id, i := range ids {
		r := requests[i]
		want := line{Msg: "request", Method: r.method, Path: r.path, ID: id, Status: r.status}
		if r.path == "/healthz" {
			if got := found[id]; len(got) != 0 {
				t.Errorf("log lines %+v for the probe %s, want none at info level", got, id)
			}
			continue
		}
		if got := found[id]; len(got) != 1 || got[0] != want {
			t.Errorf("log lines %+v for request %s, want exactly %+v", got, id, want)
		}
	}
}
