package mkv

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// SetClusterTimecode returns b with its Cluster's Timecode replaced by tc.
// b holds whole level-1 elements, then a Cluster of which at least the
// children up to its Timecode are present (a FragmentStart's Data, or a
// whole Cluster). The Timecode is written with 8 bytes, as the producer
// SDKs write it (kvs-protocol.md §4.2), and a known Cluster size with 8
// bytes too, so that neither length depends on the value; an unknown size
// stays unknown (a reader then cannot tell a Cluster cut short from a
// whole one). CRC-32, Void, Position and PrevSize before the Timecode are
// left out: they describe the old bytes; a block before it is an error.
// Everything after the Timecode is kept unchanged.
func SetClusterTimecode(b []byte, tc uint64) ([]byte, error) {
	r := NewReader(bytes.NewReader(b))
	out := make([]byte, 0, len(b)+16)
	var cluster Element
	sizeAt := 0 // offset in out of the Cluster's size field
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("set cluster timecode: %w", err)
		}
		switch {
		case e.Level == 0 && cluster.ID == IDCluster:
			return nil, fmt.Errorf("set cluster timecode: the Cluster at offset %d has no Timecode", cluster.Offset)
		case e.Level == 0 && e.ID == IDCluster:
			if err := r.Enter(); err != nil {
				return nil, err
			}
			cluster = e
			out = appendID(out, IDCluster)
			sizeAt = len(out)
			out = appendSizeN(out, UnknownSize, 8)
		case e.Level == 1 && e.ID == IDTimecode:
			end := e.DataOffset() + e.Size
			if e.Unknown() || end > int64(len(b)) {
				return nil, fmt.Errorf("set cluster timecode: the Timecode at offset %d is not whole", e.Offset)
			}
			if !cluster.Unknown() {
				// The children up to the Timecode make way for the new one.
				size := cluster.Size - (end - cluster.DataOffset()) + 10
				if size < 10 {
					return nil, fmt.Errorf("set cluster timecode: the Cluster at offset %d ends inside its Timecode", cluster.Offset)
				}
				appendSizeN(out[:sizeAt], size, 8)
			}
			out = appendID(out, IDTimecode)
			out = appendSizeN(out, 8, 1)
			out = binary.BigEndian.AppendUint64(out, tc)
			return append(out, b[end:]...), nil
		case e.Level == 1 && (e.ID == IDCRC32 || e.ID == IDVoid || e.ID == IDPosition || e.ID == IDPrevSize):
			// Before the Timecode: dropped (see above).
		case e.Level == 1:
			return nil, fmt.Errorf("set cluster timecode: %v at offset %d before the Cluster's Timecode", e.ID, e.Offset)
		case e.Unknown() || e.DataOffset()+e.Size > int64(len(b)):
			return nil, fmt.Errorf("set cluster timecode: %v at offset %d is not whole", e.ID, e.Offset)
		default:
			out = append(out, b[e.Offset:e.DataOffset()+e.Size]...)
		}
	}
}
