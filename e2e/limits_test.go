package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// dial opens a raw connection to srv, closed when the test ends.
func dial(t *testing.T, srv *serverProc) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readResponse reads one response from conn, failing the test after 20 s.
func readResponse(t *testing.T, conn net.Conn) (*http.Response, string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(body)
}

// waitClosed waits until the server closes conn, failing the test after 20 s.
func waitClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, conn); err != nil {
		t.Errorf("%s: the server did not close the connection: %v", what, err)
	}
}

// TestSlowClients holds connections that send their headers a byte at a
// time, a body that stalls and an oversized header, and checks that each
// is cut off by its limit while a normal client is answered throughout.
// The limits are short so that the test ends fast; the normal client's
// success, not its speed, is what is asserted.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--read-header-timeout", "300ms", "--request-timeout", "300ms", "--idle-timeout", "300ms",
		"--max-header-bytes", "8192")

	// Slowloris: headers that never end.
	const slow = 30
	closed := make(chan struct{}, slow)
	for range slow {
		conn := dial(t, srv)
		go func() {
			io.Copy(io.Discard, conn) // returns when the server hangs up
			closed <- struct{}{}
		}()
		go func() {
			if _, err := io.WriteString(conn, "POST /listStreams HTTP/1.1\r\nHost: kvs\r\nX-Slow: "); err != nil {
				return
			}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := conn.Write([]byte("a")); err != nil {
					return // closed by the server or by the test's end
				}
			}
		}()
	}

	// A body that stalls after 10 of its 100 bytes.
	stalled := dial(t, srv)
	io.WriteString(stalled, "POST /describeStream HTTP/1.1\r\nHost: kvs\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"StreamNa")

	// Meanwhile a normal client is served.
	c := srv.control()
	for i := range 10 {
		if _, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(int32(i + 1))}); err != nil {
			t.Fatalf("normal client, call %d: %v", i, err)
		}
	}

	// A header over --max-header-bytes (plus the 4096 bytes net/http allows on top).
	big := dial(t, srv)
	go io.WriteString(big, "POST /listStreams HTTP/1.1\r\nHost: kvs\r\nX-Big: "+strings.Repeat("a", 16<<10)+"\r\n\r\n{}")
	if resp, body := readResponse(t, big); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body != "431 Request Header Fields Too Large" {
		t.Errorf("oversized header: %s %q, want 431", resp.Status, body)
	}

	resp, body := readResponse(t, stalled)
	want := `{"Message":"The request body was not received within 300ms.","__type":"RequestTimeoutException"}`
	if resp.StatusCode != http.StatusRequestTimeout || body != want || !resp.Close {
		t.Errorf("stalled body: %s %s (close %v), want 408 %s and Connection: close", resp.Status, body, resp.Close, want)
	}
	waitClosed(t, stalled, "stalled body")

	// A keep-alive connection that stays idle is closed.
	idle := dial(t, srv)
	io.WriteString(idle, "POST /listStreams HTTP/1.1\r\nHost: kvs\r\nContent-Length: 2\r\n\r\n{}")
	if resp, body := readResponse(t, idle); resp.StatusCode != http.StatusOK || resp.Close {
		t.Errorf("keep-alive request: %s %s (close %v), want 200 kept alive", resp.Status, body, resp.Close)
	}
	waitClosed(t, idle, "idle connection")

	for i := range slow {
		select {
		case <-closed:
		case <-time.After(20 * time.Second):
			t.Fatalf("%d of %d slowloris connections still open after 20 s", slow-i, slow)
		}
	}
	// And the server still answers.
	if _, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{}); err != nil {
		t.Errorf("normal client after the slow ones: %v", err)
	}
}
