package playback

import (
	"testing"
	"time"
)

// FuzzRemux feeds broken fragments through every remux path: each must end in an
// error for that fragment, never a panic.
func FuzzRemux(f *testing.F) {
	for _, file := range []string{"../testdata/media/h264_bframes.mkv", "../testdata/media/h265.mkv", "../testdata/media/h264_aac.mkv"} {
		s := split(f, file)[0]
		f.Add(s.header, s.cluster)
	}
	f.Fuzz(func(t *testing.T, header, cluster []byte) {
		if fr, err := ParsePrefix(header, cluster); err == nil {
			for _, tr := range fr.Tracks {
				for _, p := range tr.Parts(200*time.Millisecond, false, 0) {
					_, _ = fr.PartSegment(tr.Number, 1, time.Hour, p)
				}
			}
		}
		fr, err := Parse(header, cluster)
		if err != nil {
			return
		}
		for _, tr := range fr.Tracks {
			_, _ = fr.InitSegment(tr.Number)
			_, _ = fr.MediaSegment(tr.Number, 1, time.Hour, time.Second)
		}
		_, _ = fr.TS(time.Hour, time.Second)
	})
}
