package sigv4

import (
	"fmt"
	"net/http"
)

// Error codes returned by Check, Verify and the payload hash functions, spelled as AWS spells them in x-amzn-ErrorType.
const (
	// CodeMissingAuthenticationToken means the request carried no Authorization header.
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeUnrecognizedClient means the access key id is not known.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeInvalidSignature means the signature, its scope or its time is wrong.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeIncompleteSignature means the Authorization header or the date header is malformed.
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeContentSHA256Mismatch means x-amz-content-sha256 does not match the body (S3's code;
	// KVS has no documented equivalent).
	CodeContentSHA256Mismatch = "XAmzContentSHA256Mismatch"
)

// Messages AWS sends verbatim (spec/kvs-protocol.md §1.3).
const (
	msgMissingToken     = "Missing Authentication Token"
	msgUnknownKey       = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Error is an authentication failure carrying the exact code, HTTP status and message that AWS
// answers with, so the server can map it without knowing the cases.
//
// Note for the server author: AWS sends these auth-layer errors with a lower-case "message" JSON
// key, e.g. 403 {"message":"Signature expired: ..."} with x-amzn-ErrorType:
// InvalidSignatureException, unlike modeled API errors which use "Message" (spec §1.3, §2.3).
// Every SDK reads either spelling.
type Error struct {
	code    string
	status  int
	message string
}

// Code returns the AWS error type, e.g. "InvalidSignatureException".
func (e *Error) Code() string { return e.code }

// HTTPStatus returns the HTTP status AWS answers with for this error.
func (e *Error) HTTPStatus() int { return e.status }

// Message returns the human-readable message to send to the client.
func (e *Error) Message() string { return e.message }

// Error implements error.
func (e *Error) Error() string { return "sigv4: " + e.code + ": " + e.message }

func errMissing() *Error {
	return &Error{CodeMissingAuthenticationToken, http.StatusForbidden, msgMissingToken}
}

func errUnknownKey() *Error {
	return &Error{CodeUnrecognizedClient, http.StatusForbidden, msgUnknownKey}
}

func errSignature() *Error {
	return &Error{CodeInvalidSignature, http.StatusForbidden, msgSignatureInvalid}
}

func errHashMismatch() *Error {
	return &Error{CodeContentSHA256Mismatch, http.StatusBadRequest,
		"The provided 'x-amz-content-sha256' header does not match what was computed."}
}

// errInvalid is an InvalidSignatureException with a specific message (scope, clock skew).
func errInvalid(format string, args ...any) *Error {
	return &Error{CodeInvalidSignature, http.StatusForbidden, fmt.Sprintf(format, args...)}
}

// errIncomplete is an IncompleteSignatureException naming what is missing or malformed.
func errIncomplete(format string, args ...any) *Error {
	return &Error{CodeIncompleteSignature, http.StatusBadRequest, fmt.Sprintf(format, args...)}
}
