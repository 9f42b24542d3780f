package mkv

import (
	"errors"
	"io"
)

// StartsWithKeyframe reads a fragment as GetMedia sends it, a chunk header
// (EBML header, Segment, Tracks) and then the fragment's Cluster, and
// reports whether its first video frame is a key frame. A reader can start
// decoding at such a fragment; at one that starts mid-GOP it decodes
// garbage until the next key frame. A fragment without video frames
// (audio only, or none) counts as starting with one. It reads no further
// than that first video frame.
func StartsWithKeyframe(r io.Reader) (bool, error) {
	sp := NewSplitter(r, SplitterOptions{})
	defer sp.Close()
	video := map[uint64]bool{}
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		switch e := ev.(type) {
		case *Header:
			for _, t := range e.Tracks {
				if t.Type == 1 { // RFC 9559: TrackType 1 is video
					video[t.Number] = true
				}
			}
		case *Frame:
			if video[e.Track] {
				return e.Keyframe, nil
			}
		}
	}
}
