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
