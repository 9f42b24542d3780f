package client

import (
	"bytes"
	"testing"

	"github.com/openkvs/openkvs/synth"
)

func TestMKVWriter(t *testing.T) {
	header := synth.Header(1)
	segmentStart := bytes.Index(header, []byte{0x18, 0x53, 0x80, 0x67}) + 12 // after the Segment's ID and 8-byte size
	// The first chunk of a session also replays producer Tags that came
	// before Info (kvs-protocol.md §5.3 note A).
	first := append(append(bytes.Clone(header[:segmentStart]), synth.Tags("title", "first")...), header[segmentStart:]...)
	other := synth.Header(1, 2)
	c := func(tc uint64) []byte { return synth.Cluster(tc, synth.Frames(1, 3, 33)...) }
	frags := []*Fragment{
		{Number: "1", Header: first, Cluster: c(0), Trailing: synth.Tags("meta", "1")},
		{Number: "2", Header: header, Cluster: c(2000)},
		{Number: "3", Header: other, Cluster: c(0)},
		{Number: "4", Header: other, Cluster: c(2000)},
		{Number: "5", Header: header, Cluster: c(4000)},
	}
	var out bytes.Buffer
	w := NewMKVWriter(&out)
	for _, f := range frags {
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	want := bytes.Join([][]byte{first, c(0), synth.Tags("meta", "1"), c(2000), other, c(0), c(2000), header, c(4000)}, nil)
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output of %d bytes differs from the expected %d bytes", out.Len(), len(want))
	}
	if w.Documents != 3 {
		t.Errorf("Documents = %d, want 3", w.Documents)
	}
}

func TestHeaderKey(t *testing.T) {
	header := synth.Header(1)
	if got := headerKey(header); !bytes.Equal(got, withoutSegment(header)) {
		t.Errorf("headerKey keeps %d of %d bytes", len(got), len(header))
	}
	// A header that does not parse is its own key.
	bad := header[:len(header)-3]
	if got := headerKey(bad); !bytes.Equal(got, bad) {
		t.Errorf("headerKey of a truncated header is %d bytes, want the header", len(got))
	}
}

// withoutSegment is a header with its Segment ID and size left out: what
// headerKey keeps of a header without Tags.
func withoutSegment(h []byte) []byte {
	i := bytes.Index(h, []byte{0x18, 0x53, 0x80, 0x67})
	return append(bytes.Clone(h[:i]), h[i+12:]...)
}
