package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// Payload hash values with a special meaning in the canonical request.
const (
	// EmptyPayloadHash is the SHA-256 of the empty string. The C producer signs PutMedia with it
	// because the body is streamed (spec §1.3).
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// UnsignedPayload is sent in x-amz-content-sha256 when the body is deliberately not signed;
	// accepted only for PutMedia.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// StreamingPayload is sent by the Java SDK's PutMedia; the body is plain chunked and its
	// chunks are not signed (spec §1.3).
	StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
)

// contentSHA256Header carries the client's payload hash (optional except for S3).
const contentSHA256Header = "X-Amz-Content-Sha256"

// CheckPayloadHeader checks, before the body is read, the x-amz-content-sha256 header of a
// request whose whole body the server reads and hashes (every JSON API call). A missing header
// or a hex SHA-256 passes (PayloadHash compares the hash once the body is in). UNSIGNED-PAYLOAD
// and the STREAMING-* literals are refused with InvalidSignatureException (403): they leave the
// body out of the signature, so a captured request could carry another body, e.g. name another
// stream. Any other value can never match a body: XAmzContentSHA256Mismatch (400).
func CheckPayloadHeader(r *http.Request) error {
	claimed := r.Header.Get(contentSHA256Header)
	switch {
	case claimed == "" || isSHA256Hex(claimed):
		return nil
	case claimed == UnsignedPayload || strings.HasPrefix(claimed, "STREAMING-"):
		return errInvalid("The request body must be signed: x-amz-content-sha256 '%s' is accepted only for PutMedia. "+
			"Sign the SHA-256 of the JSON body, or send no x-amz-content-sha256 header.", claimed)
	}
	return errHashMismatch()
}

// PayloadHash returns the payload hash to pass to Verify for a request whose whole body the
// server has read (every JSON API call): the SHA-256 of body. A client that sent
// x-amz-content-sha256 must have sent that hash (any case); CheckPayloadHeader says what else
// is refused.
func PayloadHash(r *http.Request, body []byte) (string, error) {
	if err := CheckPayloadHeader(r); err != nil {
		return "", err
	}
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	claimed := r.Header.Get(contentSHA256Header)
	if claimed == "" {
		return actual, nil
	}
	if !strings.EqualFold(claimed, actual) {
		return "", errHashMismatch()
	}
	return claimed, nil // as the client signed it
}

// StreamingPayloadHash returns the payload hash to pass to Verify for a streamed body
// (PutMedia), which is never covered by the signature: EmptyPayloadHash without an
// x-amz-content-sha256 header, as the C producer signs, else the header's value when it is
// UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD (Java SDK v1) or EmptyPayloadHash. Any
// other value, a hex digest in particular, is refused (XAmzContentSHA256Mismatch, 400): the body
// is stored and acknowledged as it streams, so a digest of it could only be checked too late,
// and accepting it unchecked would let a signature seem to vouch for a body it never covered.
func StreamingPayloadHash(r *http.Request) (string, error) {
	claimed := r.Header.Get(contentSHA256Header)
	switch {
	case claimed == "":
		return EmptyPayloadHash, nil
	case claimed == UnsignedPayload || claimed == StreamingPayload || strings.EqualFold(claimed, EmptyPayloadHash):
		return claimed, nil
	}
	return "", &Error{CodeContentSHA256Mismatch, http.StatusBadRequest, fmt.Sprintf(
		"PutMedia streams its body, so x-amz-content-sha256 '%s' cannot be checked against it: send %s or %s, or no x-amz-content-sha256 header.",
		claimed, UnsignedPayload, StreamingPayload)}
}

// isSHA256Hex reports whether s is 64 hex digits, the form of a SHA-256 payload hash.
func isSHA256Hex(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
