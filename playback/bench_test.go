package playback

import (
	"testing"
	"time"
)

// BenchmarkMediaSegment parses a stored fragment and remuxes its video track,
// as a media segment request does.
func BenchmarkMediaSegment(b *testing.B) {
	s := split(b, "../testdata/media/h264_aac.mkv")[1]
	b.SetBytes(int64(len(s.cluster)))
	for b.Loop() {
		f, err := Parse(s.header, s.cluster)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.MediaSegment(1, 1, time.Hour, 2*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
