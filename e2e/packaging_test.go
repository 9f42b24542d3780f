package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/internal/wait"
)

// TestSystemdUnit checks packaging/openkvs.service with systemd's own
// checker: it must load without a warning (an unknown or misspelt
// setting is only a warning, and systemd ignores it), and its hardening
// must rate as exposure 2.0 or less. It does not run the unit: that needs
// systemd as PID 1.
func TestSystemdUnit(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze", "apt-get install -y systemd")
	unit, err := os.ReadFile(filepath.Join("..", "packaging", "openkvs.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's binary exists: point it at this
	// build.
	const execStart = "ExecStart=/usr/local/bin/openkvs serve\n"
	if !strings.Contains(string(unit), execStart) {
		t.Fatalf("the unit has no line %q", execStart)
	}
	path := filepath.Join(t.TempDir(), "openkvs.service")
	if err := os.WriteFile(path, []byte(strings.Replace(string(unit), execStart, "ExecStart="+binary+" serve\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx(t), analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("systemd-analyze verify: %v, printed:\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx(t), analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v (exposure above 2.0?):\n%s", err, out)
	}
}

// podmanCmd is podman with the options this machine needs, which any
// machine accepts: runc, because crun refuses a host whose cgroups are
// mounted in hybrid mode, and resource limits no higher than the test's
// own, because podman raises them by default, which a root without
// CAP_SYS_RESOURCE (a sandboxed CI) may not.
// Each command has 5 minutes: a build without a warm Go build cache takes
// one or two.
func podmanCmd(t *testing.T, podman, runc string, args ...string) *exec.Cmd {
	t.Helper()
	args = append([]string{"--runtime", runc}, args...)
	if args[2] == "build" || args[2] == "run" {
		args = append(args[:3:3], append([]string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}, args[3:]...)...)
	}
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(c, podman, args...)
}

// TestContainerImage builds the Dockerfile with podman and runs the image:
// it refuses to serve without authentication, serves with --insecure as
// UID 65532, answers its HEALTHCHECK, keeps the data in its /data volume
// across a restart, and the bundled producer streams to it through the
// published port.
//
// No registry serves images here, so the Dockerfile's builder stage runs on
// a stand-in for the golang image (GO_IMAGE): busybox's shell plus this
// machine's Go toolchain, module cache and build cache, mounted into the
// build (GOMODCACHE and GOCACHE point there rather than at the
// Dockerfile's cache mounts, and GOPROXY=off: the build reaches no
// network). The build itself, and the final FROM scratch stage, are the
// Dockerfile's own.
func TestContainerImage(t *testing.T) {
	podman := requireTool(t, "podman", "apt-get install -y podman runc busybox-static")
	runc := requireTool(t, "runc", "apt-get install -y runc")
	busybox := requireTool(t, "busybox", "apt-get install -y busybox-static")
	run := func(args ...string) string {
		t.Helper()
		out, err := podmanCmd(t, podman, runc, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	id := fmt.Sprintf("%d", os.Getpid()) // tests of several checkouts may share the machine's podman
	goImage, image, name := "localhost/openkvs-e2e-go:"+id, "localhost/openkvs-e2e:"+id, "openkvs-e2e-"+id
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := podmanCmd(t, podman, runc, "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", logs)
		}
		podmanCmd(t, podman, runc, "rm", "--force", "--volumes", name).Run()
		podmanCmd(t, podman, runc, "rmi", "--force", image, goImage).Run()
	})

	standin := t.TempDir()
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(standin, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(standin, "Dockerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p -m 1777 /tmp
ENV PATH=/usr/local/go/bin:/bin HOME=/root GOPATH=/go GOTOOLCHAIN=local GOPROXY=off GOMODCACHE=/host/gomodcache GOCACHE=/host/gocache
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run("build", "--quiet", "--tag", goImage, standin)
	start := time.Now()
	// No layer cache: buildah's takes a COPY whose --chown changed for the
	// step it cached (a test of a broken Dockerfile passed), and no
	// intermediate images are left behind.
	run("build", "--no-cache", "--layers=false", "--format", "docker", "--tag", image, "--build-arg", "GO_IMAGE="+goImage,
		"--volume", goEnv("GOROOT")+":/usr/local/go:ro",
		"--volume", goEnv("GOMODCACHE")+":/host/gomodcache:ro",
		"--volume", goEnv("GOCACHE")+":/host/gocache",
		"..")
	t.Logf("image built in %v", time.Since(start).Round(time.Second))

	var cfg []struct {
		Config struct {
			User         string
			Env          []string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]struct{}
			Volumes      map[string]struct{}
		}
		HealthCheck struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(run("image", "inspect", image)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("podman image inspect: %v, %d images", err, len(cfg))
	}
	c := cfg[0].Config
	got := []any{c.User, c.Entrypoint, c.Cmd, slices.Sorted(maps.Keys(c.ExposedPorts)), slices.Sorted(maps.Keys(c.Volumes)), cfg[0].HealthCheck.Test}
	want := []any{"65532:65532", []string{"/openkvs"}, []string{"serve"}, []string{"4567/tcp"}, []string{"/data"}, []string{"CMD", "/openkvs", "healthcheck"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("image config (-want +got):\n%s", diff)
	}
	for _, env := range []string{"OPENKVS_ADDR=0.0.0.0:4567", "OPENKVS_DATA=/data"} {
		if !slices.Contains(c.Env, env) {
			t.Errorf("image environment %q lacks %s", c.Env, env)
		}
	}

	// On 0.0.0.0 without credentials the server refuses to start.
	out, err := podmanCmd(t, podman, runc, "run", "--rm", image).CombinedOutput()
	const refusal = "openkvs: refusing to serve 0.0.0.0:4567 without authentication: give --credentials FILE, or --insecure to let anyone who can connect call every API"
	if code := exitCode(t, err); code != 1 || !slices.Contains(strings.Split(string(out), "\n"), refusal) {
		t.Errorf("container without credentials exited %d, printed:\n%s\nwant exit 1 and the line %q", code, out, refusal)
	}

	run("run", "--detach", "--name", name, "--publish", "127.0.0.1::4567", "--env", "OPENKVS_INSECURE=true", image)
	url := "http://" + strings.TrimSpace(run("port", name, "4567/tcp"))
	healthy := func() {
		t.Helper()
		wait.For(t, "the container's /healthz to answer 200", func() bool {
			resp, err := http.Get(url + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		// The image's HEALTHCHECK, run inside the container.
		run("healthcheck", "run", name)
	}
	healthy()
	if got := strings.Fields(run("top", name, "huser")); !slices.Equal(got, []string{"HUSER", "65532"}) {
		t.Errorf("podman top %s huser = %q, want the server alone, as 65532", name, got)
	}

	srv := &serverProc{t: t, URL: url}
	put := exec.CommandContext(ctx(t), binary, "put", "--endpoint", url, "--stream", "cam", "--create",
		filepath.Join("..", "testdata", "media", "h264.mkv"))
	put.Env = awsEnv(t)
	if out, err := put.CombinedOutput(); err != nil || !strings.Contains(string(out), "done: 3 fragments, 3 PERSISTED") {
		t.Fatalf("openkvs put into the container: %v, printed:\n%s\nwant 3 fragments PERSISTED", err, out)
	}
	endpoint, err := srv.control().GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam"), APIName: "GET_MEDIA"})
	if err != nil || aws.ToString(endpoint.DataEndpoint) != url {
		t.Errorf("GetDataEndpoint through the published port = %v, %v; want %s (the request's Host)", aws.ToString(endpoint.DataEndpoint), err, url)
	}
	before := slices.Sorted(maps.Keys(gmListAll(t, srv, "cam")))
	if len(before) != 3 {
		t.Fatalf("ListFragments lists %d fragments, want 3", len(before))
	}
	run("restart", name)
	healthy()
	if after := slices.Sorted(maps.Keys(gmListAll(t, srv, "cam"))); !slices.Equal(after, before) {
		t.Errorf("after a restart the stream lists fragments %v, want %v (the /data volume kept)", after, before)
	}
}

// exitCode is the exit status of a command that ran, 0 for a nil error.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestHealthcheckCommand runs `openkvs healthcheck`, the image's probe:
// exit 0 while the server answers, from flags or from the environment
// serve reads (an address on all interfaces probed on loopback, HTTPS with
// OPENKVS_TLS_CERT), exit 1 with the reason otherwise.
func TestHealthcheckCommand(t *testing.T) {
	probe := func(env []string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.CommandContext(ctx(t), binary, append([]string{"healthcheck"}, args...)...)
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OPENKVS_") }), env...)
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(t, err)
	}
	srv := startServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")
	if out, code := probe(nil, "--addr", addr); code != 0 || out != "" {
		t.Errorf("healthcheck --addr %s: exit %d, %q; want 0 and no output", addr, code, out)
	}
	for _, all := range []string{"0.0.0.0:" + port, ":" + port} {
		if out, code := probe([]string{"OPENKVS_ADDR=" + all}); code != 0 || out != "" {
			t.Errorf("healthcheck with OPENKVS_ADDR=%s: exit %d, %q; want 0 and no output", all, code, out)
		}
	}

	cert, key, _ := selfSigned(t)
	tlsSrv := startServer(t, "--tls-cert", cert, "--tls-key", key)
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	if out, code := probe([]string{"OPENKVS_ADDR=" + tlsAddr, "OPENKVS_TLS_CERT=" + cert}); code != 0 || out != "" {
		t.Errorf("healthcheck of an HTTPS server with OPENKVS_TLS_CERT: exit %d, %q; want 0 and no output", code, out)
	}
	want := fmt.Sprintf("openkvs: healthcheck: http://%s/healthz answered 400 Bad Request: Client sent an HTTP request to an HTTPS server.\n", tlsAddr)
	if out, code := probe(nil, "--addr", tlsAddr); code != 1 || out != want {
		t.Errorf("healthcheck of an HTTPS server over HTTP: exit %d, %q; want 1, %q", code, out, want)
	}

	srv.Stop()
	want = fmt.Sprintf("openkvs: healthcheck: Get \"http://%s/healthz\": dial tcp %s: connect: connection refused\n", addr, addr)
	if out, code := probe(nil, "--addr", addr); code != 1 || out != want {
		t.Errorf("healthcheck of a stopped server: exit %d, %q; want 1, %q", code, out, want)
	}
}
