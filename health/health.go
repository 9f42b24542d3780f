// Package health answers whether a server can do its job now: its catalog
// answers, its data directory takes a durable write, and its disk has room.
// It backs /healthz. The write probe touches the disk, so its result is
// kept for a while: a storm of probes costs one write per ProbeInterval.
package health

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Defaults of the Checker fields.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultProbeInterval = 5 * time.Second
)

// Checker runs the health checks.
type Checker struct {
	// Catalog runs a cheap catalog query; its error fails the check.
	Catalog func(ctx context.Context) error
	// Dir is the data directory: a small file is written, fsynced and
	// removed there, and its file system's free space is checked.
	Dir string
	// MinFreeBytes is the least free space on Dir's file system that is
	// healthy.
	MinFreeBytes uint64
	// Timeout bounds each check; zero means DefaultTimeout.
	Timeout time.Duration
	// ProbeInterval is how long the write probe's result is reused; zero
	// means DefaultProbeInterval.
	ProbeInterval time.Duration

	mu      sync.Mutex // one write probe at a time
	probeAt time.Time
	probed  error
}

// Check is the outcome of one check.
type Check struct {
	Name string `json:"name"` // catalog, data_dir_writable, disk_free
	OK   bool   `json:"ok"`
	// Error says why the check failed.
	Error string `json:"error,omitempty"`
}

// Report is the outcome of every check.
type Report struct {
	Healthy bool    `json:"healthy"`
	Checks  []Check `json:"checks"`
}

// Check runs every check, each within Timeout.
func (c *Checker) Check(ctx context.Context) Report {
	r := Report{Healthy: true}
	add := func(name string, err error) {
		ch := Check{Name: name, OK: err == nil}
		if err != nil {
			ch.Error = err.Error()
			r.Healthy = false
		}
		r.Checks = append(r.Checks, ch)
	}
	add("catalog", c.within(ctx, c.Catalog))
	add("data_dir_writable", c.within(ctx, func(context.Context) error { return c.probe() }))
	add("disk_free", c.diskFree())
	return r
}

// within runs f with a deadline of Timeout; a check that overruns it fails
// (and is left to finish in the background).
func (c *Checker) within(ctx context.Context, f func(context.Context) error) error {
	d := cmp.Or(c.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", d)
	}
}

// probe writes, fsyncs and removes a small file in Dir, at most once per
// ProbeInterval; callers in between get the last result.
func (c *Checker) probe() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.probeAt.IsZero() && time.Since(c.probeAt) < cmp.Or(c.ProbeInterval, DefaultProbeInterval) {
		return c.probed
	}
	c.probed = writeProbe(c.Dir)
	c.probeAt = time.Now()
	return c.probed
}

func writeProbe(dir string) error {
	name := filepath.Join(dir, ".health-probe")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	_, err = f.Write([]byte("ok\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("data directory %s: write probe: %w", dir, err)
	}
	return nil
}

func (c *Checker) diskFree() error {
	free, err := FreeBytes(c.Dir)
	if err != nil {
		return fmt.Errorf("free space of %s: %w", c.Dir, err)
	}
	if free < c.MinFreeBytes {
		return fmt.Errorf("%d bytes free on the file system of %s, below the %d required", free, c.Dir, c.MinFreeBytes)
	}
	return nil
}

// FreeBytes returns the bytes an unprivileged user may still write on the
// file system holding dir.
func FreeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
