package e2e

import (
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
)

// clipRange selects fragments by producer timestamp.
func clipRange(from, to time.Time) *amtypes.ClipFragmentSelector {
	return &amtypes.ClipFragmentSelector{FragmentSelectorType: amtypes.ClipFragmentSelectorTypeProducerTimestamp,
		TimestampRange: &amtypes.ClipTimestampRange{StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(to)}}
}

// getClip calls GetClip with the SDK and writes the payload to a file,
// checking the content type.
func getClip(t *testing.T, srv *serverProc, stream string, sel *amtypes.ClipFragmentSelector) string {
	t.Helper()
	out, err := gmArchived(srv).GetClip(ctx(t), &kinesisvideoarchivedmedia.GetClipInput{StreamName: aws.String(stream), ClipFragmentSelector: sel})
	if err != nil {
		t.Fatalf("GetClip: %v", err)
	}
	defer out.Payload.Close()
	if ct := aws.ToString(out.ContentType); ct != "video/mp4" {
		t.Errorf("ContentType = %q, want video/mp4", ct)
	}
	body, err := io.ReadAll(out.Payload)
	if err != nil {
		t.Fatalf("read the clip: %v", err)
	}
	path := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantProgressive checks that the file is a regular MP4: ftyp, moov, mdat
// and nothing else at the top, no moof.
func wantProgressive(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parsed, err := mp4.DecodeFile(f)
	if err != nil {
		t.Fatalf("mp4ff: %v", err)
	}
	var boxes []string
	for _, b := range parsed.Children {
		boxes = append(boxes, b.Type())
	}
	if !slices.Equal(boxes, []string{"ftyp", "moov", "mdat"}) {
		t.Fatalf("top-level boxes %v, want [ftyp moov mdat]", boxes)
	}
}

// packetTimes lists the presentation times in milliseconds of one kind of
// stream ("v" or "a") of a media file, sorted.
func packetTimes(t *testing.T, ffprobe, path, kind string) []int64 {
	t.Helper()
	out, err := exec.CommandContext(ctx(t), ffprobe, "-v", "error", "-select_streams", kind, "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ms []int64
	for _, l := range strings.Fields(string(out)) {
		s, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe %s: pts %q", path, l)
		}
		ms = append(ms, int64(math.Round(s*1000)))
	}
	slices.Sort(ms)
	return ms
}

// within returns the times in [from, to) shifted by -from.
func within(times []int64, from, to int64) []int64 {
	var out []int64
	for _, x := range times {
		if x >= from && x < to {
			out = append(out, x-from)
		}
	}
	return out
}

// TestGetClip makes clips with the Go SDK of H.264, H.264+AAC, H.264 with
// B-frames and H.265 streams: each is a regular MP4 whose video decodes to
// exactly the frames of the chosen fragments, at their source times.
func TestGetClip(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	srv := startServer(t, "--getclip-calls-per-second", "100")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for _, tc := range []struct {
		file         string
		video, audio int
	}{
		{file: "h264.mkv", video: 180},
		{file: "h264_aac.mkv", video: 180, audio: 283},
		{file: "h264_bframes.mkv", video: 180},
		{file: "h265.mkv", video: 180},
	} {
		t.Run(tc.file, func(t *testing.T) {
			stream := strings.TrimSuffix(tc.file, ".mkv")
			frags := playStream(t, srv, stream, tc.file, start)
			if len(frags) != 3 {
				t.Fatalf("%d fragments, want 3", len(frags))
			}
			source := packetTimes(t, ffprobe, filepath.Join("..", "testdata", "media", tc.file), "v")
			if len(source) != tc.video {
				t.Fatalf("the source has %d video frames, want %d", len(source), tc.video)
			}
			path := getClip(t, srv, stream, clipRange(start.Add(-time.Second), start.Add(time.Minute)))
			wantProgressive(t, path)
			if n := decodedFrames(t, ffmpeg, path, "v"); n != tc.video {
				t.Errorf("%d video frames decoded, want %d", n, tc.video)
			}
			if tc.audio > 0 {
				if n := decodedFrames(t, ffmpeg, path, "a"); n != tc.audio {
					t.Errorf("%d audio frames decoded, want %d", n, tc.audio)
				}
			}
			if got := packetTimes(t, ffprobe, path, "v"); !slices.Equal(got, source) {
				t.Errorf("video times %v,\nwant %v", got, source)
			}

			// The middle fragment alone: Start is its timestamp, End just after.
			at := func(i int) int64 { return frags[i].ProducerTimestamp.Sub(start).Milliseconds() }
			mid := *frags[1].ProducerTimestamp
			path = getClip(t, srv, stream, clipRange(mid, mid.Add(time.Millisecond)))
			wantProgressive(t, path)
			want := within(source, at(1), at(2))
			if n := decodedFrames(t, ffmpeg, path, "v"); n != len(want) {
				t.Errorf("middle fragment: %d video frames decoded, want %d", n, len(want))
			}
			if got := packetTimes(t, ffprobe, path, "v"); !slices.Equal(got, want) {
				t.Errorf("middle fragment: video times %v,\nwant %v", got, want)
			}
		})
	}
}
