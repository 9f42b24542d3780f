package powerfs_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/openkvs/openkvs/internal/powerfs"
)

// must fails the test on err, naming what was being done.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// create writes data to a new file in dir, fsyncing it if sync, and
// returns its name.
func create(t *testing.T, s *powerfs.FS, dir, data string, sync bool) string {
	t.Helper()
	f, err := s.CreateTemp(dir, "f*")
	must(t, "create", err)
	_, err = f.Write([]byte(data))
	must(t, "write", err)
	if sync {
		must(t, "sync", f.Sync())
	}
	must(t, "close", f.Close())
	return f.Name()
}

func syncDir(t *testing.T, s *powerfs.FS, dir string) {
	t.Helper()
	d, err := s.Open(dir)
	must(t, "open "+dir, err)
	must(t, "sync "+dir, d.Sync())
	must(t, "close "+dir, d.Close())
}

func read(t *testing.T, s *powerfs.FS, name string) string {
	t.Helper()
	f, err := s.Open(name)
	must(t, "open "+name, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	must(t, "read "+name, err)
	return string(b)
}

func checkPaths(t *testing.T, s *powerfs.FS, want ...string) {
	t.Helper()
	if got := s.Paths(); !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
}

// What was written after a file's last fsync is lost; a file never
// fsynced comes back empty if its entry was synced.
func TestUnsyncedDataLost(t *testing.T) {
	s := powerfs.New()
	f, err := s.CreateTemp(".", "f*")
	must(t, "create", err)
	for _, step := range []func() error{
		func() error { _, err := f.Write([]byte("abc")); return err },
		f.Sync,
		func() error { _, err := f.Write([]byte("def")); return err },
		f.Close,
	} {
		must(t, "write, sync, write, close", step())
	}
	a := f.Name()
	b := create(t, s, ".", "never synced", false)
	syncDir(t, s, ".")
	if got := read(t, s, a); got != "abcdef" {
		t.Fatalf("before the cut %s reads %q, want %q", a, got, "abcdef")
	}
	d := s.Durable()
	checkPaths(t, d, a, b)
	if got := read(t, d, a); got != "abc" {
		t.Errorf("after the cut %s reads %q, want %q", a, got, "abc")
	}
	if got := read(t, d, b); got != "" {
		t.Errorf("after the cut the never synced %s reads %q, want it empty", b, got)
	}
}

// A data fsync does not make the file's name durable; only an fsync of its
// directory does.
func TestFileSyncKeepsNoEntry(t *testing.T) {
	s := powerfs.New()
	create(t, s, ".", "abc", true)
	checkPaths(t, s.Durable())
}

// Entries created, renamed or removed since the directory's last fsync
// revert at a cut.
func TestEntriesRevert(t *testing.T) {
	s := powerfs.New()
	a := create(t, s, ".", "a", true)
	gone := create(t, s, ".", "gone", true)
	syncDir(t, s, ".")
	must(t, "rename", s.Rename(a, "b"))
	must(t, "remove", s.Remove(gone))
	create(t, s, ".", "new", true)
	must(t, "mkdir", s.Mkdir("d", 0o755))
	checkPaths(t, s.Durable(), a, gone)
	syncDir(t, s, ".")
	d := s.Durable()
	checkPaths(t, d, "b", "d", "f3")
	if got := read(t, d, "b"); got != "a" {
		t.Errorf("renamed file reads %q, want %q", got, "a")
	}
}

// A file synced into a synced directory whose own entry was never synced
// is lost with the directory.
func TestUnsyncedDirectoryLost(t *testing.T) {
	s := powerfs.New()
	must(t, "mkdir", s.Mkdir("d", 0o755))
	name := create(t, s, "d", "abc", true)
	must(t, "rename", s.Rename(name, "d/x"))
	syncDir(t, s, "d")
	checkPaths(t, s.Durable())
	syncDir(t, s, ".")
	checkPaths(t, s.Durable(), "d", "d/x")
}

// After the cut every operation fails, handles included, and the durable
// state reopens on a file system with power.
func TestCutAfter(t *testing.T) {
	s := powerfs.New()
	f, err := s.CreateTemp(".", "f*")
	must(t, "create", err)
	s.CutAfter(2)
	_, err = f.Write([]byte("abc"))
	must(t, "write", err)
	select {
	case <-s.Dead():
		t.Fatalf("power failed after 1+1 operations, want 1+2")
	default:
	}
	must(t, "sync", f.Sync())
	select {
	case <-s.Dead():
	default:
		t.Fatalf("power still on after 1+2 operations")
	}
	if err := f.Close(); !errors.Is(err, powerfs.ErrPowerCut) {
		t.Errorf("close after the cut: %v, want ErrPowerCut", err)
	}
	if err := s.Mkdir("d", 0o755); !errors.Is(err, powerfs.ErrPowerCut) {
		t.Errorf("mkdir after the cut: %v, want ErrPowerCut", err)
	}
	if s.Ops() != 3 {
		t.Errorf("%d operations counted, want the 3 before the cut", s.Ops())
	}
	d := s.Durable()
	must(t, "mkdir on the durable state", d.Mkdir("d", 0o755))
	checkPaths(t, d, "d")
}
