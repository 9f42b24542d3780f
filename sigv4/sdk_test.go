package sigv4

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"
)

// sdkSign signs r with aws-sdk-go-v2's signer, the signer of the Go SDK clients.
func sdkSign(t *testing.T, r *http.Request, payloadHash string, creds aws.Credentials, region, service string, at time.Time) {
	t.Helper()
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash, service, region, at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
}

var testCreds = aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}

func TestVerifySDKSigned(t *testing.T) {
	const body = `{"StreamName":"cam-1"}`
	tests := []struct {
		name      string
		url       string
		host      string // overrides the Host header when set
		body      string
		header    map[string]string
		token     string
		streaming bool
		hash      string // payload hash the client signs; default SHA-256 of body
	}{
		{name: "json call", url: "http://kvs.example:4567/describeStream", body: body},
		{name: "host without port", url: "http://kvs.example/describeStream", body: body},
		{name: "host header differs from URL", url: "http://127.0.0.1:4567/describeStream", host: "kvs.example", body: body},
		{name: "session token", url: "http://kvs.example:4567/listStreams", body: "{}", token: "FQoGZXIvYXdzEXAMPLE//token+="},
		{name: "empty body", url: "http://kvs.example:4567/listStreams"},
		{name: "query string", url: "http://kvs.example:4567/getDataEndpoint?b=2&a=1&a=0&c=x%20y&d=a%2Fb&e=~&f=&g=%E2%9C%93&h=a+b", body: body},
		{name: "hls path", url: "http://kvs.example:4567/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=abc", body: ""},
		{name: "path needing encoding", url: "http://kvs.example:4567/a%20b/c%2Fd/%C3%A9", body: body},
		{name: "signed extra headers", url: "http://kvs.example:4567/describeStream", body: body,
			header: map[string]string{"Content-Type": "application/json", "X-Amzn-Custom": "  spaced   out  value "}},
		{name: "explicit body hash", url: "http://kvs.example:4567/describeStream", body: body,
			header: map[string]string{"X-Amz-Content-Sha256": sha256Hex([]byte(body))}},
		{name: "putMedia streaming payload", url: "http://kvs.example:4567/putMedia", body: "mkv bytes", streaming: true,
			header: map[string]string{"X-Amz-Content-Sha256": StreamingPayload, "X-Amzn-Stream-Name": "cam-1",
				"X-Amzn-Fragment-Timecode-Type": "ABSOLUTE"}, hash: StreamingPayload},
		{name: "putMedia unsigned payload", url: "http://kvs.example:4567/putMedia", body: "mkv bytes", streaming: true,
			header: map[string]string{"X-Amz-Content-Sha256": UnsignedPayload, "X-Amzn-Stream-Name": "cam-1"}, hash: UnsignedPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var bodyReader io.Reader
			if tc.body != "" {
				bodyReader = strings.NewReader(tc.body)
			}
			req, err := http.NewRequest(http.MethodPost, tc.url, bodyReader)
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.streaming {
				// An unknown length makes net/http send the body chunked, as producers do.
				req.Body = io.NopCloser(io.MultiReader(strings.NewReader(tc.body)))
				req.ContentLength = -1
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			hash := tc.hash
			if hash == "" {
				hash = sha256Hex([]byte(tc.body))
			}
			creds := testCreds
			creds.SessionToken = tc.token
			sdkSign(t, req, hash, creds, testRegion, DefaultService, testTime)

			got := overTheWire(t, req)
			if tc.streaming && len(got.TransferEncoding) == 0 {
				t.Fatalf("request was not sent chunked")
			}
			verify := verifyBuffered
			if tc.streaming {
				verify = verifyStreaming
			}
			id, _, err := verify(newVerifier(testTime), got)
			if err != nil {
				t.Fatalf("Verify: %v\nAuthorization: %s", err, req.Header.Get("Authorization"))
			}
			want := &Identity{AccessKeyID: testAKID, SessionToken: tc.token, Time: testTime, Region: testRegion}
			if diff := cmp.Diff(want, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVerifyAWSTestSuiteVanilla checks the "get-vanilla" case of AWS's published SigV4 test
// suite, whose expected signature is fixed by AWS.
func TestVerifyAWSTestSuiteVanilla(t *testing.T) {
	r := parseWire(t, "GET / HTTP/1.1\r\nHost: example.amazonaws.com\r\nX-Amz-Date: 20150830T123600Z\r\n"+
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "+
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\r\n\r\n")
	v := newVerifier(time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC))
	v.Service = "service"
	if _, err := v.Verify(r, EmptyPayloadHash); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
