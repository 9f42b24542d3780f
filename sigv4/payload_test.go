package sigv4

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPayloadHash(t *testing.T) {
	body := []byte(`{"StreamName":"cam-1"}`)
	bodyHash := sha256Hex(body)
	mismatch := &errFields{CodeContentSHA256Mismatch, 400, "The provided 'x-amz-content-sha256' header does not match what was computed."}
	tests := []struct {
		name    string
		header  string
		want    string
		wantErr *errFields
	}{
		{name: "no header hashes the body", want: bodyHash},
		{name: "matching header", header: bodyHash, want: bodyHash},
		{name: "matching header in upper case is used as signed", header: strings.ToUpper(bodyHash), want: strings.ToUpper(bodyHash)},
		{name: "unsigned payload", header: UnsignedPayload, wantErr: invalid(msgUnsignedJSON(UnsignedPayload))},
		{name: "streaming payload", header: StreamingPayload, wantErr: invalid(msgUnsignedJSON(StreamingPayload))},
		{name: "streaming unsigned trailer", header: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			wantErr: invalid(msgUnsignedJSON("STREAMING-UNSIGNED-PAYLOAD-TRAILER"))},
		{name: "hash of another body", header: EmptyPayloadHash, wantErr: mismatch},
		{name: "garbage", header: "not-a-hash", wantErr: mismatch},
		{name: "hex of the wrong length", header: bodyHash[:62], wantErr: mismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "http://kvs.example/describeStream", nil)
			if tc.header != "" {
				r.Header.Set("x-amz-content-sha256", tc.header)
			}
			got, err := PayloadHash(r, body)
			if diff := cmp.Diff(tc.wantErr, fieldsOf(t, err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if got != tc.want {
				t.Errorf("PayloadHash = %q, want %q", got, tc.want)
			}
		})
	}
}

// msgUnsignedJSON is the refusal of a JSON call that left its body unsigned with value.
func msgUnsignedJSON(value string) string {
	return "The request body must be signed: x-amz-content-sha256 '" + value + "' is accepted only for PutMedia. " +
		"Sign the SHA-256 of the JSON body, or send no x-amz-content-sha256 header."
}

// TestCheckPayloadHeader checks that the refusals need no body: a JSON call that does not sign its
// body is answered before the body is read.
func TestCheckPayloadHeader(t *testing.T) {
	for header, want := range map[string]*errFields{
		"":                            nil,
		sha256Hex([]byte("any body")): nil,
		UnsignedPayload:               invalid(msgUnsignedJSON(UnsignedPayload)),
		StreamingPayload:              invalid(msgUnsignedJSON(StreamingPayload)),
		"not-a-hash":                  {CodeContentSHA256Mismatch, 400, "The provided 'x-amz-content-sha256' header does not match what was computed."},
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://kvs.example/describeStream", nil)
		if header != "" {
			r.Header.Set("X-Amz-Content-Sha256", header)
		}
		if diff := cmp.Diff(want, fieldsOf(t, CheckPayloadHeader(r))); diff != "" {
			t.Errorf("CheckPayloadHeader with %q (-want +got):\n%s", header, diff)
		}
	}
}

func TestStreamingPayloadHash(t *testing.T) {
	refused := func(value string) *errFields {
		return &errFields{CodeContentSHA256Mismatch, 400, "PutMedia streams its body, so x-amz-content-sha256 '" + value +
			"' cannot be checked against it: send UNSIGNED-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or no x-amz-content-sha256 header."}
	}
	bodyHash := sha256Hex([]byte("mkv bytes"))
	tests := []struct {
		header  string
		want    string
		wantErr *errFields
	}{
		{header: "", want: EmptyPayloadHash},               // C producer
		{header: StreamingPayload, want: StreamingPayload}, // Java SDK v1
		{header: UnsignedPayload, want: UnsignedPayload},   // aws-sdk-go-v2 with unsigned payload
		{header: EmptyPayloadHash, want: EmptyPayloadHash}, // the C producer's hash, sent explicitly
		{header: strings.ToUpper(EmptyPayloadHash), want: strings.ToUpper(EmptyPayloadHash)},
		{header: bodyHash, wantErr: refused(bodyHash)}, // a digest nobody can check in time
		{header: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", wantErr: refused("STREAMING-UNSIGNED-PAYLOAD-TRAILER")},
	}
	for _, tc := range tests {
		r, _ := http.NewRequest(http.MethodPost, "http://kvs.example/putMedia", nil)
		if tc.header != "" {
			r.Header.Set("X-Amz-Content-Sha256", tc.header)
		}
		got, err := StreamingPayloadHash(r)
		if diff := cmp.Diff(tc.wantErr, fieldsOf(t, err)); diff != "" {
			t.Errorf("StreamingPayloadHash with %q: error (-want +got):\n%s", tc.header, diff)
		}
		if got != tc.want {
			t.Errorf("StreamingPayloadHash with %q = %q, want %q", tc.header, got, tc.want)
		}
	}
	if got := sha256Hex(nil); got != EmptyPayloadHash {
		t.Errorf("EmptyPayloadHash = %q, SHA-256 of nothing is %q", EmptyPayloadHash, got)
	}
}
