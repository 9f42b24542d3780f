package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// field returns m[key] as a T, failing the test when the JSON a tool
// printed lacks the key or holds another type there (an unchecked type
// assertion would panic instead).
func field[T any](t *testing.T, m map[string]any, key string) T {
	t.Helper()
	v, ok := m[key].(T)
	if !ok {
		t.Fatalf("%q is %#v in %v, want a %T", key, m[key], m, v)
	}
	return v
}

// isStream reports whether v is a StreamInfo object named name.
func isStream(v any, name string) bool {
	info, ok := v.(map[string]any)
	return ok && info["StreamName"] == name
}

// awsCLI runs `aws kinesisvideo ARGS` against srv and returns stdout,
// stderr and the exit code.
func awsCLI(t *testing.T, aws string, srv *serverProc, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), aws, append([]string{"kinesisvideo", "--endpoint-url", srv.URL, "--output", "json"}, args...)...)
	cmd.Env = awsEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("aws %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func TestAWSCLI(t *testing.T) {
	aws := requireTool(t, "aws", "apt-get install -y awscli")
	srv := startServer(t)
	run := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, code := awsCLI(t, aws, srv, args...)
		if code != 0 {
			t.Fatalf("aws %v exited %d: %s", args, code, stderr)
		}
		if strings.TrimSpace(out) == "" {
			return nil
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("aws %v printed %q: %v", args, out, err)
		}
		return m
	}
	created := run("create-stream", "--stream-name", "cli-cam", "--data-retention-in-hours", "12", "--media-type", "video/h264", "--tags", "team=video,site=lab")
	arn := field[string](t, created, "StreamARN")
	if !regexp.MustCompile(`^arn:aws:kinesisvideo:us-east-1:000000000000:stream/cli-cam/[0-9]{13}$`).MatchString(arn) {
		t.Fatalf("create-stream StreamARN = %q", arn)
	}
	info := field[map[string]any](t, run("describe-stream", "--stream-name", "cli-cam"), "StreamInfo")
	version := field[string](t, info, "Version")
	// The CLI prints timestamps in its own format; the rest is exact.
	delete(info, "CreationTime")
	want := map[string]any{"StreamName": "cli-cam", "StreamARN": arn, "MediaType": "video/h264", "KmsKeyId": defaultKMS,
		"Version": version, "Status": "ACTIVE", "DataRetentionInHours": float64(12)}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("describe-stream (-want +got):\n%s", diff)
	}
	run("create-stream", "--stream-name", "cli-other")
	list := run("list-streams", "--stream-name-condition", "ComparisonOperator=BEGINS_WITH,ComparisonValue=cli-c")
	if got := field[[]any](t, list, "StreamInfoList"); len(got) != 1 || !isStream(got[0], "cli-cam") {
		t.Errorf("list-streams with condition = %v", got)
	}
	// The CLI's automatic pagination follows NextToken over pages of one.
	paged := run("list-streams", "--page-size", "1")
	if got := field[[]any](t, paged, "StreamInfoList"); len(got) != 2 {
		t.Errorf("paginated list-streams returned %d streams, want 2", len(got))
	}
	ep := run("get-data-endpoint", "--stream-name", "cli-cam", "--api-name", "GET_MEDIA")
	if ep["DataEndpoint"] != srv.URL {
		t.Errorf("get-data-endpoint = %v, want %s", ep["DataEndpoint"], srv.URL)
	}
	run("tag-stream", "--stream-arn", arn, "--tags", "site=home,new=1")
	run("untag-stream", "--stream-name", "cli-cam", "--tag-key-list", "team")
	tags := run("list-tags-for-stream", "--stream-name", "cli-cam")["Tags"]
	if diff := cmp.Diff(map[string]any{"site": "home", "new": "1"}, tags); diff != "" {
		t.Errorf("list-tags-for-stream (-want +got):\n%s", diff)
	}
	run("update-data-retention", "--stream-name", "cli-cam", "--current-version", version, "--operation", "INCREASE_DATA_RETENTION", "--data-retention-change-in-hours", "6")
	if got := field[map[string]any](t, run("describe-stream", "--stream-arn", arn), "StreamInfo")["DataRetentionInHours"]; got != float64(18) {
		t.Errorf("retention after update = %v, want 18", got)
	}

	// Errors: the CLI exits 255 and names the modeled error and message.
	errCases := []struct {
		args          []string
		op, typ, want string
	}{
		{[]string{"describe-stream", "--stream-name", "missing"}, "DescribeStream", "ResourceNotFoundException", "The requested stream is not found or not active."},
		{[]string{"create-stream", "--stream-name", "cli-cam"}, "CreateStream", "ResourceInUseException", "The stream cli-cam already exists."},
		{[]string{"update-stream", "--stream-name", "cli-cam", "--current-version", version, "--device-name", "d"}, "UpdateStream", "VersionMismatchException",
			"The version " + version + " does not match the current version of stream cli-cam."},
		{[]string{"describe-stream", "--stream-name", "bad name"}, "DescribeStream", "InvalidArgumentException", "1 validation error detected: Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
	}
	for _, tc := range errCases {
		_, stderr, code := awsCLI(t, aws, srv, tc.args...)
		// The CLI may add "(reached max retries: N)" after the operation name.
		re := regexp.MustCompile(`An error occurred \(` + tc.typ + `\) when calling the ` + tc.op + ` operation( \([^)]*\))?: (.*)`)
		m := re.FindStringSubmatch(stderr)
		if code != 255 || m == nil || m[2] != tc.want {
			t.Errorf("aws %v: exit %d, stderr %q; want 255, %s and %q", tc.args, code, stderr, tc.typ, tc.want)
		}
	}
}
