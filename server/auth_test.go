package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/access"
	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/streams"
)

// testCredentials has an all-powerful admin, a camera key limited to
// cam-* streams, a lister that may list only some streams and one that
// lists the streams of three prefixes.
const testCredentials = `{"keys": [
  {"accessKeyId": "ADMIN", "secretAccessKey": "admin-secret"},
  {"accessKeyId": "CAMERA", "secretAccessKey": "camera-secret", "policy": [
    {"actions": ["kinesisvideo:PutMedia", "kinesisvideo:GetMedia", "kinesisvideo:DescribeStream",
                 "kinesisvideo:DescribeStreamStorageConfiguration"], "streams": ["cam-*"]}]},
  {"accessKeyId": "LISTER", "secretAccessKey": "lister-secret", "policy": [
    {"actions": ["kinesisvideo:ListStreams"], "streams": ["cam-1", "cam-3", "cam-5"]}]},
  {"accessKeyId": "PREFIXES", "secretAccessKey": "prefixes-secret", "policy": [
    {"actions": ["kinesisvideo:ListStreams"], "streams": ["b-*", "d-*", "f-*"]}]}
]}`

var testSecrets = map[string]string{"ADMIN": "admin-secret", "CAMERA": "camera-secret", "LISTER": "lister-secret",
	"PREFIXES": "prefixes-secret"}

func testStore(t *testing.T) *access.Store {
	t.Helper()
	st, err := access.Parse([]byte(testCredentials))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newTestServer serves a fresh catalog with authentication on.
func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv, _ := newTestServerWith(t, nil)
	return srv
}

// newTestServerWith is newTestServer with its Config changed by edit (if
// not nil); it also returns the Server, to set up streams directly.
func newTestServerWith(t *testing.T, edit func(*Config)) (*httptest.Server, *Server) {
	t.Helper()
	catalog, err := sqlite.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catalog.Close() })
	keys := testStore(t)
	cfg := Config{
		Region:      "us-east-1",
		Credentials: func() *access.Store { return keys },
		Logger:      slog.New(slog.DiscardHandler),
	}
	if edit != nil {
		edit(&cfg)
	}
	s := New(cfg, streams.New(catalog, "us-east-1", "000000000000"))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, s
}

// call sends a JSON call signed by key (unsigned when key is "") and
// returns the status and decoded body.
func call(t *testing.T, srv *httptest.Server, key, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: testSecrets[key]}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesisvideo", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	status, b := send(t, srv, req)
	var m map[string]any
	if err := json.Unmarshal([]byte(b), &m); err != nil {
		t.Fatalf("%s: body %q: %v", path, b, err)
	}
	return status, m
}

// requestAs returns a request that authenticated as key, as route leaves it.
func requestAs(key string, keys *access.Store) *http.Request {
	ri := &requestInfo{log: slog.New(slog.DiscardHandler), accessKey: key, keys: keys}
	r := httptest.NewRequest(http.MethodPost, "/putMedia", nil)
	return r.WithContext(context.WithValue(r.Context(), requestKey, ri))
}

func TestAuthorize(t *testing.T) {
	keys := testStore(t)
	on := New(Config{Region: "us-east-1", Credentials: func() *access.Store { return keys }}, nil)
	const arn = "arn:aws:kinesisvideo:us-east-1:000000000000:stream/%s/1700000000000"
	tests := []struct {
		key, action, stream string
		want                error
	}{
		{"CAMERA", "PutMedia", "cam-1", nil},
		{"CAMERA", "GetMedia", "cam-1", nil},
		{"CAMERA", "GetMedia", strings.Replace(arn, "%s", "cam-1", 1), nil},
		{"CAMERA", "PutMedia", "other", api.NotAuthorized("User: CAMERA is not authorized to perform: kinesisvideo:PutMedia on resource: other")},
		{"CAMERA", "GetMedia", "other", api.NotAuthorized("User: CAMERA is not authorized to perform: kinesisvideo:GetMedia on resource: other")},
		{"CAMERA", "GetMedia", strings.Replace(arn, "%s", "other", 1),
			api.NotAuthorized("%s", "User: CAMERA is not authorized to perform: kinesisvideo:GetMedia on resource: "+strings.Replace(arn, "%s", "other", 1))},
		// A malformed ARN names no stream, which only "*" matches.
		{"CAMERA", "GetMedia", "arn:aws:kinesisvideo:us-east-1:0:cam-1", api.NotAuthorized("User: CAMERA is not authorized to perform: kinesisvideo:GetMedia on resource: arn:aws:kinesisvideo:us-east-1:0:cam-1")},
		{"CAMERA", "ListFragments", "cam-1", api.NotAuthorized("User: CAMERA is not authorized to perform: kinesisvideo:ListFragments on resource: cam-1")},
		{"CAMERA", "DescribeStreamStorageConfiguration", "other",
			api.AccessDenied("User: CAMERA is not authorized to perform: kinesisvideo:DescribeStreamStorageConfiguration on resource: other")},
		{"CAMERA", "ListStreams", "", api.NotAuthorized("User: CAMERA is not authorized to perform: kinesisvideo:ListStreams on resource: *")},
		{"LISTER", "ListStreams", "", nil},
		{"ADMIN", "PutMedia", "anything", nil},
		{"ADMIN", "NoSuchAction", "cam-1", api.NotAuthorized("User: ADMIN is not authorized to perform: kinesisvideo:NoSuchAction on resource: cam-1")},
		{"GONE", "GetMedia", "cam-1", api.NotAuthorized("User: GONE is not authorized to perform: kinesisvideo:GetMedia on resource: cam-1")},
	}
	for _, tc := range tests {
		got := on.authorize(requestAs(tc.key, keys), tc.action, tc.stream)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("authorize(%s, %s, %s) (-want +got):\n%s", tc.key, tc.action, tc.stream, diff)
		}
	}
	off := New(Config{}, nil)
	if err := off.authorize(requestAs("", nil), "PutMedia", "other"); err != nil {
		t.Errorf("authorize with authentication off = %v, want nil", err)
	}
}

func TestRouteActionsAreKnown(t *testing.T) {
	s := New(Config{}, nil)
	known := access.Actions()
	for path, rt := range s.routes {
		if !slices.Contains(known, rt.action) {
			t.Errorf("route %s has action %q, which access does not know", path, rt.action)
		}
	}
}

func TestNamedStreams(t *testing.T) {
	name, arn := "cam-1", "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam-1/1"
	tests := []struct {
		in   any
		want []string
	}{
		{&streams.Ref{StreamName: &name}, []string{name}},
		{&streams.Ref{StreamName: &name, StreamARN: &arn}, []string{name, arn}},
		{&streams.UpdateStreamInput{Ref: streams.Ref{StreamARN: &arn}}, []string{arn}},
		{&streams.CreateStreamInput{StreamName: &name}, []string{name}},
		{&streams.DeleteStreamInput{StreamARN: &arn}, []string{arn}},
		{&streams.TagResourceInput{ResourceARN: &arn}, []string{arn}},
		{&streams.ListStreamsInput{}, nil},
		{&streams.GetDataEndpointInput{}, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, namedStreams(tc.in)); diff != "" {
			t.Errorf("namedStreams(%T) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestAuthenticationErrors(t *testing.T) {
	srv := newTestServer(t)
	status, body := call(t, srv, "", "/listStreams", "{}")
	want := map[string]any{"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}
	if status != http.StatusForbidden || !cmp.Equal(want, body) {
		t.Errorf("unsigned: %d %v, want 403 %v", status, body, want)
	}

	// A body hash header that does not match the body.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/listStreams", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "ADMIN", SecretAccessKey: "admin-secret"},
		req, strings.Repeat("0", 64), "kinesisvideo", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantBody := `{"__type":"XAmzContentSHA256Mismatch","message":"The provided 'x-amz-content-sha256' header does not match what was computed."}`
	if resp.StatusCode != http.StatusBadRequest || string(b) != wantBody || resp.Header.Get("x-amzn-ErrorType") != "XAmzContentSHA256Mismatch"+errorNamespace {
		t.Errorf("hash mismatch: %d %s %s, want 400 %s", resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b, wantBody)
	}

	// An oversized body is refused before it is hashed.
	big := `{"StreamName":"` + strings.Repeat("a", maxJSONBody) + `"}`
	status, body = call(t, srv, "ADMIN", "/describeStream", big)
	want = map[string]any{"__type": "RequestEntityTooLargeException", "Message": "The request body is larger than 1048576 bytes."}
	if status != http.StatusRequestEntityTooLarge || !cmp.Equal(want, body) {
		t.Errorf("oversized: %d %v, want 413 %v", status, body, want)
	}
}

func TestAuthorizationBeforeLookup(t *testing.T) {
	srv := newTestServer(t)
	if status, body := call(t, srv, "ADMIN", "/createStream", `{"StreamName":"other"}`); status != http.StatusOK {
		t.Fatalf("CreateStream: %d %v", status, body)
	}
	denied := map[string]any{"__type": "NotAuthorizedException",
		"Message": "User: CAMERA is not authorized to perform: kinesisvideo:DescribeStream on resource: other"}
	status, existing := call(t, srv, "CAMERA", "/describeStream", `{"StreamName":"other"}`)
	if status != http.StatusUnauthorized || !cmp.Equal(denied, existing) {
		t.Errorf("existing stream: %d %v, want 401 %v", status, existing, denied)
	}
	if status, body := call(t, srv, "ADMIN", "/deleteStream", `{"StreamARN":"`+arnOf(t, srv, "other")+`"}`); status != http.StatusOK {
		t.Fatalf("DeleteStream: %d %v", status, body)
	}
	status, missing := call(t, srv, "CAMERA", "/describeStream", `{"StreamName":"other"}`)
	if status != http.StatusUnauthorized || !cmp.Equal(denied, missing) {
		t.Errorf("missing stream: %d %v, want the same 401 %v", status, missing, denied)
	}
	// Naming an allowed stream does not cover an ARN of another one.
	status, body := call(t, srv, "CAMERA", "/describeStream",
		`{"StreamName":"cam-1","StreamARN":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/other/1"}`)
	if status != http.StatusUnauthorized || body["__type"] != "NotAuthorizedException" {
		t.Errorf("name plus foreign ARN: %d %v, want 401 NotAuthorizedException", status, body)
	}
}

func arnOf(t *testing.T, srv *httptest.Server, name string) string {
	t.Helper()
	_, body := call(t, srv, "ADMIN", "/describeStream", `{"StreamName":"`+name+`"}`)
	return body["StreamInfo"].(map[string]any)["StreamARN"].(string)
}

func TestListStreamsFiltered(t *testing.T) {
	srv := newTestServer(t)
	for _, name := range []string{"cam-1", "cam-2", "cam-3", "cam-4", "cam-5", "cam-6"} {
		if status, body := call(t, srv, "ADMIN", "/createStream", `{"StreamName":"`+name+`"}`); status != http.StatusOK {
			t.Fatalf("CreateStream %s: %d %v", name, status, body)
		}
	}
	pages := func(maxResults int) [][]string {
		var got [][]string
		token := ""
		for range 10 {
			req, _ := json.Marshal(map[string]any{"MaxResults": maxResults, "NextToken": token})
			status, body := call(t, srv, "LISTER", "/listStreams", string(req))
			if status != http.StatusOK {
				t.Fatalf("ListStreams: %d %v", status, body)
			}
			page := []string{}
			for _, s := range body["StreamInfoList"].([]any) {
				page = append(page, s.(map[string]any)["StreamName"].(string))
			}
			got = append(got, page)
			token, _ = body["NextToken"].(string)
			if token == "" {
				return got
			}
		}
		t.Fatalf("no last page after 10: %v", got)
		return nil
	}
	if diff := cmp.Diff([][]string{{"cam-1", "cam-3"}, {"cam-5"}}, pages(2)); diff != "" {
		t.Errorf("pages of 2 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"cam-1"}, {"cam-3"}, {"cam-5"}}, pages(1)); diff != "" {
		t.Errorf("pages of 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"cam-1", "cam-3", "cam-5"}}, pages(100)); diff != "" {
		t.Errorf("one page (-want +got):\n%s", diff)
	}
}

func TestReadBodyTimeout(t *testing.T) {
	catalog, err := sqlite.Open(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close()
	s := New(Config{RequestTimeout: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		streams.New(catalog, "us-east-1", "000000000000"))
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	// A body that never ends: the pipe is closed only after the answer.
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"StreamName":`))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/describeStream", pr)
	req.ContentLength = 100
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := `{"Message":"The request body was not received within 50ms.","__type":"RequestTimeoutException"}`
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Equal(b, []byte(want)) {
		t.Errorf("slow body: %d %s, want 408 %s", resp.StatusCode, b, want)
	}
}
