package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// boto3Script drives every control-plane operation through boto3 and
// prints what it saw as JSON. For each error case it records the class of
// the exception raised, so the test can check that boto3 maps our wire
// errors to its modeled exception classes.
const boto3Script = `
import json, sys, boto3
c = boto3.client("kinesisvideo", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                 config=boto3.session.Config(retries={"max_attempts": 1, "mode": "standard"}))
out = {}
arn = c.create_stream(StreamName="py-cam", DataRetentionInHours=5, MediaType="video/h264",
                      Tags={"k": "v"})["StreamARN"]
out["arn"] = arn
info = c.describe_stream(StreamARN=arn)["StreamInfo"]
out["info"] = {k: v for k, v in info.items() if k != "CreationTime"}
out["creation_ms"] = int(round(info["CreationTime"].timestamp() * 1000))
for i in range(7):
    c.create_stream(StreamName="py-%d" % i)
pages = list(c.get_paginator("list_streams").paginate(
    StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": "py-"},
    PaginationConfig={"PageSize": 3}))
out["pages"] = [[s["StreamName"] for s in p["StreamInfoList"]] for p in pages]
out["endpoint"] = c.get_data_endpoint(StreamName="py-cam", APIName="PUT_MEDIA")["DataEndpoint"]
c.tag_resource(ResourceARN=arn, Tags=[{"Key": "a", "Value": "1"}])
c.untag_stream(StreamName="py-cam", TagKeyList=["k"])
out["tags"] = c.list_tags_for_resource(ResourceARN=arn)["Tags"]
v = info["Version"]
c.update_stream_storage_configuration(StreamName="py-cam", CurrentVersion=v,
    StreamStorageConfiguration={"DefaultStorageTier": "WARM"})
out["tier"] = c.describe_stream_storage_configuration(StreamName="py-cam")["StreamStorageConfiguration"]["DefaultStorageTier"]

def expect(name, cls, fn):
    try:
        fn()
        out.setdefault("errors", {})[name] = "no exception"
    except getattr(c.exceptions, cls) as e:
        out.setdefault("errors", {})[name] = [cls, e.response["Error"]["Message"],
                                             e.response["ResponseMetadata"]["HTTPStatusCode"]]
    except Exception as e:
        out.setdefault("errors", {})[name] = "wrong exception %s: %s" % (type(e).__name__, e)

expect("missing", "ResourceNotFoundException", lambda: c.describe_stream(StreamName="nope"))
expect("duplicate", "ResourceInUseException", lambda: c.create_stream(StreamName="py-cam"))
expect("stale", "VersionMismatchException", lambda: c.update_stream(StreamName="py-cam", CurrentVersion=v, DeviceName="d"))
expect("invalid", "InvalidArgumentException", lambda: c.update_data_retention(StreamName="py-cam",
    CurrentVersion=c.describe_stream(StreamName="py-cam")["StreamInfo"]["Version"],
    Operation="DECREASE_DATA_RETENTION", DataRetentionChangeInHours=6))
expect("tags", "TagsPerResourceExceededLimitException",
    lambda: c.tag_stream(StreamName="py-cam", Tags={"t%d" % i: "x" for i in range(50)}))
expect("delete", "ResourceNotFoundException",
    lambda: c.delete_stream(StreamARN=arn.rsplit("/", 1)[0] + "/1"))
print(json.dumps(out))
`

func TestBoto3(t *testing.T) {
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	srv := startServer(t)
	cmd := exec.CommandContext(ctx(t), py, "-c", boto3Script, srv.URL)
	cmd.Env = awsEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 script: %v\n%s", err, stderr.String())
	}
	var got struct {
		ARN        string         `json:"arn"`
		Info       map[string]any `json:"info"`
		CreationMs int64          `json:"creation_ms"`
		Pages      [][]string     `json:"pages"`
		Endpoint   string         `json:"endpoint"`
		Tags       map[string]any `json:"tags"`
		Tier       string         `json:"tier"`
		Errors     map[string]any `json:"errors"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("boto3 output %q: %v", stdout.String(), err)
	}
	m := arnPattern.FindStringSubmatch(got.ARN)
	if m == nil || m[1] != "py-cam" {
		t.Fatalf("ARN = %q", got.ARN)
	}
	if want := m[2]; want != strconv.FormatInt(got.CreationMs, 10) {
		t.Errorf("CreationTime %d ms parsed by boto3 does not match ARN suffix %s", got.CreationMs, want)
	}
	wantInfo := map[string]any{"StreamName": "py-cam", "StreamARN": got.ARN, "MediaType": "video/h264", "KmsKeyId": defaultKMS,
		"Version": got.Info["Version"], "Status": "ACTIVE", "DataRetentionInHours": float64(5)}
	if diff := cmp.Diff(wantInfo, got.Info); diff != "" {
		t.Errorf("describe_stream (-want +got):\n%s", diff)
	}
	wantPages := [][]string{{"py-0", "py-1", "py-2"}, {"py-3", "py-4", "py-5"}, {"py-6", "py-cam"}}
	if diff := cmp.Diff(wantPages, got.Pages); diff != "" {
		t.Errorf("paginator pages (-want +got):\n%s", diff)
	}
	if got.Endpoint != srv.URL {
		t.Errorf("DataEndpoint = %q, want %q", got.Endpoint, srv.URL)
	}
	if diff := cmp.Diff(map[string]any{"a": "1"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if got.Tier != "WARM" {
		t.Errorf("storage tier = %q, want WARM", got.Tier)
	}
	wantErrors := map[string]any{
		"missing":   []any{"ResourceNotFoundException", "The requested stream is not found or not active.", float64(404)},
		"duplicate": []any{"ResourceInUseException", "The stream py-cam already exists.", float64(400)},
		"stale":     []any{"VersionMismatchException", "The version " + field[string](t, got.Info, "Version") + " does not match the current version of stream py-cam.", float64(400)},
		"invalid":   []any{"InvalidArgumentException", "The resulting data retention of -1 hours is outside 0 to 87600 hours; the stream keeps data for 5 hours.", float64(400)},
		"tags":      []any{"TagsPerResourceExceededLimitException", "A stream can have at most 50 tags; this request would leave 51", float64(400)},
		"delete":    []any{"ResourceNotFoundException", "The requested stream is not found or not active.", float64(404)},
	}
	if diff := cmp.Diff(wantErrors, got.Errors); diff != "" {
		t.Errorf("boto3 exceptions (-want +got):\n%s", diff)
	}
}
