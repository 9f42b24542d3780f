package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/wait"
)

// imageConfig is a full image generation configuration.
func imageConfig(status kvtypes.ConfigurationStatus, uri string) *kvtypes.ImageGenerationConfiguration {
	return &kvtypes.ImageGenerationConfiguration{
		Status:            status,
		ImageSelectorType: kvtypes.ImageSelectorTypeProducerTimestamp,
		DestinationConfig: &kvtypes.ImageGenerationDestinationConfig{Uri: aws.String(uri), DestinationRegion: aws.String("us-east-1")},
		SamplingInterval:  aws.Int32(1000),
		Format:            kvtypes.FormatJpeg,
		FormatConfig:      map[string]string{"JPEGQuality": "90"},
		WidthPixels:       aws.Int32(320),
	}
}

// TestImageGenerationConfiguration round-trips the image generation and
// notification configurations with aws-sdk-go-v2, exactly, and checks the
// exception of each invalid request.
func TestImageGenerationConfiguration(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	kv := srv.control()
	createStream(t, srv, "cam", 24)
	createStream(t, srv, "live-only", 0)
	before, err := kv.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam")})
	if err != nil {
		t.Fatal(err)
	}

	// Never configured: no configuration.
	gen, err := kv.DescribeImageGenerationConfiguration(ctx(t), &kinesisvideo.DescribeImageGenerationConfigurationInput{StreamName: aws.String("cam")})
	if err != nil || gen.ImageGenerationConfiguration != nil {
		t.Fatalf("DescribeImageGenerationConfiguration of a new stream = %+v, %v; want none", gen, err)
	}
	note, err := kv.DescribeNotificationConfiguration(ctx(t), &kinesisvideo.DescribeNotificationConfigurationInput{StreamARN: before.StreamInfo.StreamARN})
	if err != nil || note.NotificationConfiguration != nil {
		t.Fatalf("DescribeNotificationConfiguration of a new stream = %+v, %v; want none", note, err)
	}

	want := imageConfig(kvtypes.ConfigurationStatusEnabled, "s3://bucket/thumbs")
	want.HeightPixels = aws.Int32(200)
	if _, err := kv.UpdateImageGenerationConfiguration(ctx(t), &kinesisvideo.UpdateImageGenerationConfigurationInput{
		StreamName: aws.String("cam"), ImageGenerationConfiguration: want}); err != nil {
		t.Fatal(err)
	}
	gen, err = kv.DescribeImageGenerationConfiguration(ctx(t), &kinesisvideo.DescribeImageGenerationConfigurationInput{StreamARN: before.StreamInfo.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	ignore := cmpopts.IgnoreUnexported(kvtypes.ImageGenerationConfiguration{}, kvtypes.ImageGenerationDestinationConfig{},
		kvtypes.NotificationConfiguration{}, kvtypes.NotificationDestinationConfig{})
	if diff := cmp.Diff(want, gen.ImageGenerationConfiguration, ignore); diff != "" {
		t.Errorf("DescribeImageGenerationConfiguration (-want +got):\n%s", diff)
	}
	wantNote := &kvtypes.NotificationConfiguration{Status: kvtypes.ConfigurationStatusDisabled,
		DestinationConfig: &kvtypes.NotificationDestinationConfig{Uri: aws.String("https://example.com/hook")}}
	if _, err := kv.UpdateNotificationConfiguration(ctx(t), &kinesisvideo.UpdateNotificationConfigurationInput{
		StreamName: aws.String("cam"), NotificationConfiguration: wantNote}); err != nil {
		t.Fatal(err)
	}
	note, err = kv.DescribeNotificationConfiguration(ctx(t), &kinesisvideo.DescribeNotificationConfigurationInput{StreamName: aws.String("cam")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantNote, note.NotificationConfiguration, ignore); diff != "" {
		t.Errorf("DescribeNotificationConfiguration (-want +got):\n%s", diff)
	}
	after, err := kv.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam")})
	if err != nil || aws.ToString(after.StreamInfo.Version) != aws.ToString(before.StreamInfo.Version) {
		t.Errorf("Version after the updates = %v, %v; want %s unchanged", after.StreamInfo.Version, err, aws.ToString(before.StreamInfo.Version))
	}

	updateGen := func(stream string, c *kvtypes.ImageGenerationConfiguration) error {
		_, err := kv.UpdateImageGenerationConfiguration(ctx(t), &kinesisvideo.UpdateImageGenerationConfigurationInput{
			StreamName: aws.String(stream), ImageGenerationConfiguration: c})
		return err
	}
	bad := func(change func(c *kvtypes.ImageGenerationConfiguration)) *kvtypes.ImageGenerationConfiguration {
		c := imageConfig(kvtypes.ConfigurationStatusEnabled, "s3://bucket")
		change(c)
		return c
	}
	invalid := wantAPIError[*kvtypes.InvalidArgumentException]
	for _, tc := range []struct {
		name   string
		stream string
		config *kvtypes.ImageGenerationConfiguration
		want   func(*testing.T, error, string)
	}{
		{"sampling interval under 200 ms", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) { c.SamplingInterval = aws.Int32(199) }), invalid},
		{"another region", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) {
			c.DestinationConfig.DestinationRegion = aws.String("eu-west-1")
		}), invalid},
		{"JPEG quality 101", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) { c.FormatConfig["JPEGQuality"] = "101" }), invalid},
		{"width 3841", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) { c.WidthPixels = aws.Int32(3841) }), invalid},
		{"URI without scheme", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) { c.DestinationConfig.Uri = aws.String("bucket") }), invalid},
		{"unknown format", "cam", bad(func(c *kvtypes.ImageGenerationConfiguration) { c.Format = "GIF" }), invalid},
		{"no such stream", "nope", bad(func(*kvtypes.ImageGenerationConfiguration) {}), wantAPIError[*kvtypes.ResourceNotFoundException]},
		{"stream without retention", "live-only", bad(func(*kvtypes.ImageGenerationConfiguration) {}), wantAPIError[*kvtypes.NoDataRetentionException]},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.want(t, updateGen(tc.stream, tc.config), "") })
	}
	// Disabled needs no retention.
	if err := updateGen("live-only", imageConfig(kvtypes.ConfigurationStatusDisabled, "s3://bucket")); err != nil {
		t.Errorf("DISABLED image generation on a stream without retention: %v", err)
	}
	_, err = kv.UpdateNotificationConfiguration(ctx(t), &kinesisvideo.UpdateNotificationConfigurationInput{StreamName: aws.String("live-only"),
		NotificationConfiguration: &kvtypes.NotificationConfiguration{Status: kvtypes.ConfigurationStatusEnabled,
			DestinationConfig: &kvtypes.NotificationDestinationConfig{Uri: aws.String("https://example.com/hook")}}})
	wantAPIError[*kvtypes.NoDataRetentionException](t, err, "The stream live-only keeps no data: notification of persisted fragments needs data retention.")
	_, err = kv.UpdateNotificationConfiguration(ctx(t), &kinesisvideo.UpdateNotificationConfigurationInput{StreamName: aws.String("cam"),
		NotificationConfiguration: &kvtypes.NotificationConfiguration{Status: kvtypes.ConfigurationStatusEnabled,
			DestinationConfig: &kvtypes.NotificationDestinationConfig{Uri: aws.String("https://" + strings.Repeat("x", 250))}}})
	invalid(t, err, "")
	_, err = kv.DescribeNotificationConfiguration(ctx(t), &kinesisvideo.DescribeNotificationConfigurationInput{StreamName: aws.String("nope")})
	wantAPIError[*kvtypes.ResourceNotFoundException](t, err, "")

	// The configurations survive a restart (they are in the catalog).
	srv.Restart()
	gen, err = srv.control().DescribeImageGenerationConfiguration(ctx(t), &kinesisvideo.DescribeImageGenerationConfigurationInput{StreamName: aws.String("cam")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, gen.ImageGenerationConfiguration, ignore); diff != "" {
		t.Errorf("DescribeImageGenerationConfiguration after restart (-want +got):\n%s", diff)
	}
}

// webhookBodies is a test webhook that records what it is POSTed.
type webhookBodies struct {
	mu     sync.Mutex
	bodies [][]byte
	fail   int // answer 500 to this many requests first
}

func (h *webhookBodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail > 0 {
		h.fail--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/json" && r.Header.Get("x-amz-sns-message-type") == "Notification" {
		h.bodies = append(h.bodies, b)
	}
}

func (h *webhookBodies) received() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bodies)
}

// imageFiles lists the files under the blob store's images/ directory.
func imageFiles(t *testing.T, srv *serverProc) []string {
	t.Helper()
	root := filepath.Join(srv.Data, "blobs", "images")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

// TestImageGeneration enables image generation and notifications on a
// stream, sends media, and finds one JPEG per second of media, of the
// configured size, at the documented keys under the data directory, and
// one PERSISTED notification per fragment at a test webhook (which fails
// the first POST: it is retried).
func TestImageGeneration(t *testing.T) {
	t.Parallel()
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	hook := &webhookBodies{fail: 1}
	web := httptest.NewServer(hook)
	defer web.Close()
	srv := startServer(t)
	kv := srv.control()
	createStream(t, srv, "cam", 1)
	if _, err := kv.UpdateImageGenerationConfiguration(ctx(t), &kinesisvideo.UpdateImageGenerationConfigurationInput{
		StreamName: aws.String("cam"), ImageGenerationConfiguration: imageConfig(kvtypes.ConfigurationStatusEnabled, "s3://bucket/thumbs/")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.UpdateNotificationConfiguration(ctx(t), &kinesisvideo.UpdateNotificationConfigurationInput{StreamName: aws.String("cam"),
		NotificationConfiguration: &kvtypes.NotificationConfiguration{Status: kvtypes.ConfigurationStatusEnabled,
			DestinationConfig: &kvtypes.NotificationDestinationConfig{Uri: aws.String(web.URL + "/kvs")}}}); err != nil {
		t.Fatal(err)
	}
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	opts := client.PutOptions{Endpoint: srv.URL, Stream: "cam", TimecodeType: "RELATIVE", StartTime: start}
	if _, err := client.Put(ctx(t), opts, bytes.NewReader(media(t, "h264.mkv"))); err != nil {
		t.Fatal(err)
	}
	frags := playFragments(t, srv, "cam")
	slices.SortFunc(frags, func(a, b amtypes.Fragment) int {
		return strings.Compare(aws.ToString(a.FragmentNumber), aws.ToString(b.FragmentNumber))
	})

	// One image per second of media from the first fragment's start.
	var want []string
	var next time.Time
	for _, f := range frags {
		from := aws.ToTime(f.ProducerTimestamp)
		end := from.Add(time.Duration(f.FragmentLengthInMilliseconds) * time.Millisecond)
		if next.Before(from) {
			next = from
		}
		for ; next.Before(end); next = next.Add(time.Second) {
			u := next.UTC()
			want = append(want, fmt.Sprintf("bucket/thumbs/cam/%s/%d-%s.jpg", u.Format("2006/01/02/15"), u.UnixMilli(), aws.ToString(f.FragmentNumber)))
		}
	}
	if len(want) != 6 {
		t.Fatalf("%d images expected of 6 s of media: %v", len(want), want)
	}
	wait.For(t, "6 generated images", func() bool { return len(imageFiles(t, srv)) >= len(want) })
	if got := imageFiles(t, srv); !slices.Equal(got, want) {
		t.Fatalf("images under blobs/images:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	img, err := os.ReadFile(filepath.Join(srv.Data, "blobs", "images", want[0]))
	if err != nil {
		t.Fatal(err)
	}
	if got := probeImage(t, ffprobe, img); got != "mjpeg 320x180" {
		t.Errorf("generated image is %s, want mjpeg 320x180", got)
	}

	wait.For(t, "a notification per fragment", func() bool { return len(hook.received()) >= len(frags) })
	bodies := hook.received()
	if len(bodies) != len(frags) {
		t.Fatalf("%d notifications, want %d", len(bodies), len(frags))
	}
	arn := aws.ToString(describeARN(t, srv, "cam"))
	for i, b := range bodies {
		var env struct{ Type, MessageId, TopicArn, Subject, Message, Timestamp string }
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("notification %d: %v: %s", i, err, b)
		}
		if env.Type != "Notification" || env.TopicArn != web.URL+"/kvs" || env.Subject != "Kinesis Video Streams Notification" ||
			len(env.MessageId) != 32 || !strings.HasSuffix(env.Timestamp, "Z") {
			t.Errorf("notification %d envelope: %s", i, b)
		}
		f := frags[i]
		wantMsg := fmt.Sprintf(`{"StreamArn":%q,"FragmentNumber":%q,"FragmentStartProducerTimestamp":%d,"FragmentStartServerTimestamp":%d,"NotificationType":"PERSISTED","NotificationPayload":{}}`,
			arn, aws.ToString(f.FragmentNumber), aws.ToTime(f.ProducerTimestamp).UnixMilli(), aws.ToTime(f.ServerTimestamp).UnixMilli())
		if env.Message != wantMsg {
			t.Errorf("notification %d message:\n%s\nwant\n%s", i, env.Message, wantMsg)
		}
	}
}

func describeARN(t *testing.T, srv *serverProc, stream string) *string {
	t.Helper()
	out, err := srv.control().DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	return out.StreamInfo.StreamARN
}
