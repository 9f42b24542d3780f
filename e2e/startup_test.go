package e2e

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStartupErrors checks the one-line start-up errors the README
// promises, word for word, and the exit status: a port in use and a data
// directory that cannot be written (a path under a regular file, and a
// directory without write permission).
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	t.Run("port in use", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		gmFatalIf(t, err, "listen")
		defer ln.Close()
		addr := ln.Addr().String()
		stderr, code := runOpenkvs(t, nil, "serve", "--addr", addr, "--data", t.TempDir())
		if want := "openkvs: cannot listen on " + addr + ": address already in use\n"; code != 1 || stderr != want {
			t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
		}
	})
	t.Run("data directory under a file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "file")
		gmFatalIf(t, os.WriteFile(file, nil, 0o644), "write")
		data := filepath.Join(file, "data")
		stderr, code := runOpenkvs(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", data)
		if want := "openkvs: data directory " + data + ": not a directory\n"; code != 1 || stderr != want {
			t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
		}
	})
	t.Run("data directory not writable", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "data")
		gmFatalIf(t, os.Mkdir(data, 0o755), "mkdir")
		cmd := exec.CommandContext(ctx(t), binary, "serve", "--addr", "127.0.0.1:0", "--data", data)
		// As root the server runs as nobody, for whom the directory, owned
		// by root, is read-only; otherwise it is read-only for its owner.
		if !asNobody(t, cmd, filepath.Dir(filepath.Dir(data)), filepath.Dir(data)) {
			gmFatalIf(t, os.Chmod(data, 0o555), "chmod")
		}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		want := "openkvs: data directory " + data + " is not writable: permission denied\n"
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || string(out) != want {
			t.Errorf("%v, output %q; want exit status 1 and %q", err, out, want)
		}
	})
}
