package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
)

func TestPrintUsage(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("stream", "", "stream `name` (required)")
	fs.String("o", "-", "output `file`, - for stdout")
	fs.Bool("follow", false, "keep reading")
	fs.Duration("window", 5*time.Minute, "how long fragments stay in memory for live readers, a sentence long enough to wrap onto a second line")
	fs.Float64("rate", 12.5e6, "ingest rate in `bytes/s`")
	fs.Int64("memory", 1<<30, "memory in `bytes`")
	fs.Int("tracks", 3, "most tracks")
	fs.Bool("baseline", false, "internal: not for people")
	var b strings.Builder
	printUsage(&b, fs, "Usage: openkvs x\n")
	want := `Usage: openkvs x

Flags:
  --follow
      keep reading
      environment OPENKVS_FOLLOW
  --memory BYTES
      memory in bytes
      default 1073741824 (1 GiB); environment OPENKVS_MEMORY
  -o FILE
      output file, - for stdout
      default -; environment OPENKVS_O
  --rate BYTES/S
      ingest rate in bytes/s
      default 12500000 (12.5 MB/s); environment OPENKVS_RATE
  --stream NAME
      stream name (required)
      environment OPENKVS_STREAM
  --tracks N
      most tracks
      default 3; environment OPENKVS_TRACKS
  --window DURATION
      how long fragments stay in memory for live readers, a sentence long
      enough to wrap onto a second line
      default 5m; environment OPENKVS_WINDOW
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[float64]string{
		0: "0 B", 999: "999 B", 1000: "1 kB", 1024: "1 KiB", 65536: "64 KiB", 12.5e6: "12.5 MB", 50e6: "50 MB",
		25e6: "25 MB", 1 << 30: "1 GiB", 64 << 20: "64 MiB", 1234567: "1.2 MB", 3e12: "3 TB",
	} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%v) = %q, want %q", n, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for s, want := range map[string]time.Time{
		"-1m":                  now.Add(-time.Minute),
		"-1h30m":               now.Add(-90 * time.Minute),
		"-90s":                 now.Add(-90 * time.Second),
		"now":                  now,
		"2024-05-01T12:00:00Z": time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		"1714564800.5":         time.Unix(1714564800, 5e8),
		"-5":                   time.Unix(-5, 0), // epoch seconds have no unit
	} {
		got, err := parseTimeAt(s, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimeAt(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"soon", "1m", "+1m", "-1x", ""} {
		_, err := parseTimeAt(s, now)
		if want := fmt.Sprintf("time %q: want %s", s, timeHelp); err == nil || err.Error() != want {
			t.Errorf("parseTimeAt(%q): %v, want %q", s, err, want)
		}
	}
}

func TestParseStartRelative(t *testing.T) {
	before := time.Now()
	sel, err := parseStart("-1m", false)
	after := time.Now()
	if err != nil || sel.Type != client.StartServerTimestamp ||
		sel.Timestamp.Before(before.Add(-time.Minute)) || sel.Timestamp.After(after.Add(-time.Minute)) {
		t.Errorf("parseStart(-1m) = %+v, %v; want a server timestamp a minute before now", sel, err)
	}
	sel, err = parseStart("producer=-2h", false)
	if err != nil || sel.Type != client.StartProducerTimestamp || time.Since(sel.Timestamp).Round(time.Hour) != 2*time.Hour {
		t.Errorf("parseStart(producer=-2h) = %+v, %v; want a producer timestamp two hours before now", sel, err)
	}
}

func TestFormatVersion(t *testing.T) {
	goVersion := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	vcs := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-05-01T12:00:00Z"}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"released", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "openkvs v1.2.0 (" + goVersion + ")"},
		{"pseudo-version with commit", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260501120000-0123456789ab"}, Settings: vcs},
			"openkvs v0.0.0-20260501120000-0123456789ab (commit 0123456789ab, 2026-05-01T12:00:00Z; " + goVersion + ")"},
		{"devel, modified", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: append(vcs, debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
			"openkvs devel (commit 0123456789ab, 2026-05-01T12:00:00Z, modified; " + goVersion + ")"},
		{"devel without commit", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"openkvs devel (no commit recorded: go build in a git clone records it (-buildvcs); " + goVersion + ")"},
		{"no build info", nil, "openkvs devel (no commit recorded: go build in a git clone records it (-buildvcs); " + goVersion + ")"},
	} {
		if got := formatVersion(tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// sdkError is an API error as aws-sdk-go-v2 returns it.
func sdkError(op, code, msg string) error {
	return fmt.Errorf("get data endpoint: %w", &smithy.OperationError{ServiceID: "Kinesis Video", OperationName: op,
		Err: &smithy.GenericAPIError{Code: code, Message: msg}})
}

func TestExplain(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://127.0.0.1:4567/getDataEndpoint",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	const creds = "openkvs reads credentials as the AWS CLI does: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the profile AWS_PROFILE (\"default\" if unset) in ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE) and ~/.aws/config (AWS_CONFIG_FILE)"
	for _, tc := range []struct {
		name string
		args []string
		err  error
		hint string
	}{
		{"not reachable", []string{"get", "--stream", "cam"}, fmt.Errorf("list: %w", refused),
			"cannot reach http://127.0.0.1:4567: is `openkvs serve` running at http://127.0.0.1:4567? Give the server's URL with --endpoint (OPENKVS_ENDPOINT, AWS_ENDPOINT_URL)"},
		{"unknown stream, get", []string{"get", "--stream", "cam-9"}, sdkError("GetDataEndpoint", "ResourceNotFoundException", "The requested stream is not found or not active."),
			"stream \"cam-9\" does not exist: create it with `openkvs streams create cam-9`"},
		{"unknown stream, put", []string{"put", "--stream=cam-9", "-"}, sdkError("DescribeStream", "ResourceNotFoundException", "The requested stream is not found or not active."),
			"stream \"cam-9\" does not exist: create it with `openkvs streams create cam-9`, or give put --create"},
		{"unknown stream, streams", []string{"streams", "describe", "x"}, inStream("cam-8", sdkError("DescribeStream", "ResourceNotFoundException", "The requested stream is not found or not active.")),
			"stream \"cam-8\" does not exist: create it with `openkvs streams create cam-8`"},
		{"unknown stream, GetMedia", []string{"get", "-stream", "cam-7"}, &client.APIError{Op: "GetMedia", StatusCode: 404, Type: "ResourceNotFoundException", Message: "The requested stream is not found or not active."},
			"stream \"cam-7\" does not exist: create it with `openkvs streams create cam-7`"},
		{"other not found", []string{"get", "--stream", "cam"}, sdkError("GetMedia", "ResourceNotFoundException", "No fragment 12."), ""},
		{"unsigned", []string{"fragments"}, sdkError("GetDataEndpoint", "MissingAuthenticationTokenException", "Missing Authentication Token"),
			"the server requires signed requests (it runs with --credentials) and no credentials were found: " + creds},
		{"unknown key", []string{"fragments"}, sdkError("GetDataEndpoint", "UnrecognizedClientException", "The security token included in the request is invalid."),
			"the server did not accept the credentials (UnrecognizedClientException): check the access key and secret, that --region (AWS_REGION) is the server's --region and that the clocks agree; " + creds},
		{"bad signature, PutMedia", []string{"put"}, &client.APIError{Op: "PutMedia", StatusCode: 403, Type: "InvalidSignatureException", Message: "..."},
			"the server did not accept the credentials (InvalidSignatureException): check the access key and secret, that --region (AWS_REGION) is the server's --region and that the clocks agree; " + creds},
		{"not authorized", []string{"get"}, sdkError("GetDataEndpoint", "NotAuthorizedException", "User: A is not authorized"),
			"the access key may not do this: the server's --credentials file must grant it the action in a policy statement"},
		{"call rate", []string{"fragments"}, sdkError("ListFragments", "ClientLimitExceededException", "slow down"),
			"the server limits ListFragments calls per stream per second (openkvs serve --listfragments-calls-per-second): try again later, or raise the limit"},
		{"connections", []string{"get"}, &client.APIError{Op: "GetMedia", StatusCode: 400, Type: "ConnectionLimitExceededException"},
			"too many GetMedia connections to this stream are open (openkvs serve --getmedia-connections): close some, or raise the limit"},
		{"connection closed at once", []string{"streams", "list"}, fmt.Errorf("list streams: %w", &url.Error{Op: "Post", URL: "http://127.0.0.1:4567/listStreams", Err: io.EOF}),
			"http://127.0.0.1:4567 closed the connection before it answered: it may be restarting, or refusing connections from this address beyond its limit (openkvs serve --max-conns-per-ip)"},
		{"connection reset", []string{"put"}, fmt.Errorf("PutMedia: %w", &url.Error{Op: "Post", URL: "https://kvs.example:4567/putMedia", Err: syscall.ECONNRESET}),
			"https://kvs.example:4567 closed the connection before it answered: it may be restarting, or refusing connections from this address beyond its limit (openkvs serve --max-conns-per-ip)"},
		{"connection closed while sending", []string{"put"}, fmt.Errorf("PutMedia: %w", &url.Error{Op: "Post", URL: "http://127.0.0.1:4567/putMedia", Err: &net.OpError{Op: "write", Err: os.NewSyscallError("write", syscall.EPIPE)}}),
			"http://127.0.0.1:4567 closed the connection before it answered: it may be restarting, or refusing connections from this address beyond its limit (openkvs serve --max-conns-per-ip)"},
		{"not MKV", []string{"put", "--stream", "cam", "in.mp4"}, fmt.Errorf("read input: %w", mkv.ErrInvalid),
			"the input is not a Matroska (MKV) stream from its start, which PutMedia takes; remux other containers without re-encoding: ffmpeg -i in.mp4 -c copy -f matroska - | openkvs put --stream cam -"},
		{"4006", []string{"put", "--stream", "cam", "-"}, &client.ErrAck{Ack: client.Ack{EventType: "ERROR", ErrorID: 4006}},
			"the input is not a Matroska (MKV) stream from its start, which PutMedia takes; remux other containers without re-encoding: ffmpeg -i in.mp4 -c copy -f matroska - | openkvs put --stream cam -"},
		{"untrusted certificate", []string{"get"}, &url.Error{Op: "Post", URL: "https://127.0.0.1:4567/getMedia", Err: x509.UnknownAuthorityError{}},
			"the certificate of https://127.0.0.1:4567 is not trusted: give its CA certificate (PEM) in AWS_CA_BUNDLE, as for the AWS CLI"},
		{"other", []string{"get"}, errors.New("--idle must be positive"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explain(tc.args, tc.err)
			want := tc.err.Error()
			if tc.hint != "" {
				want = tc.hint + "\n  cause: " + want
			}
			if got.Error() != want || !errors.Is(got, tc.err) {
				t.Errorf("explain:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		ret  int
	}{
		{[]string{"cam", "--retention", "12"}, []string{"cam"}, 12},
		{[]string{"--retention", "12", "cam", "48"}, []string{"cam", "48"}, 12},
		{[]string{"cam", "--", "--retention"}, []string{"cam", "--retention"}, 24},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		ret := fs.Int("retention", 24, "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *ret != tc.ret {
			t.Errorf("parseArgs(%q) = %q, retention %d, %v; want %q, %d", tc.args, pos, *ret, err, tc.pos, tc.ret)
		}
	}
}

// The client commands find the server as the AWS CLI does, behind their
// own flag and variable: --endpoint, OPENKVS_ENDPOINT,
// AWS_ENDPOINT_URL_KINESIS_VIDEO, AWS_ENDPOINT_URL, the default.
func TestEndpointPrecedence(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, "http://127.0.0.1:4567"},
		{"AWS_ENDPOINT_URL", nil, map[string]string{"AWS_ENDPOINT_URL": "http://global:1"}, "http://global:1"},
		{"service variable", nil, map[string]string{"AWS_ENDPOINT_URL": "http://global:1", "AWS_ENDPOINT_URL_KINESIS_VIDEO": "http://kvs:2"}, "http://kvs:2"},
		{"ignored as by the SDK", nil, map[string]string{"AWS_ENDPOINT_URL": "http://global:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "http://127.0.0.1:4567"},
		{"OPENKVS_ENDPOINT", nil, map[string]string{"AWS_ENDPOINT_URL": "http://global:1", "AWS_ENDPOINT_URL_KINESIS_VIDEO": "http://kvs:2", "OPENKVS_ENDPOINT": "http://openkvs:3"}, "http://openkvs:3"},
		{"flag", []string{"--endpoint", "http://flag:4"}, map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": "http://kvs:2", "OPENKVS_ENDPOINT": "http://openkvs:3"}, "http://flag:4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS_VIDEO", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "OPENKVS_ENDPOINT", "AWS_PROFILE"} {
				t.Setenv(name, tc.env[name])
				if tc.env[name] == "" {
					os.Unsetenv(name)
				}
			}
			var c clientConfig
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			c.flags(fs)
			if err := parseFlags(fs, tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := c.aws(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			// What a client made from the configuration uses, after the
			// SDK's own resolution.
			got := aws.ToString(kinesisvideo.NewFromConfig(cfg).Options().BaseEndpoint)
			if got != tc.want || c.endpoint != tc.want {
				t.Errorf("endpoint %q (client %q), want %q", c.endpoint, got, tc.want)
			}
		})
	}
}

// --peer names the one peer the bench knows and a binary that exists; the
// bench refuses anything else before it starts a server.
func TestBenchPeerFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "mediamtx")
	for _, tc := range []struct{ peer, want string }{
		{"mediamtx=" + missing, "--peer: exec: \"" + missing + "\": stat " + missing + ": no such file or directory"},
		{"nginx=/usr/sbin/nginx", `--peer "nginx=/usr/sbin/nginx": want mediamtx=PATH (the only peer the bench knows)`},
		{"mediamtx", `--peer "mediamtx": want mediamtx=PATH (the only peer the bench knows)`},
	} {
		err := benchCmd([]string{"--peer", tc.peer})
		if err == nil || err.Error() != tc.want {
			t.Errorf("bench --peer %s: %v, want %s", tc.peer, err, tc.want)
		}
	}
}
