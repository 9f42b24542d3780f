package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// requireTool returns the path of an outside tool a test needs. Where it is
// missing the test fails under CI (CI=true), which must install it, and is
// skipped elsewhere with the way to install it.
func requireTool(t *testing.T, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI but not installed (install: %s)", name, install)
	}
	t.Skipf("%s not installed; install it with: %s", name, install)
	return ""
}

// requirePython returns a python3 that can import module: the one on PATH,
// else Debian's /usr/bin/python3, where apt installs python3-* packages.
func requirePython(t *testing.T, module, install string) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import "+module).Run() == nil {
			return py
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("python module %s is required in CI but no python3 can import it (install: %s)", module, install)
	}
	t.Skipf("python module %s not importable; install it with: %s", module, install)
	return ""
}

// awsEnv is the environment for the AWS CLI and boto3: test credentials,
// the region, and nothing from the user's own configuration.
func awsEnv(t *testing.T) []string {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+dir+"/config", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/credentials",
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
}
