package playback

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParts cuts each track of a fragment into parts: contiguous, covering
// every frame, the video's first part independent, their durations adding up
// to the fragment; parts cut from a prefix of the fragment are the full
// fragment's first parts; and the init segment followed by every part decodes
// to exactly the frames and times of the whole fragment.
func TestParts(t *testing.T) {
	needFFmpeg(t)
	for _, file := range []string{"../testdata/media/h264_aac.mkv", "../testdata/media/h264_bframes.mkv"} {
		s := split(t, file)[1]
		full, err := Parse(s.header, s.cluster)
		if err != nil {
			t.Fatal(err)
		}
		prefix, err := ParsePrefix(s.header, s.cluster[:len(s.cluster)/2])
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range full.Tracks {
			parts := tr.Parts(200*time.Millisecond, true, 2*time.Second)
			next, total := 0, time.Duration(0)
			for i, p := range parts {
				if p.From != next || p.To <= p.From || !p.Final {
					t.Fatalf("%s track %d part %d: %+v after frame %d", file, tr.Number, i, p, next)
				}
				next, total = p.To, total+p.Duration
			}
			if next != len(tr.Samples) || total != 2*time.Second-parts[0].Start || !parts[0].Independent {
				t.Errorf("%s track %d: parts cover %d of %d frames, last %v, first %+v", file, tr.Number, next, len(tr.Samples), total, parts[0])
			}
			pt, err := prefix.Track(tr.Number)
			if err != nil {
				t.Fatal(err)
			}
			early := pt.Parts(200*time.Millisecond, false, 0)
			if len(early) < 2 || early[len(early)-1].Final {
				t.Fatalf("%s track %d: %d parts of half a fragment, last final: %+v", file, tr.Number, len(early), early)
			}
			for i, p := range early[:len(early)-1] {
				if d := cmp.Diff(parts[i], p); d != "" {
					t.Errorf("%s track %d part %d of a prefix differs (-full +prefix):\n%s", file, tr.Number, i, d)
				}
			}

			init, err := full.InitSegment(tr.Number)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := full.MediaSegment(tr.Number, 1, origin, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			byParts := init
			for i, p := range parts {
				seg, err := full.PartSegment(tr.Number, uint32(i+1), origin, p)
				if err != nil {
					t.Fatal(err)
				}
				byParts = append(byParts, seg...)
			}
			stream := map[uint64]string{1: "v", 2: "a"}[tr.Number]
			want := packets(t, writeTemp(t, "whole.mp4", append(init, whole...)), stream)
			got := packets(t, writeTemp(t, "parts.mp4", byParts), stream)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s track %d: parts play other frames than the whole segment (-whole +parts):\n%s", file, tr.Number, d)
			}
		}
	}
}
