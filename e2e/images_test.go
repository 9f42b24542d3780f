package e2e

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/aws/smithy-go"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
)

// probeImage returns "codec WxH" of an image, as ffprobe reads it.
func probeImage(t *testing.T, ffprobe string, img []byte) string {
	t.Helper()
	path := writeFile(t, "image", img)
	out, err := exec.CommandContext(ctx(t), ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width,height",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(f) != 3 {
		t.Fatalf("ffprobe printed %q", out)
	}
	return f[0] + " " + f[1] + "x" + f[2]
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rgb decodes frame n of a media file, or the one image of an image file,
// to raw RGB pixels.
func rgb(t *testing.T, ffmpeg, path string, n int) []byte {
	t.Helper()
	out, err := exec.CommandContext(ctx(t), ffmpeg, "-v", "error", "-i", path, "-map", "0:v:0",
		"-vf", fmt.Sprintf(`select=eq(n\,%d)`, n), "-fps_mode", "passthrough", "-frames:v", "1",
		"-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ffmpeg decode of frame %d of %s: %v", n, path, err)
	}
	return out
}

// getImages calls GetImages with aws-sdk-go-v2 and returns every page's
// images and the number of pages.
func getImages(t *testing.T, srv *serverProc, in *kinesisvideoarchivedmedia.GetImagesInput) ([]amtypes.Image, int) {
	t.Helper()
	var images []amtypes.Image
	pages := 0
	p := kinesisvideoarchivedmedia.NewGetImagesPaginator(gmArchived(srv), in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("GetImages page %d: %v", pages+1, err)
		}
		pages++
		images = append(images, out.Images...)
	}
	return images, pages
}

// TestGetImages asks aws-sdk-go-v2 for PNG and JPEG images of H.264 and
// H.265 streams: one per sampling interval at the asked times, of the
// asked size, each the frame shown at its time (PNG is lossless, so it
// equals the source frame pixel for pixel).
func TestGetImages(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	playStream(t, srv, "cam-265", "h265.mkv", start)
	in := func(stream string, format amtypes.Format, from time.Time, to time.Duration, every int32) *kinesisvideoarchivedmedia.GetImagesInput {
		return &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String(stream), ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp,
			StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(from.Add(to)), SamplingInterval: aws.Int32(every), Format: format}
	}

	// Six seconds of 30 fps every 700 ms: 9 images, in 2 pages of MaxResults 5.
	// With B-frames too, whose decode order is not their presentation order.
	for _, tc := range []struct{ stream, file, size string }{{"cam", "h264.mkv", "640x360"}, {"cam-b", "h264_bframes.mkv", "320x180"}} {
		if tc.stream == "cam-b" {
			playStream(t, srv, tc.stream, tc.file, start)
		}
		png := in(tc.stream, amtypes.FormatPng, start, 6*time.Second, 700)
		png.MaxResults = aws.Int64(5)
		images, pages := getImages(t, srv, png)
		if len(images) != 9 || pages != 2 {
			t.Fatalf("%s: %d images in %d pages, want 9 in 2", tc.file, len(images), pages)
		}
		source := filepath.Join("..", "testdata", "media", tc.file)
		for i, im := range images {
			at := start.Add(time.Duration(i) * 700 * time.Millisecond)
			if !aws.ToTime(im.TimeStamp).Equal(at) || im.Error != "" {
				t.Fatalf("%s image %d: time %v error %q, want %v and an image", tc.file, i, aws.ToTime(im.TimeStamp), im.Error, at)
			}
			img, err := base64.StdEncoding.DecodeString(aws.ToString(im.ImageContent))
			if err != nil {
				t.Fatal(err)
			}
			if got := probeImage(t, ffprobe, img); got != "png "+tc.size {
				t.Fatalf("%s image %d is %s, want png %s", tc.file, i, got, tc.size)
			}
			// The frame shown at 700*i ms: frames are 1/30 s apart, timecodes in ms.
			n := i * 700 * 30 / 1000
			if !bytes.Equal(rgb(t, ffmpeg, writeFile(t, "i.png", img), 0), rgb(t, ffmpeg, source, n)) {
				t.Errorf("%s image %d (%v) is not frame %d of the source", tc.file, i, at, n)
			}
		}
	}

	for _, tc := range []struct {
		name          string
		stream        string
		width, height int32
		want          string
	}{
		{"full size", "cam", 0, 0, "mjpeg 640x360"},
		{"width keeps the aspect", "cam", 320, 0, "mjpeg 320x180"},
		{"height keeps the aspect", "cam-265", 0, 90, "mjpeg 160x90"},
		{"both stretch", "cam-265", 100, 100, "mjpeg 100x100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jpeg := in(tc.stream, amtypes.FormatJpeg, start.Add(100*time.Millisecond), 5*time.Second, 1000)
			if tc.width > 0 {
				jpeg.WidthPixels = aws.Int32(tc.width)
			}
			if tc.height > 0 {
				jpeg.HeightPixels = aws.Int32(tc.height)
			}
			images, _ := getImages(t, srv, jpeg)
			if len(images) != 5 {
				t.Fatalf("%d images, want 5", len(images))
			}
			for i, im := range images {
				img, err := base64.StdEncoding.DecodeString(aws.ToString(im.ImageContent))
				if err != nil || im.Error != "" {
					t.Fatalf("image %d: error %q, %v", i, im.Error, err)
				}
				if got := probeImage(t, ffprobe, img); got != tc.want {
					t.Errorf("image %d is %s, want %s", i, got, tc.want)
				}
			}
		})
	}

	// JPEGQuality: 1 is the smallest, 100 the largest.
	size := func(quality string) int {
		jpeg := in("cam", amtypes.FormatJpeg, start, time.Second, 1000)
		jpeg.FormatConfig = map[string]string{"JPEGQuality": quality}
		images, _ := getImages(t, srv, jpeg)
		return len(aws.ToString(images[0].ImageContent))
	}
	if low, def, high := size("1"), size("80"), size("100"); !(low < def && def < high) {
		t.Errorf("JPEG sizes at quality 1, 80, 100: %d, %d, %d; want increasing", low, def, high)
	}

	// A range shorter than the interval: the image at StartTimestamp.
	images, _ := getImages(t, srv, in("cam", amtypes.FormatJpeg, start.Add(time.Second), 100*time.Millisecond, 5000))
	if len(images) != 1 || !aws.ToTime(images[0].TimeStamp).Equal(start.Add(time.Second)) || images[0].ImageContent == nil {
		t.Errorf("range shorter than the interval: %+v, want one image at %v", images, start.Add(time.Second))
	}
}

// TestGetImagesGap puts two producer sessions with a gap between them: the
// samples in the gap, and before and after the media, are NO_MEDIA, and
// MaxResults pages through them all.
func TestGetImagesGap(t *testing.T) {
	t.Parallel()
	requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	if _, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: "cam", TimecodeType: "RELATIVE", StartTime: start.Add(10 * time.Second)},
		bytes.NewReader(media(t, "h264.mkv"))); err != nil {
		t.Fatal(err)
	}
	images, pages := getImages(t, srv, &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("cam"),
		ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp, StartTimestamp: aws.Time(start.Add(-time.Second)),
		EndTimestamp: aws.Time(start.Add(17 * time.Second)), SamplingInterval: aws.Int32(1000), Format: amtypes.FormatJpeg, MaxResults: aws.Int64(4)})
	if pages != 5 {
		t.Errorf("%d pages, want 5 (18 images, 4 a page)", pages)
	}
	var got, want []string
	for i, im := range images {
		at := start.Add(time.Duration(i-1) * time.Second)
		if !aws.ToTime(im.TimeStamp).Equal(at) {
			t.Errorf("image %d at %v, want %v", i, aws.ToTime(im.TimeStamp), at)
		}
		s := string(im.Error)
		if im.ImageContent != nil {
			s += "image"
		}
		got = append(got, s)
		switch sec := i - 1; {
		case sec >= 0 && sec < 6, sec >= 10 && sec < 16:
			want = append(want, "image")
		default:
			want = append(want, "NO_MEDIA")
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("images:\n%v\nwant\n%v", got, want)
	}
}

// TestGetImagesFragmentEdges asks for the picture at the start, just
// after it and in the middle of every fragment of streams with audio,
// whose clusters open with audio before their first picture, and of one
// written through a pipe, where ffmpeg cuts clusters at 32 KiB too, so
// that some open with frames that depend on the key frame of the cluster
// before. Each sample is the frame shown at its time, pixel for pixel,
// from the fragment before where that is where it lies or starts; only a
// sample before the stream's first picture is NO_MEDIA.
func TestGetImagesFragmentEdges(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t, "--getimages-calls-per-second", "1000")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	for _, tc := range []struct {
		stream string
		file   []byte
	}{{"file", media(t, "h264_aac.mkv")}, {"pipe", ffmpegMedia(t, 4)}} {
		t.Run(tc.stream, func(t *testing.T) {
			clusters, pictures, midGOP := clusterTimes(t, tc.file)
			if tc.stream == "pipe" && midGOP == 0 {
				t.Fatal("no cluster opens without a key frame: the test would not test them")
			}
			createStream(t, srv, tc.stream, 1)
			if _, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: tc.stream, TimecodeType: "RELATIVE", StartTime: start},
				bytes.NewReader(tc.file)); err != nil {
				t.Fatal(err)
			}
			source := writeFile(t, "source.mkv", tc.file)
			for c, at := range clusters {
				end := pictures[len(pictures)-1]
				if c+1 < len(clusters) {
					end = clusters[c+1]
				}
				for _, d := range []time.Duration{at, at + 10*time.Millisecond, (at + end) / 2} {
					images, _ := getImages(t, srv, &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String(tc.stream),
						ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp, StartTimestamp: aws.Time(start.Add(d)),
						EndTimestamp: aws.Time(start.Add(d + time.Millisecond)), SamplingInterval: aws.Int32(1000), Format: amtypes.FormatPng})
					// The frame shown at d: the last presented at or before it.
					n := -1
					for n+1 < len(pictures) && pictures[n+1] <= d {
						n++
					}
					im := images[0]
					if n < 0 {
						if im.Error != amtypes.ImageErrorNoMedia {
							t.Errorf("%v, before the first picture at %v: error %q, want NO_MEDIA", d, pictures[0], im.Error)
						}
						continue
					}
					if im.Error != "" {
						t.Errorf("%v (cluster %d at %v): error %q, want frame %d", d, c, at, im.Error, n)
						continue
					}
					img, err := base64.StdEncoding.DecodeString(aws.ToString(im.ImageContent))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(rgb(t, ffmpeg, writeFile(t, "i.png", img), 0), rgb(t, ffmpeg, source, n)) {
						t.Errorf("%v (cluster %d at %v) is not frame %d of the source", d, c, at, n)
					}
				}
			}
		})
	}
}

// clusterTimes returns the Cluster times of an MKV file without B-frames,
// its video frames' times in presentation order, and how many clusters
// open with a video frame that is not a key frame.
func clusterTimes(t *testing.T, file []byte) (clusters, pictures []time.Duration, midGOP int) {
	t.Helper()
	sp := mkv.NewSplitter(bytes.NewReader(file), mkv.SplitterOptions{})
	defer sp.Close()
	var video uint64
	var cluster time.Duration
	opened := false
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return clusters, pictures, midGOP
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *mkv.Header:
			for _, tr := range e.Tracks {
				if tr.Type == 1 {
					video = tr.Number
				}
			}
		case *mkv.FragmentStart:
			cluster = time.Duration(e.Timecode) * time.Millisecond
			clusters = append(clusters, cluster)
			opened = false
		case *mkv.Frame:
			if e.Track != video {
				continue
			}
			if !opened && !e.Keyframe {
				midGOP++
			}
			opened = true
			pictures = append(pictures, cluster+time.Duration(e.Timecode)*time.Millisecond)
		}
	}
}

// TestGetImagesErrors checks every error of the model with its exception
// type, and the answer while ffmpeg is missing.
func TestGetImagesErrors(t *testing.T) {
	t.Parallel()
	requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t, "--getimages-calls-per-second", "1")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	createStream(t, srv, "none", 0)
	am := gmArchived(srv)
	call := func(in kinesisvideoarchivedmedia.GetImagesInput) error {
		if in.StreamName == nil {
			in.StreamName = aws.String("cam")
		}
		if in.ImageSelectorType == "" {
			in.ImageSelectorType = amtypes.ImageSelectorTypeServerTimestamp
		}
		if in.StartTimestamp == nil {
			in.StartTimestamp, in.EndTimestamp = aws.Time(start), aws.Time(start.Add(time.Minute))
		}
		if in.Format == "" {
			in.Format = amtypes.FormatJpeg
		}
		_, err := am.GetImages(ctx(t), &in)
		return err
	}
	wantAPIError[*amtypes.ResourceNotFoundException](t, call(kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("nope")}),
		"The requested stream is not found or not active.")
	wantAPIError[*amtypes.NoDataRetentionException](t, call(kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("none")}),
		"The stream none keeps no data: GetImages needs data retention.")
	for _, tc := range []struct {
		in  kinesisvideoarchivedmedia.GetImagesInput
		msg string
	}{
		{kinesisvideoarchivedmedia.GetImagesInput{StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(301 * time.Second))},
			"The range from StartTimestamp to EndTimestamp must not exceed 300 seconds."},
		{kinesisvideoarchivedmedia.GetImagesInput{StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(-time.Second))},
			"EndTimestamp must not be before StartTimestamp."},
		{kinesisvideoarchivedmedia.GetImagesInput{SamplingInterval: aws.Int32(199)},
			"SamplingInterval 199 is below the minimum of 200 milliseconds."},
		{kinesisvideoarchivedmedia.GetImagesInput{FormatConfig: map[string]string{"JPEGQuality": "101"}},
			`FormatConfig JPEGQuality "101" must be a whole number from 1 to 100.`},
		{kinesisvideoarchivedmedia.GetImagesInput{FormatConfig: map[string]string{"Quality": "80"}},
			"1 validation error detected: Value 'Quality' at 'formatConfig.key' failed to satisfy constraint: Member must satisfy enum value set: [JPEGQuality]"},
		{kinesisvideoarchivedmedia.GetImagesInput{WidthPixels: aws.Int32(3841)},
			"1 validation error detected: Value 3841 at 'widthPixels' failed to satisfy constraint: Member must have value less than or equal to 3840"},
		{kinesisvideoarchivedmedia.GetImagesInput{HeightPixels: aws.Int32(0)},
			"1 validation error detected: Value 0 at 'heightPixels' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{kinesisvideoarchivedmedia.GetImagesInput{MaxResults: aws.Int64(101)},
			"1 validation error detected: Value 101 at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"},
		{kinesisvideoarchivedmedia.GetImagesInput{Format: "GIF"},
			"1 validation error detected: Value 'GIF' at 'format' failed to satisfy constraint: Member must satisfy enum value set: [JPEG, PNG]"},
		{kinesisvideoarchivedmedia.GetImagesInput{NextToken: aws.String("AAAA")},
			`NextToken "AAAA" is not a token GetImages returned for these parameters.`},
	} {
		wantAPIError[*amtypes.InvalidArgumentException](t, call(tc.in), tc.msg)
	}
	// One call per second: a second at once is throttled.
	for i := range 2 {
		err := call(kinesisvideoarchivedmedia.GetImagesInput{StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(time.Second)), SamplingInterval: aws.Int32(1000)})
		if i == 0 && err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wantAPIError[*amtypes.ClientLimitExceededException](t, err, "GetImages is limited to 1 calls per second per stream.")
		}
	}

	// Without ffmpeg, GetImages says what to install; the rest works.
	bare := startServer(t, "--ffmpeg", "/nonexistent/ffmpeg")
	playStream(t, bare, "cam", "h264.mkv", start)
	_, err := gmArchived(bare).GetImages(ctx(t), &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("cam"),
		ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp, StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(time.Second)),
		Format: amtypes.FormatPng})
	var apiErr smithy.APIError
	var resp *awshttp.ResponseError
	want := `GetImages needs ffmpeg to decode video, and "/nonexistent/ffmpeg" is not an executable program: install ffmpeg (Debian and Ubuntu: apt-get install ffmpeg) or start openkvs serve with --ffmpeg PATH.`
	if !errors.As(err, &apiErr) || !errors.As(err, &resp) || apiErr.ErrorCode() != "NotImplemented" || resp.HTTPStatusCode() != http.StatusNotImplemented || apiErr.ErrorMessage() != want {
		t.Errorf("GetImages without ffmpeg: %v; want 501 NotImplemented %q", err, want)
	}
}

// TestGetImagesAuth checks that with --credentials GetImages needs its
// permission (NotAuthorizedException).
func TestGetImagesAuth(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	admin := srv.awsConfig()
	admin.Credentials = credentials.NewStaticCredentialsProvider(adminKey, adminSecret, "")
	if _, err := kinesisvideo.NewFromConfig(admin).CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	reader := srv.awsConfig()
	reader.Credentials = credentials.NewStaticCredentialsProvider(readerKey, readerSecret, "")
	now := time.Now()
	_, err := kinesisvideoarchivedmedia.NewFromConfig(reader).GetImages(ctx(t), &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("cam-1"),
		ImageSelectorType: amtypes.ImageSelectorTypeServerTimestamp, StartTimestamp: aws.Time(now.Add(-time.Minute)), EndTimestamp: aws.Time(now), Format: amtypes.FormatJpeg})
	wantAPIError[*amtypes.NotAuthorizedException](t, err, "User: AKIDREADER is not authorized to perform: kinesisvideo:GetImages on resource: cam-1")
}

// TestGetImagesBoto3 calls get_images with boto3 (its paginator included):
// JPEG and PNG images of the asked size, decodable by ffprobe.
func TestGetImagesBoto3(t *testing.T) {
	t.Parallel()
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	srv := startServer(t)
	// boto3 sends whole seconds.
	start := time.Unix(time.Now().Add(-time.Hour).Unix(), 0)
	playStream(t, srv, "cam", "h264.mkv", start)
	dir := t.TempDir()
	script := `
import sys, boto3, datetime, base64, os
c = boto3.client("kinesis-video-archived-media", endpoint_url=sys.argv[1], region_name="us-east-1")
start = datetime.datetime.fromtimestamp(int(sys.argv[2]), datetime.timezone.utc)
end = start + datetime.timedelta(seconds=6)
for fmt, extra in (("JPEG", {"WidthPixels": 320, "FormatConfig": {"JPEGQuality": "90"}}), ("PNG", {"HeightPixels": 90})):
    pages = c.get_paginator("get_images").paginate(StreamName="cam", ImageSelectorType="PRODUCER_TIMESTAMP",
        StartTimestamp=start, EndTimestamp=end, SamplingInterval=1000, Format=fmt, PaginationConfig={"PageSize": 4}, **extra)
    n = 0
    for page in pages:
        for im in page["Images"]:
            name = "%s-%d.%s" % (fmt, int(im["TimeStamp"].timestamp()), fmt.lower())
            open(os.path.join(sys.argv[3], name), "wb").write(base64.b64decode(im["ImageContent"]))
            n += 1
    print(fmt, n)
try:
    c.get_images(StreamName="cam", ImageSelectorType="PRODUCER_TIMESTAMP", StartTimestamp=start,
        EndTimestamp=start + datetime.timedelta(seconds=400), Format="JPEG")
except c.exceptions.InvalidArgumentException as e:
    print(e.response["Error"]["Message"])
`
	cmd := exec.CommandContext(ctx(t), py, "-c", script, srv.URL, strconv.FormatInt(start.Unix(), 10), dir)
	cmd.Env = awsEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	if want := "JPEG 6\nPNG 6\nThe range from StartTimestamp to EndTimestamp must not exceed 300 seconds.\n"; string(out) != want {
		t.Fatalf("boto3 printed:\n%s\nwant\n%s", out, want)
	}
	for i := range 6 {
		sec := start.Unix() + int64(i)
		for name, want := range map[string]string{fmt.Sprintf("JPEG-%d.jpeg", sec): "mjpeg 320x180", fmt.Sprintf("PNG-%d.png", sec): "png 160x90"} {
			img, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := probeImage(t, ffprobe, img); got != want {
				t.Errorf("%s is %s, want %s", name, got, want)
			}
		}
	}
}

// TestGetImagesCache counts the ffmpeg processes GetImages starts: one per
// batch of fragments, at most --image-decoders at once, and none for images
// it has decoded before.
func TestGetImagesCache(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	wrapper := writeFile(t, "ffmpeg", []byte("#!/bin/sh\necho run >> "+runs+"\nexec "+ffmpeg+" \"$@\"\n"))
	if err := os.Chmod(wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "--ffmpeg", wrapper, "--image-decoders", "2")
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	count := func() int {
		b, err := os.ReadFile(runs)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return strings.Count(string(b), "run")
	}
	in := &kinesisvideoarchivedmedia.GetImagesInput{StreamName: aws.String("cam"), ImageSelectorType: amtypes.ImageSelectorTypeProducerTimestamp,
		StartTimestamp: aws.Time(start), EndTimestamp: aws.Time(start.Add(6 * time.Second)), SamplingInterval: aws.Int32(500), Format: amtypes.FormatJpeg}
	for _, want := range []int{2, 2} {
		images, _ := getImages(t, srv, in)
		if len(images) != 12 || images[11].ImageContent == nil {
			t.Fatalf("%d images, want 12", len(images))
		}
		if got := count(); got != want {
			t.Errorf("%d ffmpeg processes so far, want %d (3 fragments in 2 batches, then the cache)", got, want)
		}
	}
	// Every second sample of the same timeline: all cached.
	in.SamplingInterval = aws.Int32(1000)
	getImages(t, srv, in)
	if got := count(); got != 2 {
		t.Errorf("%d ffmpeg processes after asking cached frames again, want 2", got)
	}
	in.WidthPixels = aws.Int32(64)
	getImages(t, srv, in)
	if got := count(); got != 4 {
		t.Errorf("%d ffmpeg processes after asking another size, want 4", got)
	}
}

// TestImagesCLI runs `openkvs images` over two producer sessions 400 s
// apart: it splits the range into calls of at most 300 s, reads every page
// and writes one file per image, named by its time.
func TestImagesCLI(t *testing.T) {
	t.Parallel()
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264.mkv", start)
	if _, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: "cam", TimecodeType: "RELATIVE", StartTime: start.Add(400 * time.Second)},
		bytes.NewReader(media(t, "h264.mkv"))); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	epoch := func(t time.Time) string { return fmt.Sprintf("%d.%03d", t.Unix(), t.Nanosecond()/1e6) }
	_, stderr := cliOK(t, awsEnv(t), "images", "--endpoint", srv.URL, "--stream", "cam", "--from", epoch(start),
		"--to", epoch(start.Add(410*time.Second)), "--every", "5s", "--width", "64", "-o", dir)
	if last := stderr[strings.LastIndex(strings.TrimSuffix(stderr, "\n"), "\n")+1:]; last != "82/82 images: 4 written, 78 without media, 0 not decodable\n" {
		t.Errorf("stderr ends %q", last)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	for _, s := range []int{0, 5, 400, 405} {
		want = append(want, start.Add(time.Duration(s)*time.Second).UTC().Format("20060102T150405.000Z")+".jpg")
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files %v, want %v", got, want)
	}
	img, err := os.ReadFile(filepath.Join(dir, want[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := probeImage(t, ffprobe, img); got != "mjpeg 64x36" {
		t.Errorf("%s is %s, want mjpeg 64x36", want[0], got)
	}
}
