package e2e

import (
	"bytes"
	"context"
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
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, srv.URL+"/putMedia", io.NopCloser(bytes.NewReader(mkv)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked, as producers send it
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	if key != "" {
		creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, emptyPayloadHash, "kinesisvideo", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
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
	path := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), `{"keys": [
  {"accessKeyId": "AKIDADMIN", "secretAccessKey": "admin-secret"},
  {"accessKeyId": "AKIDCAMERA", "secretAccessKey": "camera-secret", "policy": [
    {"actions": ["kinesisvideo:PutMedia"], "streams": ["cam-*"]}]}
]}`)
	srv := startServer(t, "--credentials", path)
	admin := srv.controlAs(adminKey, adminSecret)
	for _, name := range []string{"cam-1", "other"} {
		if _, err := admin.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	src := media(t, "h264.mkv")
	errorBody := func(typ, key, msg string) string {
		b, _ := json.Marshal(map[string]string{"__type": typ, key: msg})
		return string(b)
	}
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
