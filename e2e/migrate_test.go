package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/internal/testenv"
)

// migrateRun runs `openkvs migrate` with args and returns its stdout,
// stderr and exit status.
func migrateRun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, append([]string{"migrate"}, args...)...)
	cmd.Env = append(cmd.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("openkvs migrate: %v", err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// putFile streams a testdata media file to stream on srv with openkvs put.
func putFile(t *testing.T, srv *serverProc, stream, file string) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, "put", "--endpoint", srv.URL, "--stream", stream, "--create",
		filepath.Join("..", "testdata", "media", file))
	cmd.Env = append(awsEnv(t), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openkvs put %s to %s: %v\n%s", file, stream, err, out)
	}
}

// archiveView is everything the APIs tell about the streams of a server:
// what must read the same after a migration.
type archiveView struct {
	Streams   string            // ListStreams
	Describe  map[string]string // DescribeStream, by stream
	Tags      map[string]string // ListTagsForStream
	Images    map[string]string // Describe{ImageGeneration,Notification}Configuration
	Fragments map[string]string // ListFragments, in number order
	Media     map[string][]byte // GetMediaForFragmentList of every fragment
	Numbers   map[string][]string
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func viewOf(t *testing.T, srv *serverProc, names []string) archiveView {
	t.Helper()
	kv := srv.control()
	v := archiveView{Describe: map[string]string{}, Tags: map[string]string{}, Images: map[string]string{},
		Fragments: map[string]string{}, Media: map[string][]byte{}, Numbers: map[string][]string{}}
	list, err := kv.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	gmFatalIf(t, err, "ListStreams from %s", srv.URL)
	v.Streams = jsonOf(t, list.StreamInfoList)
	for _, name := range names {
		d, err := kv.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
		gmFatalIf(t, err, "DescribeStream %s", name)
		v.Describe[name] = jsonOf(t, d.StreamInfo)
		tags, err := kv.ListTagsForStream(ctx(t), &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String(name)})
		gmFatalIf(t, err, "ListTagsForStream %s", name)
		v.Tags[name] = jsonOf(t, tags.Tags)
		gen, err := kv.DescribeImageGenerationConfiguration(ctx(t), &kinesisvideo.DescribeImageGenerationConfigurationInput{StreamName: aws.String(name)})
		gmFatalIf(t, err, "DescribeImageGenerationConfiguration %s", name)
		note, err := kv.DescribeNotificationConfiguration(ctx(t), &kinesisvideo.DescribeNotificationConfigurationInput{StreamName: aws.String(name)})
		gmFatalIf(t, err, "DescribeNotificationConfiguration %s", name)
		v.Images[name] = jsonOf(t, gen.ImageGenerationConfiguration) + jsonOf(t, note.NotificationConfiguration)
		frags := listedNumbers(t, srv, name)
		v.Fragments[name] = jsonOf(t, frags)
		for _, f := range frags {
			v.Numbers[name] = append(v.Numbers[name], aws.ToString(f.FragmentNumber))
		}
		v.Media[name] = fragmentListPayload(t, srv, name, v.Numbers[name])
	}
	return v
}

// TestMigrate moves the data directory of a server that ran on its own
// into PostgreSQL and S3 with openkvs migrate: refused while the server
// runs; then a node on the target answers every control-plane and archive
// API as the server did, byte for byte, and new fragments get larger
// numbers; running it again copies nothing; a target holding another
// stream of the same name is refused.
func TestMigrate(t *testing.T) {
	t.Parallel()
	dsn, bucket := testenv.Postgres(t), testenv.S3(t)
	src := startServer(t)
	kv := src.control()
	_, err := kv.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-a"),
		DataRetentionInHours: aws.Int32(24), MediaType: aws.String("video/h264"), Tags: map[string]string{"site": "lab", "team": "video"}})
	gmFatalIf(t, err, "CreateStream cam-a")
	createStream(t, src, "gone", 24)
	createStream(t, src, "cam-b", 48)
	_, err = kv.UpdateImageGenerationConfiguration(ctx(t), &kinesisvideo.UpdateImageGenerationConfigurationInput{
		StreamName: aws.String("cam-b"), ImageGenerationConfiguration: imageConfig(kvtypes.ConfigurationStatusDisabled, "s3://bucket/stills")})
	gmFatalIf(t, err, "UpdateImageGenerationConfiguration")
	_, err = kv.UpdateNotificationConfiguration(ctx(t), &kinesisvideo.UpdateNotificationConfigurationInput{StreamName: aws.String("cam-b"),
		NotificationConfiguration: &kvtypes.NotificationConfiguration{Status: kvtypes.ConfigurationStatusDisabled,
			DestinationConfig: &kvtypes.NotificationDestinationConfig{Uri: aws.String("https://example.com/hook")}}})
	gmFatalIf(t, err, "UpdateNotificationConfiguration")
	_, err = kv.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-b"),
		Operation: kvtypes.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(24),
		CurrentVersion: describeVersion(t, src, "cam-b")})
	gmFatalIf(t, err, "UpdateDataRetention")
	putFile(t, src, "cam-a", "h264.mkv")
	putFile(t, src, "cam-a", "h264.mkv")
	putFile(t, src, "cam-b", "h264_aac.mkv")
	putFile(t, src, "gone", "h264.mkv")
	gone, err := kv.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("gone")})
	gmFatalIf(t, err, "DescribeStream gone")
	_, err = kv.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: gone.StreamInfo.StreamARN})
	gmFatalIf(t, err, "DeleteStream gone")
	names := []string{"cam-a", "cam-b"}
	want := viewOf(t, src, names)
	if n := len(want.Numbers["cam-a"]); n != 6 {
		t.Fatalf("cam-a has %d fragments before the migration, want 6", n)
	}

	// A playback URL made before the move plays after it: the cluster
	// takes the server's session key.
	playlist := hlsURL(t, src, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam-a"),
		PlaybackMode: types.HLSPlaybackModeOnDemand, HLSFragmentSelector: &types.HLSFragmentSelector{
			FragmentSelectorType: types.HLSFragmentSelectorTypeServerTimestamp,
			TimestampRange:       &types.HLSTimestampRange{StartTimestamp: aws.Time(time.Now().Add(-time.Hour)), EndTimestamp: aws.Time(time.Now())}}})

	args := []string{"--data", src.Data, "--catalog", dsn, "--blobs", bucket}
	if _, stderr, code := migrateRun(t, nil, args...); code != 1 || stderr != "openkvs: "+src.Data+" is in use: stop the openkvs server running on it, then migrate\n" {
		t.Fatalf("migrate while the server runs: exit %d, stderr %q; want 1 and that it is in use", code, stderr)
	}
	src.Stop()
	// The catalog by its environment variable, as every flag.
	stdout, stderr, code := migrateRun(t, []string{"OPENKVS_CATALOG=" + dsn}, "--data", src.Data, "--blobs", bucket)
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("openkvs migrate:\n%s", stdout)
	summary := regexp.MustCompile(`(?m)^migrated 2 streams \(2 new\), 9 fragments \(9 copied\), 3 headers and 0 images copied, [0-9.]+ kB in [0-9.]+ s$`)
	if !summary.MatchString(stdout) || !strings.Contains(stdout, "stream cam-a (ID 1, new): 6 fragments, 6 copied\n") {
		t.Errorf("migrate printed:\n%s\nwant cam-a's line and a summary matching %s", stdout, summary)
	}
	stdout, stderr, code = migrateRun(t, nil, args...)
	if again := "migrated 2 streams (0 new), 9 fragments (0 copied), 0 headers and 0 images copied, 0 B in "; code != 0 || !strings.Contains(stdout, again) {
		t.Errorf("migrate again: exit %d\n%s%s\nwant %q", code, stdout, stderr, again)
	}

	node := startServerAt(t, t.TempDir(), "--catalog", dsn, "--blobs", bucket, "--node-id", "n1")
	moved := node.URL + playlist[strings.Index(playlist, "/hls/"):]
	if status, _, body := httpGet(t, moved); status != http.StatusOK || !bytes.HasPrefix(body, []byte("#EXTM3U")) {
		t.Errorf("a playlist URL made before the migration, on the node after it: %d %q; want 200 and a playlist", status, body)
	}
	got := viewOf(t, node, names)
	for _, c := range []struct {
		what      string
		want, got any
	}{
		{"ListStreams", want.Streams, got.Streams}, {"DescribeStream", want.Describe, got.Describe},
		{"ListTagsForStream", want.Tags, got.Tags}, {"configurations", want.Images, got.Images},
		{"ListFragments", want.Fragments, got.Fragments},
	} {
		if jsonOf(t, c.got) != jsonOf(t, c.want) {
			t.Errorf("%s after the migration:\n%v\nwant\n%v", c.what, c.got, c.want)
		}
	}
	for _, name := range names {
		if !bytes.Equal(got.Media[name], want.Media[name]) {
			t.Errorf("GetMediaForFragmentList of %s after the migration: %d bytes, not the %d before", name, len(got.Media[name]), len(want.Media[name]))
		}
	}

	// New fragments are numbered after the copied ones.
	putFile(t, node, "cam-a", "h264.mkv")
	after := listedNumbers(t, node, "cam-a")
	if len(after) != 9 {
		t.Fatalf("cam-a lists %d fragments after another put, want 9", len(after))
	}
	last := want.Numbers["cam-a"][5]
	for _, f := range after[6:] {
		if n := aws.ToString(f.FragmentNumber); n <= last || slices.Contains(want.Numbers["cam-a"], n) {
			t.Errorf("new fragment %s is not after the copied %s", n, last)
		}
	}
	// Another catalog, where a node made a cam-b of its own.
	other := testenv.Postgres(t)
	n2 := startServerAt(t, t.TempDir(), "--catalog", other, "--blobs", testenv.S3(t), "--node-id", "n2")
	createStream(t, n2, "cam-b", 1)
	n2.Stop()
	_, stderr, code = migrateRun(t, nil, "--data", src.Data, "--catalog", other, "--blobs", bucket)
	if want := "openkvs: the target catalog already holds other streams named cam-b (ID 1 in the target, 3 in the source): "; code != 1 || !strings.HasPrefix(stderr, want) {
		t.Errorf("migrate into a catalog with another cam-b: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// describeVersion is the stream's current version.
func describeVersion(t *testing.T, srv *serverProc, name string) *string {
	t.Helper()
	d, err := srv.control().DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	gmFatalIf(t, err, "DescribeStream %s", name)
	return d.StreamInfo.Version
}
