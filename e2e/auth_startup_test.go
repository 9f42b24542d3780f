package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/google/go-cmp/cmp"
)

// runOpenkvs runs the binary to completion and returns its stderr and exit code.
func runOpenkvs(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("openkvs %v: %v", args, err)
	}
	return stderr.String(), cmd.ProcessState.ExitCode()
}

// onLoopback rewrites a URL of a server listening on all addresses to
// reach it over 127.0.0.1.
func onLoopback(u string) string {
	for _, any := range []string{"0.0.0.0", "[::]"} {
		u = strings.Replace(u, "://"+any+":", "://127.0.0.1:", 1)
	}
	return u
}

func TestStartupSecureDefaults(t *testing.T) {
	t.Parallel()
	creds := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), authCredentials)
	refusal := func(addr string) string {
		return "openkvs: refusing to serve " + addr + " without authentication: give --credentials FILE, or --insecure to let anyone who can connect call every API\n"
	}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{name: "all IPv4 addresses", args: []string{"--addr", "0.0.0.0:0"}, want: refusal("0.0.0.0:0")},
		{name: "all addresses", args: []string{"--addr", ":0"}, want: refusal(":0")},
		{name: "insecure off in the environment", env: []string{"OPENKVS_INSECURE=false"}, args: []string{"--addr", "0.0.0.0:0"}, want: refusal("0.0.0.0:0")},
		{name: "certificate without key", args: []string{"--tls-cert", "cert.pem"}, want: "openkvs: --tls-cert and --tls-key must be given together\n"},
		{name: "key without certificate", args: []string{"--tls-key", "key.pem"}, want: "openkvs: --tls-cert and --tls-key must be given together\n"},
		{name: "missing certificate file", args: []string{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"},
			want: "openkvs: TLS certificate /nonexistent/cert.pem and key /nonexistent/key.pem: open /nonexistent/cert.pem: no such file or directory\n"},
		{name: "missing credentials file", args: []string{"--credentials", "/nonexistent/credentials.json"},
			want: "openkvs: credentials file: open /nonexistent/credentials.json: no such file or directory\n"},
		{name: "small header limit", args: []string{"--credentials", creds, "--max-header-bytes", "100"},
			want: "openkvs: --max-header-bytes 100 is too small for SigV4-signed requests; give at least 4096\n"},
		{name: "small body budget", args: []string{"--unauthenticated-body-bytes", "1048575"},
			want: "openkvs: --unauthenticated-body-bytes 1048575 is too small for one request body; give at least 1048576\n"},
		{name: "small body budget in the environment", env: []string{"OPENKVS_UNAUTHENTICATED_BODY_BYTES=1000"},
			want: "openkvs: --unauthenticated-body-bytes 1000 is too small for one request body; give at least 1048576\n"},
		{name: "no connections per address", args: []string{"--max-conns-per-ip", "0"}, want: "openkvs: --max-conns-per-ip must be positive\n"},
		{name: "no connections per address in the environment", env: []string{"OPENKVS_MAX_CONNS_PER_IP=-1"},
			want: "openkvs: --max-conns-per-ip must be positive\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir()}, tc.args...)
			stderr, code := runOpenkvs(t, tc.env, args...)
			if code != 1 || stderr != tc.want {
				t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, tc.want)
			}
		})
	}

	// --insecure (here from the environment) allows it; GetDataEndpoint
	// then answers with the Host each client used.
	srv := startServerEnv(t, []string{"OPENKVS_INSECURE=true"}, "--addr", "0.0.0.0:0")
	srv.URL = onLoopback(srv.URL)
	if _, err := srv.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); err != nil {
		t.Fatal(err)
	}
	ep, err := srv.control().GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: types.APINamePutMedia})
	if err != nil || aws.ToString(ep.DataEndpoint) != srv.URL {
		t.Errorf("GetDataEndpoint = %v, %v; want %s", ep, err, srv.URL)
	}
	if !strings.Contains(srv.logs.String(), `"auth":"off (--insecure)"`) {
		t.Errorf("start-up log does not say authentication is off:\n%s", srv.logs)
	}

	// Credentials allow it too, and then the server authenticates.
	srv = startAuthServer(t, "--addr", "0.0.0.0:0")
	srv.URL = onLoopback(srv.URL)
	_, err = srv.control().ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
	if got, want := sdkError(t, err), errUnknownKey; got != want {
		t.Errorf("unknown key on 0.0.0.0: %+v, want %+v", got, want)
	}
	if _, err := srv.controlAs(adminKey, adminSecret).ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{}); err != nil {
		t.Errorf("admin key on 0.0.0.0: %v", err)
	}
}

// TestCredentialsFileMode checks the start-up warning about a credentials
// file that other users may read or write, and its absence for mode 0600.
func TestCredentialsFileMode(t *testing.T) {
	t.Parallel()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o602, 0o600} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			path := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), authCredentials)
			if err := os.Chmod(path, mode); err != nil { // not subject to the umask
				t.Fatal(err)
			}
			srv := startServer(t, "--credentials", path)
			var warnings []map[string]any
			for line := range strings.Lines(srv.logs.String()) {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "WARN" {
					delete(rec, "time")
					warnings = append(warnings, rec)
				}
			}
			var want []map[string]any
			if mode != 0o600 {
				want = []map[string]any{{"level": "WARN", "file": path, "mode": fmt.Sprintf("%04o", mode),
					"msg": "credentials file is readable or writable by group or others; run chmod 600 on it"}}
			}
			if diff := cmp.Diff(want, warnings); diff != "" {
				t.Errorf("warnings logged at start-up (-want +got):\n%s", diff)
			}
		})
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "openkvs test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	httpsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		t.Run(addr, func(t *testing.T) {
			srv := startAuthServer(t, "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile)
			srv.URL = onLoopback(srv.URL)
			if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
				t.Fatalf("server URL %q, want https://127.0.0.1:port", srv.URL)
			}
			c := srv.controlAs(adminKey, adminSecret, func(o *kinesisvideo.Options) { o.HTTPClient = httpsClient })
			if _, err := c.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); err != nil {
				t.Fatal(err)
			}
			for _, api := range []types.APIName{types.APINamePutMedia, types.APINameGetMedia, types.APINameGetHlsStreamingSessionUrl} {
				ep, err := c.GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: api})
				if err != nil || aws.ToString(ep.DataEndpoint) != srv.URL {
					t.Errorf("GetDataEndpoint(%s) = %v, %v; want %s", api, ep, err, srv.URL)
				}
			}
			// Plain HTTP on the TLS port gets Go's refusal, not an API answer.
			resp, err := http.Post("http"+strings.TrimPrefix(srv.URL, "https")+"/listStreams", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to the TLS port: %s, want 400", resp.Status)
			}
		})
	}
}

// TestTLSMinVersion offers each TLS version alone: TLS 1.0 and 1.1 are
// refused in the handshake, TLS 1.2 and 1.3 serve requests. A connection
// that does not start its handshake is closed after --read-header-timeout,
// which covers the handshake.
func TestTLSMinVersion(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	srv := startServer(t, "--tls-cert", certFile, "--tls-key", keyFile, "--read-header-timeout", "300ms")
	addr := strings.TrimPrefix(srv.URL, "https://")
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name    string
		version uint16
		ok      bool
	}{
		{"TLS 1.0", tls.VersionTLS10, false},
		{"TLS 1.1", tls.VersionTLS11, false},
		{"TLS 1.2", tls.VersionTLS12, true},
		{"TLS 1.3", tls.VersionTLS13, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tc.version, MaxVersion: tc.version})
			if !tc.ok {
				if err == nil {
					conn.Close()
					t.Fatalf("the server completed a %s handshake", tc.name)
				}
				if !strings.Contains(err.Error(), "protocol version not supported") {
					t.Errorf("%s handshake: %v, want the server's protocol_version alert", tc.name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s handshake: %v", tc.name, err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != tc.version {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(v), tc.name)
			}
			if err := getHealthz(conn, bufio.NewReader(conn)); err != nil {
				t.Errorf("GET /healthz over %s: %v", tc.name, err)
			}
		})
	}
	t.Run("no handshake", func(t *testing.T) {
		conn, err := dialer.Dial("tcp", addr)
		gmFatalIf(t, err, "dial")
		defer conn.Close()
		closedAfter(t, conn, "a connection without a handshake", time.Now(), 300*time.Millisecond)
	})
}

// eventually calls try until it returns nil, failing the test when that
// does not happen within timeout.
func eventually(t *testing.T, timeout time.Duration, what string, try func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		<-tick.C
	}
}

// getHealthz sends GET /healthz on a kept-alive conn, whose responses br
// reads, and checks the answer; an error means the server did not answer,
// e.g. because it closed the connection.
func getHealthz(conn net.Conn, br *bufio.Reader) error {
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: openkvs\r\n\r\n")); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func TestCredentialsReload(t *testing.T) {
	t.Parallel()
	path := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"),
		`{"keys": [{"accessKeyId": "AKIDOLD", "secretAccessKey": "old-secret"}]}`)
	srv := startServer(t, "--credentials", path)
	oldKey, newKey := srv.controlAs("AKIDOLD", "old-secret"), srv.controlAs("AKIDNEW", "new-secret")
	list := func(c *kinesisvideo.Client) error {
		_, err := c.ListStreams(ctx(t), &kinesisvideo.ListStreamsInput{})
		return err
	}
	// A keep-alive connection opened before the reload must survive it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connReader := bufio.NewReader(conn)
	healthz := func() error { return getHealthz(conn, connReader) }
	if err := healthz(); err != nil {
		t.Fatalf("keep-alive connection before reload: %v", err)
	}

	if err := list(oldKey); err != nil {
		t.Fatalf("old key before reload: %v", err)
	}
	if got := sdkError(t, list(newKey)); got != errUnknownKey {
		t.Fatalf("new key before reload: %+v, want %+v", got, errUnknownKey)
	}
	writeCredentials(t, path, `{"keys": [{"accessKeyId": "AKIDNEW", "secretAccessKey": "new-secret"}]}`)
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "new key accepted after SIGHUP", func() error { return list(newKey) })
	if got := sdkError(t, list(oldKey)); got != errUnknownKey {
		t.Errorf("removed key after reload: %+v, want %+v", got, errUnknownKey)
	}
	if err := healthz(); err != nil {
		t.Errorf("the connection opened before the reload no longer works: %v", err)
	}

	// A broken file is reported and changes nothing.
	writeCredentials(t, path, `{"keys": [`)
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "failed reload logged", func() error {
		if !strings.Contains(srv.logs.String(), `"msg":"credentials not reloaded; keeping the previous keys"`) {
			return fmt.Errorf("no log line yet")
		}
		return nil
	})
	if err := list(newKey); err != nil {
		t.Errorf("new key after a failed reload: %v", err)
	}
}
