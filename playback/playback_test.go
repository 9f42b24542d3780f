package playback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/mkv"
)

// stored is a fragment as ingest stores it: a header blob and the Cluster bytes.
type stored struct {
	header, cluster []byte
	timecode        time.Duration // Cluster Timecode
}

// split cuts an MKV file into fragments the way ingest stores them.
func split(t testing.TB, path string) []stored {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sp := mkv.NewSplitter(bytes.NewReader(data), mkv.SplitterOptions{})
	var out []stored
	var h *mkv.Header
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *mkv.Header:
			h = e
		case *mkv.FragmentStart:
			header := h.ChunkHeader
			if len(out) == 0 {
				header = h.FirstChunkHeader
			}
			out = append(out, stored{header: header, timecode: time.Duration(e.Timecode * h.TimecodeScale), cluster: bytes.Clone(e.Data)})
		case *mkv.Frame, *mkv.FragmentData:
			out[len(out)-1].cluster = append(out[len(out)-1].cluster, e.Bytes()...)
		}
	}
}

// needFFmpeg skips (fails under CI) without ffprobe.
func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffprobe is missing: install ffmpeg (apt-get install ffmpeg)")
		}
		t.Skip("needs ffprobe: apt-get install ffmpeg")
	}
}

// packets lists a file's packets of one stream as "pts_time flags" lines.
func packets(t *testing.T, path, stream string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	lines := strings.Fields(string(out))
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, ",") // MPEG-TS packets end in an empty side-data column
	}
	return lines
}

// decodeErrors decodes every frame of a file and returns what ffmpeg complained of.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg decode %s: %v\n%s", path, err, out)
	}
	return string(out)
}

// origin is where the tests' session timelines start, before the first Cluster
// Timecode, leaving room for the decode times of B-frames.
const origin = 10 * time.Second

// remuxFMP4 writes one track of every fragment as init + media segments into one
// file, as a player appends them, with the Cluster timecodes after origin as the
// timeline.
func remuxFMP4(t *testing.T, frags []stored, track uint64) []byte {
	t.Helper()
	var out []byte
	for i, s := range frags {
		f, err := Parse(s.header, s.cluster)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if i == 0 {
			init, err := f.InitSegment(track)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, init...)
		}
		seg, err := f.MediaSegment(track, uint32(i+1), origin+s.timecode, 0)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		out = append(out, seg...)
	}
	return out
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var fixtures = []struct {
	file   string
	tracks []uint64 // video 1, audio 2
	frames []int    // per track
}{
	{"../testdata/media/h264_bframes.mkv", []uint64{1}, []int{180}},
	{"../testdata/media/h265.mkv", []uint64{1}, []int{180}},
	{"../testdata/media/h264_aac.mkv", []uint64{1, 2}, []int{180, 283}},
}

// TestFMP4MatchesSource remuxes every fixture to fMP4 per track and checks that
// ffprobe sees exactly the source's frames, presentation times and key frames, and
// that every frame decodes.
func TestFMP4MatchesSource(t *testing.T) {
	needFFmpeg(t)
	for _, fx := range fixtures {
		t.Run(filepath.Base(fx.file), func(t *testing.T) {
			frags := split(t, fx.file)
			if len(frags) != 3 {
				t.Fatalf("%d fragments, want 3", len(frags))
			}
			for i, track := range fx.tracks {
				stream := []string{"v", "a"}[i]
				mp4 := writeTemp(t, fmt.Sprintf("track%d.mp4", track), remuxFMP4(t, frags, track))
				want := shiftTimes(t, packets(t, fx.file, stream), origin)
				got := packets(t, mp4, stream)
				if len(got) != fx.frames[i] {
					t.Errorf("track %d: %d packets, want %d", track, len(got), fx.frames[i])
				}
				if stream == "a" {
					// AAC times come from the frame count, not the millisecond timecodes:
					// compare within one frame's rounding instead of exactly.
					want, got = countOnly(want), countOnly(got)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("track %d packets (-source +remux):\n%s", track, d)
				}
				if e := decodeErrors(t, mp4); e != "" {
					t.Errorf("track %d decode errors:\n%s", track, e)
				}
			}
		})
	}
}

// countOnly keeps the flags of packet lines, dropping times.
func countOnly(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		_, flags, _ := strings.Cut(l, ",")
		out[i] = flags
	}
	return out
}

// TestTSMatchesSource does the same for one MPEG-TS segment per fragment,
// concatenated as a player reads them.
func TestTSMatchesSource(t *testing.T) {
	needFFmpeg(t)
	for _, fx := range fixtures {
		t.Run(filepath.Base(fx.file), func(t *testing.T) {
			var ts []byte
			for i, s := range split(t, fx.file) {
				f, err := Parse(s.header, s.cluster)
				if err != nil {
					t.Fatal(err)
				}
				seg, err := f.TS(s.timecode, 0)
				if err != nil {
					t.Fatalf("fragment %d: %v", i, err)
				}
				if len(seg)%188 != 0 || seg[0] != 0x47 {
					t.Fatalf("fragment %d: %d bytes, first %#x: not TS packets", i, len(seg), seg[0])
				}
				ts = append(ts, seg...)
			}
			path := writeTemp(t, "all.ts", ts)
			for i := range fx.tracks {
				stream := []string{"v", "a"}[i]
				got := packets(t, path, stream)
				if len(got) != fx.frames[i] {
					t.Errorf("%s: %d packets, want %d", stream, len(got), fx.frames[i])
				}
				if stream == "v" {
					want := shiftTimes(t, packets(t, fx.file, stream), tsOffset)
					if d := cmp.Diff(want, got); d != "" {
						t.Errorf("video packets (-source +remux):\n%s", d)
					}
				}
			}
			if e := decodeErrors(t, path); e != "" {
				t.Errorf("decode errors:\n%s", e)
			}
		})
	}
}

// shiftTimes adds d to the pts_time of packet lines.
func shiftTimes(t *testing.T, lines []string, d time.Duration) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		pts, flags, _ := strings.Cut(l, ",")
		var v float64
		if _, err := fmt.Sscan(pts, &v); err != nil {
			t.Fatal(err)
		}
		out[i] = fmt.Sprintf("%.6f,%s", v+d.Seconds(), flags)
	}
	return out
}

// TestMediaSegmentBoxes checks the boxes of a B-frame segment: one moof whose tfdt
// and first composition offset put the key frame at the fragment start, a trun with
// non-negative composition offsets that reorder the B-frames and durations that add up
// to the fragment, then the mdat.
func TestMediaSegmentBoxes(t *testing.T) {
	frags := split(t, "../testdata/media/h264_bframes.mkv")
	s := frags[1]
	f, err := Parse(s.header, s.cluster)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).Sub(time.Unix(0, 0))
	seg, err := f.MediaSegment(1, 7, start, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	file, err := mp4.DecodeFile(bytes.NewReader(seg))
	if err != nil {
		t.Fatal(err)
	}
	if len(file.Segments) != 1 || len(file.Segments[0].Fragments) != 1 {
		t.Fatalf("want one segment with one fragment, got %d segments", len(file.Segments))
	}
	frag := file.Segments[0].Fragments[0]
	if got := frag.Moof.Mfhd.SequenceNumber; got != 7 {
		t.Errorf("sequence number %d, want 7", got)
	}
	traf := frag.Moof.Traf
	trun := traf.Trun
	if trun.SampleCount() != 60 {
		t.Fatalf("trun has %d samples, want 60", trun.SampleCount())
	}
	first := traf.Tfdt.BaseMediaDecodeTime() + uint64(trun.Samples[0].CompositionTimeOffset)
	if want := uint64(ticks(start, videoTimeScale)); first != want {
		t.Errorf("key frame presented at %d, want %d (the fragment start)", first, want)
	}
	var total uint64
	reordered := false
	for i, smp := range trun.Samples {
		total += uint64(smp.Dur)
		if smp.CompositionTimeOffset < 0 {
			t.Errorf("sample %d: negative composition offset %d", i, smp.CompositionTimeOffset)
		}
		reordered = reordered || smp.CompositionTimeOffset != trun.Samples[0].CompositionTimeOffset
	}
	if total != 2*videoTimeScale {
		t.Errorf("samples last %d ticks, want %d: the segment does not end where the fragment does", total, 2*videoTimeScale)
	}
	if !reordered {
		t.Error("every composition offset is the same: B-frames were not reordered")
	}
	if frag.Mdat == nil || len(frag.Mdat.Data) != int(sumSizes(trun)) {
		t.Errorf("mdat does not hold the trun's samples")
	}
}

func sumSizes(trun *mp4.TrunBox) (n uint64) {
	for _, s := range trun.Samples {
		n += uint64(s.Size)
	}
	return n
}

// TestErrors checks the error each kind of broken input gets.
func TestErrors(t *testing.T) {
	good := split(t, "../testdata/media/h264_aac.mkv")[0]
	f, err := Parse(good.header, good.cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Fragment)
		track uint64
		want  error
	}{
		{"no such track", func(*Fragment) {}, 3, ErrNoTrack},
		{"unsupported codec", func(f *Fragment) { f.Tracks[0].CodecID = "V_VP8" }, 1, ErrUnsupportedCodec},
		{"G.711", func(f *Fragment) { f.Tracks[1].CodecID = "A_MS/ACM" }, 2, ErrUnsupportedCodec},
		{"missing codec private data", func(f *Fragment) { f.Tracks[0].CodecPrivate = nil }, 1, ErrMissingCodecPrivateData},
		{"truncated avcC", func(f *Fragment) { f.Tracks[0].CodecPrivate = f.Tracks[0].CodecPrivate[:7] }, 1, ErrInvalidCodecPrivateData},
		{"bad AAC config", func(f *Fragment) { f.Tracks[1].CodecPrivate = []byte{0xff} }, 2, ErrInvalidCodecPrivateData},
		{"bad NAL length", func(f *Fragment) { f.Tracks[0].Samples[3].Payload = []byte{0, 0, 9, 9, 1} }, 1, ErrInvalidMediaFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse(good.header, good.cluster)
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(g)
			_, err = g.MediaSegment(tc.track, 1, time.Second, 0)
			if !errors.Is(err, tc.want) {
				t.Errorf("MediaSegment: %v, want %v", err, tc.want)
			}
			if tc.track != 3 {
				if _, err := g.TS(time.Second, 0); !errors.Is(err, tc.want) {
					t.Errorf("TS: %v, want %v", err, tc.want)
				}
			}
		})
	}
	if _, err := Parse(good.header, nil); err == nil {
		t.Error("Parse of a header alone: no error")
	}
	if _, err := Parse(good.header, append(bytes.Clone(good.cluster), good.cluster...)); err == nil {
		t.Error("Parse of two clusters: no error")
	}
	_ = f
}

// TestInfo checks the codec parameters playlists and manifests announce.
func TestInfo(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []TrackInfo
	}{
		{"../testdata/media/h264_bframes.mkv", []TrackInfo{{Number: 1, Video: true, Codec: "avc1.64000d", Width: 320, Height: 180}}},
		{"../testdata/media/h265.mkv", []TrackInfo{{Number: 1, Video: true, Codec: "hvc1.1.6.L60.90", Width: 320, Height: 180}}},
		{"../testdata/media/h264_aac.mkv", []TrackInfo{
			{Number: 1, Video: true, Codec: "avc1.64001e", Width: 640, Height: 360},
			{Number: 2, Codec: "mp4a.40.2", SampleRate: 48000},
		}},
	} {
		f, err := ParseHeader(split(t, tc.file)[0].header)
		if err != nil {
			t.Fatal(err)
		}
		var got []TrackInfo
		for _, tr := range f.Tracks {
			info, err := tr.Info()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, info)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.file, d)
		}
	}
}
