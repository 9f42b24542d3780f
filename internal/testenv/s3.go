package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/wait"
)

// The S3 server tests start when OPENKVS_TEST_S3 names none: versitygw,
// built by .ci/run (and the command in versitygwMissing) into the tools
// directory.
const (
	versitygwVersion = "v1.8.0"
	s3Bucket         = "openkvs-test"
	s3AccessKey      = "openkvs"
	s3SecretKey      = "openkvs-test-secret"
)

// s3env is the versitygw this test process started, if any.
var s3env struct {
	sync.Mutex
	url  string // s3:// URL of its bucket, "" until it accepts connections
	cmd  *exec.Cmd
	dir  string
	exit chan struct{} // closed when cmd has exited
}

// s3Run keeps the locations of one test process apart from those of
// earlier runs on a long-lived bucket; s3Seq keeps its tests apart.
var (
	s3Run = strconv.FormatInt(time.Now().UnixNano(), 36)
	s3Seq atomic.Int64
)

// S3 returns the s3:// URL (for blob/s3.Open) of a fresh, empty location:
// a prefix of its own in a test bucket. The bucket is $OPENKVS_TEST_S3
// (an s3:// URL whose credentials the environment holds) when set; else a
// versitygw that this test process starts once, from $OPENKVS_TOOLS
// (default /var/cache/openkvs-tools) or PATH, with its credentials put in
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the process and the
// servers it starts. Without either the test fails under CI=true and is
// skipped elsewhere. A package that calls S3 runs its tests through Main,
// which stops the server.
func S3(t testing.TB) string {
	t.Helper()
	base := os.Getenv("OPENKVS_TEST_S3")
	if base == "" {
		base = startVersitygw(t)
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("OPENKVS_TEST_S3=%q: want s3://bucket/prefix?endpoint=...", base)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "-")
	u.Path = path.Join("/", u.Path, s3Run, fmt.Sprintf("%d-%s", s3Seq.Add(1), name))
	return u.String()
}

// startVersitygw starts this process's versitygw unless it runs, and
// returns its bucket's URL.
func startVersitygw(t testing.TB) string {
	t.Helper()
	s3env.Lock()
	defer s3env.Unlock()
	if s3env.url != "" {
		return s3env.url
	}
	bin := versitygw(t)
	requireMain(t)
	dir, err := os.MkdirTemp("", "openkvs-s3-")
	if err != nil {
		t.Fatal(err)
	}
	// A bucket of the posix backend is a directory.
	if err := os.Mkdir(filepath.Join(dir, s3Bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logFile, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s3AccessKey, "ROOT_SECRET_KEY="+s3SecretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the test process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s3env.cmd, s3env.dir, s3env.exit = cmd, dir, exit
	ready := false
	defer func() {
		if !ready {
			stopS3()
		}
	}()
	wait.For(t, "versitygw to accept connections on "+addr, func() bool {
		select {
		case <-exit:
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("versitygw exited before serving on %s: %s", addr, log)
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	ready = true
	onExit(func() {
		s3env.Lock()
		stopS3()
		s3env.Unlock()
	})
	os.Setenv("AWS_ACCESS_KEY_ID", s3AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", s3SecretKey)
	os.Unsetenv("AWS_SESSION_TOKEN")
	s3env.url = fmt.Sprintf("s3://%s?endpoint=http://%s&region=us-east-1", s3Bucket, addr)
	return s3env.url
}

// versitygw returns the path of the versitygw binary, or ends the test:
// failed under CI, skipped elsewhere.
func versitygw(t testing.TB) string {
	t.Helper()
	tools := os.Getenv("OPENKVS_TOOLS")
	if tools == "" {
		tools = "/var/cache/openkvs-tools"
	}
	bin := filepath.Join(tools, "versitygw-"+versitygwVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	msg := fmt.Sprintf("versitygw (an S3 server) not found at %s or on PATH, and OPENKVS_TEST_S3 is not set; build it with: "+
		"GOBIN=/tmp/vgw go install github.com/versity/versitygw/cmd/versitygw@%s && mv /tmp/vgw/versitygw %s", bin, versitygwVersion, bin)
	missing(t, msg)
	return ""
}

// stopS3 stops the versitygw this process started, if any, and removes
// its data.
func stopS3() {
	if s3env.cmd == nil {
		return
	}
	s3env.cmd.Process.Kill()
	<-s3env.exit
	os.RemoveAll(s3env.dir)
	s3env.url, s3env.cmd, s3env.dir, s3env.exit = "", nil, "", nil
}
