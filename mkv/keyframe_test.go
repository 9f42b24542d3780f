package mkv

import (
	"bytes"
	"testing"
)

// The first fragment of h264_aac.mkv (track 1 video, track 2 audio),
// whole and with frames left out, as GetMedia would send it.
func TestStartsWithKeyframe(t *testing.T) {
	recs, err := split(bytes.NewReader(readMedia(t, "h264_aac.mkv")), SplitterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var header, start []byte
	var frames []rec
	for _, r := range recs {
		if r.kind == "end" {
			break
		}
		switch r.kind {
		case "header":
			header = r.header.FirstChunkHeader
		case "start":
			// Of unknown size, so that frames can be left out.
			n := vintLen(r.data[4])
			start = append([]byte{0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, r.data[4+n:]...)
		case "frame":
			frames = append(frames, r)
		}
	}
	fragment := func(keep func(i int, r rec) bool) []byte {
		b := append(bytes.Clone(header), start...)
		for i, r := range frames {
			if keep(i, r) {
				b = append(b, r.data...)
			}
		}
		return b
	}
	firstVideo := -1
	for i, r := range frames {
		if r.track == 1 {
			firstVideo = i
			break
		}
	}
	for _, tc := range []struct {
		name string
		keep func(i int, r rec) bool
		want bool
	}{
		{"whole", func(int, rec) bool { return true }, true},
		{"without its first video frame", func(i int, _ rec) bool { return i != firstVideo }, false},
		{"audio only", func(_ int, r rec) bool { return r.track == 2 }, true},
		{"no frames", func(int, rec) bool { return false }, true},
	} {
		got, err := StartsWithKeyframe(bytes.NewReader(fragment(tc.keep)))
		if got != tc.want || err != nil {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := StartsWithKeyframe(bytes.NewReader(header[:10])); err == nil {
		t.Error("a truncated header gave no error")
	}
}
