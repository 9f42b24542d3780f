package health

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func failed(r Report) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Error)
		}
	}
	return out
}

// TestCheck checks each check's failure and the write probe's reuse.
func TestCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	catalogErr := errors.New("database is locked")
	c := &Checker{Catalog: func(context.Context) error { return catalogErr }, Dir: dir, ProbeInterval: time.Hour}
	r := c.Check(context.Background())
	got := failed(r)
	if r.Healthy || len(got) != 3 || got[0] != "catalog: database is locked" ||
		!strings.HasPrefix(got[1], "data_dir_writable: data directory "+dir+" is not writable: ") ||
		!strings.HasPrefix(got[2], "disk_free: free space of "+dir+": ") {
		t.Errorf("checks of a missing directory and a failing catalog: %q", got)
	}

	// The write probe's result stands for ProbeInterval: a probe storm
	// costs one write.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	catalogErr = nil
	if got := failed(c.Check(context.Background())); len(got) != 1 || !strings.HasPrefix(got[0], "data_dir_writable:") {
		t.Errorf("checks within the probe interval: %q, want the cached write failure alone", got)
	}
	c.ProbeInterval = time.Nanosecond
	if r := c.Check(context.Background()); !r.Healthy {
		t.Errorf("checks after the probe interval: %q", failed(r))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("the probe left %v behind", entries)
	}

	c.MinFreeBytes = 1 << 62
	if got := failed(c.Check(context.Background())); len(got) != 1 || !strings.HasPrefix(got[0], "disk_free: ") || !strings.HasSuffix(got[0], "below the 4611686018427387904 required") {
		t.Errorf("checks with too little free space: %q", got)
	}
}

// TestCheckTimeout checks that a catalog that does not answer fails its
// check within Timeout.
func TestCheckTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := &Checker{Catalog: func(context.Context) error { <-block; return nil }, Dir: t.TempDir(), Timeout: 10 * time.Millisecond,
		ProbeInterval: time.Hour}
	if err := c.probe(); err != nil { // now, without the short timeout: an fsync may take longer
		t.Fatal(err)
	}
	if got := failed(c.Check(context.Background())); len(got) != 1 || got[0] != "catalog: no answer within 10ms" {
		t.Errorf("checks with a hanging catalog: %q", got)
	}
}
