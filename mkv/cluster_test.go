package mkv

import (
	"bytes"
	"encoding/binary"
	"io"
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

// FuzzSetClusterTimecode rewrites arbitrary input: it never panics, and
// what it returns has a Cluster whose first child is the 8-byte Timecode
// asked for.
func FuzzSetClusterTimecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		if i := bytes.Index(s, []byte{0x1F, 0x43, 0xB6, 0x75}); i >= 0 {
			f.Add(s[i:], uint64(1_700_000_000_000))
		}
	}
	f.Add(slices.Concat(tags8("k", "v"), el(IDCluster, el(IDCRC32, []byte{1, 2, 3, 4}), uintEl(IDTimecode, 1, 1))), uint64(7))
	f.Fuzz(func(t *testing.T, b []byte, tc uint64) {
		out, err := SetClusterTimecode(b, tc)
		if err != nil {
			return
		}
		r := NewReader(bytes.NewReader(out))
		for {
			e, err := r.Next()
			if err != nil {
				t.Fatalf("no Cluster in the output: %v", err)
			}
			if e.ID != IDCluster {
				continue
			}
			if err := r.Enter(); err != nil {
				t.Fatal(err)
			}
			child, err := r.Next()
			if err != nil || child.ID != IDTimecode || child.Size != 8 {
				t.Fatalf("Cluster starts with %v of %d bytes (%v), want an 8-byte Timecode", child.ID, child.Size, err)
			}
			var v [8]byte
			if _, err := io.ReadFull(r, v[:]); err != nil || binary.BigEndian.Uint64(v[:]) != tc {
				t.Fatalf("Timecode %x (%v), want %d", v, err, tc)
			}
			return
		}
	})
}
