package e2e

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// cliProc is a running openkvs client command.
type cliProc struct {
	cmd    *exec.Cmd
	stderr *gmRecorder
	exited chan error
}

// startCLI runs openkvs with args; it is killed if still running when the
// test ends.
func startCLI(t *testing.T, stdin io.Reader, args ...string) *cliProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = awsEnv(t)
	cmd.Stdin = stdin
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	gmFatalIf(t, cmd.Start(), "start openkvs %s", args[0])
	p := &cliProc{cmd: cmd, stderr: gmRecord(pr), exited: make(chan error, 1)}
	go func() {
		err := cmd.Wait() // returns once stderr is copied
		pw.Close()
		p.exited <- err
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() {
			p.stderr.mu.Lock()
			t.Logf("openkvs %s stderr:\n%s", args[0], p.stderr.buf)
			p.stderr.mu.Unlock()
		}
	})
	return p
}

// wait waits for the command to exit and fails the test unless it exits
// with status 0 within d.
func (p *cliProc) wait(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case err := <-p.exited:
		p.stderr.mu.Lock()
		defer p.stderr.mu.Unlock()
		if err != nil {
			t.Fatalf("openkvs %s: %v\n%s", p.cmd.Args[1], err, p.stderr.buf)
		}
		return string(p.stderr.buf)
	case <-time.After(d):
		t.Fatalf("openkvs %s still running %v later", p.cmd.Args[1], d)
		return ""
	}
}

// A camera pipe (ffmpeg -re with the README's options) into `openkvs put`,
// and `openkvs get --follow -o FILE` reading the stream, while the server
// is stopped for several seconds and started again on the same data
// directory and address:
// both carry on, say so on stderr, every fragment the camera made is
// stored exactly once, in order, with the producer timestamps put stamped,
// and the file holds each of them once, in order, byte for byte.
func TestCLIServerRestart(t *testing.T) {
	t.Parallel()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t, "--addr", freeAddr(t))
	createStream(t, srv, "cam", 24)
	out := filepath.Join(t.TempDir(), "out.mkv")
	get := startCLI(t, nil, "get", "--endpoint", srv.URL, "--stream", "cam", "--follow", "--start", "earliest", "-o", out)

	// 1 s fragments, each starting with a key frame.
	cam := exec.CommandContext(ctx(t), ffmpeg, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=30", "-t", "8",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-sc_threshold", "0",
		"-cluster_time_limit", "1100", "-cluster_size_limit", "50000000", "-f", "matroska", "-")
	camOut, err := cam.StdoutPipe()
	gmFatalIf(t, err, "ffmpeg stdout")
	var sent bytes.Buffer
	gmFatalIf(t, cam.Start(), "start ffmpeg")
	defer cam.Wait()
	put := startCLI(t, io.TeeReader(camOut, &sent), "put", "--endpoint", srv.URL, "--stream", "cam", "-")

	// put's progress line, once a second: "3s: 3 fragments sent, 2 PERSISTED".
	persisted := regexp.MustCompile(`, ([0-9]+) PERSISTED\n`)
	put.stderr.waitFor(t, "2 fragments PERSISTED", func(b []byte, _ error) bool {
		m := persisted.FindAllSubmatch(b, -1)
		return len(m) > 0 && string(m[len(m)-1][1]) >= "2"
	})
	// Down for longer than the clients once gave up after (5 attempts,
	// about 2 s): until both have failed to connect 5 times.
	srv.Stop()
	for _, p := range []*cliProc{put, get} {
		p.stderr.waitFor(t, "a fifth attempt to connect", func(b []byte, _ error) bool { return bytes.Contains(b, []byte("(attempt 5)")) })
	}
	srv.start()

	putLog := put.wait(t, 60*time.Second)
	_, frags := restamped(t, sent.Bytes(), 0)
	if len(frags) != 8 {
		t.Fatalf("ffmpeg made %d fragments, want 8", len(frags))
	}
	for _, want := range []string{"connection lost: ", "reconnected after ", fmt.Sprintf("done: %d fragments, %d PERSISTED", len(frags), len(frags))} {
		if !strings.Contains(putLog, want) {
			t.Errorf("openkvs put printed %q, want %q in it", putLog, want)
		}
	}
	if strings.Contains(putLog, "key frame") {
		t.Errorf("openkvs put warned about key frames: %q", putLog)
	}

	// The file: the header once, then every fragment as stamped by put.
	eventually(t, 20*time.Second, "every fragment in the file get --follow writes", func() error {
		b, err := os.ReadFile(out)
		if err != nil || len(b) == 0 {
			return fmt.Errorf("nothing written (%v)", err)
		}
		header, frags := restamped(t, sent.Bytes(), firstTimecode(t, b))
		want := bytes.Join(append([][]byte{header}, frags...), nil)
		if !bytes.Equal(b, want) {
			return fmt.Errorf("%d bytes written, want %d", len(b), len(want))
		}
		return nil
	})
	gmFatalIf(t, get.cmd.Process.Signal(os.Interrupt), "SIGINT")
	getLog := get.wait(t, 10*time.Second)
	// The fragment being received when the server stopped may reach get
	// twice, as far as it went and then whole from put: get counts both.
	for _, w := range []string{"connection lost: ", "reconnected after ", "done: "} {
		if !strings.Contains(getLog, w) {
			t.Errorf("openkvs get printed %q, want %q in it", getLog, w)
		}
	}

	srv.Stop()
	stored, data := stored(t, srv, "cam")
	if len(stored) != len(frags) {
		t.Fatalf("%d fragments stored, want %d", len(stored), len(frags))
	}
	t0 := stored[0].ProducerTime
	_, frags = restamped(t, sent.Bytes(), uint64(t0.UnixMilli()))
	for k := range frags {
		if d := stored[k].ProducerTime.Sub(t0); d != time.Duration(k)*time.Second {
			t.Errorf("fragment %d: producer timestamp %v after the first, want %v", k, d, time.Duration(k)*time.Second)
		}
		if !bytes.Equal(data[k], frags[k]) {
			t.Errorf("fragment %d (%s) differs from what ffmpeg made, stamped from %d", k, stored[k].Number, t0.UnixMilli())
		}
	}
}
