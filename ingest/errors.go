package ingest

import "fmt"

// AckErrorClass is an ERROR ACK's ErrorId and ErrorCode (kvs-protocol.md
// §4.3 table; codes 4009-4012 follow the producer SDK's enum names).
type AckErrorClass struct {
	ID   int
	Code string
}

// The ERROR ACK classes openkvs sends.
var (
	ErrStreamRead          = AckErrorClass{4000, "STREAM_READ_ERROR"}
	ErrFragmentTooLarge    = AckErrorClass{4001, "MAX_FRAGMENT_SIZE_REACHED"}
	ErrFragmentTooLong     = AckErrorClass{4002, "MAX_FRAGMENT_DURATION_REACHED"}
	ErrConnectionTooLong   = AckErrorClass{4003, "MAX_CONNECTION_DURATION_REACHED"}
	ErrTimecodeLower       = AckErrorClass{4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS"}
	ErrInvalidMKV          = AckErrorClass{4006, "INVALID_MKV_DATA"}
	ErrInvalidProducerTime = AckErrorClass{4007, "INVALID_PRODUCER_TIMESTAMP"}
	ErrStreamNotActive     = AckErrorClass{4008, "STREAM_NOT_ACTIVE"}
	ErrMetadataLimit       = AckErrorClass{4009, "FRAGMENT_METADATA_LIMIT_REACHED"}
	ErrTrackNumberMismatch = AckErrorClass{4010, "TRACK_NUMBER_MISMATCH"}
	ErrFramesMissing       = AckErrorClass{4011, "FRAMES_MISSING_FOR_TRACK"}
	ErrTooManyTracks       = AckErrorClass{4012, "MORE_THAN_ALLOWED_TRACKS_FOUND"}
	ErrInternal            = AckErrorClass{5000, "INTERNAL_ERROR"}
	ErrArchival            = AckErrorClass{5001, "ARCHIVAL_ERROR"}
)

// ackError ends a session with an ERROR ACK of its class.
type ackError struct {
	class  AckErrorClass
	detail string
}

func (e *ackError) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.class.Code, e.class.ID, e.detail)
}

func fail(class AckErrorClass, format string, args ...any) *ackError {
	return &ackError{class: class, detail: fmt.Sprintf(format, args...)}
}
