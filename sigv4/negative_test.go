package sigv4

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
)

const testBody = `{"StreamName":"cam-1"}`

// signedRequest returns a server-side view of an SDK-signed JSON call to /describeStream that
// carries a signed X-Amzn-Stream-Name header. edit runs on the client request before signing.
func signedRequest(t *testing.T, creds aws.Credentials, region, service string, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://kvs.example:4567/describeStream?x=1", strings.NewReader(testBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amzn-Stream-Name", "cam-1")
	if edit != nil {
		edit(req)
	}
	sdkSign(t, req, sha256Hex([]byte(testBody)), creds, region, service, testTime)
	return overTheWire(t, req)
}

// errFields flattens an *Error for comparison; nil means success.
type errFields struct {
	Code    string
	Status  int
	Message string
}

func fieldsOf(t *testing.T, err error) *errFields {
	t.Helper()
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *sigv4.Error", err)
	}
	return &errFields{e.Code(), e.HTTPStatus(), e.Message()}
}

func invalid(msg string) *errFields { return &errFields{CodeInvalidSignature, 403, msg} }

func incomplete(msg string) *errFields { return &errFields{CodeIncompleteSignature, 400, msg} }

func TestVerifyRejects(t *testing.T) {
	good := func(t *testing.T) *http.Request { return signedRequest(t, testCreds, testRegion, DefaultService, nil) }
	setBody := func(r *http.Request, body string) {
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	tests := []struct {
		name    string
		request func(t *testing.T) *http.Request
		now     time.Time // default testTime
		skew    time.Duration
		want    *errFields
	}{
		{name: "valid", request: good},
		{
			name:    "no authorization",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Del("Authorization"); return r },
			want:    &errFields{CodeMissingAuthenticationToken, 403, "Missing Authentication Token"},
		},
		{
			name: "wrong secret",
			request: func(t *testing.T) *http.Request {
				return signedRequest(t, aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: "x"}, testRegion, DefaultService, nil)
			},
			want: invalid(msgSignatureInvalid),
		},
		{
			name: "unknown key",
			request: func(t *testing.T) *http.Request {
				return signedRequest(t, aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: testSecret}, testRegion, DefaultService, nil)
			},
			want: &errFields{CodeUnrecognizedClient, 403, "The security token included in the request is invalid."},
		},
		{
			name:    "tampered body",
			request: func(t *testing.T) *http.Request { r := good(t); setBody(r, `{"StreamName":"cam-2"}`); return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name: "tampered body with signed content hash header",
			request: func(t *testing.T) *http.Request {
				r := signedRequest(t, testCreds, testRegion, DefaultService, func(r *http.Request) {
					r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte(testBody)))
				})
				setBody(r, `{"StreamName":"cam-2"}`)
				return r
			},
			want: &errFields{CodeContentSHA256Mismatch, 400, "The provided 'x-amz-content-sha256' header does not match what was computed."},
		},
		{
			name:    "tampered signed header",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Set("X-Amzn-Stream-Name", "cam-2"); return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "signed header removed",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Del("X-Amzn-Stream-Name"); return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "tampered host",
			request: func(t *testing.T) *http.Request { r := good(t); r.Host = "kvs.example:4568"; return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "tampered path",
			request: func(t *testing.T) *http.Request { r := good(t); r.URL.Path = "/deleteStream"; return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "tampered query",
			request: func(t *testing.T) *http.Request { r := good(t); r.URL.RawQuery = "x=2"; return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "tampered method",
			request: func(t *testing.T) *http.Request { r := good(t); r.Method = http.MethodPut; return r },
			want:    invalid(msgSignatureInvalid),
		},
		{
			name:    "unsigned extra header is fine",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Set("X-Forwarded-For", "10.0.0.1"); return r },
		},
		{name: "signed 4 min ago", request: good, now: testTime.Add(4 * time.Minute)},
		{name: "signed 4 min ahead", request: good, now: testTime.Add(-4 * time.Minute)},
		{name: "signed exactly 5 min ago", request: good, now: testTime.Add(5 * time.Minute)},
		{name: "signed exactly 5 min ahead", request: good, now: testTime.Add(-5 * time.Minute)},
		{
			name: "signed 6 min ago", request: good, now: testTime.Add(6 * time.Minute),
			want: invalid("Signature expired: 20260102T030405Z is now earlier than 20260102T030505Z (20260102T031005Z - 5 min.)"),
		},
		{
			name: "signed 6 min ahead", request: good, now: testTime.Add(-6 * time.Minute),
			want: invalid("Signature not yet current: 20260102T030405Z is still later than 20260102T030305Z (20260102T025805Z + 5 min.)"),
		},
		{
			name: "custom skew", request: good, now: testTime.Add(2 * time.Minute), skew: 90 * time.Second,
			want: invalid("Signature expired: 20260102T030405Z is now earlier than 20260102T030435Z (20260102T030605Z - 1m30s.)"),
		},
		{
			name:    "wrong region in scope",
			request: func(t *testing.T) *http.Request { return signedRequest(t, testCreds, "eu-west-1", DefaultService, nil) },
			want:    invalid("Credential should be scoped to a valid region, not 'eu-west-1'."),
		},
		{
			name:    "wrong service in scope",
			request: func(t *testing.T) *http.Request { return signedRequest(t, testCreds, testRegion, "s3", nil) },
			want:    invalid("Credential should be scoped to correct service: 'kinesisvideo'."),
		},
		{
			name: "wrong terminator in scope",
			request: func(t *testing.T) *http.Request {
				r := good(t)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "/aws5_request", 1))
				return r
			},
			want: invalid("Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."),
		},
		{
			name: "scope date differs from X-Amz-Date",
			request: func(t *testing.T) *http.Request {
				r := good(t)
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20260102/", "/20260101/", 1))
				return r
			},
			want: invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260101' != '20260102', from '20260102T030405Z'."),
		},
		{
			name: "malformed X-Amz-Date",
			request: func(t *testing.T) *http.Request {
				r := good(t)
				r.Header.Set("X-Amz-Date", "2026-01-02T03:04:05Z")
				return r
			},
			want: incomplete("Date must be in ISO-8601 'basic format'. Got '2026-01-02T03:04:05Z'. See http://en.wikipedia.org/wiki/ISO_8601"),
		},
		{
			name:    "no date header",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Del("X-Amz-Date"); return r },
			want:    incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."),
		},
		{
			name: "malformed Date header",
			request: func(t *testing.T) *http.Request {
				r := good(t)
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Date", "yesterday")
				return r
			},
			want: incomplete("Date header must be an HTTP date (RFC 7231). Got 'yesterday'."),
		},
		{
			name:    "two authorization headers",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Add("Authorization", "x"); return r },
			want:    incomplete("Request has more than one Authorization header."),
		},
		{
			name:    "malformed authorization",
			request: func(t *testing.T) *http.Request { r := good(t); r.Header.Set("Authorization", "Bearer abc"); return r },
			want:    incomplete("Unsupported AWS 'algorithm': 'Bearer'; only 'AWS4-HMAC-SHA256' is accepted."),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = testTime
			}
			v := newVerifier(now)
			v.MaxSkew = tc.skew
			_, _, err := verifyBuffered(v, tc.request(t))
			if diff := cmp.Diff(tc.want, fieldsOf(t, err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}

			// Only the signature and the body hash need the body: Check refuses everything
			// else, with the same answer, without reading it.
			r := tc.request(t)
			r.Body = unreadBody{t}
			_, err = v.Check(r)
			var want *errFields
			if tc.want != nil && tc.want.Message != msgSignatureInvalid && tc.want.Code != CodeContentSHA256Mismatch {
				want = tc.want
			}
			if diff := cmp.Diff(want, fieldsOf(t, err)); diff != "" {
				t.Errorf("Check error (-want +got):\n%s", diff)
			}
		})
	}
}

// unreadBody is a request body that fails the test when read.
type unreadBody struct{ t *testing.T }

func (b unreadBody) Read([]byte) (int, error) {
	b.t.Error("the body was read")
	return 0, io.EOF
}

func (unreadBody) Close() error { return nil }

// TestRequireSigned checks that a header the server acts on must be among SignedHeaders when the
// request carries it, whatever its case.
func TestRequireSigned(t *testing.T) {
	r := signedRequest(t, testCreds, testRegion, DefaultService, nil) // signs X-Amzn-Stream-Name
	r.Header.Set("X-Amzn-Fragment-Timecode-Type", "ABSOLUTE")         // added after signing
	sig, err := newVerifier(testTime).Check(r)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		headers []string
		want    *errFields
	}{
		{headers: []string{"x-amzn-stream-name"}},
		{headers: []string{"X-AMZN-STREAM-NAME", "x-amzn-stream-arn"}}, // absent headers need no signature
		{headers: []string{"x-amzn-stream-name", "x-amzn-fragment-timecode-type"},
			want: invalid("Header 'x-amzn-fragment-timecode-type' must be signed: add it to SignedHeaders.")},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, fieldsOf(t, sig.RequireSigned(tc.headers...))); diff != "" {
			t.Errorf("RequireSigned(%q) (-want +got):\n%s", tc.headers, diff)
		}
	}
	if got := sig.AccessKeyID(); got != testAKID {
		t.Errorf("AccessKeyID = %q, want %q", got, testAKID)
	}
}

func TestVerifyNilLookup(t *testing.T) {
	v := &Verifier{Region: testRegion, Now: func() time.Time { return testTime }}
	_, _, err := verifyBuffered(v, signedRequest(t, testCreds, testRegion, DefaultService, nil))
	want := &errFields{CodeUnrecognizedClient, 403, msgUnknownKey}
	if diff := cmp.Diff(want, fieldsOf(t, err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// TestVerifyDateHeader covers clients that sign the HTTP Date header instead of X-Amz-Date.
func TestVerifyDateHeader(t *testing.T) {
	date := testTime.Format(http.TimeFormat)
	auth := refSign{method: "POST", uri: "/listStreams", headers: map[string]string{"host": "kvs.example", "date": date},
		payloadHash: sha256Hex([]byte("{}")), amzDate: "20260102T030405Z", secret: testSecret, region: testRegion,
		service: DefaultService}.authorization(testAKID)
	r := parseWire(t, "POST /listStreams HTTP/1.1\r\nHost: kvs.example\r\nDate: "+date+"\r\nAuthorization: "+auth+
		"\r\nContent-Length: 2\r\n\r\n{}")
	id, _, err := verifyBuffered(newVerifier(testTime), r)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := &Identity{AccessKeyID: testAKID, Time: testTime, Region: testRegion}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
}

// TestVerifyHeaderValueCanonicalization signs header values the way the SigV4 specification
// canonicalizes them and sends them with extra spaces and as repeated header lines.
func TestVerifyHeaderValueCanonicalization(t *testing.T) {
	auth := refSign{method: "POST", uri: "/listStreams", headers: map[string]string{
		"host": "kvs.example", "x-amz-date": "20260102T030405Z", "x-amzn-list": "a b,c", "x-amzn-padded": "one two three",
	}, payloadHash: EmptyPayloadHash, amzDate: "20260102T030405Z", secret: testSecret, region: testRegion,
		service: DefaultService}.authorization(testAKID)
	r := parseWire(t, "POST /listStreams HTTP/1.1\r\nHost: kvs.example\r\nX-Amz-Date: 20260102T030405Z\r\n"+
		"X-Amzn-List: a   b \r\nX-Amzn-List:c\r\nX-Amzn-Padded: \t one  two   three\t\r\nAuthorization: "+auth+"\r\n\r\n")
	if _, _, err := verifyBuffered(newVerifier(testTime), r); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestVerifyConcurrent verifies from many goroutines at once; run with -race.
func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(testTime)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		r := signedRequest(t, testCreds, testRegion, DefaultService, nil)
		wg.Go(func() {
			_, _, err := verifyBuffered(v, r)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
