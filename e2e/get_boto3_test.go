package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// boto3GetMediaScript reads a stream from the earliest fragment with
// boto3's get_media until it has N whole chunks, writes them to a file and
// closes the response, which stays open at the live edge. It walks the
// payload's EBML elements and reads exactly their sizes, so it never waits
// for bytes the server has not sent; a chunk is whole after the Tags that
// carry the continuation token (kvs-protocol.md §5.3).
const boto3GetMediaScript = `
import sys, boto3
endpoint, stream, want, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
kw = dict(region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
          config=boto3.session.Config(retries={"max_attempts": 1, "mode": "standard"}))
kv = boto3.client("kinesisvideo", endpoint_url=endpoint, **kw)
ep = kv.get_data_endpoint(StreamName=stream, APIName="GET_MEDIA")["DataEndpoint"]
media = boto3.client("kinesis-video-media", endpoint_url=ep, **kw)
resp = media.get_media(StreamName=stream, StartSelector={"StartSelectorType": "EARLIEST"})
assert resp["ContentType"] == "video/webm", resp["ContentType"]
body = resp["Payload"]
out = bytearray()

def read(n):
    b = body.read(n)
    if len(b) != n:
        sys.exit("payload ended after %d bytes" % len(out))
    out.extend(b)
    return b

def vint():
    first = read(1)[0]
    n = 1
    while n <= 8 and not first & (0x80 >> (n - 1)):
        n += 1
    return bytes([first]) + read(n - 1)

SEGMENT, TAGS = bytes.fromhex("18538067"), bytes.fromhex("1254C367")
chunks = 0
while chunks < want:
    eid, size = vint(), vint()
    if eid == SEGMENT:
        continue  # unknown size: walk its children
    value = size[0] & (0xFF >> len(size))
    for b in size[1:]:
        value = value << 8 | b
    payload = read(value)
    if eid == TAGS and b"AWS_KINESISVIDEO_CONTINUATION_TOKEN" in payload:
        chunks += 1
body.close()
with open(path, "wb") as f:
    f.write(out)
`

func TestGetMediaBoto3(t *testing.T) {
	py := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	srv := startServer(t)
	getIngest(t, srv, "audio", "h264_aac.mkv")
	out := filepath.Join(t.TempDir(), "boto3.mkv")
	cmd := exec.CommandContext(ctx(t), py, "-c", boto3GetMediaScript, srv.URL, "audio", "3", out)
	cmd.Env = awsEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("boto3 get_media: %v\n%s", err, stderr.String())
	}
	frames, log := getFFprobe(t, out)
	if want := []string{"h264", "180", "aac", "283"}; !slices.Equal(frames, want) {
		t.Errorf("ffprobe counted %v, want %v", frames, want)
	}
	// Each chunk after the first is a document of its own, as in AWS's
	// captures: ffprobe notes its Segment and reads on.
	checkFFprobeLog(t, log, 2)
}
