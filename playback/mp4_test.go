package playback

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/google/go-cmp/cmp"
)

// progressive builds a file of the fragments of an MKV file.
func progressive(t *testing.T, frags []stored) (*Progressive, []*Fragment) {
	t.Helper()
	var parsed []*Fragment
	var p *Progressive
	for _, s := range frags {
		f, err := Parse(s.header, s.cluster)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			if p, err = NewProgressive(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Add(f, s.timecode-frags[0].timecode, 0, math.MaxInt64); err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	return p, parsed
}

// TestProgressive checks the file's layout, that Length is what WriteTo
// writes, that each fragment is loaded once in order, and that it decodes
// to the source's frames.
func TestProgressive(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(filepath.Base(fx.file), func(t *testing.T) {
			p, parsed := progressive(t, split(t, fx.file))
			length, err := p.Length()
			if err != nil {
				t.Fatal(err)
			}
			var loads []int
			var buf bytes.Buffer
			err = p.WriteTo(&buf, func(i int) (*Fragment, error) {
				loads = append(loads, i)
				return parsed[i], nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if int64(buf.Len()) != length {
				t.Errorf("wrote %d bytes, Length said %d", buf.Len(), length)
			}
			if !slices.Equal(loads, []int{0, 1, 2}) {
				t.Errorf("fragments loaded %v, want each once in order", loads)
			}
			file, err := mp4.DecodeFile(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var boxes []string
			for _, b := range file.Children {
				boxes = append(boxes, b.Type())
			}
			if !slices.Equal(boxes, []string{"ftyp", "moov", "mdat"}) {
				t.Errorf("boxes %v", boxes)
			}
			needFFmpeg(t)
			path := writeTemp(t, "clip.mp4", buf.Bytes())
			if errs := decodeErrors(t, path); errs != "" {
				t.Errorf("ffmpeg: %s", errs)
			}
			// Every frame at its source time with its key frame flag; AAC
			// times come from the frame count, so only their flags.
			for i, stream := range []string{"v", "a"}[:len(fx.tracks)] {
				want, got := packets(t, fx.file, stream), packets(t, path, stream)
				if len(got) != fx.frames[i] {
					t.Errorf("track %d: %d packets, want %d", fx.tracks[i], len(got), fx.frames[i])
				}
				if stream == "a" {
					want, got = countOnly(want), countOnly(got)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("track %d packets (-source +clip):\n%s", fx.tracks[i], d)
				}
			}
		})
	}
}

// TestProgressiveAdd checks what Add refuses, adding nothing.
func TestProgressiveAdd(t *testing.T) {
	h264 := split(t, "../testdata/media/h264_aac.mkv")
	p, parsed := progressive(t, h264[:1])
	size := p.Size()
	if err := p.Add(parsed[0], 2*time.Second, 0, size+1); !errors.Is(err, ErrFull) {
		t.Errorf("Add past the limit: %v, want ErrFull", err)
	}
	other := split(t, "../testdata/media/h265.mkv")[0]
	f, err := Parse(other.header, other.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add(f, 2*time.Second, 0, math.MaxInt64); !errors.Is(err, ErrNewSetup) {
		t.Errorf("Add of another setup: %v, want ErrNewSetup", err)
	}
	if p.Fragments() != 1 || p.Size() != size {
		t.Errorf("after refusals: %d fragments, %d bytes; want 1, %d", p.Fragments(), p.Size(), size)
	}
}
