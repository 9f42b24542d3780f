package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/synth"
)

// emptyPayloadHash is what the C producer signs for PutMedia's streamed
// body (kvs-protocol.md §1.3).
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// putMediaAs streams mkv to stream, signed like the C producer signs (no
// x-amz-content-sha256, empty payload hash, chunked body) with key and
// secret, or unsigned when key is "". It returns the status and body.
func putMediaAs(t *testing.T, srv *serverProc, key, secret, stream string, mkv []byte) (int, string) {
	t.Helper()
	return putMediaSigned(t, srv, key, secret, stream, mkv, putMediaSigning{})
}

// putMediaSigning changes how putMediaSigned signs.
type putMediaSigning struct {
	// contentSHA256, when set, is sent as x-amz-content-sha256 and signed
	// as the payload hash.
	contentSHA256 string
	// unsigned headers are set only once the request is signed (in place
	// of the producer's own), so that the signature does not cover them.
	unsigned map[string]string
}

// putMediaSigned is putMediaAs signed as sign says.
func putMediaSigned(t *testing.T, srv *serverProc, key, secret, stream string, mkv []byte, sign putMediaSigning) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, srv.URL+"/putMedia", io.NopCloser(bytes.NewReader(mkv)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked, as producers send it
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	for name := range sign.unsigned {
		req.Header.Del(name)
	}
	hash := emptyPayloadHash
	if sign.contentSHA256 != "" {
		hash = sign.contentSHA256
		req.Header.Set("x-amz-content-sha256", hash)
	}
	if key != "" {
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, "kinesisvideo", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for name, value := range sign.unsigned {
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestAuthPutMedia(t *testing.T) {
	t.Parallel()
	srv := startPutMediaServer(t, "cam-1", "other")
	src := media(t, "h264.mkv")
	rejected := []struct {
		name, key, secret, stream string
		status                    int
		body                      string
	}{
		{"unsigned", "", "", "cam-1", 403, errorBody("MissingAuthenticationTokenException", "message", "Missing Authentication Token")},
		{"wrong secret", "AKIDCAMERA", "wrong", "cam-1", 403, errorBody("InvalidSignatureException", "message", msgBadSignature)},
		{"unknown key", "AKIDNOBODY", "camera-secret", "cam-1", 403, errorBody("UnrecognizedClientException", "message", msgUnknownKey)},
		{"stream not allowed", "AKIDCAMERA", "camera-secret", "other", 401, errorBody("NotAuthorizedException", "Message",
			"User: AKIDCAMERA is not authorized to perform: kinesisvideo:PutMedia on resource: other")},
		{"missing stream not allowed", "AKIDCAMERA", "camera-secret", "ghost", 401, errorBody("NotAuthorizedException", "Message",
			"User: AKIDCAMERA is not authorized to perform: kinesisvideo:PutMedia on resource: ghost")},
	}
	for _, tc := range rejected {
		if status, body := putMediaAs(t, srv, tc.key, tc.secret, tc.stream, src); status != tc.status || body != tc.body {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.body)
		}
	}
	status, acks := putMediaAs(t, srv, "AKIDCAMERA", "camera-secret", "cam-1", src)
	want := len(synth.ClusterSpans(src))
	if status != http.StatusOK || strings.Count(acks, `"EventType":"PERSISTED"`) != want {
		t.Errorf("allowed PutMedia: %d %s, want 200 and %d PERSISTED", status, acks, want)
	}

	// Only the allowed session stored anything.
	srv.Stop()
	frags, data := stored(t, srv, "cam-1")
	if len(frags) != want || !cmp.Equal(synth.ClusterSpans(src), data) {
		t.Errorf("cam-1 holds %d fragments, want the %d clusters of one upload", len(frags), want)
	}
	if frags, _ := stored(t, srv, "other"); len(frags) != 0 {
		t.Errorf("other holds %d fragments, want none", len(frags))
	}
}

// putMediaCredentials has an admin and a camera that may only PutMedia to
// cam-* streams.
const putMediaCredentials = `{"keys": [
  {"accessKeyId": "AKIDADMIN", "secretAccessKey": "admin-secret"},
  {"accessKeyId": "AKIDCAMERA", "secretAccessKey": "camera-secret", "policy": [
    {"actions": ["kinesisvideo:PutMedia"], "streams": ["cam-*"]}]}
]}`

// startPutMediaServer starts an authenticating server with
// putMediaCredentials and the given streams (retention one hour).
func startPutMediaServer(t *testing.T, streams ...string) *serverProc {
	t.Helper()
	srv := startServer(t, "--credentials", writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), putMediaCredentials))
	admin := srv.controlAs(adminKey, adminSecret)
	for _, name := range streams {
		if _, err := admin.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// errorBody is a restJson1 error body whose message is under key
// ("message" for auth-layer errors, "Message" for modeled ones).
func errorBody(typ, key, msg string) string {
	b, err := json.Marshal(map[string]string{"__type": typ, key: msg})
	if err != nil {
		panic(err) // strings always marshal
	}
	return string(b)
}

// TestAuthPutMediaPayloadHash signs PutMedia with each x-amz-content-sha256
// a client may send. The placeholders the producers use are accepted; a
// hex digest other than the empty string's is refused before anything is
// stored, even the body's true digest: the body is acknowledged as it
// streams, so no digest of it can be checked in time.
func TestAuthPutMediaPayloadHash(t *testing.T) {
	t.Parallel()
	srv := startPutMediaServer(t, "cam-none", "cam-unsigned", "cam-streaming", "cam-empty", "cam-digest", "cam-other")
	src := media(t, "h264.mkv")
	fragments := len(synth.ClusterSpans(src))
	accepted := map[string]string{
		"cam-none":      "", // the C producer
		"cam-unsigned":  "UNSIGNED-PAYLOAD",
		"cam-streaming": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", // the Java SDK v1
		"cam-empty":     emptyPayloadHash,
	}
	for stream, header := range accepted {
		status, acks := putMediaSigned(t, srv, "AKIDCAMERA", "camera-secret", stream, src, putMediaSigning{contentSHA256: header})
		if status != http.StatusOK || strings.Count(acks, `"EventType":"PERSISTED"`) != fragments {
			t.Errorf("x-amz-content-sha256 %q: %d %s, want 200 and %d PERSISTED", header, status, acks, fragments)
		}
	}
	sum := sha256.Sum256(src)
	refused := map[string]string{
		"cam-digest": hex.EncodeToString(sum[:]),
		"cam-other":  strings.Repeat("ab", 32),
	}
	for stream, header := range refused {
		want := errorBody("XAmzContentSHA256Mismatch", "message", "PutMedia streams its body, so x-amz-content-sha256 '"+header+
			"' cannot be checked against it: send UNSIGNED-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or no x-amz-content-sha256 header.")
		if status, body := putMediaSigned(t, srv, "AKIDCAMERA", "camera-secret", stream, src, putMediaSigning{contentSHA256: header}); status != http.StatusBadRequest || body != want {
			t.Errorf("x-amz-content-sha256 %q: %d %s, want 400 %s", header, status, body, want)
		}
	}

	srv.Stop()
	for stream := range accepted {
		if frags, _ := stored(t, srv, stream); len(frags) != fragments {
			t.Errorf("%s holds %d fragments, want %d", stream, len(frags), fragments)
		}
	}
	for stream := range refused {
		if frags, _ := stored(t, srv, stream); len(frags) != 0 {
			t.Errorf("%s holds %d fragments, want none", stream, len(frags))
		}
	}
}

// TestAuthPutMediaSignedHeaders checks that the PutMedia parameters, which
// come in headers, count only when signed: a captured request whose
// signature does not cover x-amzn-stream-name could otherwise be pointed at
// another stream.
func TestAuthPutMediaSignedHeaders(t *testing.T) {
	t.Parallel()
	srv := startPutMediaServer(t, "cam-1", "cam-2")
	src := media(t, "h264.mkv")
	must := func(header string) string {
		return errorBody("InvalidSignatureException", "message", "Header '"+header+"' must be signed: add it to SignedHeaders.")
	}
	arn := "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam-2/1"
	tests := []struct {
		name     string
		unsigned map[string]string
		body     string
	}{
		{"stream name", map[string]string{"x-amzn-stream-name": "cam-2"}, must("x-amzn-stream-name")},
		{"stream ARN", map[string]string{"x-amzn-stream-arn": arn}, must("x-amzn-stream-arn")},
		{"timecode type", map[string]string{"x-amzn-fragment-timecode-type": "ABSOLUTE"}, must("x-amzn-fragment-timecode-type")},
		{"producer start", map[string]string{"x-amzn-producer-start-timestamp": "1700000000.000"}, must("x-amzn-producer-start-timestamp")},
	}
	for _, tc := range tests {
		// Signed for cam-1; the unsigned header names cam-2 or changes how
		// the fragments are timed.
		status, body := putMediaSigned(t, srv, "AKIDCAMERA", "camera-secret", "cam-1", src, putMediaSigning{unsigned: tc.unsigned})
		if status != http.StatusForbidden || body != tc.body {
			t.Errorf("unsigned %s: %d %s, want 403 %s", tc.name, status, body, tc.body)
		}
	}

	srv.Stop()
	for _, stream := range []string{"cam-1", "cam-2"} {
		if frags, _ := stored(t, srv, stream); len(frags) != 0 {
			t.Errorf("%s holds %d fragments, want none", stream, len(frags))
		}
	}
}
