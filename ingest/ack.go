package ingest

import "strconv"

// Ack event types (kvs-protocol.md §4.3).
const (
	AckBuffering = "BUFFERING"
	AckReceived  = "RECEIVED"
	AckPersisted = "PERSISTED"
	AckError     = "ERROR"
	AckIdle      = "IDLE"
)

// Ack is one acknowledgement event of the PutMedia response stream.
type Ack struct {
	EventType        string
	FragmentTimecode uint64 // the fragment's Cluster Timecode as the producer sent it
	FragmentNumber   string
	ErrorID          int    // ERROR only
	ErrorCode        string // ERROR only
}

// AppendJSON appends the ACK as one JSON line in the key order real KVS
// uses. IDLE carries only its type; numbers are unsigned decimals because
// the C producer's parser discards anything else (kvs-protocol.md §4.3).
func (a Ack) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"EventType":"`...)
	dst = append(dst, a.EventType...)
	dst = append(dst, '"')
	if a.EventType != AckIdle {
		dst = append(dst, `,"FragmentTimecode":`...)
		dst = strconv.AppendUint(dst, a.FragmentTimecode, 10)
		dst = append(dst, `,"FragmentNumber":"`...)
		dst = append(dst, a.FragmentNumber...)
		dst = append(dst, '"')
	}
	if a.EventType == AckError {
		dst = append(dst, `,"ErrorCode":"`...)
		dst = append(dst, a.ErrorCode...)
		dst = append(dst, `","ErrorId":`...)
		dst = strconv.AppendInt(dst, int64(a.ErrorID), 10)
	}
	return append(dst, "}\n"...)
}
