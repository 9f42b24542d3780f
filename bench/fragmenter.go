package bench

import (
	"errors"
	"fmt"
	"math/bits"
)

// Matroska element IDs the baseline's fragmenter looks at (RFC 8794
// encoding; Matroska element specification).
const (
	idSegment  = 0x18538067
	idCluster  = 0x1F43B675
	idTimecode = 0xE7
)

// fragmenter cuts a Matroska producer stream into fragments, one per
// Cluster, however the stream is cut into reads: the least a PutMedia
// server must parse. It walks element headers (descending into the
// Segment and Clusters, passing every other element's payload through
// unread) and reads nothing but the Cluster Timecode's value.
type fragmenter struct {
	// write is handed every byte of the stream, in order, in as few calls
	// as the reads allow.
	write func([]byte) error
	// cut is called before the first byte of each Cluster: the bytes
	// written since the previous cut (or the start) are complete.
	cut func() error

	Clusters int    // Clusters begun so far
	Timecode uint64 // of the latest Cluster, once its Timecode was read

	hdr    []byte // the element header being read, held until whole
	left   int64  // payload bytes of the current element still to pass
	inTime bool   // that payload is a Cluster's Timecode
	time   uint64 // the Timecode's value so far
}

// errElement is a malformed element header.
var errElement = errors.New("malformed Matroska element header")

// feed passes p on, cutting at each Cluster.
func (f *fragmenter) feed(p []byte) error {
	mark := 0 // p[:mark] has been written
	for i := 0; i < len(p); {
		if f.left > 0 {
			n := int(min(f.left, int64(len(p)-i)))
			if f.inTime {
				for _, b := range p[i : i+n] {
					f.time = f.time<<8 | uint64(b)
				}
				if f.left == int64(n) {
					f.Timecode = f.time
				}
			}
			i += n
			f.left -= int64(n)
			continue
		}
		start := i - len(f.hdr) // below 0: the header began in an earlier read
		f.hdr = append(f.hdr, p[i])
		i++
		id, size, ok, err := elementHeader(f.hdr)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if id == idCluster {
			if start > mark {
				if err := f.write(p[mark:start]); err != nil {
					return err
				}
			}
			if err := f.cut(); err != nil {
				return err
			}
			f.Clusters++
			mark = max(start, mark)
		}
		if start < 0 {
			// The header's first bytes, held back from an earlier read.
			if err := f.write(f.hdr[:-start]); err != nil {
				return err
			}
		}
		f.hdr = f.hdr[:0]
		// The Segment and Clusters hold the elements that matter: descend
		// (their size is often "unknown"); pass everything else through.
		if id != idSegment && id != idCluster {
			f.left, f.inTime, f.time = size, id == idTimecode, 0
		}
	}
	// Hold back the start of a header that is not whole yet: if it is a
	// Cluster's, its bytes belong to the next fragment.
	end := max(mark, len(p)-len(f.hdr))
	if end > mark {
		return f.write(p[mark:end])
	}
	return nil
}

// elementHeader parses an element ID and data size (RFC 8794 §4) from the
// start of b; ok is false while b is too short. An unknown size is -1.
func elementHeader(b []byte) (id uint64, size int64, ok bool, err error) {
	idLen := bits.LeadingZeros8(b[0]) + 1
	if idLen > 4 {
		return 0, 0, false, fmt.Errorf("%w: ID starts with %#x", errElement, b[0])
	}
	if len(b) < idLen+1 {
		return 0, 0, false, nil
	}
	sizeLen := bits.LeadingZeros8(b[idLen]) + 1
	if sizeLen > 8 {
		return 0, 0, false, fmt.Errorf("%w: size starts with 0", errElement)
	}
	if len(b) < idLen+sizeLen {
		return 0, 0, false, nil
	}
	for _, c := range b[:idLen] {
		id = id<<8 | uint64(c)
	}
	v := uint64(b[idLen]) & (0xFF >> sizeLen)
	all := v == 0xFF>>sizeLen
	for _, c := range b[idLen+1 : idLen+sizeLen] {
		v = v<<8 | uint64(c)
		all = all && c == 0xFF
	}
	if all {
		return id, -1, true, nil
	}
	return id, int64(v), true, nil
}
