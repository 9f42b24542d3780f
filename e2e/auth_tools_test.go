package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// botoFaults is Python shared by the boto3 and AWS CLI scripts: botocore
// hooks that break a request the way the tests need. fault(session, name)
// applies one to a botocore session (or boto3 client events) and returns
// nothing; "skew+" and "skew-" move botocore's signing clock by 6 minutes.
const botoFaults = `
import datetime, types, botocore.auth

_offset = [datetime.timedelta(0)]

def _skew(minutes):
    # Sets the offset of botocore's signing clock; the patch goes in once.
    installed = _offset[0] != datetime.timedelta(0)
    _offset[0] = datetime.timedelta(minutes=minutes)
    if installed:
        return
    if hasattr(botocore.auth, "get_current_datetime"):
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda *a, **k: real(*a, **k) + _offset[0]
    else:  # older botocore calls datetime.datetime.utcnow() directly
        class Skewed(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return datetime.datetime.utcnow() + _offset[0]
        shim = types.ModuleType("datetime")
        shim.__dict__.update(datetime.__dict__)
        shim.datetime = Skewed
        botocore.auth.datetime = shim

def _tamper_body(request, **kwargs):
    # Same length, so only the signature can tell.
    body = request.body.encode() if isinstance(request.body, str) else request.body
    request.body = body.replace(b"-1", b"-2")

def _tamper_header(request, **kwargs):
    request.headers["Content-Type"] = "application/x-amz-json-1.1"

def fault(events, name):
    if name == "skew+":
        _skew(6)
    elif name == "skew-":
        _skew(-6)
    elif name == "body":
        events.register("before-send", _tamper_body)
    elif name == "header":
        events.register("before-send", _tamper_header)
`

// boto3AuthScript runs every control-plane operation with the admin key,
// then three writes with each bad signature, and prints what it saw.
const boto3AuthScript = botoFaults + `
import json, sys, boto3, botocore.exceptions
from botocore.config import Config

endpoint = sys.argv[1]
def client(key, secret):
    return boto3.client("kinesisvideo", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))

out = {}
c = client("AKIDADMIN", "admin-secret")
arn = c.create_stream(StreamName="cam-1", DataRetentionInHours=1, Tags={"k": "v"})["StreamARN"]
gone = c.create_stream(StreamName="cam-9")["StreamARN"]
version = c.describe_stream(StreamName="cam-1")["StreamInfo"]["Version"]
c.update_stream(StreamARN=arn, CurrentVersion=version, DeviceName="door")
version = c.describe_stream(StreamARN=arn)["StreamInfo"]["Version"]
c.update_data_retention(StreamName="cam-1", CurrentVersion=version, Operation="INCREASE_DATA_RETENTION",
                        DataRetentionChangeInHours=2)
c.tag_stream(StreamName="cam-1", Tags={"a": "1"})
c.untag_stream(StreamName="cam-1", TagKeyList=["a"])
c.tag_resource(ResourceARN=arn, Tags=[{"Key": "b", "Value": "2"}])
c.untag_resource(ResourceARN=arn, TagKeyList=["b"])
version = c.describe_stream(StreamName="cam-1")["StreamInfo"]["Version"]
c.update_stream_storage_configuration(StreamName="cam-1", CurrentVersion=version,
                                      StreamStorageConfiguration={"DefaultStorageTier": "WARM"})
c.delete_stream(StreamARN=gone)
info = c.describe_stream(StreamName="cam-1")["StreamInfo"]
out["ok"] = {
    "device": info["DeviceName"], "retention": info["DataRetentionInHours"],
    "streams": [s["StreamName"] for s in c.list_streams()["StreamInfoList"]],
    "endpoint": c.get_data_endpoint(StreamName="cam-1", APIName="GET_MEDIA")["DataEndpoint"],
    "tags": c.list_tags_for_stream(StreamName="cam-1")["Tags"],
    "resource_tags": c.list_tags_for_resource(ResourceARN=arn)["Tags"],
    "tier": c.describe_stream_storage_configuration(StreamARN=arn)["StreamStorageConfiguration"]["DefaultStorageTier"],
}

def attempt(name, key="AKIDADMIN", secret="admin-secret"):
    bad = client(key, secret)
    fault(bad.meta.events, name)
    seen = []
    for call in (lambda: bad.create_stream(StreamName="bad-1"),
                 lambda: bad.tag_stream(StreamName="cam-1", Tags={"bad": "1"}),
                 lambda: bad.delete_stream(StreamARN=arn)):
        try:
            call()
            seen.append("no exception")
        except botocore.exceptions.ClientError as e:
            seen.append([e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"],
                         e.response["Error"]["Message"]])
    out.setdefault("errors", {})[name] = seen

attempt("wrong secret", secret="wrong")
attempt("unknown key", key="AKIDNOBODY")
attempt("body")
attempt("header")
attempt("skew+")  # the clock stays off for what follows
attempt("skew-")
print(json.dumps(out))
`

// awsCLIFaultScript runs the AWS CLI's own driver with one fault from
// botoFaults: python3 -c script FAULT kinesisvideo ARGS...
const awsCLIFaultScript = botoFaults + `
import sys
from awscli.clidriver import create_clidriver
driver = create_clidriver()
fault(driver.session, sys.argv[1])
sys.exit(driver.main(sys.argv[2:]))
`

func TestAuthBoto3(t *testing.T) {
	t.Parallel()
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	srv := startAuthServer(t)
	cmd := exec.CommandContext(ctx(t), py, "-c", boto3AuthScript, srv.URL)
	cmd.Env = awsEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	after := time.Now()
	var got struct {
		OK     map[string]any   `json:"ok"`
		Errors map[string][]any `json:"errors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("boto3 output %q: %v", stdout.String(), err)
	}
	wantOK := map[string]any{"device": "door", "retention": float64(3), "streams": []any{"cam-1"}, "endpoint": srv.URL,
		"tags": map[string]any{"k": "v"}, "resource_tags": map[string]any{"k": "v"}, "tier": "WARM"}
	if diff := cmp.Diff(wantOK, got.OK); diff != "" {
		t.Errorf("boto3 operations (-want +got):\n%s", diff)
	}
	three := func(e authError) []any {
		one := []any{e.Type, float64(e.Status), e.Message}
		return []any{one, one, one}
	}
	for fault, want := range map[string]authError{"wrong secret": errBadSignature, "unknown key": errUnknownKey,
		"body": errBadSignature, "header": errBadSignature} {
		if diff := cmp.Diff(three(want), got.Errors[fault]); diff != "" {
			t.Errorf("boto3 with %s (-want +got):\n%s", fault, diff)
		}
	}
	for fault, skew := range map[string]time.Duration{"skew+": 6 * time.Minute, "skew-": -6 * time.Minute} {
		for _, e := range got.Errors[fault] {
			seen, ok := e.([]any)
			if !ok || len(seen) != 3 || seen[0] != "InvalidSignatureException" || seen[1] != float64(403) {
				t.Errorf("boto3 with %s: %v, want InvalidSignatureException 403", fault, e)
				continue
			}
			msg, ok := seen[2].(string)
			if !ok {
				t.Errorf("boto3 with %s: message %#v, want a string", fault, seen[2])
				continue
			}
			checkSkew(t, msg, skew, before, after)
		}
	}
	assertUnchanged(t, srv, "cam-1", map[string]string{"k": "v"})
}

// cliError is the error line of the AWS CLI; it may add "(reached max
// retries: N)" after the operation name.
var cliError = regexp.MustCompile(`An error occurred \(([A-Za-z]+)\) when calling the ([A-Za-z]+) operation(?: \([^)]*\))?: (.*)`)

func TestAuthCLI(t *testing.T) {
	t.Parallel()
	aws := requireTool(t, "aws", "apt-get install -y awscli")
	py := requirePython(t, "awscli", "apt-get install -y awscli")
	srv := startAuthServer(t)
	// cli runs `aws kinesisvideo ARGS` signed with key and secret; with a
	// fault from botoFaults it runs the CLI's driver under python.
	cli := func(key, secret, fault string, args ...string) (string, string, int) {
		args = append([]string{"kinesisvideo", "--endpoint-url", srv.URL, "--output", "json"}, args...)
		cmd := exec.CommandContext(ctx(t), aws, args...)
		if fault != "" {
			cmd = exec.CommandContext(ctx(t), py, append([]string{"-c", awsCLIFaultScript, fault}, args...)...)
		}
		cmd.Env = append(awsEnv(t), "AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Errorf("aws %v: %v", args, err) // may run on other goroutines: no Fatal
			return "", err.Error(), -1
		}
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, code := cli(adminKey, adminSecret, "", args...)
		if code != 0 {
			t.Fatalf("aws %v exited %d: %s", args, code, stderr)
		}
		var m map[string]any
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("aws %v printed %q: %v", args, out, err)
			}
		}
		return m
	}

	// Every control-plane operation with the admin key.
	arn := field[string](t, run("create-stream", "--stream-name", "cam-1", "--tags", "k=v"), "StreamARN")
	gone := field[string](t, run("create-stream", "--stream-name", "cam-9"), "StreamARN")
	version := func() string {
		return field[string](t, field[map[string]any](t, run("describe-stream", "--stream-arn", arn), "StreamInfo"), "Version")
	}
	run("update-stream", "--stream-name", "cam-1", "--current-version", version(), "--device-name", "door")
	run("update-data-retention", "--stream-arn", arn, "--current-version", version(), "--operation", "INCREASE_DATA_RETENTION",
		"--data-retention-change-in-hours", "4")
	run("tag-stream", "--stream-name", "cam-1", "--tags", "a=1")
	run("untag-stream", "--stream-arn", arn, "--tag-key-list", "a")
	run("tag-resource", "--resource-arn", arn, "--tags", "Key=b,Value=2")
	run("untag-resource", "--resource-arn", arn, "--tag-key-list", "b")
	run("update-stream-storage-configuration", "--stream-name", "cam-1", "--current-version", version(),
		"--stream-storage-configuration", "DefaultStorageTier=WARM")
	run("delete-stream", "--stream-arn", gone)
	info := field[map[string]any](t, run("describe-stream", "--stream-name", "cam-1"), "StreamInfo")
	got := map[string]any{
		"device":        info["DeviceName"],
		"retention":     info["DataRetentionInHours"],
		"streams":       len(field[[]any](t, run("list-streams"), "StreamInfoList")),
		"endpoint":      run("get-data-endpoint", "--stream-name", "cam-1", "--api-name", "PUT_MEDIA")["DataEndpoint"],
		"tags":          run("list-tags-for-stream", "--stream-name", "cam-1")["Tags"],
		"resource_tags": run("list-tags-for-resource", "--resource-arn", arn)["Tags"],
		"tier":          field[map[string]any](t, run("describe-stream-storage-configuration", "--stream-arn", arn), "StreamStorageConfiguration")["DefaultStorageTier"],
	}
	want := map[string]any{"device": "door", "retention": float64(4), "streams": 1, "endpoint": srv.URL,
		"tags": map[string]any{"k": "v"}, "resource_tags": map[string]any{"k": "v"}, "tier": "WARM"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aws kinesisvideo (-want +got):\n%s", diff)
	}

	// Bad signatures, run side by side: each CLI start costs about a second.
	faults := []struct {
		name, key, secret, fault string
		want                     authError // Status is not shown by the CLI
		skew                     time.Duration
	}{
		{name: "wrong secret", key: adminKey, secret: "wrong", want: errBadSignature},
		{name: "unknown key", key: "AKIDNOBODY", secret: adminSecret, want: errUnknownKey},
		{name: "tampered body", key: adminKey, secret: adminSecret, fault: "body", want: errBadSignature},
		{name: "tampered signed header", key: adminKey, secret: adminSecret, fault: "header", want: errBadSignature},
		{name: "clock 6 minutes ahead", key: adminKey, secret: adminSecret, fault: "skew+", skew: 6 * time.Minute,
			want: authError{Type: "InvalidSignatureException"}},
		{name: "clock 6 minutes behind", key: adminKey, secret: adminSecret, fault: "skew-", skew: -6 * time.Minute,
			want: authError{Type: "InvalidSignatureException"}},
	}
	var wg sync.WaitGroup
	for _, f := range faults {
		wg.Go(func() {
			before := time.Now()
			_, stderr, code := cli(f.key, f.secret, f.fault, "create-stream", "--stream-name", "bad-1")
			after := time.Now()
			m := cliError.FindStringSubmatch(stderr)
			if code != 255 || m == nil || m[2] != "CreateStream" {
				t.Errorf("%s: exit %d, stderr %q; want 255 and a CreateStream error", f.name, code, stderr)
				return
			}
			got := authError{Type: m[1], Message: m[3]}
			if f.skew != 0 {
				checkSkew(t, got.Message, f.skew, before, after)
				got.Message = ""
			}
			want := f.want
			want.Status = 0
			if got != want {
				t.Errorf("%s: %+v, want %+v", f.name, got, want)
			}
		})
	}
	wg.Wait()
	assertUnchanged(t, srv, "cam-1", map[string]string{"k": "v"})
}
