package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/api"
)

// rawExchange sends head (request line and headers, each line ending in
// \r\n) and then body on a new connection to srv, and reads the response,
// failing the test after 10 s.
func rawExchange(t *testing.T, srv *httptest.Server, head, body string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return readRaw(t, conn)
}

// readRaw reads one response from conn, failing the test after 10 s.
func readRaw(t *testing.T, conn net.Conn) (*http.Response, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(b)
}

// unsignedHead is the head of a POST to path with a well-formed
// Authorization header of key whose signature is wrong, and extra headers.
func unsignedHead(path, key, region string, contentLength int, extra ...string) string {
	now := time.Now().UTC()
	h := []string{
		"POST " + path + " HTTP/1.1", "Host: kvs", "Content-Type: application/json",
		fmt.Sprintf("Content-Length: %d", contentLength), "X-Amz-Date: " + now.Format("20060102T150405Z"),
		"Authorization: AWS4-HMAC-SHA256 Credential=" + key + "/" + now.Format("20060102") + "/" + region +
			"/kinesisvideo/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64),
	}
	return strings.Join(append(h, extra...), "\r\n") + "\r\n"
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// errorBody is a restJson1 error body as writeError sends it.
func errorBody(typ, key, msg string) string {
	b, _ := json.Marshal(map[string]string{"__type": typ, key: msg})
	return string(b)
}

// TestHeadersCheckedBeforeBody sends requests that announce a 1 MiB body
// and send none of it: each fails a check that needs no body and must be
// answered at once, with the connection closed, instead of the server
// waiting (for up to the request timeout) for a body it would then refuse.
func TestHeadersCheckedBeforeBody(t *testing.T) {
	srv, _ := newTestServerWith(t, nil)
	const mib = 1 << 20
	unsigned := "The request body must be signed: x-amz-content-sha256 '%s' is accepted only for PutMedia. " +
		"Sign the SHA-256 of the JSON body, or send no x-amz-content-sha256 header."
	tests := []struct {
		name, head string
		status     int
		body       string
	}{
		{"no Authorization", "POST /describeStream HTTP/1.1\r\nHost: kvs\r\nContent-Length: 1048576\r\n", 403,
			errorBody("MissingAuthenticationTokenException", "message", "Missing Authentication Token")},
		{"malformed Authorization", "POST /describeStream HTTP/1.1\r\nHost: kvs\r\nContent-Length: 1048576\r\nAuthorization: Bearer x\r\n", 400,
			errorBody("IncompleteSignatureException", "message", "Unsupported AWS 'algorithm': 'Bearer'; only 'AWS4-HMAC-SHA256' is accepted.")},
		{"wrong region", unsignedHead("/describeStream", "ADMIN", "eu-west-1", mib), 403,
			errorBody("InvalidSignatureException", "message", "Credential should be scoped to a valid region, not 'eu-west-1'.")},
		{"unknown key", unsignedHead("/describeStream", "NOBODY", "us-east-1", mib), 403,
			errorBody("UnrecognizedClientException", "message", "The security token included in the request is invalid.")},
		{"unsigned JSON body", unsignedHead("/describeStream", "ADMIN", "us-east-1", mib, "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD"), 403,
			errorBody("InvalidSignatureException", "message", fmt.Sprintf(unsigned, "UNSIGNED-PAYLOAD"))},
		{"streaming JSON body", unsignedHead("/listStreams", "ADMIN", "us-east-1", mib, "X-Amz-Content-Sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), 403,
			errorBody("InvalidSignatureException", "message", fmt.Sprintf(unsigned, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))},
		{"body hash that is no hash", unsignedHead("/listStreams", "ADMIN", "us-east-1", mib, "X-Amz-Content-Sha256: abc"), 400,
			errorBody("XAmzContentSHA256Mismatch", "message", "The provided 'x-amz-content-sha256' header does not match what was computed.")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, srv, tc.head, "")
			if resp.StatusCode != tc.status || body != tc.body || !resp.Close {
				t.Errorf("got %d %s (close %v), want %d %s and Connection: close", resp.StatusCode, body, resp.Close, tc.status, tc.body)
			}
		})
	}
}

// signedRequest returns a POST of body to path signed by key with
// payloadHash; contentSHA256, when set, is sent as x-amz-content-sha256.
func signedRequest(t *testing.T, srv *httptest.Server, key, path, body, payloadHash, contentSHA256 string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if contentSHA256 != "" {
		req.Header.Set("X-Amz-Content-Sha256", contentSHA256)
	}
	sign(t, req, key, payloadHash)
	return req
}

// sign signs req as key with payloadHash, as aws-sdk-go-v2 does.
func sign(t *testing.T, req *http.Request, key, payloadHash string) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: testSecrets[key]}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "kinesisvideo", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// send sends req and returns the status and body.
func send(t *testing.T, srv *httptest.Server, req *http.Request) (int, string) {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestJSONBodyMustBeSigned replays a DescribeStream signed with
// UNSIGNED-PAYLOAD with another stream in its body: the signature still
// matches, so the request must be refused for not signing its body at all.
// A body signed by its hash, sent or not in x-amz-content-sha256, works.
func TestJSONBodyMustBeSigned(t *testing.T) {
	srv, s := newTestServerWith(t, nil)
	createStreams(t, s.streams, []string{"cam-1", "other"})
	const body = `{"StreamName":"cam-1"}`
	bodyHash := sha256Hex(body)
	want := errorBody("InvalidSignatureException", "message", "The request body must be signed: x-amz-content-sha256 'UNSIGNED-PAYLOAD' "+
		"is accepted only for PutMedia. Sign the SHA-256 of the JSON body, or send no x-amz-content-sha256 header.")
	for _, replayed := range []string{body, `{"StreamName":"other"}`} {
		req := signedRequest(t, srv, "ADMIN", "/describeStream", body, "UNSIGNED-PAYLOAD", "UNSIGNED-PAYLOAD")
		req.Body, req.ContentLength = io.NopCloser(strings.NewReader(replayed)), int64(len(replayed))
		if status, got := send(t, srv, req); status != http.StatusForbidden || got != want {
			t.Errorf("UNSIGNED-PAYLOAD with body %s: %d %s, want 403 %s", replayed, status, got, want)
		}
	}
	for _, header := range []string{"", bodyHash} {
		status, got := send(t, srv, signedRequest(t, srv, "ADMIN", "/describeStream", body, bodyHash, header))
		if status != http.StatusOK || !strings.Contains(got, `"StreamName":"cam-1"`) {
			t.Errorf("body signed by its hash (header %q): %d %s, want 200 for cam-1", header, status, got)
		}
	}
}

// TestBodyBudget holds the whole body budget (1 MiB) with a body that
// stalls, and checks that a small call is still answered at once while a
// larger one waits its turn until the stalled body times out.
func TestBodyBudget(t *testing.T) {
	const timeout = time.Second
	srv, s := newTestServerWith(t, func(c *Config) {
		c.UnauthenticatedBodyBytes = MinUnauthenticatedBodyBytes
		c.RequestTimeout = timeout
	})

	// A passes the header checks and sends 100 of its 1 MiB.
	start := time.Now()
	stalled, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := io.WriteString(stalled, unsignedHead("/describeStream", "ADMIN", "us-east-1", maxJSONBody)+"\r\n"+strings.Repeat(" ", 100)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for s.bodies.TryAcquire(1) {
		s.bodies.Release(1)
		if time.Now().After(deadline) {
			t.Fatal("the stalled body did not take the budget within 10 s")
		}
		<-tick.C
	}

	// B, over 4 KiB, must wait for A's bytes; C, a small call, must not.
	// B starts a third of the timeout after A, so that its own deadline
	// falls well after A gives the budget back, however loaded the machine:
	// the offset is the scenario, not a wait for a condition.
	time.Sleep(timeout / 3)
	type answer struct {
		status int
		body   string
		at     time.Time
	}
	large := make(chan answer, 1)
	largeBody := "{}" + strings.Repeat(" ", 5000)
	go func() {
		status, body := send(t, srv, signedRequest(t, srv, "ADMIN", "/listStreams", largeBody, sha256Hex(largeBody), ""))
		large <- answer{status, body, time.Now()}
	}()
	if status, body := send(t, srv, signedRequest(t, srv, "ADMIN", "/listStreams", "{}", sha256Hex("{}"), "")); status != http.StatusOK {
		t.Errorf("small call while the budget is held: %d %s, want 200", status, body)
	}

	resp, body := readRaw(t, stalled)
	want := errorBody("RequestTimeoutException", "Message", "The request body was not received within 1s.")
	if resp.StatusCode != http.StatusRequestTimeout || body != want {
		t.Errorf("stalled body: %d %s, want 408 %s", resp.StatusCode, body, want)
	}
	select {
	case got := <-large:
		// It can only have been read once the stalled body gave the budget
		// back, at its timeout.
		if got.status != http.StatusOK || got.at.Before(start.Add(timeout)) {
			t.Errorf("large call: %d %s after %s, want 200 after at least %s", got.status, got.body, got.at.Sub(start), timeout)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("large call not answered within 10 s of the stalled body's timeout")
	}
}

// TestReserveGivesUp checks the answer to a body that finds no room in
// the budget before its request times out.
func TestReserveGivesUp(t *testing.T) {
	_, s := newTestServerWith(t, func(c *Config) { c.UnauthenticatedBodyBytes = MinUnauthenticatedBodyBytes })
	if !s.bodies.TryAcquire(MinUnauthenticatedBodyBytes) {
		t.Fatal("budget not free")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := s.reserve(ctx, smallBody+1)
	want := &api.Error{Type: "ServiceUnavailable", Status: http.StatusServiceUnavailable,
		Message: "The server is receiving too many large request bodies at once; retry later."}
	if diff := cmp.Diff(want, err); diff != "" {
		t.Errorf("reserve (-want +got):\n%s", diff)
	}
	release, err := s.reserve(ctx, smallBody)
	if err != nil {
		t.Fatalf("a small body needs no budget: %v", err)
	}
	release()
	s.bodies.Release(MinUnauthenticatedBodyBytes)
}

// TestChunkedBody sends JSON bodies of unknown length, which are read into
// a growing buffer drawn from the budget.
func TestChunkedBody(t *testing.T) {
	srv, _ := newTestServerWith(t, nil)
	chunked := func(body string) *http.Request {
		// A reader of unknown length makes net/http send the body chunked.
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/listStreams", io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1
		sign(t, req, "ADMIN", sha256Hex(body))
		return req
	}
	body := "{}" + strings.Repeat(" ", 300<<10)
	if status, got := send(t, srv, chunked(body)); status != http.StatusOK || got != `{"StreamInfoList":[]}` {
		t.Errorf("chunked body of %d bytes: %d %s, want 200", len(body), status, got)
	}
	for _, size := range []int{maxJSONBody + 1, maxJSONBody + 5000} {
		body := "{}" + strings.Repeat(" ", size-2)
		want := errorBody("RequestEntityTooLargeException", "Message", "The request body is larger than 1048576 bytes.")
		if status, got := send(t, srv, chunked(body)); status != http.StatusRequestEntityTooLarge || got != want {
			t.Errorf("chunked body of %d bytes: %d %s, want 413 %s", size, status, got, want)
		}
	}
	body = "{}" + strings.Repeat(" ", maxJSONBody-2)
	if status, got := send(t, srv, chunked(body)); status != http.StatusOK {
		t.Errorf("chunked body of exactly %d bytes: %d %s, want 200", maxJSONBody, status, got)
	}
}
