package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
)

// cliRun runs the openkvs binary with exactly env and returns its stdout,
// stderr and exit code.
func cliRun(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("openkvs %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// cliOK runs the binary and fails the test unless it exits 0.
func cliOK(t *testing.T, env []string, args ...string) (string, string) {
	t.Helper()
	stdout, stderr, code := cliRun(t, env, args...)
	if code != 0 {
		t.Fatalf("openkvs %v: exit %d\n%s%s", args, code, stdout, stderr)
	}
	return stdout, stderr
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// without is env without the variables named.
func without(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+name+" ") {
			out = append(out, kv)
		}
	}
	return out
}

// TestStreamsCLI runs `openkvs streams` through a stream's life and checks
// what each command prints against the SDK's view of the stream.
func TestStreamsCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	env := awsEnv(t)
	ep := []string{"--endpoint", srv.URL}
	run := func(args ...string) (string, string) {
		t.Helper()
		return cliOK(t, env, append(append([]string{"streams"}, args...), ep...)...)
	}
	arn, _ := run("create", "cam-1", "--retention", "12", "--media-type", "video/h264")
	run("create", "cam-2", "--retention", "0")
	info := describe(t, srv.control(), "cam-1")
	if strings.TrimSpace(arn) != aws.ToString(info.StreamARN) || aws.ToInt32(info.DataRetentionInHours) != 12 || aws.ToString(info.MediaType) != "video/h264" {
		t.Fatalf("streams create printed %q; the stream is %+v", arn, info)
	}
	created := func(name string) string {
		return describe(t, srv.control(), name).CreationTime.UTC().Format(time.RFC3339)
	}
	list, _ := run("list")
	want := "NAME   STATUS  MEDIA_TYPE  RETENTION      CREATED               PRODUCER  BITRATE  LAG  READERS\n" +
		"cam-1  ACTIVE  video/h264  12 h           " + created("cam-1") + "  -         -        -    0\n" +
		"cam-2  ACTIVE  -           0 (live only)  " + created("cam-2") + "  -         -        -    0\n"
	if list != want {
		t.Errorf("streams list:\n%s\nwant:\n%s", list, want)
	}
	// A producer connected now: the live columns come from the status API.
	p := gmStartProducer(t, srv, "cam-1")
	frags := gmFrags(synth.Video{}, 0, 2)
	p.write(synth.Header(1), frags[0].data, frags[1].pieces[0])
	p.waitAcks("PERSISTED", 1)
	status, err := client.DescribeStreamStatus(ctx(t), client.StatusOptions{Endpoint: srv.URL}, "cam-1")
	if err != nil || status.Producer == nil {
		t.Fatalf("stream status: %+v, %v", status, err)
	}
	list, _ = run("list", "--prefix", "cam-1")
	row := strings.Fields(strings.Split(list, "\n")[1])
	wantRow := []string{"cam-1", "ACTIVE", "video/h264", "12", "h", created("cam-1"), "since",
		status.Producer.ConnectedSince.UTC().Format(time.RFC3339), fmt.Sprintf("%.2f", float64(status.Producer.BitrateBps)/1e6), "Mbit/s"}
	if len(row) != len(wantRow)+2 || !slices.Equal(row[:len(wantRow)], wantRow) || row[len(row)-1] != "0" {
		t.Errorf("streams list with a producer: %q, want %q, a lag and 0 readers", row, wantRow)
	}
	p.close()
	if list, _ := run("list", "--prefix", "cam-2"); !strings.HasPrefix(list, "NAME") || strings.Count(list, "\n") != 2 || !strings.Contains(list, "cam-2") {
		t.Errorf("streams list --prefix cam-2:\n%s", list)
	}

	desc, _ := run("describe", "cam-1")
	want = "name:        cam-1\n" +
		"arn:         " + aws.ToString(info.StreamARN) + "\n" +
		"status:      ACTIVE\n" +
		"media type:  video/h264\n" +
		"retention:   12 h\n" +
		"created:     " + created("cam-1") + "\n" +
		"device:      -\n" +
		"kms key:     " + defaultKMS + "\n" +
		"version:     " + aws.ToString(info.Version) + "\n"
	if desc != want {
		t.Errorf("streams describe:\n%s\nwant:\n%s", desc, want)
	}

	for _, tc := range []struct {
		hours, msg string
		want       int32
	}{
		{"48", "stream cam-1: retention 48 h, was 12 h\n", 48},
		{"6", "stream cam-1: retention 6 h, was 48 h\n", 6},
		{"6", "stream cam-1 already keeps 6 h\n", 6},
	} {
		if _, msg := run("update-retention", "cam-1", tc.hours); msg != tc.msg {
			t.Errorf("streams update-retention cam-1 %s printed %q, want %q", tc.hours, msg, tc.msg)
		}
		if got := aws.ToInt32(describe(t, srv.control(), "cam-1").DataRetentionInHours); got != tc.want {
			t.Errorf("retention after update-retention %s: %d, want %d", tc.hours, got, tc.want)
		}
	}

	if _, msg := run("delete", "cam-2"); msg != "deleted stream cam-2\n" {
		t.Errorf("streams delete printed %q", msg)
	}
	if _, err := srv.control().DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-2")}); err == nil {
		t.Errorf("cam-2 still exists after streams delete")
	}

	for _, args := range [][]string{{"describe", "cam-2"}, {"delete", "cam-2"}, {"update-retention", "cam-2", "1"}} {
		_, stderr, code := cliRun(t, env, append(append([]string{"streams"}, args...), ep...)...)
		if want := "openkvs: stream \"cam-2\" does not exist: create it with `openkvs streams create cam-2`"; code != 1 || firstLine(stderr) != want {
			t.Errorf("streams %v: exit %d, %q; want 1 and %q", args, code, stderr, want)
		}
	}
	if _, stderr, code := cliRun(t, env, append([]string{"streams", "create"}, ep...)...); code != 1 || !strings.HasSuffix(stderr, "\nopenkvs: streams create needs NAME, got []\n") {
		t.Errorf("streams create without a name: exit %d, %q", code, stderr)
	}
}

func TestVersionCLI(t *testing.T) {
	t.Parallel()
	env := awsEnv(t)
	out, _ := cliOK(t, env, "version")
	// e2e builds in the work tree as it is: a commit is recorded where the
	// build finds the git clone (see cmd/openkvs TestFormatVersion for
	// each form exactly).
	re := regexp.MustCompile(`^openkvs (devel|v\S+) \((commit [0-9a-f]{12}, \S+(, modified)?|no commit recorded: go build in a git clone records it \(-buildvcs\)); go1\.\S+ \w+/\w+\)\n$`)
	if !re.MatchString(out) {
		t.Errorf("openkvs version printed %q, want a match of %s", out, re)
	}
	if again, _ := cliOK(t, env, "--version"); again != out {
		t.Errorf("openkvs --version printed %q, openkvs version %q", again, out)
	}
}

// TestClientEndpointEnv points the client commands at a server through the
// environment, as the AWS CLI is: flag, then OPENKVS_ENDPOINT, then
// AWS_ENDPOINT_URL_KINESIS_VIDEO, then AWS_ENDPOINT_URL.
func TestClientEndpointEnv(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	const dead = "http://127.0.0.1:1" // nothing listens on port 1
	env := without(awsEnv(t), "OPENKVS_ENDPOINT")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // the server it reaches, "" for srv
	}{
		{"AWS_ENDPOINT_URL", []string{"AWS_ENDPOINT_URL=" + srv.URL}, nil, ""},
		{"service variable first", []string{"AWS_ENDPOINT_URL=" + dead, "AWS_ENDPOINT_URL_KINESIS_VIDEO=" + srv.URL}, nil, ""},
		{"service variable wins", []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_ENDPOINT_URL_KINESIS_VIDEO=" + dead}, nil, dead},
		{"OPENKVS_ENDPOINT first", []string{"AWS_ENDPOINT_URL_KINESIS_VIDEO=" + dead, "OPENKVS_ENDPOINT=" + srv.URL}, nil, ""},
		{"flag first", []string{"OPENKVS_ENDPOINT=" + dead}, []string{"--endpoint", srv.URL}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := cliRun(t, append(env, tc.env...), append([]string{"streams", "list"}, tc.args...)...)
			if tc.want == "" {
				if code != 0 || !strings.Contains(stdout, "\ncam ") {
					t.Errorf("exit %d, %q %q; want the server's stream listed", code, stdout, stderr)
				}
				return
			}
			want := "openkvs: cannot reach " + tc.want + ": is `openkvs serve` running at " + tc.want + "? Give the server's URL with --endpoint (OPENKVS_ENDPOINT, AWS_ENDPOINT_URL)"
			if code != 1 || firstLine(stderr) != want {
				t.Errorf("exit %d, %q; want 1 and %q", code, stderr, want)
			}
		})
	}
}

// TestClientErrorsCLI checks that the client commands say what to do about
// the errors users meet first.
func TestClientErrorsCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--listfragments-calls-per-second", "0.01")
	getIngest(t, srv, "cam", "h264.mkv")
	env := awsEnv(t)
	notMKV := filepath.Join(t.TempDir(), "in.mp4")
	// The start of an MP4 file: an ftyp box.
	if err := os.WriteFile(notMKV, []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"), 0o644); err != nil {
		t.Fatal(err)
	}
	const mkvHint = "openkvs: the input is not a Matroska (MKV) stream from its start, which PutMedia takes; remux other containers without re-encoding: ffmpeg -i in.mp4 -c copy -f matroska - | openkvs put --stream cam -"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"put to an unknown stream", []string{"put", "--stream", "nope", notMKV},
			"openkvs: stream \"nope\" does not exist: create it with `openkvs streams create nope`, or give put --create"},
		{"get of an unknown stream", []string{"get", "--stream", "nope"},
			"openkvs: stream \"nope\" does not exist: create it with `openkvs streams create nope`"},
		{"fragments of an unknown stream", []string{"fragments", "--stream", "nope"},
			"openkvs: stream \"nope\" does not exist: create it with `openkvs streams create nope`"},
		{"not MKV", []string{"put", "--stream", "cam", notMKV}, mkvHint},
		{"ListFragments call rate", []string{"fragments", "--stream", "cam", "--page-size", "1"},
			"openkvs: the server limits ListFragments calls per stream per second (openkvs serve --listfragments-calls-per-second): try again later, or raise the limit"},
		{"get --format mp4", []string{"get", "--stream", "cam", "--format", "mp4"},
			"openkvs: get writes MKV (GetMedia); for MP4 of a time range use clip: openkvs clip --stream cam --from TIME --to TIME -o x.mp4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := cliRun(t, env, append([]string{tc.args[0], "--endpoint", srv.URL}, tc.args[1:]...)...)
			var last string
			for line := range strings.Lines(stderr) {
				if strings.HasPrefix(line, "openkvs: ") {
					last = strings.TrimSuffix(line, "\n")
				}
			}
			if code != 1 || last != tc.want {
				t.Errorf("exit %d, stderr:\n%s\nwant 1 and the line %q", code, stderr, tc.want)
			}
		})
	}

	t.Run("not reachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		gmFatalIf(t, err, "listen")
		closed := "http://" + ln.Addr().String()
		ln.Close()
		_, stderr, code := cliRun(t, env, "get", "--stream", "cam", "--endpoint", closed)
		want := "openkvs: cannot reach " + closed + ": is `openkvs serve` running at " + closed + "? Give the server's URL with --endpoint (OPENKVS_ENDPOINT, AWS_ENDPOINT_URL)"
		if code != 1 || firstLine(stderr) != want {
			t.Errorf("exit %d, %q; want 1 and %q", code, stderr, want)
		}
	})
}

// TestClientAuthErrorsCLI: a server with authentication says what the
// client commands read credentials from when it refuses theirs.
func TestClientAuthErrorsCLI(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	const sources = "openkvs reads credentials as the AWS CLI does: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the profile AWS_PROFILE (\"default\" if unset) in ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE) and ~/.aws/config (AWS_CONFIG_FILE)"
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no credentials", without(awsEnv(t), "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
			"openkvs: the server requires signed requests (it runs with --credentials) and no credentials were found: " + sources},
		{"unknown key", awsEnv(t),
			"openkvs: the server did not accept the credentials (UnrecognizedClientException): check the access key and secret, that --region (AWS_REGION) is the server's --region and that the clocks agree; " + sources},
		{"wrong secret", append(awsEnv(t), "AWS_ACCESS_KEY_ID="+adminKey, "AWS_SECRET_ACCESS_KEY=wrong"),
			"openkvs: the server did not accept the credentials (InvalidSignatureException): check the access key and secret, that --region (AWS_REGION) is the server's --region and that the clocks agree; " + sources},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := cliRun(t, tc.env, "streams", "list", "--endpoint", srv.URL)
			if code != 1 || firstLine(stderr) != tc.want {
				t.Errorf("exit %d, %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestClientConnLimitCLI: a server that closes connections beyond
// --max-conns-per-ip is named as a possible cause.
func TestClientConnLimitCLI(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--max-conns-per-ip", "1")
	// The one connection 127.0.0.1 may hold; the server counts it when it
	// accepts it, before the client's, which arrives later.
	dialFrom(t, srv, "127.0.0.1")
	_, stderr, code := cliRun(t, awsEnv(t), "streams", "list", "--endpoint", srv.URL)
	want := "openkvs: " + srv.URL + " closed the connection before it answered: it may be restarting, or refusing connections from this address beyond its limit (openkvs serve --max-conns-per-ip)"
	if code != 1 || firstLine(stderr) != want {
		t.Errorf("exit %d, %q; want 1 and %q", code, stderr, want)
	}
}

// TestGetRefusesTerminal: get does not write MKV to a terminal.
func TestGetRefusesTerminal(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	for _, args := range [][]string{{}, {"-o", "-"}, {"--raw"}} {
		cmd := exec.CommandContext(ctx(t), binary, append([]string{"get", "--stream", "cam", "--endpoint", srv.URL}, args...)...)
		cmd.Env = awsEnv(t)
		cmd.Stdout = openPTY(t)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		want := "openkvs: refusing to write MKV to a terminal: give -o FILE, or pipe it to a player (openkvs get --stream cam | ffplay -)\n"
		if err == nil || cmd.ProcessState.ExitCode() != 1 || stderr.String() != want {
			t.Errorf("get %v to a terminal: %v, %q; want exit 1 and %q", args, err, stderr.String(), want)
		}
	}
}

// TestClientCABundle: with AWS_CA_BUNDLE naming the certificate of a TLS
// server, put and get work end to end: the data-plane calls (PutMedia,
// GetMedia) trust what the SDK's control-plane calls trust.
func TestClientCABundle(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := selfSigned(t)
	srv := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile)
	env := append(awsEnv(t), "AWS_CA_BUNDLE="+certFile)
	file := filepath.Join("..", "testdata", "media", "h264.mkv")
	if _, stderr := cliOK(t, env, "put", "--endpoint", srv.URL, "--stream", "cam", "--create", file); !strings.Contains(stderr, "done: 3 fragments, 3 PERSISTED") {
		t.Errorf("put over TLS: %s", stderr)
	}
	out := filepath.Join(t.TempDir(), "out.mkv")
	cliOK(t, env, "get", "--endpoint", srv.URL, "--stream", "cam", "--idle", "1s", "-o", out)
	// The file put, as in TestGetCLISigned: an unknown-size Segment and the
	// Cluster timecodes put stamped with its clock.
	got := mustRead(t, out)
	header, clusters := restamped(t, media(t, "h264.mkv"), firstTimecode(t, got))
	if want := bytes.Join(append([][]byte{header}, clusters...), nil); !bytes.Equal(got, want) {
		t.Errorf("get over TLS wrote %d bytes that differ from the %d of the file put", len(got), len(want))
	}
	// Without the bundle the certificate is not trusted, and get says so.
	_, stderr, code := cliRun(t, awsEnv(t), "get", "--endpoint", srv.URL, "--stream", "cam", "-o", out)
	want2 := "openkvs: the certificate of " + srv.URL + " is not trusted: give its CA certificate (PEM) in AWS_CA_BUNDLE, as for the AWS CLI"
	if code != 1 || firstLine(stderr) != want2 {
		t.Errorf("get without AWS_CA_BUNDLE: exit %d, %q; want 1 and %q", code, stderr, want2)
	}
}
