package client

import (
	"bytes"
	"fmt"
	"io"

	"github.com/openkvs/openkvs/mkv"
)

// MKVWriter writes fragments read with Get as one playable Matroska file.
//
// A GetMedia payload repeats the stream header in every chunk, each a
// document of its own (kvs-protocol.md §5.3); players read the second
// document's Segment as a stray element. MKVWriter writes the header once,
// with its unknown-size Segment, and then each fragment's Cluster and the
// producer elements that followed it, so consecutive fragments of one
// producer session form one Segment. KVS's own tags are left out: they have
// no Targets, which every Matroska Tag must have (RFC 9559, Targets). When the
// stream header changes (a new producer session, other tracks), a new EBML
// document starts with the new header, as in the payload.
type MKVWriter struct {
	w   io.Writer
	key []byte // identity of the header of the open document; nil before the first
	// Documents counts the EBML documents written so far.
	Documents int
}

// NewMKVWriter returns a writer of a Matroska file to w.
func NewMKVWriter(w io.Writer) *MKVWriter {
	return &MKVWriter{w: w}
}

// Write appends f to the file.
func (m *MKVWriter) Write(f *Fragment) error {
	if key := headerKey(f.Header); m.key == nil || !bytes.Equal(key, m.key) {
		if _, err := m.w.Write(f.Header); err != nil {
			return fmt.Errorf("write header of fragment %s: %w", f.Number, err)
		}
		m.key = key
		m.Documents++
	}
	if _, err := m.w.Write(f.Cluster); err != nil {
		return fmt.Errorf("write fragment %s: %w", f.Number, err)
	}
	if _, err := m.w.Write(f.Trailing); err != nil {
		return fmt.Errorf("write fragment %s: %w", f.Number, err)
	}
	return nil
}

// headerKey is what must match for two chunk headers to share a Segment:
// the header without its Tags elements. KVS replays producer Tags that came
// before Info only in a session's first chunk (kvs-protocol.md §5.3 note A):
// they are metadata of that fragment, not a change of stream. A header
// that does not parse is compared whole.
func headerKey(h []byte) []byte {
	r := mkv.NewReader(bytes.NewReader(h))
	key := make([]byte, 0, len(h))
	for {
		e, err := r.Next()
		if err == io.EOF {
			return key
		}
		if err != nil {
			return h
		}
		if e.ID == mkv.IDSegment {
			if err := r.Enter(); err != nil {
				return h
			}
			continue
		}
		if e.Unknown() || e.DataOffset()+e.Size > int64(len(h)) {
			return h
		}
		if e.ID != mkv.IDTags {
			key = append(key, h[e.Offset:e.DataOffset()+e.Size]...)
		}
	}
}
