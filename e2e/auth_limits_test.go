package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// dialFrom opens a connection to srv from the loopback address from
// (127.0.0.0/8 is all loopback on Linux), closed when the test ends.
func dialFrom(t *testing.T, srv *serverProc, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestConnsPerIP sets --max-conns-per-ip to 3: a fourth connection from the
// same address is closed unanswered, one from another address is served,
// and once one of the three closes a new one is served again.
func TestConnsPerIP(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--max-conns-per-ip", "3")
	var held []net.Conn
	for i := range 3 {
		conn := dialFrom(t, srv, "127.0.0.1")
		if err := getHealthz(conn, bufio.NewReader(conn)); err != nil {
			t.Fatalf("connection %d of 3: %v", i+1, err)
		}
		held = append(held, conn)
	}
	over := dialFrom(t, srv, "127.0.0.1")
	if err := getHealthz(over, bufio.NewReader(over)); err == nil {
		t.Errorf("a fourth connection from 127.0.0.1 was served; want it closed")
	}
	other := dialFrom(t, srv, "127.0.0.2")
	if err := getHealthz(other, bufio.NewReader(other)); err != nil {
		t.Errorf("a connection from 127.0.0.2: %v", err)
	}
	held[0].Close()
	eventually(t, 10*time.Second, "a new connection from 127.0.0.1 once one closed", func() error {
		conn := dialFrom(t, srv, "127.0.0.1")
		defer conn.Close()
		return getHealthz(conn, bufio.NewReader(conn))
	})
}

// vmRSS is the resident memory of process pid, VmRSS of /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line", pid)
}

// needOpenFiles raises this process's open-file limit to n if it is lower
// (servers it starts inherit it), failing the test if the hard limit is
// lower still.
func needOpenFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("the test needs %d open files; the hard limit is %d", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}

// floodHead is the head of a DescribeStream that announces a 1 MiB body,
// with auth as its Authorization header ("" for none).
func floodHead(auth string) string {
	h := "POST /describeStream HTTP/1.1\r\nHost: kvs\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n" +
		"X-Amz-Date: " + time.Now().UTC().Format(amzDate) + "\r\n"
	if auth != "" {
		h += "Authorization: " + auth + "\r\n"
	}
	return h + "\r\n"
}

// fakeAuthorization is a well-formed Authorization header of key, scoped
// to today in us-east-1, whose signature is wrong: it passes every check
// that needs no body.
func fakeAuthorization(key string) string {
	return "AWS4-HMAC-SHA256 Credential=" + key + "/" + time.Now().UTC().Format("20060102") +
		"/us-east-1/kinesisvideo/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("0", 64)
}

// TestUnauthenticatedFlood opens 3000 connections, 750 from each of four
// addresses (under the default --max-conns-per-ip), that each pass the
// header checks (a real access key, the current date) and announce a 1 MiB
// DescribeStream body, then send up to 256 KiB of it and stall. Meanwhile
// the server's RSS must stay under its body budget (64 MiB by default) plus
// 150 MiB, a signed DescribeStream must succeed, and requests without a
// valid Authorization header must be answered without sending their body.
// Before bodies were bounded, such a flood took the server to gigabytes.
func TestUnauthenticatedFlood(t *testing.T) {
	// Not parallel: it measures the server's memory and holds thousands of sockets.
	const (
		floodConns = 3000
		sources    = 4
		sendBytes  = 256 << 10
		budget     = 64 << 20
		bound      = budget + 150<<20
	)
	needOpenFiles(t, floodConns+2000)
	srv := startAuthServer(t)
	admin := srv.controlAs(adminKey, adminSecret)
	if _, err := admin.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); err != nil {
		t.Fatal(err)
	}
	pid := srv.cmd.Process.Pid
	idle, err := vmRSS(pid)
	if err != nil {
		t.Fatal(err)
	}

	// The server's RSS, sampled until the flood ends.
	peak := make(chan int64, 1)
	stopSampling := make(chan struct{})
	go func() {
		var top int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := vmRSS(pid); err == nil {
				top = max(top, rss)
			}
			select {
			case <-stopSampling:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, stalled := int64(0), 0
	chunk := make([]byte, 16<<10)
	for i := range floodConns {
		conn := dialFrom(t, srv, fmt.Sprintf("127.0.0.%d", 1+i%sources))
		wg.Go(func() {
			if _, err := io.WriteString(conn, floodHead(fakeAuthorization(adminKey))); err != nil {
				t.Errorf("flood connection %d: %v", i, err)
				return
			}
			n := 0
			for n < sendBytes {
				// A write the server does not take within 2 s: it is not
				// reading this body (yet); the connection stays open.
				if err := conn.SetWriteDeadline(time.Now().Add(2 * time.Second)); err != nil {
					break
				}
				m, err := conn.Write(chunk)
				n += m
				if err != nil {
					break
				}
			}
			mu.Lock()
			sent += int64(n)
			if n < sendBytes {
				stalled++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("flood: %d connections sent %d MiB of body; %d stopped before %d KiB (the server was not reading them)",
		floodConns, sent>>20, stalled, sendBytes>>10)

	// A signed call is served during the flood.
	out, err := admin.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil || aws.ToString(out.StreamInfo.StreamName) != "cam-1" {
		t.Errorf("DescribeStream during the flood: %v, %v", out, err)
	}

	// Requests that cannot authenticate are answered without their body.
	refused := []struct{ auth, body string }{
		{"", `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`},
		{fakeAuthorization("AKIDNOBODY"), `{"__type":"UnrecognizedClientException","message":"` + msgUnknownKey + `"}`},
	}
	for j, r := range refused {
		for k := range 500 {
			conn := dialFrom(t, srv, fmt.Sprintf("127.0.0.%d", 1+sources+j))
			wg.Go(func() {
				if _, err := io.WriteString(conn, floodHead(r.auth)); err != nil {
					t.Errorf("refused request %d: %v", k, err)
					return
				}
				if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
					t.Errorf("refused request %d: %v", k, err)
					return
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Errorf("refused request %d (auth %q): no answer without its body: %v", k, r.auth, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusForbidden || string(body) != r.body || !resp.Close || err != nil {
					t.Errorf("refused request %d: %d %s (close %v, %v), want 403 %s and Connection: close", k, resp.StatusCode, body, resp.Close, err, r.body)
				}
			})
		}
	}
	wg.Wait()

	close(stopSampling)
	top := <-peak
	t.Logf("server RSS: %d MiB idle, %d MiB at most during the flood (bound %d MiB)", idle>>20, top>>20, bound>>20)
	if top > bound {
		t.Errorf("server RSS reached %d MiB during the flood, over the %d MiB body budget plus 150 MiB", top>>20, budget>>20)
	}
}
