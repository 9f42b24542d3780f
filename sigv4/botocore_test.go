package sigv4

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// botocoreCase is one request for testdata/botocore_sign.py.
type botocoreCase struct {
	name            string
	URL             string            `json:"url"`
	Body            string            `json:"body,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	Params          map[string]string `json:"params,omitempty"`
	UnsignedPayload bool              `json:"unsignedPayload,omitempty"`
	Chunked         bool              `json:"chunked,omitempty"`
	AccessKeyID     string            `json:"accessKeyId"`
	SecretAccessKey string            `json:"secretAccessKey"`
	SessionToken    string            `json:"sessionToken,omitempty"`
	Region          string            `json:"region"`
	want            serverReply
}

// TestVerifyBotocore signs requests with botocore (the signer of boto3 and the AWS CLI) and
// sends them with Python's urllib to a verifying server. All cases run in one Python process.
func TestVerifyBotocore(t *testing.T) {
	requireTool(t, "python3 with botocore", exec.Command("python3", "-c", "import botocore"), "apt-get install python3-boto3")
	srv := newVerifyServer(t, &Verifier{Region: testRegion, Lookup: lookup, Now: time.Now})
	badSig := serverReply{Status: http.StatusForbidden, Code: CodeInvalidSignature, Message: msgSignatureInvalid}
	cases := []botocoreCase{
		{name: "json call", URL: srv.URL + "/describeStream", Body: `{"StreamName": "cam-1"}`,
			Headers: map[string]string{"Content-Type": "application/json"}, want: okReply("", sha256Hex([]byte(`{"StreamName": "cam-1"}`)))},
		{name: "session token", URL: srv.URL + "/listStreams", Body: `{}`, SessionToken: "boto/token+==",
			want: okReply("boto/token+==", sha256Hex([]byte(`{}`)))},
		{name: "query params", URL: srv.URL + "/getDataEndpoint", Body: `{}`,
			Params: map[string]string{"b": "2", "a": "x y", "c": "a/b~", "A": "é"}, want: okReply("", sha256Hex([]byte(`{}`)))},
		{name: "unsigned payload", URL: srv.URL + "/describeStream", Body: `{"StreamName":"cam-1"}`, UnsignedPayload: true,
			want: serverReply{Status: http.StatusForbidden, Code: CodeInvalidSignature, Message: msgUnsignedJSON(UnsignedPayload)}},
		{name: "chunked putMedia with streaming payload", URL: srv.URL + "/putMedia", Body: "mkv bytes", Chunked: true,
			Headers: map[string]string{"X-Amz-Content-SHA256": StreamingPayload, "x-amzn-stream-name": "cam-1"},
			want:    okChunked("", StreamingPayload)},
		{name: "unknown key", URL: srv.URL + "/listStreams", Body: `{}`, AccessKeyID: "AKIDUNKNOWN",
			want: serverReply{Status: http.StatusForbidden, Code: CodeUnrecognizedClient, Message: msgUnknownKey}},
		{name: "wrong secret", URL: srv.URL + "/listStreams", Body: `{}`, SecretAccessKey: "wrong", want: badSig},
		{name: "wrong region", URL: srv.URL + "/listStreams", Body: `{}`, Region: "eu-west-1",
			want: serverReply{Status: http.StatusForbidden, Code: CodeInvalidSignature,
				Message: "Credential should be scoped to a valid region, not 'eu-west-1'."}},
	}
	for i := range cases {
		c := &cases[i]
		if c.AccessKeyID == "" {
			c.AccessKeyID = testAKID
		}
		if c.SecretAccessKey == "" {
			c.SecretAccessKey = testSecret
		}
		if c.Region == "" {
			c.Region = testRegion
		}
	}
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "testdata/botocore_sign.py")
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore_sign.py: %v\n%s", err, stderr.String())
	}
	var results []struct {
		Status        int    `json:"status"`
		Body          string `json:"body"`
		Authorization string `json:"authorization"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("botocore_sign.py output %q: %v", out, err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := results[i]
			if !strings.HasPrefix(r.Authorization, "AWS4-HMAC-SHA256 Credential="+c.AccessKeyID+"/") {
				t.Errorf("botocore did not sign: Authorization %q", r.Authorization)
			}
			if diff := cmp.Diff(c.want, readReply(t, r.Status, []byte(r.Body))); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}
