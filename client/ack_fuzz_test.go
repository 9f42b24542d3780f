package client

import (
	"bytes"
	"testing"
)

// FuzzAckReader reads arbitrary ACK streams: each Next returns an ACK, an
// error or io.EOF, never panics, and the reader ends.
func FuzzAckReader(f *testing.F) {
	for _, s := range []string{
		"{\"EventType\":\"BUFFERING\",\"FragmentTimecode\":1615717079876,\"FragmentNumber\":\"91343852333181704754345985890710005834298701132\"}\n",
		"{\"EventType\":\"ERROR\",\"FragmentTimecode\":0,\"FragmentNumber\":\"1\",\"ErrorCode\":\"INVALID_MKV_DATA\",\"ErrorId\":4006}\n{\"EventType\":\"IDLE\"}\n",
		"{\"EventType\":\n", "\n\n", "{}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewAckReader(bytes.NewReader(data))
		for range bytes.Count(data, []byte("\n")) + 2 {
			if _, err := r.Next(); err != nil {
				return // io.EOF or a malformed line
			}
		}
		t.Fatal("more ACKs than lines")
	})
}
