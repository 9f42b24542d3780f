package mkv

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// TestSplitterMediaFixtures splits the files made with ffmpeg and GStreamer in
// testdata/media (see its README). The frame counts were measured once with
// `ffprobe -count_packets` (per stream) and the Cluster counts and timecodes with
// `mkvinfo -a`; they are written here as constants.
func TestSplitterMediaFixtures(t *testing.T) {
	tests := []struct {
		file      string
		packets   map[uint64]int   // ffprobe nb_read_packets per track number
		perFrag   []map[uint64]int // frames per fragment and track
		timecodes []uint64
		codecs    []string
		lastData  []ID        // FragmentData IDs of the last fragment
		preInfo   []SimpleTag // header Tags before Info
	}{
		{
			file: "h264.mkv", packets: map[uint64]int{1: 180},
			perFrag:   []map[uint64]int{{1: 60}, {1: 60}, {1: 60}},
			timecodes: []uint64{0, 2000, 4000}, codecs: []string{"V_MPEG4/ISO/AVC"},
			lastData: []ID{IDCues},
		},
		{
			file: "h264_aac.mkv", packets: map[uint64]int{1: 180, 2: 283},
			perFrag:   []map[uint64]int{{1: 60, 2: 94}, {1: 60, 2: 94}, {1: 60, 2: 95}},
			timecodes: []uint64{0, 2005, 4010}, codecs: []string{"V_MPEG4/ISO/AVC", "A_AAC"},
			lastData: []ID{IDCues},
		},
		{
			file: "unknown_size.mkv", packets: map[uint64]int{1: 180},
			perFrag:   []map[uint64]int{{1: 60}, {1: 60}, {1: 60}},
			timecodes: []uint64{0, 2000, 4000}, codecs: []string{"V_MPEG4/ISO/AVC"},
			lastData: []ID{IDPrevSize},
			// GStreamer writes its Tags before Info, as the KVS producer SDK does.
			preInfo: []SimpleTag{{"ENCODER", "x264"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			input := readMedia(t, tt.file)
			for _, r := range []io.Reader{bytes.NewReader(input), iotest.OneByteReader(bytes.NewReader(input))} {
				recs, err := split(r, SplitterOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(concat(recs), input) {
					t.Fatal("events do not reproduce the file")
				}
				headers, frags := fragments(t, recs)
				h := headers[0]
				var codecs []string
				for _, tr := range h.Tracks {
					codecs = append(codecs, tr.CodecID)
				}
				if diff := cmp.Diff(tt.codecs, codecs); diff != "" {
					t.Errorf("codecs (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.preInfo, h.Tags); diff != "" {
					t.Errorf("header tags before Info (-want +got):\n%s", diff)
				}
				total := map[uint64]int{}
				var perFrag []map[uint64]int
				var timecodes []uint64
				for _, f := range frags {
					perFrag = append(perFrag, f.frames)
					timecodes = append(timecodes, f.timecode)
					for tr, n := range f.frames {
						total[tr] += n
					}
				}
				if diff := cmp.Diff(tt.packets, total); diff != "" {
					t.Errorf("frames per track vs ffprobe (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.perFrag, perFrag); diff != "" {
					t.Errorf("frames per fragment (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.timecodes, timecodes); diff != "" {
					t.Errorf("cluster timecodes (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.lastData, frags[len(frags)-1].dataIDs); diff != "" {
					t.Errorf("last fragment's other elements (-want +got):\n%s", diff)
				}
				// Every fragment holds exactly one video key frame, its first video frame.
				frag, keys, firstVideo := -1, map[int]int{}, map[int]bool{}
				for _, r := range recs {
					switch {
					case r.kind == "start":
						frag++
					case r.kind == "frame" && r.track == 1:
						if _, seen := firstVideo[frag]; !seen {
							firstVideo[frag] = r.key
						}
						if r.key {
							keys[frag]++
						}
					}
				}
				for i := range frags {
					if keys[i] != 1 || !firstVideo[i] {
						t.Errorf("fragment %d: %d video key frames, first is key: %v", i+1, keys[i], firstVideo[i])
					}
				}
			}
		})
	}
}

// TestUnknownSizeFixture checks that the GStreamer fixture really uses unknown sizes for
// its Segment and every Cluster, like the KVS producer SDK.
func TestUnknownSizeFixture(t *testing.T) {
	els, _ := walk(t, bytes.NewReader(readMedia(t, "unknown_size.mkv")), map[ID]bool{IDSegment: true})
	clusters := 0
	for _, e := range els {
		switch e.ID {
		case IDSegment, IDCluster:
			if !e.Unknown() || e.HeaderLen-idLen(e.ID) != 8 {
				t.Errorf("%v at %d: size %d in %d bytes, want unknown", e.ID, e.Offset, e.Size, e.HeaderLen-idLen(e.ID))
			}
			if e.ID == IDCluster {
				clusters++
			}
		}
	}
	if clusters != 3 {
		t.Errorf("%d clusters, want 3", clusters)
	}
}
