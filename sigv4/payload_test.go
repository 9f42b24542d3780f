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
		{name: "unsigned payload", header: UnsignedPayload, want: UnsignedPayload},
		{name: "streaming payload", header: StreamingPayload, want: StreamingPayload},
		{name: "streaming unsigned trailer", header: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", want: "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		{name: "hash of another body", header: EmptyPayloadHash, wantErr: mismatch},
		{name: "garbage", header: "not-a-hash", wantErr: mismatch},
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

func TestStreamingPayloadHash(t *testing.T) {
	for header, want := range map[string]string{
		"":               EmptyPayloadHash, // C producer
		StreamingPayload: StreamingPayload, // Java SDK
		UnsignedPayload:  UnsignedPayload,
	} {
		r, _ := http.NewRequest(http.MethodPost, "http://kvs.example/putMedia", nil)
		if header != "" {
			r.Header.Set("X-Amz-Content-Sha256", header)
		}
		if got := StreamingPayloadHash(r); got != want {
			t.Errorf("StreamingPayloadHash with header %q = %q, want %q", header, got, want)
		}
	}
	if got := sha256Hex(nil); got != EmptyPayloadHash {
		t.Errorf("EmptyPayloadHash = %q, SHA-256 of nothing is %q", EmptyPayloadHash, got)
	}
}
