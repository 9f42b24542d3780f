package e2e

import (
	"bytes"
	"io"
	"maps"
	"math"
	"math/bits"
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
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
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
			wantFrames(t, ffmpeg, path, "the clip", tc.video, tc.audio)
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

// brokenFrame returns the media with the first frame's first NAL unit length
// made larger than the frame: an invalid media frame that ingest, which
// does not decode frames, stores as it came.
func brokenFrame(t *testing.T, mkv []byte) []byte {
	t.Helper()
	b := bytes.Clone(mkv)
	cluster := bytes.Index(b, []byte{0x1F, 0x43, 0xB6, 0x75})
	block := cluster + bytes.IndexByte(b[cluster:], 0xA3) // the first SimpleBlock
	size := bits.LeadingZeros8(b[block+1]) + 1            // its size's EBML vint length
	payload := block + 1 + size + 4                       // track number (1 byte), timecode, flags
	b[payload], b[payload+1] = 0x7F, 0xFF
	return b
}

// TestGetClipErrors checks every GetClip exception with the Go SDK.
func TestGetClipErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--getclip-calls-per-second", "0.01") // one call per stream in this test's time
	am := gmArchived(srv)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	clip := func(stream string, sel *amtypes.ClipFragmentSelector) error {
		out, err := am.GetClip(ctx(t), &kinesisvideoarchivedmedia.GetClipInput{StreamName: aws.String(stream), ClipFragmentSelector: sel})
		if err == nil {
			out.Payload.Close()
		}
		return err
	}
	playStream(t, srv, "cam", "h264.mkv", start)
	wantAPIError[*amtypes.InvalidArgumentException](t, clip("cam", clipRange(start, start)),
		"ClipFragmentSelector.TimestampRange.EndTimestamp must be after StartTimestamp.")
	wantAPIError[*amtypes.InvalidArgumentException](t, clip("cam", clipRange(start, start.Add(25*time.Hour))),
		"ClipFragmentSelector.TimestampRange must not span more than 24 hours.")
	future := clipRange(start, time.Now().Add(time.Hour))
	future.FragmentSelectorType = amtypes.ClipFragmentSelectorTypeServerTimestamp
	wantAPIError[*amtypes.InvalidArgumentException](t, clip("cam", future),
		"ClipFragmentSelector.TimestampRange.EndTimestamp must be in the past for SERVER_TIMESTAMP.")
	wantAPIError[*amtypes.ResourceNotFoundException](t, clip("nope", clipRange(start, start.Add(time.Minute))), "")
	wantAPIError[*amtypes.ResourceNotFoundException](t, clip("cam", clipRange(start.Add(-time.Hour), start.Add(-time.Minute))),
		"No fragments found in the stream for the clip's timestamp range.")
	wantAPIError[*amtypes.ClientLimitExceededException](t, clip("cam", clipRange(start, start.Add(time.Minute))), "")

	if _, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("none")}); err != nil {
		t.Fatal(err)
	}
	wantAPIError[*amtypes.NoDataRetentionException](t, clip("none", clipRange(start, start.Add(time.Minute))), "")
	for _, tc := range refusedSetups(t) {
		putSetup(t, srv, tc.stream, tc.media, start)
		tc.check(t, clip(tc.stream, clipRange(start, start.Add(time.Minute))))
	}
	putSetup(t, srv, "badframe", brokenFrame(t, media(t, "h264.mkv")), start)
	wantAPIError[*amtypes.InvalidMediaFrameException](t, clip("badframe", clipRange(start, start.Add(time.Minute))), "")
	if _, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("nocpd"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	gmIngest(t, srv, "nocpd", "PERSISTED", gmFrags(synth.Video{}, 0, 1))
	at := *playFragments(t, srv, "nocpd")[0].ProducerTimestamp
	wantAPIError[*amtypes.MissingCodecPrivateDataException](t, clip("nocpd", clipRange(at, at.Add(time.Second))), "")
}

// TestGetClipSessions puts two producer sessions in a stream: one with the
// same codec setup continues the clip; one with another setup ends it, and
// a clip from its first fragment holds the rest.
func TestGetClipSessions(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t, "--getclip-calls-per-second", "100")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	put := func(stream, file string, at time.Time) {
		opts := client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE", StartTime: at}
		if _, err := client.Put(ctx(t), opts, bytes.NewReader(media(t, file))); err != nil {
			t.Fatalf("put %s: %v", file, err)
		}
	}
	playStream(t, srv, "same", "h264.mkv", start)
	put("same", "h264.mkv", start.Add(10*time.Second))
	path := getClip(t, srv, "same", clipRange(start, start.Add(time.Minute)))
	wantProgressive(t, path)
	if n := decodedFrames(t, ffmpeg, path, "v"); n != 360 {
		t.Errorf("same setup: %d frames decoded, want 360", n)
	}

	playStream(t, srv, "other", "h264.mkv", start)
	put("other", "h265.mkv", start.Add(10*time.Second))
	frags := playFragments(t, srv, "other")
	if len(frags) != 6 {
		t.Fatalf("%d fragments, want 6", len(frags))
	}
	path = getClip(t, srv, "other", clipRange(start, start.Add(time.Minute)))
	if n := decodedFrames(t, ffmpeg, path, "v"); n != 180 {
		t.Errorf("up to the new setup: %d frames decoded, want 180", n)
	}
	path = getClip(t, srv, "other", clipRange(*frags[3].ProducerTimestamp, start.Add(time.Minute)))
	if n := decodedFrames(t, ffmpeg, path, "v"); n != 180 {
		t.Errorf("from the new setup: %d frames decoded, want 180", n)
	}
	out, err := exec.CommandContext(ctx(t), requireTool(t, "ffprobe", "apt-get install -y ffmpeg"), "-v", "error", "-select_streams", "v",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hevc" {
		t.Errorf("from the new setup: codec %q, %v; want hevc", out, err)
	}
}

// TestGetClipBoto3 makes clips with boto3's get_clip of each codec setup and
// checks its exceptions.
func TestGetClipBoto3(t *testing.T) {
	t.Parallel()
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	files := map[string]struct{ video, audio int }{"h264": {180, 0}, "h264_aac": {180, 283}, "h264_bframes": {180, 0}, "h265": {180, 0}}
	for name := range files {
		playStream(t, srv, name, name+".mkv", start)
	}
	if _, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("empty"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := `
import sys, boto3, datetime
c = boto3.client("kinesis-video-archived-media", endpoint_url=sys.argv[1], region_name="us-east-1")
t0 = float(sys.argv[2])
def sel(a, b):
    return {"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": {
        "StartTimestamp": datetime.datetime.fromtimestamp(a, datetime.timezone.utc),
        "EndTimestamp": datetime.datetime.fromtimestamp(b, datetime.timezone.utc)}}
for name in sys.argv[4:]:
    r = c.get_clip(StreamName=name, ClipFragmentSelector=sel(t0, t0 + 60))
    with open(sys.argv[3] + "/" + name + ".mp4", "wb") as f:
        f.write(r["Payload"].read())
    print(name, r["ContentType"])
try:
    c.get_clip(StreamName="empty", ClipFragmentSelector=sel(t0, t0 + 60))
except c.exceptions.ResourceNotFoundException as e:
    print("ResourceNotFoundException", e.response["Error"]["Message"])
try:
    c.get_clip(StreamName="h264", ClipFragmentSelector=sel(t0, t0 + 60))
except c.exceptions.ClientLimitExceededException as e:
    print("ClientLimitExceededException")
`
	args := append([]string{"-c", script, srv.URL, strconv.FormatInt(start.Unix(), 10), dir}, slices.Sorted(maps.Keys(files))...)
	cmd := exec.CommandContext(ctx(t), py, args...)
	cmd.Env = awsEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	want := "h264 video/mp4\nh264_aac video/mp4\nh264_bframes video/mp4\nh265 video/mp4\n" +
		"ResourceNotFoundException No fragments found in the stream for the clip's timestamp range.\nClientLimitExceededException\n"
	if string(out) != want {
		t.Fatalf("boto3 printed:\n%s\nwant:\n%s", out, want)
	}
	for name, n := range files {
		path := filepath.Join(dir, name+".mp4")
		wantProgressive(t, path)
		wantFrames(t, ffmpeg, path, name, n.video, n.audio)
	}
}

// TestCLIClip writes clips with `openkvs clip` over ranges that take several
// GetClip calls (the server returns at most 2 fragments a call): one file
// holds every frame at its source time; a part cut short by the server is
// an error that says why.
func TestCLIClip(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	srv := startServer(t, "--getclip-fragments", "2")
	env := awsEnv(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	from, to := strconv.FormatInt(start.Unix()-1, 10), strconv.FormatInt(start.Unix()+60, 10)
	for _, tc := range []struct {
		file         string
		video, audio int
	}{
		{file: "h264_aac.mkv", video: 180, audio: 283},
		{file: "h264_bframes.mkv", video: 180},
	} {
		stream := strings.TrimSuffix(tc.file, ".mkv")
		playStream(t, srv, stream, tc.file, start)
		out := filepath.Join(t.TempDir(), "clip.mp4")
		_, stderr := cliOK(t, env, "clip", "--endpoint", srv.URL, "--stream", stream, "--from", from, "--to", to, "--part-fragments", "2", "-o", out)
		for _, line := range []string{"clip: 3 fragments in 2 GetClip calls", "clip: wrote " + out + ": 3 fragments"} {
			if !strings.Contains(stderr, line+"\n") {
				t.Errorf("%s: stderr lacks %q:\n%s", stream, line, stderr)
			}
		}
		wantProgressive(t, out)
		wantFrames(t, ffmpeg, out, stream, tc.video, tc.audio)
		source := packetTimes(t, ffprobe, filepath.Join("..", "testdata", "media", tc.file), "v")
		if got := packetTimes(t, ffprobe, out, "v"); !slices.Equal(got, source) {
			t.Errorf("%s: video times %v,\nwant %v", stream, got, source)
		}
	}

	out := filepath.Join(t.TempDir(), "clip.mp4")
	_, stderr, code := cliRun(t, env, "clip", "--endpoint", srv.URL, "--stream", "h264_aac", "--from", from, "--to", to, "--part-fragments", "3", "-o", out)
	if code != 1 || !strings.Contains(stderr, "or the server's GetClip limit is below --part-fragments 3") {
		t.Errorf("a part cut short: exit %d, stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed clip left %s: %v", out, err)
	}
}
