package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"
)

// Example credentials from the AWS documentation.
const (
	testAKID   = "AKIDEXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// testTime is the signing time of every request signed with a fixed clock.
var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func lookup(id string) (string, bool) {
	if id == testAKID {
		return testSecret, true
	}
	return "", false
}

// newVerifier returns a verifier for testRegion whose clock reads now.
func newVerifier(now time.Time) *Verifier {
	return &Verifier{Region: testRegion, Now: func() time.Time { return now }, Lookup: lookup}
}

// overTheWire writes a client request in HTTP/1.1 wire format and parses it back as a server
// would, so Host, Transfer-Encoding and Content-Length land where net/http puts them.
func overTheWire(t *testing.T, r *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	return parseWire(t, buf.String())
}

// parseWire parses raw HTTP/1.1 request bytes.
func parseWire(t *testing.T, raw string) *http.Request {
	t.Helper()
	got, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v\n%s", err, raw)
	}
	return got
}

// verifyBuffered reads the whole body and verifies r as the server does for JSON calls. It also
// returns the payload hash used.
func verifyBuffered(v *Verifier, r *http.Request) (*Identity, string, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, "", err
	}
	hash, err := PayloadHash(r, body)
	if err != nil {
		return nil, "", err
	}
	id, err := v.Verify(r, hash)
	return id, hash, err
}

// verifyStreaming verifies r as the server does for PutMedia, then drains the body.
func verifyStreaming(v *Verifier, r *http.Request) (*Identity, string, error) {
	hash, err := StreamingPayloadHash(r)
	var id *Identity
	if err == nil {
		id, err = v.Verify(r, hash)
	}
	if _, cerr := io.Copy(io.Discard, r.Body); cerr != nil && err == nil {
		err = cerr
	}
	return id, hash, err
}

// serverReply is what the test server answers: the identity with the payload hash used and
// whether the body came chunked, or the error as AWS would send it.
type serverReply struct {
	Status       int    `json:"-"`
	AccessKeyID  string `json:"accessKeyId,omitempty"`
	SessionToken string `json:"sessionToken,omitempty"`
	PayloadHash  string `json:"payloadHash,omitempty"`
	Chunked      bool   `json:"chunked,omitempty"`
	Code         string `json:"__type,omitempty"`
	Message      string `json:"message,omitempty"`
}

// newVerifyServer starts an HTTP server that verifies every request: /putMedia as a stream,
// everything else with a buffered body.
func newVerifyServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verify := verifyBuffered
		if r.URL.Path == "/putMedia" {
			verify = verifyStreaming
		}
		id, hash, err := verify(v, r)
		reply := serverReply{Status: http.StatusOK}
		var authErr *Error
		switch {
		case errors.As(err, &authErr):
			reply = serverReply{Status: authErr.HTTPStatus(), Code: authErr.Code(), Message: authErr.Message()}
		case err != nil:
			reply = serverReply{Status: http.StatusInternalServerError, Message: err.Error()}
		default:
			reply.AccessKeyID, reply.SessionToken = id.AccessKeyID, id.SessionToken
			reply.PayloadHash, reply.Chunked = hash, len(r.TransferEncoding) > 0
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(reply.Status)
		_ = json.NewEncoder(w).Encode(reply)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// readReply decodes a response of newVerifyServer.
func readReply(t *testing.T, status int, body []byte) serverReply {
	t.Helper()
	var reply serverReply
	if err := json.Unmarshal(body, &reply); err != nil {
		t.Fatalf("decode reply %q: %v", body, err)
	}
	reply.Status = status
	return reply
}

// okReply is the reply for a verified request with a buffered body.
func okReply(sessionToken, payloadHash string) serverReply {
	return serverReply{Status: http.StatusOK, AccessKeyID: testAKID, SessionToken: sessionToken, PayloadHash: payloadHash}
}

// okChunked is the reply for a verified request whose body came chunked.
func okChunked(sessionToken, payloadHash string) serverReply {
	r := okReply(sessionToken, payloadHash)
	r.Chunked = true
	return r
}

// requireTool skips the test when an external signer is missing, but fails under CI=true so that
// a CI machine without it cannot silently pass.
func requireTool(t *testing.T, name string, check *exec.Cmd, hint string) {
	t.Helper()
	if err := check.Run(); err != nil {
		msg := name + " is not available (" + err.Error() + "); install it with: " + hint
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// refSign computes an Authorization header straight from the SigV4 specification, sharing no
// code with the verifier. The caller supplies the canonical pieces exactly as the client computed
// them; headers are lower-case names with canonical values.
type refSign struct {
	method, uri, query string
	headers            map[string]string
	payloadHash        string
	amzDate            string // YYYYMMDDTHHMMSSZ
	secret, region     string
	service            string
}

func (s refSign) authorization(akid string) string {
	names := make([]string, 0, len(s.headers))
	for name := range s.headers {
		names = append(names, name)
	}
	sort.Strings(names)
	canonical := s.method + "\n" + s.uri + "\n" + s.query + "\n"
	for _, name := range names {
		canonical += name + ":" + s.headers[name] + "\n"
	}
	signed := strings.Join(names, ";")
	canonical += "\n" + signed + "\n" + s.payloadHash

	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	date := s.amzDate[:8]
	scope := date + "/" + s.region + "/" + s.service + "/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + s.amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := mac(mac(mac(mac([]byte("AWS4"+s.secret), date), s.region), s.service), "aws4_request")
	return "AWS4-HMAC-SHA256 Credential=" + akid + "/" + scope + ", SignedHeaders=" + signed +
		", Signature=" + hex.EncodeToString(mac(key, toSign))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
