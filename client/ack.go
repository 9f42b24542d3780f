// Package client is openkvs's Go client for the KVS media APIs: a producer
// that streams MKV to PutMedia and re-sends what was not acknowledged after
// a dropped connection (Put), and a consumer that reads GetMedia fragment by
// fragment and resumes with the continuation token after a dropped
// connection (Get), with a writer that turns what it reads into a playable
// Matroska file (MKVWriter).
package client

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
)

// Ack is one PutMedia acknowledgement event (kvs-protocol.md §4.3).
type Ack struct {
	EventType        string
	FragmentTimecode uint64
	FragmentNumber   string
	ErrorID          int    `json:"ErrorId"`
	ErrorCode        string `json:"ErrorCode"`
}

// AckReader reads the newline-separated ACK stream of a PutMedia response.
type AckReader struct{ sc *bufio.Scanner }

// NewAckReader returns a reader of the ACK stream r.
func NewAckReader(r io.Reader) *AckReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	return &AckReader{sc: sc}
}

// Next returns the next ACK, or io.EOF at the end of the response.
func (a *AckReader) Next() (Ack, error) {
	for a.sc.Scan() {
		line := a.sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var ack Ack
		if err := json.Unmarshal(line, &ack); err != nil {
			return Ack{}, fmt.Errorf("parse ACK %q: %w", line, err)
		}
		return ack, nil
	}
	if err := a.sc.Err(); err != nil {
		return Ack{}, err
	}
	return Ack{}, io.EOF
}

// Retriable reports whether an ERROR ACK is worth re-sending after, as the
// official producer decides (kvs-protocol.md §4.3: 4000, 4003, 5000, 5001).
func (a Ack) Retriable() bool {
	switch a.ErrorID {
	case 4000, 4003, 5000, 5001:
		return true
	}
	return false
}
