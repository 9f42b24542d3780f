package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// Payload hash values with a special meaning in the canonical request.
const (
	// EmptyPayloadHash is the SHA-256 of the empty string. The C producer signs PutMedia with it
	// because the body is streamed (spec §1.3).
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// UnsignedPayload is sent in x-amz-content-sha256 when the body is deliberately not signed.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingPayload is sent by the Java SDK's PutMedia; the body is plain chunked and its
	// chunks are not signed (spec §1.3).
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// streamingUnsignedTrailer is botocore's value for bodies with a trailing checksum.
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// contentSHA256Header carries the client's payload hash (optional except for S3).
const contentSHA256Header = "X-Amz-Content-Sha256"

// PayloadHash returns the payload hash to pass to Verify for a request whose whole body the
// server has read (every JSON API call). Without an x-amz-content-sha256 header it is the
// SHA-256 of body. With the header, its value is used as the client signed it; a hex hash that
// does not match body is an error (XAmzContentSHA256Mismatch, 400), since otherwise a valid
// signature would vouch for a body it never covered. UNSIGNED-PAYLOAD and the streaming
// literals are accepted as they are: the body is then not covered by the signature.
func PayloadHash(r *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	claimed := r.Header.Get(contentSHA256Header)
	switch claimed {
	case "":
		return actual, nil
	case UnsignedPayload, StreamingPayload, streamingUnsignedTrailer:
		return claimed, nil
	}
	if !strings.EqualFold(claimed, actual) {
		return "", &Error{CodeContentSHA256Mismatch, http.StatusBadRequest,
			"The provided 'x-amz-content-sha256' header does not match what was computed."}
	}
	return claimed, nil
}

// StreamingPayloadHash returns the payload hash to pass to Verify for a streamed body
// (PutMedia): the x-amz-content-sha256 value when present (the Java SDK sends
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD), else EmptyPayloadHash as the C producer signs. The
// streamed body itself is never covered by the signature.
func StreamingPayloadHash(r *http.Request) string {
	if claimed := r.Header.Get(contentSHA256Header); claimed != "" {
		return claimed
	}
	return EmptyPayloadHash
}
