// Package e2e holds the end-to-end tests: each starts a real `openkvs serve`
// process on a free loopback port with a temporary data directory and talks
// to it over HTTP with the clients users run (aws-sdk-go-v2, the AWS CLI,
// boto3).
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/openkvs/openkvs/internal/testenv"
)

// binary is the openkvs executable built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "openkvs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Tests that run as root run some servers as nobody (asNobody), who
	// must reach the binary: MkdirTemp makes the directory 0700. (A copy
	// of the binary would do, but exec'ing a file just written races with
	// other tests' forks: ETXTBSY, golang/go#22315.)
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "openkvs")
	build := exec.Command("go", "build", "-o", binary, "github.com/openkvs/openkvs/cmd/openkvs")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build openkvs:", err)
		os.Exit(1)
	}
	code := testenv.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverProc is one running `openkvs serve`.
type serverProc struct {
	t    *testing.T
	Data string   // data directory, kept across restarts
	Args []string // extra serve flags
	Env  []string // extra environment variables (KEY=value)
	URL  string   // http://127.0.0.1:port (https with --tls-cert)
	// setup, when set, changes the command before each start (asNobody).
	setup func(*exec.Cmd)
	cmd   *exec.Cmd
	logs  *logBuffer
	done  chan error
}

// logBuffer keeps the server's log lines for failure reports.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
}

// len is how many lines it holds.
func (l *logBuffer) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// since returns the lines after the first n.
func (l *logBuffer) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines[n:])
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startServer starts openkvs with a fresh data directory and stops it when
// the test ends.
func startServer(t *testing.T, args ...string) *serverProc {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv is startServer with extra environment variables.
func startServerEnv(t *testing.T, env []string, args ...string) *serverProc {
	t.Helper()
	return launch(&serverProc{t: t, Data: t.TempDir(), Args: args, Env: env})
}

// startServerAt is startServer on a given data directory.
func startServerAt(t *testing.T, data string, args ...string) *serverProc {
	t.Helper()
	return launch(&serverProc{t: t, Data: data, Args: args})
}

// launch starts p and stops it when the test ends, printing its log if the
// test failed.
func launch(p *serverProc) *serverProc {
	t := p.t
	t.Helper()
	p.start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", p.logs)
		}
	})
	return p
}

// start runs the binary and waits, with a deadline, for its "listening"
// log line, which carries the port it bound.
func (p *serverProc) start() {
	p.t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", p.Data, "--log-format", "json"}, p.Args...)
	p.cmd = exec.Command(binary, args...)
	if p.Env != nil {
		p.cmd.Env = append(os.Environ(), p.Env...)
	}
	if p.setup != nil {
		p.setup(p.cmd)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.logs = &logBuffer{}
	p.done = make(chan error, 1)
	addr := make(chan string, 1)
	cmd, logs, done := p.cmd, p.logs, p.done // Stop may clear p.cmd meanwhile
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			logs.add(line)
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.URL
			}
		}
		io.Copy(io.Discard, stderr)
		done <- cmd.Wait()
	}()
	select {
	case u := <-addr:
		p.URL = u // http or https://127.0.0.1:port
	case err := <-p.done:
		p.t.Fatalf("openkvs exited before listening: %v\n%s", err, p.logs)
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		p.t.Fatalf("openkvs did not start listening within 20s\n%s", p.logs)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *serverProc) Stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("openkvs exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("openkvs did not exit within 30s of SIGTERM")
	}
	p.cmd = nil
}

// waitExit waits up to d for the server to exit on its own, after a
// signal the test sent, and returns when it exited and its exit error
// (nil for status 0). It fails the test if the server is still running
// then.
func (p *serverProc) waitExit(d time.Duration) (time.Time, error) {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.cmd = nil
		return time.Now(), err
	case <-time.After(d):
		p.t.Fatalf("openkvs still running %v later", d)
		return time.Time{}, nil
	}
}

// Kill ends the server with SIGKILL, as a crash would.
func (p *serverProc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// Restart stops the server and starts it again on the same data directory.
func (p *serverProc) Restart() {
	p.Stop()
	p.start()
}

// awsConfig is an SDK configuration pointed at p with test credentials and
// no retries, so that every error reaches the test as the server sent it.
//
// Its HTTP client works around a race between smithy-go and net/http that
// kills responses which start at once, as they do from a nearby server:
// smithy-go closes the request body as soon as the response headers are
// in, and its closed body's WriteTo returns io.EOF, which net/http's
// writeLoop, still probing the body for extra bytes after the last one
// went out, takes for a write error and so closes the connection under the
// response ("use of closed network connection", aws/aws-sdk-go-v2#2737).
// Hiding WriteTo makes the probe use Read, whose io.EOF is the normal end.
// It struck GetMedia's streaming responses most, and any call now and then.
func (p *serverProc) awsConfig() aws.Config {
	return aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint:     aws.String(p.URL),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: readOnlyBody{http.DefaultTransport}},
	}
}

// readOnlyBody hides the request body's WriteTo (see awsConfig).
type readOnlyBody struct{ http.RoundTripper }

func (t readOnlyBody) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r = r.Clone(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return t.RoundTripper.RoundTrip(r)
}

// control returns a kinesisvideo client for p.
func (p *serverProc) control() *kinesisvideo.Client {
	return kinesisvideo.NewFromConfig(p.awsConfig())
}

// ctx returns a context bounded by a deadline for one test step.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// maxPages bounds every paging loop of the tests: a NextToken that does
// not move on (a cursor that points back) fails the test within seconds
// instead of looping until the test binary's timeout.
const maxPages = 1000

// pageBound is the bound of one paging loop: at most maxPages pages and
// 20 s, whichever ends first.
type pageBound struct {
	t        *testing.T
	what     string
	pages    int
	deadline time.Time
}

func newPageBound(t *testing.T, what string) *pageBound {
	return &pageBound{t: t, what: what, deadline: time.Now().Add(20 * time.Second)}
}

// next counts the page about to be asked for, failing the test when the
// loop is past its bound.
func (b *pageBound) next() {
	b.t.Helper()
	b.pages++
	if b.pages > maxPages {
		b.t.Fatalf("%s: more than %d pages: NextToken does not end", b.what, maxPages)
	}
	if time.Now().After(b.deadline) {
		b.t.Fatalf("%s: still paging after 20 s (%d pages): NextToken does not end", b.what, b.pages-1)
	}
}
