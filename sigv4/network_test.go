package sigv4

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// send performs req and returns the verification reply of newVerifyServer.
func send(t *testing.T, client *http.Client, req *http.Request) serverReply {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return readReply(t, resp.StatusCode, body)
}

// TestVerifySDKOverNetwork sends SDK-signed requests to a real server so that net/http's own
// parsing of Host, Content-Length and Transfer-Encoding is what the verifier sees.
func TestVerifySDKOverNetwork(t *testing.T) {
	srv := newVerifyServer(t, newVerifier(testTime))
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("json with port", func(t *testing.T) {
		body := `{"StreamName":"cam-1"}`
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/describeStream", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		sdkSign(t, req, sha256Hex([]byte(body)), testCreds, testRegion, DefaultService, testTime)
		if diff := cmp.Diff(okReply("", sha256Hex([]byte(body))), send(t, srv.Client(), req)); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	})

	t.Run("host without port", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/listStreams?MaxResults=5", strings.NewReader("{}"))
		req.Host = u.Hostname()
		creds := testCreds
		creds.SessionToken = "session/token=="
		sdkSign(t, req, sha256Hex([]byte("{}")), creds, testRegion, DefaultService, testTime)
		if diff := cmp.Diff(okReply("session/token==", sha256Hex([]byte("{}"))), send(t, srv.Client(), req)); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	})

	t.Run("chunked putMedia", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := range 5 {
				fmt.Fprintf(pw, "cluster %d ", i)
				time.Sleep(time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/putMedia", pr)
		req.TransferEncoding = []string{"chunked"}
		req.Header.Set("X-Amz-Content-Sha256", StreamingPayload)
		req.Header.Set("X-Amzn-Stream-Name", "cam-1")
		req.Header.Set("X-Amzn-Fragment-Timecode-Type", "ABSOLUTE")
		req.Header.Set("X-Amzn-Producer-Start-Timestamp", "1767323045.5")
		sdkSign(t, req, StreamingPayload, testCreds, testRegion, DefaultService, testTime)
		if diff := cmp.Diff(okChunked("", StreamingPayload), send(t, srv.Client(), req)); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/describeStream", strings.NewReader("{}"))
		creds := testCreds
		creds.SecretAccessKey = "not-the-secret"
		sdkSign(t, req, sha256Hex([]byte("{}")), creds, testRegion, DefaultService, testTime)
		want := serverReply{Status: http.StatusForbidden, Code: CodeInvalidSignature, Message: msgSignatureInvalid}
		if diff := cmp.Diff(want, send(t, srv.Client(), req)); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	})
}

// producerRequest builds the raw bytes the official C producer sends: it sets a lower-case
// host header without the port, signs every header except content-type, content-length,
// x-amz-security-token and authorization, and adds the security token after signing
// (spec §1.3, §1.4, §4.1). chunks, when non-nil, are sent chunked.
func producerRequest(path, host string, headers map[string]string, payloadHash string, body string, chunks []string, token string) string {
	signed := map[string]string{"host": host, "x-amz-date": testTime.Format("20060102T150405Z")}
	for k, v := range headers {
		signed[k] = v
	}
	auth := refSign{method: "POST", uri: path, headers: signed, payloadHash: payloadHash,
		amzDate: signed["x-amz-date"], secret: testSecret, region: testRegion, service: "kinesisvideo"}.authorization(testAKID)

	var b strings.Builder
	b.WriteString("POST " + path + " HTTP/1.1\r\n")
	b.WriteString("host: " + host + "\r\n")
	b.WriteString("Accept: */*\r\n") // added by curl, unsigned
	b.WriteString("X-Amz-Date: " + signed["x-amz-date"] + "\r\n")
	for k, v := range headers {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("content-type: application/json\r\n")
	b.WriteString("Authorization: " + auth + "\r\n")
	if token != "" {
		b.WriteString("x-amz-security-token: " + token + "\r\n")
	}
	if chunks == nil {
		fmt.Fprintf(&b, "content-length: %d\r\n\r\n%s", len(body), body)
		return b.String()
	}
	b.WriteString("\r\n")
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(c), c)
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// producerPutMediaHeaders are the PutMedia headers the C producer signs besides host and
// x-amz-date: connection;transfer-encoding;user-agent;x-amzn-fragment-acknowledgment-required;
// x-amzn-fragment-timecode-type;x-amzn-producer-start-timestamp;x-amzn-stream-name.
var producerPutMediaHeaders = map[string]string{
	"connection":        "keep-alive",
	"transfer-encoding": "chunked",
	"user-agent":        "AWS-SDK-KVS-CPP-CLIENT/3.4.2/1.5.0 GCC/12.2.0 Linux/6.1.0 x86_64",
	"x-amzn-fragment-acknowledgment-required": "1",
	"x-amzn-fragment-timecode-type":           "ABSOLUTE",
	"x-amzn-producer-start-timestamp":         "1767323045.5",
	"x-amzn-stream-name":                      "cam-1",
}

// TestVerifyProducerC replays the C producer's exact header set over a raw TCP connection.
func TestVerifyProducerC(t *testing.T) {
	srv := newVerifyServer(t, newVerifier(testTime))
	addr := strings.TrimPrefix(srv.URL, "http://")
	hostOnly, _, _ := net.SplitHostPort(addr)
	describeBody := `{"StreamName":"cam-1"}`
	ua := map[string]string{"user-agent": producerPutMediaHeaders["user-agent"]}
	tests := []struct {
		name string
		raw  string
		want serverReply
	}{
		{
			name: "putMedia host without port",
			raw:  producerRequest("/putMedia", hostOnly, producerPutMediaHeaders, EmptyPayloadHash, "", []string{"\x1a\x45\xdf\xa3", "cluster"}, ""),
			want: okChunked("", EmptyPayloadHash),
		},
		{
			name: "putMedia host with port and session token",
			raw:  producerRequest("/putMedia", addr, producerPutMediaHeaders, EmptyPayloadHash, "", []string{"cluster"}, "tok"),
			want: okChunked("tok", EmptyPayloadHash),
		},
		{
			name: "describeStream",
			raw:  producerRequest("/describeStream", hostOnly, ua, sha256Hex([]byte(describeBody)), describeBody, nil, ""),
			want: okReply("", sha256Hex([]byte(describeBody))),
		},
		{
			name: "putMedia signed over a non-empty payload hash",
			raw:  producerRequest("/putMedia", hostOnly, producerPutMediaHeaders, sha256Hex([]byte("cluster")), "", []string{"cluster"}, ""),
			want: serverReply{Status: http.StatusForbidden, Code: CodeInvalidSignature, Message: msgSignatureInvalid},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if diff := cmp.Diff(tc.want, readReply(t, resp.StatusCode, body)); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}
