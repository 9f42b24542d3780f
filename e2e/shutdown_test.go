package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
)

// SIGTERM ends a server with a PutMedia producer and a GetMedia reader
// waiting at the live edge promptly and cleanly: their streams would
// otherwise hold the shutdown until --shutdown-timeout and exit 1.
func TestShutdownEndsMediaSessions(t *testing.T) {
	srv := startServer(t, "--shutdown-timeout", "25s")
	createStream(t, srv, "cam", 1)

	// A producer that sent one fragment and keeps its body open.
	pr, pw := io.Pipe()
	defer pw.Close()
	persisted := make(chan struct{}, 1)
	put := make(chan error, 1)
	go func() {
		_, err := client.Put(context.Background(), client.PutOptions{Endpoint: srv.URL, Stream: "cam",
			OnAck: func(a client.Ack) {
				if a.EventType == "PERSISTED" {
					persisted <- struct{}{}
				}
			}}, pr)
		put <- err
	}()
	go func() {
		// A write fails only once the producer stopped reading: the
		// select below reports why.
		for _, b := range [][]byte{synth.Header(1), synth.Cluster(0, synth.Frames(1, 3, 33)...), synth.Cluster(1000, synth.Frames(1, 3, 33)...)} {
			if _, err := pw.Write(b); err != nil {
				return
			}
		}
	}()
	select {
	case <-persisted:
	case err := <-put:
		t.Fatalf("the producer ended before a PERSISTED: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no PERSISTED")
	}

	// A reader at the live edge, waiting for the next fragment.
	req, err := http.NewRequestWithContext(ctx(t), "POST", srv.URL+"/getMedia",
		bytes.NewBufferString(`{"StreamName":"cam","StartSelector":{"StartSelectorType":"NOW"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err) // the in-progress fragment's chunk has begun
	}

	start := time.Now()
	srv.Stop() // fails the test unless the server exits 0
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("shutdown took %v with live sessions open", d)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Logf("GetMedia body after shutdown: %v", err)
	}
}

// shutdownRead starts a GetMediaForFragmentList of the one fragment of
// stream cam in srv and returns its body once the payload has begun.
func shutdownRead(t *testing.T, srv *serverProc) io.ReadCloser {
	t.Helper()
	number := ""
	for n := range gmListAll(t, srv, "cam") {
		number = n
	}
	body := fmt.Sprintf(`{"StreamName":"cam","Fragments":[%q]}`, number)
	req, err := http.NewRequestWithContext(ctx(t), "POST", srv.URL+"/getMediaForFragmentList", strings.NewReader(body))
	gmFatalIf(t, err, "request")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	gmFatalIf(t, err, "GetMediaForFragmentList")
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GetMediaForFragmentList: %s", resp.Status)
	}
	return resp.Body
}

// shutdownFragment stores one fragment of about 3 MB in stream cam.
func shutdownFragment(t *testing.T, srv *serverProc) gmFrag {
	t.Helper()
	createStream(t, srv, "cam", 1)
	frag := gmFrags(synth.Video{Bitrate: 12_000_000}, 0, 1)[0]
	gmIngest(t, srv, "cam", "PERSISTED", []gmFrag{frag})
	return frag
}

// A request in flight when SIGTERM arrives finishes: the server stops
// accepting new connections, lets the request send its whole payload
// (about 3 s at 1 MB/s, within --shutdown-timeout) and then exits 0.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--shutdown-timeout", "20s", "--getmedia-bytes-per-second", "1000000")
	frag := shutdownFragment(t, srv)
	body := shutdownRead(t, srv)
	first := make([]byte, 1)
	_, err := io.ReadFull(body, first)
	gmFatalIf(t, err, "first byte of the payload")
	gmFatalIf(t, srv.cmd.Process.Signal(syscall.SIGTERM), "SIGTERM")
	// The listener closes at once; the request goes on.
	eventually(t, 5*time.Second, "new connections refused after SIGTERM", func() error {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err == nil {
			conn.Close()
			return errors.New("a new connection was accepted")
		}
		return nil
	})
	rest, err := io.ReadAll(body)
	gmFatalIf(t, err, "payload after SIGTERM")
	read := time.Now()
	chunks := gmChunks(t, append(first, rest...))
	if len(chunks) != 1 || !bytes.Equal(chunks[0].Cluster, frag.data) {
		t.Fatalf("payload of %d chunks after SIGTERM, want the whole fragment of %d bytes", len(chunks), len(frag.data))
	}
	exited, err := srv.waitExit(10 * time.Second)
	if err != nil {
		t.Errorf("openkvs exited with %v after the request finished, want status 0", err)
	}
	if exited.Before(read) {
		t.Errorf("openkvs exited before the request finished")
	}
}

// A request that does not finish within --shutdown-timeout is cut off:
// the server exits with status 1 once the timeout has passed, not before
// and not much later.
func TestShutdownTimeout(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	// 3 MB at 100 kB/s: half a minute to send.
	srv := startServer(t, "--shutdown-timeout", "1s", "--getmedia-bytes-per-second", "100000")
	frag := shutdownFragment(t, srv)
	body := shutdownRead(t, srv)
	signalled := time.Now()
	gmFatalIf(t, srv.cmd.Process.Signal(syscall.SIGTERM), "SIGTERM")
	exited, err := srv.waitExit(10 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("openkvs exited with %v when a request outlived --shutdown-timeout, want status 1", err)
	}
	if d := exited.Sub(signalled); d < timeout || d > timeout+3*time.Second {
		t.Errorf("openkvs exited %v after SIGTERM, want its %v --shutdown-timeout", d.Round(time.Millisecond), timeout)
	}
	// The payload is cut short: the chunked body never ends.
	if got, err := io.ReadAll(body); err == nil || len(got) >= len(frag.data) {
		t.Errorf("the request sent %d bytes (%v) of a %d-byte fragment in spite of the shutdown", len(got), err, len(frag.data))
	}
	if !strings.Contains(srv.logs.String(), "shutdown: context deadline exceeded") {
		t.Errorf("no error about the shutdown in the log")
	}
}
