package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/synth"
)

// Access keys of authCredentials.
const (
	adminKey, adminSecret   = "AKIDADMIN", "admin-secret"
	readerKey, readerSecret = "AKIDREADER", "reader-secret"
	listerKey, listerSecret = "AKIDLISTER", "lister-secret"
)

// authCredentials is the credentials file of the authentication tests: an
// admin that may do everything, a reader limited to two read actions on
// cam-* streams, and a lister that lists only cam-* streams.
const authCredentials = `{"keys": [
  {"accessKeyId": "AKIDADMIN", "secretAccessKey": "admin-secret"},
  {"accessKeyId": "AKIDREADER", "secretAccessKey": "reader-secret", "policy": [
    {"actions": ["kinesisvideo:GetDataEndpoint", "kinesisvideo:DescribeStream"], "streams": ["cam-*"]}]},
  {"accessKeyId": "AKIDLISTER", "secretAccessKey": "lister-secret", "policy": [
    {"actions": ["kinesisvideo:ListStreams"], "streams": ["cam-*"]}]}
]}`

// Auth-layer answers, as AWS words them (kvs-protocol.md §1.3).
const (
	msgBadSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgUnknownKey = "The security token included in the request is invalid."
)

// authError is an error as a client saw it.
type authError struct {
	Type    string
	Status  int
	Message string
}

var (
	errBadSignature = authError{"InvalidSignatureException", 403, msgBadSignature}
	errUnknownKey   = authError{"UnrecognizedClientException", 403, msgUnknownKey}
)

// skewMessage matches the clock-skew answers; the groups are the signing
// time, the window's edge and the server's time.
var skewMessage = regexp.MustCompile(`^Signature (?:expired|not yet current): ([0-9]{8}T[0-9]{6}Z) is (?:now earlier|still later) than ([0-9]{8}T[0-9]{6}Z) \(([0-9]{8}T[0-9]{6}Z) [-+] 5 min\.\)$`)

const amzDate = "20060102T150405Z"

// checkSkew asserts that msg answers a request signed with a clock off by
// skew (±6 minutes), sent between before and after: the signing time, the
// server's time and the window's edge in it are each where they must be.
func checkSkew(t *testing.T, msg string, skew time.Duration, before, after time.Time) {
	t.Helper()
	m := skewMessage.FindStringSubmatch(msg)
	if m == nil {
		t.Errorf("skew message %q does not match %s", msg, skewMessage)
		return
	}
	var times [3]time.Time // signing time, the window's edge, the server's time
	for i := range times {
		var err error
		if times[i], err = time.Parse(amzDate, m[i+1]); err != nil {
			t.Errorf("skew message %q: %v", msg, err)
			return
		}
	}
	signed, edge, now := times[0], times[1], times[2]
	prefix, wantEdge := "Signature not yet current: ", now.Add(5*time.Minute)
	if skew < 0 {
		prefix, wantEdge = "Signature expired: ", now.Add(-5*time.Minute)
	}
	within := func(x, from, to time.Time) bool { return !x.Before(from.Truncate(time.Second)) && !x.After(to) }
	if !strings.HasPrefix(msg, prefix) || !edge.Equal(wantEdge) || !within(now, before, after) ||
		!within(signed, before.Add(skew), after.Add(skew)) {
		t.Errorf("skew message %q: want %q, a signing time in [%s, %s] and a server time in [%s, %s]", msg, prefix,
			before.Add(skew).UTC().Format(amzDate), after.Add(skew).UTC().Format(amzDate),
			before.UTC().Format(amzDate), after.UTC().Format(amzDate))
	}
}

// startAuthServer starts openkvs with authCredentials.
func startAuthServer(t *testing.T, args ...string) *serverProc {
	t.Helper()
	path := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), authCredentials)
	return startServer(t, append([]string{"--credentials", path}, args...)...)
}

// writeCredentials writes a credentials file readable by its owner only.
func writeCredentials(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// controlAs returns a kinesisvideo client for p that signs with key and secret.
func (p *serverProc) controlAs(key, secret string, opts ...func(*kinesisvideo.Options)) *kinesisvideo.Client {
	cfg := p.awsConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(key, secret, "")
	return kinesisvideo.NewFromConfig(cfg, opts...)
}

// sdkError is err as the SDK reports it: exception type, HTTP status, message.
func sdkError(t *testing.T, err error) authError {
	t.Helper()
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	if !errors.As(err, &apiErr) || !errors.As(err, &respErr) {
		t.Fatalf("error %v (%T) is not an API error with an HTTP response", err, err)
	}
	return authError{apiErr.ErrorCode(), respErr.HTTPStatusCode(), apiErr.ErrorMessage()}
}

// afterSigning is a client option that changes every request after the SDK
// signed it, as something on the path could.
func afterSigning(change func(*smithyhttp.Request) *smithyhttp.Request) func(*kinesisvideo.Options) {
	return func(o *kinesisvideo.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("tamper",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					in.Request = change(in.Request.(*smithyhttp.Request))
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
}

// skewedSigner is the SDK's signer with a clock off by skew.
type skewedSigner time.Duration

func (s skewedSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	at time.Time, opts ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, at.Add(time.Duration(s)), opts...)
}

// TestAuthSDKEveryOperation runs every control-plane operation through
// aws-sdk-go-v2 with a valid key on an authenticating server.
func TestAuthSDKEveryOperation(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	c := srv.controlAs(adminKey, adminSecret)
	cx := ctx(t)
	must := func(op string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	created, err := c.CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(2)})
	must("CreateStream", err)
	arn := created.StreamARN
	info := describe(t, c, "cam-1")
	list, err := c.ListStreams(cx, &kinesisvideo.ListStreamsInput{})
	must("ListStreams", err)
	if len(list.StreamInfoList) != 1 || aws.ToString(list.StreamInfoList[0].StreamARN) != aws.ToString(arn) {
		t.Errorf("ListStreams = %+v, want cam-1 only", list.StreamInfoList)
	}
	ep, err := c.GetDataEndpoint(cx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: types.APINamePutMedia})
	must("GetDataEndpoint", err)
	if aws.ToString(ep.DataEndpoint) != srv.URL {
		t.Errorf("DataEndpoint = %q, want %q", aws.ToString(ep.DataEndpoint), srv.URL)
	}
	_, err = c.UpdateStream(cx, &kinesisvideo.UpdateStreamInput{StreamARN: arn, CurrentVersion: info.Version, DeviceName: aws.String("door")})
	must("UpdateStream", err)
	info = describe(t, c, "cam-1")
	_, err = c.UpdateDataRetention(cx, &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam-1"), CurrentVersion: info.Version,
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(3)})
	must("UpdateDataRetention", err)
	_, err = c.TagStream(cx, &kinesisvideo.TagStreamInput{StreamName: aws.String("cam-1"), Tags: map[string]string{"a": "1", "b": "2"}})
	must("TagStream", err)
	_, err = c.UntagStream(cx, &kinesisvideo.UntagStreamInput{StreamARN: arn, TagKeyList: []string{"a"}})
	must("UntagStream", err)
	_, err = c.TagResource(cx, &kinesisvideo.TagResourceInput{ResourceARN: arn, Tags: []types.Tag{{Key: aws.String("c"), Value: aws.String("3")}}})
	must("TagResource", err)
	_, err = c.UntagResource(cx, &kinesisvideo.UntagResourceInput{ResourceARN: arn, TagKeyList: []string{"b"}})
	must("UntagResource", err)
	tags, err := c.ListTagsForStream(cx, &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String("cam-1")})
	must("ListTagsForStream", err)
	rtags, err := c.ListTagsForResource(cx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: arn})
	must("ListTagsForResource", err)
	want := map[string]string{"c": "3"}
	if !cmp.Equal(want, tags.Tags) || !cmp.Equal(want, rtags.Tags) {
		t.Errorf("tags = %v and %v, want %v", tags.Tags, rtags.Tags, want)
	}
	info = describe(t, c, "cam-1")
	if aws.ToString(info.DeviceName) != "door" || aws.ToInt32(info.DataRetentionInHours) != 5 {
		t.Errorf("after updates: DeviceName %q, retention %d; want door, 5", aws.ToString(info.DeviceName), aws.ToInt32(info.DataRetentionInHours))
	}
	_, err = c.UpdateStreamStorageConfiguration(cx, &kinesisvideo.UpdateStreamStorageConfigurationInput{StreamName: aws.String("cam-1"),
		CurrentVersion: info.Version, StreamStorageConfiguration: &types.StreamStorageConfiguration{DefaultStorageTier: types.DefaultStorageTierWarm}})
	must("UpdateStreamStorageConfiguration", err)
	storage, err := c.DescribeStreamStorageConfiguration(cx, &kinesisvideo.DescribeStreamStorageConfigurationInput{StreamARN: arn})
	must("DescribeStreamStorageConfiguration", err)
	if tier := storage.StreamStorageConfiguration.DefaultStorageTier; tier != types.DefaultStorageTierWarm {
		t.Errorf("storage tier = %s, want WARM", tier)
	}
	_, err = c.DeleteStream(cx, &kinesisvideo.DeleteStreamInput{StreamARN: arn})
	must("DeleteStream", err)
	_, err = c.DescribeStream(cx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	wantAPIError[*types.ResourceNotFoundException](t, err, "The requested stream is not found or not active.")
}

// TestAuthSDKRejected sends writes with every kind of bad signature: each is
// refused with AWS's answer and changes nothing.
func TestAuthSDKRejected(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	admin := srv.controlAs(adminKey, adminSecret)
	created, err := admin.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	skewed := func(d time.Duration) *kinesisvideo.Client {
		return srv.controlAs(adminKey, adminSecret, func(o *kinesisvideo.Options) { o.HTTPSignerV4 = skewedSigner(d) })
	}
	tests := []struct {
		name   string
		client *kinesisvideo.Client
		want   authError
		skew   time.Duration // the message is checked by checkSkew
	}{
		{name: "wrong secret", client: srv.controlAs(adminKey, "not-the-secret"), want: errBadSignature},
		{name: "unknown key", client: srv.controlAs("AKIDNOBODY", adminSecret), want: errUnknownKey},
		{name: "clock 6 minutes ahead", client: skewed(6 * time.Minute), want: authError{Type: "InvalidSignatureException", Status: 403}, skew: 6 * time.Minute},
		{name: "clock 6 minutes behind", client: skewed(-6 * time.Minute), want: authError{Type: "InvalidSignatureException", Status: 403}, skew: -6 * time.Minute},
		{name: "tampered body", want: errBadSignature, client: srv.controlAs(adminKey, adminSecret, afterSigning(func(r *smithyhttp.Request) *smithyhttp.Request {
			// Same length, so only the signature can tell: cam-1 becomes cam-2, bad-1 bad-2.
			body, err := io.ReadAll(r.GetStream())
			if err != nil {
				t.Error(err)
			}
			r, err = r.SetStream(bytes.NewReader(bytes.ReplaceAll(body, []byte("-1"), []byte("-2"))))
			if err != nil {
				t.Error(err)
			}
			return r
		}))},
		{name: "tampered signed header", want: errBadSignature, client: srv.controlAs(adminKey, adminSecret, afterSigning(func(r *smithyhttp.Request) *smithyhttp.Request {
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			return r
		}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writes := map[string]func() error{
				"CreateStream": func() error {
					_, err := tc.client.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("bad-1")})
					return err
				},
				"TagStream": func() error {
					_, err := tc.client.TagStream(ctx(t), &kinesisvideo.TagStreamInput{StreamName: aws.String("cam-1"), Tags: map[string]string{"bad": "1"}})
					return err
				},
				"DeleteStream": func() error {
					_, err := tc.client.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: created.StreamARN})
					return err
				},
			}
			for op, write := range writes {
				before := time.Now()
				got := sdkError(t, write())
				if tc.skew != 0 {
					checkSkew(t, got.Message, tc.skew, before, time.Now())
					got.Message = ""
				}
				if got != tc.want {
					t.Errorf("%s: got %+v, want %+v", op, got, tc.want)
				}
			}
		})
	}
	assertUnchanged(t, srv, "cam-1", map[string]string{"k": "v"})
}

// assertUnchanged checks with the admin key that name is the only stream
// and has exactly tags.
func assertUnchanged(t *testing.T, srv *serverProc, name string, tags map[string]string) {
	t.Helper()
	admin := srv.controlAs(adminKey, adminSecret)
	list, err := admin.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.StreamInfoList) != 1 || aws.ToString(list.StreamInfoList[0].StreamName) != name {
		t.Errorf("streams after rejected writes = %+v, want %s only", list.StreamInfoList, name)
	}
	out, err := admin.ListTagsForStream(ctx(t), &kinesisvideo.ListTagsForStreamInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(tags, out.Tags) {
		t.Errorf("tags of %s after rejected writes = %v, want %v", name, out.Tags, tags)
	}
}

// TestAuthPolicy checks a key limited to GetDataEndpoint and DescribeStream
// on cam-*, and one that may list only cam-* streams.
func TestAuthPolicy(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	admin := srv.controlAs(adminKey, adminSecret)
	reader := srv.controlAs(readerKey, readerSecret)
	cx := ctx(t)
	arns := map[string]string{}
	for _, name := range []string{"cam-1", "cam-2", "other", "zzz"} {
		out, err := admin.CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		arns[name] = aws.ToString(out.StreamARN)
	}
	denied := func(action, resource string) string {
		return "User: AKIDREADER is not authorized to perform: kinesisvideo:" + action + " on resource: " + resource
	}

	// Allowed: the two read actions on cam-* streams, by name or ARN.
	if got := aws.ToString(describe(t, reader, "cam-1").StreamARN); got != arns["cam-1"] {
		t.Errorf("reader DescribeStream(cam-1) ARN = %s, want %s", got, arns["cam-1"])
	}
	ep, err := reader.GetDataEndpoint(cx, &kinesisvideo.GetDataEndpointInput{StreamARN: aws.String(arns["cam-1"]), APIName: types.APINameGetMedia})
	if err != nil || aws.ToString(ep.DataEndpoint) != srv.URL {
		t.Errorf("reader GetDataEndpoint(cam-1) = %v, %v; want %s", ep, err, srv.URL)
	}

	// Denied on other streams, with the modeled exception of each operation.
	_, err = reader.DescribeStream(cx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("other")})
	wantAPIError[*types.NotAuthorizedException](t, err, denied("DescribeStream", "other"))
	existing := sdkError(t, err)
	_, err = reader.DescribeStream(cx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arns["other"])})
	wantAPIError[*types.NotAuthorizedException](t, err, denied("DescribeStream", arns["other"]))
	_, err = reader.GetDataEndpoint(cx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("other"), APIName: types.APINameGetMedia})
	wantAPIError[*types.NotAuthorizedException](t, err, denied("GetDataEndpoint", "other"))
	// Other actions on its own streams, writes included.
	_, err = reader.DescribeStreamStorageConfiguration(cx, &kinesisvideo.DescribeStreamStorageConfigurationInput{StreamName: aws.String("cam-1")})
	wantAPIError[*types.AccessDeniedException](t, err, denied("DescribeStreamStorageConfiguration", "cam-1"))
	_, err = reader.DeleteStream(cx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arns["cam-1"])})
	wantAPIError[*types.NotAuthorizedException](t, err, denied("DeleteStream", arns["cam-1"]))
	_, err = reader.CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-3")})
	if got, want := sdkError(t, err), (authError{"NotAuthorizedException", 401, denied("CreateStream", "cam-3")}); got != want {
		t.Errorf("reader CreateStream: %+v, want %+v", got, want)
	}
	_, err = reader.ListStreams(cx, &kinesisvideo.ListStreamsInput{})
	if got, want := sdkError(t, err), (authError{"NotAuthorizedException", 401, denied("ListStreams", "*")}); got != want {
		t.Errorf("reader ListStreams: %+v, want %+v", got, want)
	}

	// Whether other exists or not, the reader gets the same answer.
	if _, err := admin.DeleteStream(cx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arns["other"])}); err != nil {
		t.Fatal(err)
	}
	_, err = reader.DescribeStream(cx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("other")})
	if missing := sdkError(t, err); missing != existing {
		t.Errorf("DescribeStream of a deleted stream = %+v, of an existing one %+v: they must not differ", missing, existing)
	}

	// The lister sees only cam-* streams, a page at a time.
	lister := srv.controlAs(listerKey, listerSecret)
	var pages [][]string
	bound := newPageBound(t, "ListStreams as the lister")
	for p := kinesisvideo.NewListStreamsPaginator(lister, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(1)}); p.HasMorePages(); {
		bound.next()
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		page := []string{}
		for _, s := range out.StreamInfoList {
			page = append(page, aws.ToString(s.StreamName))
		}
		pages = append(pages, page)
	}
	if diff := cmp.Diff([][]string{{"cam-1"}, {"cam-2"}}, pages); diff != "" {
		t.Errorf("lister pages (-want +got):\n%s", diff)
	}

	// Nothing the reader tried changed anything.
	all, err := admin.ListStreams(cx, &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all.StreamInfoList {
		names = append(names, aws.ToString(s.StreamName))
	}
	if diff := cmp.Diff([]string{"cam-1", "cam-2", "zzz"}, names); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
}

// TestAuthCurl signs with curl --aws-sigv4, as the README shows.
func TestAuthCurl(t *testing.T) {
	t.Parallel()
	curl := requireTool(t, "curl", "apt-get install -y curl")
	srv := startAuthServer(t)
	run := func(auth []string, path, body string) (int, string) {
		t.Helper()
		args := append([]string{"-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "--data", body}, auth...)
		out, err := exec.CommandContext(ctx(t), curl, append(args, srv.URL+path)...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", path, err)
		}
		// -w appends "\n" and the status to the body.
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		status, err := strconv.Atoi(s[i+1:])
		if err != nil {
			t.Fatalf("curl %s: no status after the body: %q", path, s)
		}
		return status, s[:i]
	}
	sign := []string{"--aws-sigv4", "aws:amz:us-east-1:kinesisvideo", "--user", adminKey + ":" + adminSecret}
	if status, body := run(sign, "/createStream", `{"StreamName":"curl-cam"}`); status != 200 || !strings.Contains(body, `"StreamARN":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/curl-cam/`) {
		t.Errorf("signed createStream: %d %s", status, body)
	}
	if status, body := run(sign, "/describeStream", `{"StreamName":"curl-cam"}`); status != 200 || !strings.Contains(body, `"StreamName":"curl-cam"`) {
		t.Errorf("signed describeStream: %d %s", status, body)
	}
	want := `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`
	if status, body := run(nil, "/listStreams", `{}`); status != 403 || body != want {
		t.Errorf("unsigned listStreams: %d %s, want 403 %s", status, body, want)
	}
	// PutMedia: curl signs every header given with -H, so the x-amzn-*
	// parameters, which must be signed, are. Without x-amz-content-sha256
	// curl would sign the body's SHA-256 without sending it, where a
	// PutMedia signature is checked against the C producer's placeholder.
	if status, body := run(sign, "/createStream", `{"StreamName":"curl-put","DataRetentionInHours":1}`); status != 200 {
		t.Fatalf("signed createStream: %d %s", status, body)
	}
	put := exec.CommandContext(ctx(t), curl, append([]string{"-sS", "-H", "x-amzn-stream-name: curl-put",
		"-H", "x-amzn-fragment-timecode-type: ABSOLUTE", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
		"--data-binary", "@" + filepath.Join("..", "testdata", "media", "h264.mkv")}, append(sign, srv.URL+"/putMedia")...)...)
	acks, err := put.Output()
	if want := len(synth.ClusterSpans(media(t, "h264.mkv"))); err != nil || strings.Count(string(acks), `"EventType":"PERSISTED"`) != want {
		t.Errorf("curl PutMedia: %v, %s; want %d PERSISTED", err, acks, want)
	}

	wrong := []string{"--aws-sigv4", "aws:amz:us-east-1:kinesisvideo", "--user", adminKey + ":wrong"}
	want = `{"__type":"InvalidSignatureException","message":"` + msgBadSignature + `"}`
	if status, body := run(wrong, "/deleteStream", `{"StreamARN":"arn:aws:kinesisvideo:us-east-1:000000000000:stream/curl-cam/1"}`); status != 403 || body != want {
		t.Errorf("wrong secret: %d %s, want 403 %s", status, body, want)
	}
}
