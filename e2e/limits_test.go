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

// readResponse reads one response from conn, failing the test if it has
// not come by deadline.
func readResponse(t *testing.T, conn net.Conn, deadline time.Time) (*http.Response, string) {
	t.Helper()
	if err := conn.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response by %v: %v", deadline.Format(time.TimeOnly), err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(body)
}

// Tolerances of a timeout as seen from the client: the server's clock
// starts a moment before the client's (accept before dial returns), and
// its timer may fire late on a loaded machine. Far below the defaults
// (10 s, 1 min, 2 min), so a flag that is not applied fails.
const (
	timeoutEarly = 100 * time.Millisecond
	timeoutLate  = 1500 * time.Millisecond
)

// closedAfter waits until the server closes conn and returns how long
// after start that was, failing the test unless it was within the
// tolerances of limit.
func closedAfter(t *testing.T, conn net.Conn, what string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	if err := conn.SetReadDeadline(start.Add(limit + timeoutLate)); err != nil {
		t.Fatal(err)
	}
	_, err := io.Copy(io.Discard, conn)
	d := time.Since(start)
	if err != nil {
		t.Errorf("%s: the server did not close the connection within %v of its %v limit: %v", what, timeoutLate, limit, err)
	} else if d < limit-timeoutEarly {
		t.Errorf("%s: closed after %v, before its %v limit", what, d.Round(time.Millisecond), limit)
	}
	return d
}

// TestSlowClients holds connections that send nothing, part of their
// headers, their headers a byte at a time, a body that stalls, and an
// oversized header, and checks that each is cut off by its limit, within a
// tolerance of the configured value, while a normal client is answered
// throughout. The limits are short so that the test ends fast; the normal
// client's success, not its speed, is what is asserted.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	const limit = 300 * time.Millisecond
	srv := startServer(t, "--read-header-timeout", "300ms", "--request-timeout", "300ms", "--idle-timeout", "300ms",
		"--max-header-bytes", "8192")

	// A connection that sends nothing, and one that stops inside its
	// headers: --read-header-timeout closes both.
	for _, tc := range []struct{ name, sent string }{
		{"nothing sent", ""},
		{"part of the headers", "POST /listStreams HTTP/1.1\r\nHost: kvs\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn := dial(t, srv)
			start := time.Now()
			if _, err := io.WriteString(conn, tc.sent); err != nil {
				t.Fatal(err)
			}
			closedAfter(t, conn, tc.name, start, limit)
		})
	}

	// Slowloris: headers that never end, a byte every 20 ms.
	const slow = 30
	closed := make(chan time.Duration, slow)
	for range slow {
		conn := dial(t, srv)
		start := time.Now()
		go func() {
			// Returns when the server hangs up, or at the deadline, which
			// the check below reports.
			if err := conn.SetReadDeadline(start.Add(limit + timeoutLate)); err == nil {
				io.Copy(io.Discard, conn)
			}
			closed <- time.Since(start)
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
	if _, err := io.WriteString(stalled, "POST /describeStream HTTP/1.1\r\nHost: kvs\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"StreamNa"); err != nil {
		t.Fatal(err)
	}
	stalledAt := time.Now()

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
	if resp, body := readResponse(t, big, time.Now().Add(20*time.Second)); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || body != "431 Request Header Fields Too Large" {
		t.Errorf("oversized header: %s %q, want 431", resp.Status, body)
	}

	// The stalled body is answered 408 once --request-timeout has passed
	// since its headers arrived, and its connection closed.
	resp, body := readResponse(t, stalled, stalledAt.Add(limit+timeoutLate))
	if d := time.Since(stalledAt); d < limit-timeoutEarly || d > limit+timeoutLate {
		t.Errorf("stalled body answered after %v, want its %v --request-timeout", d.Round(time.Millisecond), limit)
	}
	want := `{"Message":"The request body was not received within 300ms.","__type":"RequestTimeoutException"}`
	if resp.StatusCode != http.StatusRequestTimeout || body != want || !resp.Close {
		t.Errorf("stalled body: %s %s (close %v), want 408 %s and Connection: close", resp.Status, body, resp.Close, want)
	}
	closedAfter(t, stalled, "stalled body", stalledAt, limit)

	// A keep-alive connection that stays idle after a response is closed
	// once --idle-timeout has passed.
	idle := dial(t, srv)
	if _, err := io.WriteString(idle, "POST /listStreams HTTP/1.1\r\nHost: kvs\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatal(err)
	}
	resp, body = readResponse(t, idle, time.Now().Add(20*time.Second))
	answered := time.Now()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Errorf("keep-alive request: %s %s (close %v), want 200 kept alive", resp.Status, body, resp.Close)
	}
	closedAfter(t, idle, "idle connection", answered, limit)

	for i := range slow {
		if d := <-closed; d < limit-timeoutEarly || d > limit+timeoutLate {
			t.Errorf("slowloris connection %d closed after %v, want its %v --read-header-timeout", i, d.Round(time.Millisecond), limit)
		}
	}
	// And the server still answers.
	if _, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{}); err != nil {
		t.Errorf("normal client after the slow ones: %v", err)
	}
}
