package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/aws/smithy-go"
)

// countingTransport counts the requests it sends.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// TestUnservedOperations calls, with the SDK, the operations of the KVS
// models that openkvs does not serve yet: each answers 501 NotImplemented
// naming the operation, which the SDK raises as its generic API error and,
// with retries on, does not retry.
func TestUnservedOperations(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	count := &countingTransport{rt: readOnlyBody{http.DefaultTransport}}
	cfg := srv.awsConfig()
	cfg.RetryMaxAttempts = 3
	cfg.HTTPClient = &http.Client{Transport: count}
	kv := kinesisvideo.NewFromConfig(cfg)
	calls := map[string]func() error{
		"DescribeMediaStorageConfiguration": func() error {
			_, err := kv.DescribeMediaStorageConfiguration(ctx(t), &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelName: aws.String("cam")})
			return err
		},
		"DescribeMappedResourceConfiguration": func() error {
			_, err := kv.DescribeMappedResourceConfiguration(ctx(t), &kinesisvideo.DescribeMappedResourceConfigurationInput{StreamName: aws.String("cam")})
			return err
		},
	}
	for op, call := range calls {
		t.Run(op, func(t *testing.T) {
			before := count.n.Load()
			err := call()
			var apiErr smithy.APIError
			var resp *awshttp.ResponseError
			if !errors.As(err, &apiErr) || !errors.As(err, &resp) {
				t.Fatalf("%s: %v, want an API error", op, err)
			}
			want := op + " is not served by openkvs yet."
			if apiErr.ErrorCode() != "NotImplemented" || apiErr.ErrorMessage() != want || resp.HTTPStatusCode() != http.StatusNotImplemented {
				t.Errorf("%s: %d %s %q, want 501 NotImplemented %q", op, resp.HTTPStatusCode(), apiErr.ErrorCode(), apiErr.ErrorMessage(), want)
			}
			if n := count.n.Load() - before; n != 1 {
				t.Errorf("%s: %d requests sent, want 1 (a 501 is not retried)", op, n)
			}
		})
	}
}

// TestAWSCLIArchivedMedia runs kinesis-video-archived-media commands of the
// AWS CLI: list-fragments without a selector lists the stream's fragments,
// and an unserved operation names itself.
func TestAWSCLIArchivedMedia(t *testing.T) {
	t.Parallel()
	awsPath := requireTool(t, "aws", "apt-get install -y awscli")
	srv := startServer(t)
	getIngest(t, srv, "cam", "h264.mkv")
	run := func(service string, args ...string) (string, string, int) {
		cmd := exec.CommandContext(ctx(t), awsPath, append([]string{service, "--endpoint-url", srv.URL, "--output", "json"}, args...)...)
		cmd.Env = awsEnv(t)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("aws %v: %v", args, err)
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	out, stderr, code := run("kinesis-video-archived-media", "list-fragments", "--stream-name", "cam")
	var list struct {
		Fragments []struct{ FragmentNumber string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("aws list-fragments: exit %d, %s%s", code, out, stderr)
	}
	var got []string
	for _, f := range list.Fragments {
		got = append(got, f.FragmentNumber)
	}
	var want []string
	for _, f := range getList(t, srv, "cam", amtypes.FragmentSelectorTypeServerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour), 1000) {
		want = append(want, aws.ToString(f.FragmentNumber))
	}
	if len(want) != 3 || !slices.Equal(got, want) {
		t.Errorf("aws list-fragments listed %v, want the stream's 3 fragments %v", got, want)
	}
	_, stderr, code = run("kinesisvideo", "describe-mapped-resource-configuration", "--stream-name", "cam")
	// The CLI's standard retry mode adds "(reached max retries: 0)": it
	// did not retry the 501.
	wantErr := "An error occurred (NotImplemented) when calling the DescribeMappedResourceConfiguration operation (reached max retries: 0): DescribeMappedResourceConfiguration is not served by openkvs yet."
	if code != 255 || strings.TrimSpace(stderr) != wantErr {
		t.Errorf("aws describe-mapped-resource-configuration: exit %d, %q; want 255, %q", code, stderr, wantErr)
	}
}
