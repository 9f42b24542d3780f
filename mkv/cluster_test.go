package mkv

import (
	"bytes"
	"slices"
	"testing"
)

// SetClusterTimecode on each fragment's start of real files (known-size
// Clusters from ffmpeg, unknown-size ones from GStreamer) gives a stream
// that splits into the same frames with the new timecodes, with Cluster
// sizes of the same kind: the Splitter checks that a known size ends
// where the Cluster's children end.
func TestSetClusterTimecode(t *testing.T) {
	for _, name := range []string{"h264.mkv", "h264_aac.mkv", "unknown_size.mkv"} {
		t.Run(name, func(t *testing.T) {
			recs, err := split(bytes.NewReader(readMedia(t, name)), SplitterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			var want []uint64
			for _, r := range recs {
				if r.kind == "header" {
					r.data = r.header.FirstChunkHeader // with an unknown-size Segment
				}
				if r.kind == "start" {
					tc := 1_700_000_000_000 + r.timecode
					want = append(want, tc)
					if r.data, err = SetClusterTimecode(r.data, tc); err != nil {
						t.Fatal(err)
					}
					unknown := bytes.Contains(r.data, []byte{0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
					if unknown != (name == "unknown_size.mkv") {
						t.Errorf("fragment %d: Cluster of unknown size: %v", len(want), unknown)
					}
				}
				out = append(out, r.data...)
			}
			got, err := split(bytes.NewReader(out), SplitterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := framesOf(got), framesOf(recs); !bytes.Equal(a, b) {
				t.Errorf("frames differ: %d bytes after, %d before", len(a), len(b))
			}
			var tcs []uint64
			for _, r := range got {
				if r.kind == "start" {
					tcs = append(tcs, r.timecode)
				}
			}
			if !slices.Equal(tcs, want) {
				t.Errorf("timecodes %v, want %v", tcs, want)
			}
		})
	}
	if _, err := SetClusterTimecode([]byte{0x1F, 0x43, 0xB6, 0x75, 0x80}, 1); err == nil {
		t.Error("a Cluster without a Timecode was rewritten")
	}
}

// framesOf is the bytes of every frame and element after the Timecodes.
func framesOf(recs []rec) []byte {
	var b []byte
	for _, r := range recs {
		if r.kind == "frame" || r.kind == "data" {
			b = append(b, r.data...)
		}
	}
	return b
}
