package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/google/go-cmp/cmp"
)

var (
	arnPattern     = regexp.MustCompile(`^arn:aws:kinesisvideo:us-east-1:000000000000:stream/([a-zA-Z0-9_.-]+)/([0-9]{13})$`)
	versionPattern = regexp.MustCompile(`^[a-zA-Z0-9]{20}$`)
)

const defaultKMS = "arn:aws:kms:us-east-1:000000000000:alias/aws/kinesisvideo"

// wantAPIError asserts that err is the modeled exception *E with message msg
// (msg "" checks only the type).
func wantAPIError[E interface {
	error
	ErrorMessage() string
}](t *testing.T, err error, msg string) {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("error = %v (%T), want %T", err, err, target)
	}
	if msg != "" && target.ErrorMessage() != msg {
		t.Fatalf("%T message = %q, want %q", target, target.ErrorMessage(), msg)
	}
}

func describe(t *testing.T, c *kinesisvideo.Client, name string) *types.StreamInfo {
	t.Helper()
	out, err := c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeStream(%s): %v", name, err)
	}
	return out.StreamInfo
}

func TestStreamLifecycle(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	before := time.Now().Truncate(time.Millisecond)
	created, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{
		StreamName:           aws.String("cam-1"),
		DeviceName:           aws.String("door"),
		MediaType:            aws.String("video/h264,audio/aac"),
		DataRetentionInHours: aws.Int32(24),
		Tags:                 map[string]string{"site": "lab"},
	})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	m := arnPattern.FindStringSubmatch(aws.ToString(created.StreamARN))
	if m == nil || m[1] != "cam-1" {
		t.Fatalf("StreamARN = %q, want arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam-1/<ms>", aws.ToString(created.StreamARN))
	}
	info := describe(t, c, "cam-1")
	// The ARN suffix is the creation time in milliseconds (kvs-protocol.md §3.3).
	if got := strconv.FormatInt(info.CreationTime.UnixMilli(), 10); got != m[2] {
		t.Errorf("CreationTime %s ms does not match ARN suffix %s", got, m[2])
	}
	if info.CreationTime.Before(before) || info.CreationTime.After(after) {
		t.Errorf("CreationTime %v not within [%v, %v]", info.CreationTime, before, after)
	}
	if !versionPattern.MatchString(aws.ToString(info.Version)) {
		t.Errorf("Version %q is not 20 alphanumerics", aws.ToString(info.Version))
	}
	want := types.StreamInfo{
		StreamName: aws.String("cam-1"), StreamARN: created.StreamARN, DeviceName: aws.String("door"),
		MediaType: aws.String("video/h264,audio/aac"), KmsKeyId: aws.String(defaultKMS), Status: types.StatusActive,
		DataRetentionInHours: aws.Int32(24), Version: info.Version, CreationTime: info.CreationTime,
	}
	if diff := cmp.Diff(want, *info, cmpStreamInfo); diff != "" {
		t.Errorf("DescribeStream (-want +got):\n%s", diff)
	}

	// Same stream by ARN; a KMS key given at creation is kept.
	byARN, err := c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamARN: created.StreamARN})
	if err != nil || aws.ToString(byARN.StreamInfo.StreamName) != "cam-1" {
		t.Fatalf("DescribeStream by ARN = %v, %v", byARN, err)
	}
	if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("keyed"), KmsKeyId: aws.String("arn:aws:kms:us-east-1:000000000000:key/abc")}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(describe(t, c, "keyed").KmsKeyId); got != "arn:aws:kms:us-east-1:000000000000:key/abc" {
		t.Errorf("KmsKeyId = %q", got)
	}
	if got := describe(t, c, "keyed"); aws.ToInt32(got.DataRetentionInHours) != 0 || got.MediaType != nil || got.DeviceName != nil {
		t.Errorf("defaults: retention %d, media type %v, device %v; want 0, nil, nil", aws.ToInt32(got.DataRetentionInHours), got.MediaType, got.DeviceName)
	}

	// Duplicate name.
	_, err = c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")})
	wantAPIError[*types.ResourceInUseException](t, err, "The stream cam-1 already exists.")

	// UpdateStream changes fields and Version; a stale version is refused.
	v1 := info.Version
	if _, err := c.UpdateStream(ctx(t), &kinesisvideo.UpdateStreamInput{StreamName: aws.String("cam-1"), CurrentVersion: v1, MediaType: aws.String("video/h265")}); err != nil {
		t.Fatal(err)
	}
	info = describe(t, c, "cam-1")
	if aws.ToString(info.MediaType) != "video/h265" || aws.ToString(info.DeviceName) != "door" || aws.ToString(info.Version) == aws.ToString(v1) || !versionPattern.MatchString(aws.ToString(info.Version)) {
		t.Errorf("after UpdateStream: media %q device %q version %q (old %q)", aws.ToString(info.MediaType), aws.ToString(info.DeviceName), aws.ToString(info.Version), aws.ToString(v1))
	}
	_, err = c.UpdateStream(ctx(t), &kinesisvideo.UpdateStreamInput{StreamName: aws.String("cam-1"), CurrentVersion: v1, DeviceName: aws.String("x")})
	wantAPIError[*types.VersionMismatchException](t, err, "")

	// UpdateDataRetention: increase, decrease, and out-of-range results.
	v2 := info.Version
	if _, err := c.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamARN: created.StreamARN, CurrentVersion: v2,
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(100)}); err != nil {
		t.Fatal(err)
	}
	info = describe(t, c, "cam-1")
	if aws.ToInt32(info.DataRetentionInHours) != 124 {
		t.Errorf("retention after +100 = %d, want 124", aws.ToInt32(info.DataRetentionInHours))
	}
	if _, err := c.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		Operation: types.UpdateDataRetentionOperationDecreaseDataRetention, DataRetentionChangeInHours: aws.Int32(124)}); err != nil {
		t.Fatal(err)
	}
	info = describe(t, c, "cam-1")
	if aws.ToInt32(info.DataRetentionInHours) != 0 {
		t.Errorf("retention after -124 = %d, want 0", aws.ToInt32(info.DataRetentionInHours))
	}
	_, err = c.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		Operation: types.UpdateDataRetentionOperationDecreaseDataRetention, DataRetentionChangeInHours: aws.Int32(1)})
	wantAPIError[*types.InvalidArgumentException](t, err, "The resulting data retention of -1 hours is outside 0 to 87600 hours; the stream keeps data for 0 hours.")
	_, err = c.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(87601)})
	wantAPIError[*types.InvalidArgumentException](t, err, "1 validation error detected: Value 87601 at 'dataRetentionChangeInHours' failed to satisfy constraint: Member must have value less than or equal to 87600")

	// Storage configuration.
	sc, err := c.DescribeStreamStorageConfiguration(ctx(t), &kinesisvideo.DescribeStreamStorageConfigurationInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sc.StreamName) != "cam-1" || aws.ToString(sc.StreamARN) != aws.ToString(created.StreamARN) || sc.StreamStorageConfiguration.DefaultStorageTier != types.DefaultStorageTierHot {
		t.Errorf("DescribeStreamStorageConfiguration = %+v %+v", sc, sc.StreamStorageConfiguration)
	}
	info = describe(t, c, "cam-1")
	if _, err := c.UpdateStreamStorageConfiguration(ctx(t), &kinesisvideo.UpdateStreamStorageConfigurationInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		StreamStorageConfiguration: &types.StreamStorageConfiguration{DefaultStorageTier: types.DefaultStorageTierWarm}}); err != nil {
		t.Fatal(err)
	}
	sc, err = c.DescribeStreamStorageConfiguration(ctx(t), &kinesisvideo.DescribeStreamStorageConfigurationInput{StreamARN: created.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	if sc.StreamStorageConfiguration.DefaultStorageTier != types.DefaultStorageTierWarm {
		t.Errorf("tier after update = %s, want WARM", sc.StreamStorageConfiguration.DefaultStorageTier)
	}
	if aws.ToString(describe(t, c, "cam-1").Version) == aws.ToString(info.Version) {
		t.Error("UpdateStreamStorageConfiguration did not change Version")
	}
	_, err = c.UpdateStreamStorageConfiguration(ctx(t), &kinesisvideo.UpdateStreamStorageConfigurationInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		StreamStorageConfiguration: &types.StreamStorageConfiguration{DefaultStorageTier: types.DefaultStorageTierHot}})
	wantAPIError[*types.VersionMismatchException](t, err, "")

	// DeleteStream: stale version refused, right version deletes, then 404.
	info = describe(t, c, "cam-1")
	_, err = c.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: created.StreamARN, CurrentVersion: aws.String("0000")})
	wantAPIError[*types.VersionMismatchException](t, err, "")
	if _, err := c.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: created.StreamARN, CurrentVersion: info.Version}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "The requested stream is not found or not active.")
	_, err = c.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: created.StreamARN})
	wantAPIError[*types.ResourceNotFoundException](t, err, "The requested stream is not found or not active.")

	// The name can be reused; the old ARN names nothing.
	again, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(again.StreamARN) == aws.ToString(created.StreamARN) {
		t.Fatalf("recreated stream has the old ARN %s", aws.ToString(created.StreamARN))
	}
	_, err = c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamARN: created.StreamARN})
	wantAPIError[*types.ResourceNotFoundException](t, err, "")
}

var cmpStreamInfo = cmp.Options{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.FilterPath(func(p cmp.Path) bool { return strings.Contains(p.GoString(), "noSmithyDocumentSerde") }, cmp.Ignore()),
}

func TestListStreamsPagination(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	var want []string
	for i := range 23 {
		name := fmt.Sprintf("cam-%02d", i)
		want = append(want, name)
		if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []string{"door-1", "Cam-X", "cam"} {
		if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(other)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	pages := 0
	p := kinesisvideo.NewListStreamsPaginator(c, &kinesisvideo.ListStreamsInput{
		MaxResults:          aws.Int32(5),
		StreamNameCondition: &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam-")},
	})
	bound := newPageBound(t, "ListStreams")
	for p.HasMorePages() {
		bound.next()
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.StreamInfoList) > 5 {
			t.Errorf("page %d has %d streams, want <= 5", pages, len(page.StreamInfoList))
		}
		for _, s := range page.StreamInfoList {
			got = append(got, aws.ToString(s.StreamName))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged names (-want +got):\n%s", diff)
	}
	if pages != 5 {
		t.Errorf("pages = %d, want 5", pages)
	}
	// Without a condition: every stream, name order, case-sensitive.
	all, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all.StreamInfoList {
		names = append(names, aws.ToString(s.StreamName))
	}
	wantAll := append(append([]string{"Cam-X", "cam"}, want...), "door-1")
	if diff := cmp.Diff(wantAll, names); diff != "" {
		t.Errorf("ListStreams all (-want +got):\n%s", diff)
	}
	if all.NextToken != nil {
		t.Errorf("last page NextToken = %q, want absent", *all.NextToken)
	}
	// Exactly one full page: no NextToken.
	exact, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(int32(len(wantAll)))})
	if err != nil {
		t.Fatal(err)
	}
	if len(exact.StreamInfoList) != len(wantAll) || exact.NextToken != nil {
		t.Errorf("exact page: %d streams, NextToken %v", len(exact.StreamInfoList), exact.NextToken)
	}
	_, err = c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{NextToken: aws.String("bm90IGEgbmFtZSE=")})
	wantAPIError[*types.InvalidArgumentException](t, err, `NextToken "bm90IGEgbmFtZSE=" is not a token this API returned`)
	_, err = c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(10001)})
	wantAPIError[*types.InvalidArgumentException](t, err, "1 validation error detected: Value 10001 at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10000")
}

func TestGetDataEndpoint(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range types.APIName("").Values() {
		out, err := c.GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("s"), APIName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := aws.ToString(out.DataEndpoint); got != srv.URL {
			t.Errorf("%s: DataEndpoint = %q, want %q", name, got, srv.URL)
		}
	}
	if n := len(types.APIName("").Values()); n != 8 {
		t.Errorf("SDK knows %d APIName values, want 8", n)
	}
	_, err := c.GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("s"), APIName: "PUT_IT"})
	wantAPIError[*types.InvalidArgumentException](t, err, "1 validation error detected: Value 'PUT_IT' at 'aPIName' failed to satisfy constraint: Member must satisfy enum value set: [PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, GET_MEDIA_FOR_FRAGMENT_LIST, GET_HLS_STREAMING_SESSION_URL, GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES]")
	_, err = c.GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("missing"), APIName: types.APINameGetMedia})
	wantAPIError[*types.ResourceNotFoundException](t, err, "The requested stream is not found or not active.")

	// --public-url is returned verbatim, without a trailing slash.
	pub := startServer(t, "--public-url", "https://video.example.com:8443/")
	c = pub.control()
	if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("s"), APIName: types.APINamePutMedia})
	if err != nil || aws.ToString(out.DataEndpoint) != "https://video.example.com:8443" {
		t.Errorf("DataEndpoint with --public-url = %v, %v", out, err)
	}
}

func TestTags(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	created, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	version := describe(t, c, "t").Version
	list := func() map[string]string {
		t.Helper()
		out, err := c.ListTagsForStream(ctx(t), &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("t")})
		if err != nil {
			t.Fatal(err)
		}
		byRes, err := c.ListTagsForResource(ctx(t), &kinesisvideo.ListTagsForResourceInput{ResourceARN: created.StreamARN})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(out.Tags, byRes.Tags); diff != "" {
			t.Errorf("ListTagsForStream and ListTagsForResource differ:\n%s", diff)
		}
		return out.Tags
	}
	if _, err := c.TagStream(ctx(t), &kinesisvideo.TagStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"a": "2", "b": "x y:z/=+-@.", "empty": ""}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a": "2", "b": "x y:z/=+-@.", "empty": ""}, list()); diff != "" {
		t.Errorf("after TagStream (-want +got):\n%s", diff)
	}
	if _, err := c.UntagStream(ctx(t), &kinesisvideo.UntagStreamInput{StreamARN: created.StreamARN, TagKeyList: []string{"a", "never-set"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx(t), &kinesisvideo.TagResourceInput{ResourceARN: created.StreamARN, Tags: []types.Tag{{Key: aws.String("r"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx(t), &kinesisvideo.UntagResourceInput{ResourceARN: created.StreamARN, TagKeyList: []string{"empty"}}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"b": "x y:z/=+-@.", "r": "v"}, list()); diff != "" {
		t.Errorf("after untag/tag resource (-want +got):\n%s", diff)
	}
	if got := describe(t, c, "t").Version; aws.ToString(got) != aws.ToString(version) {
		t.Errorf("tagging changed Version from %s to %s", aws.ToString(version), aws.ToString(got))
	}

	// 48 more tags make 50: fine; one more is over the limit.
	many := map[string]string{}
	for i := range 48 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	if _, err := c.TagStream(ctx(t), &kinesisvideo.TagStreamInput{StreamName: aws.String("t"), Tags: many}); err != nil {
		t.Fatal(err)
	}
	_, err = c.TagStream(ctx(t), &kinesisvideo.TagStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"one-more": "v"}})
	wantAPIError[*types.TagsPerResourceExceededLimitException](t, err, "A stream can have at most 50 tags; this request would leave 51")
	_, err = c.TagResource(ctx(t), &kinesisvideo.TagResourceInput{ResourceARN: created.StreamARN, Tags: []types.Tag{{Key: aws.String("one-more"), Value: aws.String("v")}}})
	wantAPIError[*types.TagsPerResourceExceededLimitException](t, err, "")
	many["x"] = "1"
	many["y"] = "2"
	many["z"] = "3"
	_, err = c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("t2"), Tags: many})
	wantAPIError[*types.TagsPerResourceExceededLimitException](t, err, "A stream can have at most 50 tags; the request has 51")
	if n := len(list()); n != 50 {
		t.Errorf("tags after refused calls = %d, want 50", n)
	}

	_, err = c.TagStream(ctx(t), &kinesisvideo.TagStreamInput{StreamName: aws.String("t"), Tags: map[string]string{"bad<key>": "v"}})
	wantAPIError[*types.InvalidArgumentException](t, err, `1 validation error detected: Value 'bad<key>' at 'tags.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	_, err = c.UntagStream(ctx(t), &kinesisvideo.UntagStreamInput{StreamName: aws.String("t"), TagKeyList: []string{}})
	wantAPIError[*types.InvalidArgumentException](t, err, "1 validation error detected: Value [0 entries] at 'tagKeyList' failed to satisfy constraint: Member must have length greater than or equal to 1")
	_, err = c.ListTagsForStream(ctx(t), &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("nope")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "The requested stream is not found or not active.")
	_, err = c.ListTagsForResource(ctx(t), &kinesisvideo.ListTagsForResourceInput{ResourceARN: aws.String("arn:aws:kinesisvideo:us-east-1:000000000000:channel/x/1")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "")
}

func TestValidation(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	long := strings.Repeat("a", 257)
	cases := []struct {
		name string
		call func() error
		msg  string
	}{
		{"long name", func() error {
			_, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(long)})
			return err
		}, "1 validation error detected: Value '" + long + "' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 256"},
		{"media type and device", func() error {
			_, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("x"), MediaType: aws.String("h264"), DeviceName: aws.String("a b")})
			return err
		}, "2 validation errors detected: Value 'a b' at 'deviceName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; " +
			"Value 'h264' at 'mediaType' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+(,[\\w\\-\\.\\+]+/[\\w\\-\\.\\+]+)*"},
		{"negative retention", func() error {
			_, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("x"), DataRetentionInHours: aws.Int32(-1)})
			return err
		}, "1 validation error detected: Value -1 at 'dataRetentionInHours' failed to satisfy constraint: Member must have value greater than or equal to 0"},
		{"neither name nor ARN", func() error {
			_, err := c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{})
			return err
		}, "Either StreamName or StreamARN must be specified"},
		{"bad ARN", func() error {
			_, err := c.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamARN: aws.String("arn:aws:s3:::bucket")})
			return err
		}, "1 validation error detected: Value 'arn:aws:s3:::bucket' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:[a-z\\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+"},
		{"retention without fields", func() error {
			_, err := c.UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("x"), CurrentVersion: aws.String("v"), Operation: "GROW", DataRetentionChangeInHours: aws.Int32(0)})
			return err
		}, "2 validation errors detected: Value 'GROW' at 'operation' failed to satisfy constraint: Member must satisfy enum value set: [INCREASE_DATA_RETENTION, DECREASE_DATA_RETENTION]; " +
			"Value 0 at 'dataRetentionChangeInHours' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"storage tier", func() error {
			_, err := c.UpdateStreamStorageConfiguration(ctx(t), &kinesisvideo.UpdateStreamStorageConfigurationInput{StreamName: aws.String("x"), CurrentVersion: aws.String("v"),
				StreamStorageConfiguration: &types.StreamStorageConfiguration{DefaultStorageTier: "COLD"}})
			return err
		}, "1 validation error detected: Value 'COLD' at 'streamStorageConfiguration.defaultStorageTier' failed to satisfy constraint: Member must satisfy enum value set: [HOT, WARM]"},
		{"tag resource member", func() error {
			_, err := c.TagResource(ctx(t), &kinesisvideo.TagResourceInput{ResourceARN: aws.String("arn:aws:kinesisvideo:us-east-1:000000000000:stream/x/1"), Tags: []types.Tag{{Key: aws.String(""), Value: aws.String("v")}}})
			return err
		}, "1 validation error detected: Value '' at 'tags.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantAPIError[*types.InvalidArgumentException](t, tc.call(), tc.msg)
		})
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	srv := startServer(t)
	c := srv.control()
	var want []types.StreamInfo
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(2), Tags: map[string]string{"n": name}}); err != nil {
			t.Fatal(err)
		}
	}
	info := describe(t, c, "b")
	if _, err := c.UpdateStream(ctx(t), &kinesisvideo.UpdateStreamInput{StreamName: aws.String("b"), CurrentVersion: info.Version, DeviceName: aws.String("dev")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: describe(t, c, "c").StreamARN}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	want = list.StreamInfoList

	srv.Restart()
	c = srv.control()
	got, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.StreamInfoList, cmpStreamInfo); diff != "" {
		t.Errorf("streams after restart (-before +after):\n%s", diff)
	}
	tags, err := c.ListTagsForStream(ctx(t), &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("b")})
	if err != nil || tags.Tags["n"] != "b" {
		t.Errorf("tags after restart = %v, %v", tags, err)
	}
	if len(got.StreamInfoList) != 2 || aws.ToString(got.StreamInfoList[1].DeviceName) != "dev" {
		t.Errorf("after restart: %d streams, b's device %q", len(got.StreamInfoList), aws.ToString(got.StreamInfoList[1].DeviceName))
	}
}

// rawPost sends a request without an SDK, to check what the wire carries.
func rawPost(t *testing.T, method, url, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestWireErrors(t *testing.T) {
	srv := startServer(t)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		typ, msg                        string
	}{
		{"missing stream", "POST", "/describeStream", "application/json", `{"StreamName":"nope"}`, 404, "ResourceNotFoundException", "The requested stream is not found or not active."},
		{"malformed JSON", "POST", "/createStream", "application/json", `{"StreamName":`, 400, "SerializationException", "The request body is truncated JSON."},
		{"syntax error", "POST", "/createStream", "application/json", `{"StreamName" "x"}`, 400, "SerializationException", "The request body is not valid JSON: invalid character '\"' after object key (at byte 15)."},
		{"missing required member", "POST", "/createStream", "application/json", `{}`, 400, "InvalidArgumentException", "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"},
		{"missing ARN", "POST", "/deleteStream", "application/json", `{"CurrentVersion":"abc"}`, 400, "InvalidArgumentException", "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null"},
		{"missing version", "POST", "/updateStream", "", `{"StreamName":"x"}`, 400, "InvalidArgumentException", "1 validation error detected: Value null at 'currentVersion' failed to satisfy constraint: Member must not be null"},
		{"wrong member type", "POST", "/createStream", "application/json", `{"StreamName":"x","DataRetentionInHours":"24"}`, 400, "SerializationException", "Member DataRetentionInHours must be an integer, not JSON string."},
		{"not an object", "POST", "/listStreams", "application/json", `[]`, 400, "SerializationException", "The request body must be a JSON object, not an array."},
		{"trailing data", "POST", "/listStreams", "application/json", `{} {}`, 400, "SerializationException", "The request body has data after the JSON object."},
		{"wrong content type", "POST", "/listStreams", "text/xml", `<x/>`, 415, "UnsupportedMediaTypeException", `Content-Type "text/xml" is not supported; send application/json.`},
		{"unknown path", "POST", "/describestream", "application/json", `{}`, 404, "UnknownOperationException", "No operation is served at POST /describestream."},
		{"wrong method", "GET", "/listStreams", "", ``, 405, "MethodNotAllowedException", "/listStreams takes POST, not GET."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, raw := rawPost(t, tc.method, srv.URL+tc.path, tc.ctype, tc.body)
			var body map[string]string
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", raw, err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("x-amzn-ErrorType"); got != tc.typ+":https://kinesisvideo.amazonaws.com/doc/2017-09-30/" {
				t.Errorf("x-amzn-ErrorType = %q", got)
			}
			if !uuid.MatchString(resp.Header.Get("x-amzn-RequestId")) {
				t.Errorf("x-amzn-RequestId = %q, want a UUID", resp.Header.Get("x-amzn-RequestId"))
			}
			want := map[string]string{"__type": tc.typ, "Message": tc.msg}
			if diff := cmp.Diff(want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	// Successful responses carry a request id too, and an empty body is {}.
	resp, body := rawPost(t, "POST", srv.URL+"/listStreams", "", ``)
	if resp.StatusCode != 200 || !uuid.MatchString(resp.Header.Get("x-amzn-RequestId")) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("listStreams: status %d, request id %q, content type %q", resp.StatusCode, resp.Header.Get("x-amzn-RequestId"), resp.Header.Get("Content-Type"))
	}
	if string(body) != `{"StreamInfoList":[]}` {
		t.Errorf("listStreams body = %s", body)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz = %v, %v", resp, err)
	}
}
