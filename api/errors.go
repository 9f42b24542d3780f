// Package api holds the Kinesis Video Streams API model shared by every
// service openkvs serves: the typed errors with their restJson1 type and HTTP
// status, the timestamp encoding, and the field constraints of the botocore
// service models (kinesisvideo, kinesis-video-media,
// kinesis-video-archived-media, 2017-09-30).
package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error as clients see it: the exception type they match on,
// the HTTP status and the message. Specification: kvs-protocol.md §2.3-2.4.
type Error struct {
	Type    string // exception name, e.g. "ResourceNotFoundException"
	Status  int    // HTTP status code
	Message string
	// LowerMessage marks auth-layer errors, whose JSON body spells the key
	// "message" (kvs-protocol.md §1.3).
	LowerMessage bool
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// As returns err as an *Error when it is one (or wraps one), else an
// InternalFailure that hides the detail from the client.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal()
}

// IsType reports whether err is an API error of the given exception type.
func IsType(err error, typ string) bool {
	var e *Error
	return errors.As(err, &e) && e.Type == typ
}

func newError(typ string, status int, format string, args ...any) *Error {
	return &Error{Type: typ, Status: status, Message: fmt.Sprintf(format, args...)}
}

// MsgStreamNotFound is the message real KVS sends for a missing stream.
const MsgStreamNotFound = "The requested stream is not found or not active."

// Modeled errors (kvs-protocol.md §2.4).

// InvalidArgument is the 400 for a request that violates the model.
func InvalidArgument(format string, args ...any) *Error {
	return newError("InvalidArgumentException", http.StatusBadRequest, format, args...)
}

// ResourceNotFound is the 404 for a missing stream or fragment range.
func ResourceNotFound(format string, args ...any) *Error {
	return newError("ResourceNotFoundException", http.StatusNotFound, format, args...)
}

// StreamNotFound is ResourceNotFound with the message real KVS uses.
func StreamNotFound() *Error { return ResourceNotFound(MsgStreamNotFound) }

// ResourceInUse is the 400 for a duplicate name or a stream that is not ACTIVE.
func ResourceInUse(format string, args ...any) *Error {
	return newError("ResourceInUseException", http.StatusBadRequest, format, args...)
}

// VersionMismatch is the 400 for a stale CurrentVersion.
func VersionMismatch(format string, args ...any) *Error {
	return newError("VersionMismatchException", http.StatusBadRequest, format, args...)
}

// TagsPerResourceExceeded is the 400 for more than 50 tags on a stream.
func TagsPerResourceExceeded(format string, args ...any) *Error {
	return newError("TagsPerResourceExceededLimitException", http.StatusBadRequest, format, args...)
}

// ClientLimitExceeded is the 400 KVS uses for throttling.
func ClientLimitExceeded(format string, args ...any) *Error {
	return newError("ClientLimitExceededException", http.StatusBadRequest, format, args...)
}

// ConnectionLimitExceeded is the 400 for too many concurrent connections.
func ConnectionLimitExceeded(format string, args ...any) *Error {
	return newError("ConnectionLimitExceededException", http.StatusBadRequest, format, args...)
}

// NotAuthorized is the modeled 401 for a caller without permission.
func NotAuthorized(format string, args ...any) *Error {
	return newError("NotAuthorizedException", http.StatusUnauthorized, format, args...)
}

// AccessDenied is the control plane's modeled 401 for a denied action.
func AccessDenied(format string, args ...any) *Error {
	return newError("AccessDeniedException", http.StatusUnauthorized, format, args...)
}

// NoDataRetention is the 400 for an archive read on a stream that keeps no data.
func NoDataRetention(format string, args ...any) *Error {
	return newError("NoDataRetentionException", http.StatusBadRequest, format, args...)
}

// UnsupportedStreamMediaType is the 400 for a playback request on a stream whose
// tracks are not a codec combination the playback APIs serve.
func UnsupportedStreamMediaType(format string, args ...any) *Error {
	return newError("UnsupportedStreamMediaTypeException", http.StatusBadRequest, format, args...)
}

// MissingCodecPrivateData is the 400 for a playback request on a track without
// CodecPrivate.
func MissingCodecPrivateData(format string, args ...any) *Error {
	return newError("MissingCodecPrivateDataException", http.StatusBadRequest, format, args...)
}

// InvalidCodecPrivateData is the 400 for a playback request on a track whose
// CodecPrivate cannot be read.
func InvalidCodecPrivateData(format string, args ...any) *Error {
	return newError("InvalidCodecPrivateDataException", http.StatusBadRequest, format, args...)
}

// InvalidMediaFrame is the 400 for a fragment whose frames cannot be remuxed.
func InvalidMediaFrame(format string, args ...any) *Error {
	return newError("InvalidMediaFrameException", http.StatusBadRequest, format, args...)
}

// SessionTokenRejected is the 403 for a playback URL whose session token is
// expired, revoked or not one the server issued (kvs-playback.md §5).
func SessionTokenRejected(format string, args ...any) *Error {
	return newError("NotAuthorizedException", http.StatusForbidden, format, args...)
}

// InvalidEndpoint is the 400 for a data-plane call sent to the wrong endpoint.
func InvalidEndpoint(format string, args ...any) *Error {
	return newError("InvalidEndpointException", http.StatusBadRequest, format, args...)
}

// Generic AWS errors that are not in the KVS models.

// Serialization is the 400 for a body that is not the JSON the operation expects.
func Serialization(format string, args ...any) *Error {
	return newError("SerializationException", http.StatusBadRequest, format, args...)
}

// UnknownOperation is the 404 for a path no service defines.
func UnknownOperation(format string, args ...any) *Error {
	return newError("UnknownOperationException", http.StatusNotFound, format, args...)
}

// MethodNotAllowed is the 405 for a known path called with the wrong method.
func MethodNotAllowed(format string, args ...any) *Error {
	return newError("MethodNotAllowedException", http.StatusMethodNotAllowed, format, args...)
}

// UnsupportedMediaType is the 415 for a request body that is not JSON.
func UnsupportedMediaType(format string, args ...any) *Error {
	return newError("UnsupportedMediaTypeException", http.StatusUnsupportedMediaType, format, args...)
}

// Internal is the 500 for a failure inside the server; the detail is logged, not sent.
func Internal() *Error {
	return newError("InternalFailure", http.StatusInternalServerError, "The request processing has failed because of an internal error.")
}

// NotImplemented is the 501 for an operation of the KVS models that openkvs
// does not serve yet. No KVS model declares an error for this, so every SDK
// raises its generic API error with this code; NotImplemented is the code
// AWS itself sends with 501 (S3), and no SDK retry mode retries a 501.
func NotImplemented(operation string) *Error {
	return newError("NotImplemented", http.StatusNotImplemented, "%s is not served by openkvs yet.", operation)
}

// ServiceUnavailable is the 503 sent while the server shuts down.
func ServiceUnavailable(format string, args ...any) *Error {
	return newError("ServiceUnavailable", http.StatusServiceUnavailable, format, args...)
}
