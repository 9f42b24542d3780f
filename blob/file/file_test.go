package file_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestBlobs(t, func(t *testing.T, dir string) store.Blobs { return openBlobs(t, dir) })
}

// A crash between write and rename leaves a temporary file: it is not an
// object, and the next Open removes it.
func TestLeftoverTempFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "s1", "f"), 0o755)
	leftover := filepath.Join(dir, "s1", "f", ".tmp-123")
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := file.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temp file still there: %v", err)
	}
}

func TestAppenderConformance(t *testing.T) {
	storetest.TestAppender(t, func(t *testing.T, dir string) interface {
		store.Blobs
		store.Appender
	} {
		return openBlobs(t, dir)
	})
}

// openBlobs opens Blobs in dir or fails the test.
func openBlobs(t *testing.T, dir string) *file.Blobs {
	t.Helper()
	b, err := file.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
