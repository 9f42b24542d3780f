package mkv

import (
	"bytes"
	"io"
	"slices"
	"testing"

	ebml "github.com/at-wat/ebml-go"
	"github.com/google/go-cmp/cmp"
)

// ebmlgoElement is one element as at-wat/ebml-go reports it through a read hook.
type ebmlgoElement struct {
	ID   ID
	Off  int64 // -1 where ebml-go's position is not comparable
	Size int64
}

// ebmlgoIDs maps the ebml-go element names used below to their IDs.
var ebmlgoIDs = map[string]ID{"EBML": IDEBML, "Segment": IDSegment, "SeekHead": IDSeekHead, "Void": IDVoid,
	"Info": IDInfo, "Tracks": IDTracks, "Tags": IDTags, "Cluster": IDCluster, "Cues": IDCues}

// ebmlgoLevels decodes one EBML document starting at input offset base with ebml-go and
// returns its level-0 and level-1 elements in document order. ebml-go cannot know where an
// unknown-size element ends: it advances its position by the all-ones size, so offsets
// after the first unknown-size level-1 element are not comparable and are set to -1.
func ebmlgoLevels(t *testing.T, doc []byte, base int64) (top, level1 []ebmlgoElement) {
	t.Helper()
	type segment struct {
		SeekHead []struct{} `ebml:"SeekHead"`
		Void     [][]byte   `ebml:"Void"`
		Info     []struct{} `ebml:"Info"`
		Tracks   []struct{} `ebml:"Tracks"`
		Tags     []struct{} `ebml:"Tags"`
		Cluster  []struct{} `ebml:"Cluster"`
		Cues     []struct{} `ebml:"Cues"`
	}
	var v struct {
		EBML    []struct{} `ebml:"EBML"`
		Segment []segment  `ebml:"Segment"`
	}
	const unknown = 1<<56 - 1 // ebml-go's SizeUnknown
	shifted := false
	hook := func(e *ebml.Element) {
		el := ebmlgoElement{ID: ebmlgoIDs[e.Name], Off: base + int64(e.Position), Size: int64(e.Size)}
		if e.Size == unknown {
			el.Size = UnknownSize
		}
		if e.Parent == nil {
			top = append(top, el)
			return
		}
		if shifted {
			el.Off = -1
		}
		shifted = shifted || el.Size == UnknownSize
		level1 = append(level1, el)
	}
	if err := ebml.Unmarshal(bytes.NewReader(doc), &v, ebml.WithElementReadHooks(hook)); err != nil {
		t.Fatalf("ebml-go at %d: %v", base, err)
	}
	return top, level1
}

// TestDifferentialEBMLGo compares the level-0 and level-1 elements our Reader finds with
// what at-wat/ebml-go decodes from the same files: IDs, sizes and offsets. The GetMedia
// captures are fed to ebml-go one chunk at a time, cut at the offsets of the independent
// tree dumps, so that one chunk's unknown-size Segment does not shift the next.
func TestDifferentialEBMLGo(t *testing.T) {
	files := map[string][]byte{}
	for _, name := range []string{"h264.mkv", "h264_aac.mkv", "unknown_size.mkv"} {
		files[name] = readMedia(t, name)
	}
	for _, name := range captures {
		files[name] = readSample(t, name)
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			starts := []int64{0}
			if slices.Contains(captures, name) {
				starts = dumpOffsets(readDump(t, name), 0, IDEBML)
			}
			var wantTop, want1 []ebmlgoElement
			for i, start := range starts {
				end := int64(len(data))
				if i+1 < len(starts) {
					end = starts[i+1]
				}
				top, l1 := ebmlgoLevels(t, data[start:end], start)
				wantTop = append(wantTop, top...)
				want1 = append(want1, l1...)
			}
			var gotTop, got1 []ebmlgoElement
			rd := NewReader(bytes.NewReader(data))
			for {
				e, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				el := ebmlgoElement{ID: e.ID, Off: e.Offset, Size: e.Size}
				if e.Level == 0 {
					gotTop = append(gotTop, el)
				} else {
					if len(got1) < len(want1) && want1[len(got1)].Off < 0 {
						el.Off = -1
					}
					got1 = append(got1, el)
				}
				if e.ID == IDSegment {
					if err := rd.Enter(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if diff := cmp.Diff(wantTop, gotTop); diff != "" {
				t.Errorf("level 0 (-ebml-go +ours):\n%s", diff)
			}
			if diff := cmp.Diff(want1, got1); diff != "" {
				t.Errorf("level 1 (-ebml-go +ours):\n%s", diff)
			}
			compared := 0
			for _, e := range want1 {
				if e.Off >= 0 {
					compared++
				}
			}
			t.Logf("%d level-1 elements, %d offsets compared", len(want1), compared)
		})
	}
}
