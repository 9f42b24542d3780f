// Package file is the embedded store.Blobs: one file per object under a
// directory. A Put writes a temporary file, fsyncs it, renames it into
// place and fsyncs the directory, so an object is either absent or complete
// and durable, even across a crash or power loss. It is written by hand
// because generic blob libraries for Go do not fsync.
//
// Blobs makes its file-system calls through fileSystem, whose only
// production implementation is the operating system's (osFS). The seam
// exists for power-loss tests: a process crash (SIGKILL) keeps the kernel's
// page cache, so a crash test passes just as well with every fsync removed.
// Only a file system that forgets what was not fsynced, as a machine losing
// power does, can tell; internal/powerfs simulates one, and OpenFS puts
// Blobs on it (TestPowerLoss here, TestIngestPowerLoss in ingest).
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/store"
)

// tempPrefix marks files being written; List skips them and Sweep removes them.
const tempPrefix = ".tmp-"

// Blobs is a store.Blobs kept in a directory.
type Blobs struct {
	fsys fileSystem
	root string
	dirs sync.Map // directories known to exist durably
	// Metrics times Put and its fsync; nil times nothing. Set it before
	// the first Put.
	Metrics *metrics.Storage
	// SegmentSize and SegmentAge end a log's segment (Log); zero means
	// DefaultSegmentSize and DefaultSegmentAge. Set them before the first
	// Log.
	SegmentSize int64
	SegmentAge  time.Duration
	segments    segments
}

var _ store.Blobs = (*Blobs)(nil)

// fileSystem is every file-system call Blobs makes. Its methods use only
// unnamed or standard types, so that a package other than this one can
// implement it (internal/powerfs).
type fileSystem interface {
	CreateTemp(dir, pattern string) (file, error)
	Create(name string) (file, error) // a new file to write; fs.ErrExist if name exists
	Open(name string) (file, error)   // a file to read, or a directory to fsync
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Mkdir(name string, perm fs.FileMode) error
	Stat(name string) (fs.FileInfo, error)
	WalkDir(root string, fn fs.WalkDirFunc) error
}

// file is an open file or directory. It is an alias of an unnamed
// interface so that another package can return it.
type file = interface {
	io.ReadWriteSeeker
	io.Closer
	Name() string
	Sync() error
}

// osFS is the operating system's file system. Its methods return the
// *os.File itself.
type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (file, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil file
	}
	return f, nil
}

func (osFS) Create(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Open(name string) (file, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Mkdir(name string, perm fs.FileMode) error    { return os.Mkdir(name, perm) }
func (osFS) Stat(name string) (fs.FileInfo, error)        { return os.Stat(name) }
func (osFS) WalkDir(root string, fn fs.WalkDirFunc) error { return filepath.WalkDir(root, fn) }

// Open returns Blobs rooted at dir, creating it if needed, and removes
// temporary files a crash left behind.
func Open(dir string) (*Blobs, error) { return OpenFS(osFS{}, dir) }

// OpenFS is Open on the file system fsys instead of the operating
// system's. It exists for tests that cut the power (internal/powerfs);
// fsys implements the unexported interface fileSystem.
func OpenFS(fsys fileSystem, dir string) (*Blobs, error) {
	b := &Blobs{fsys: fsys, root: filepath.Clean(dir)}
	if err := b.ensureRoot(); err != nil {
		return nil, fmt.Errorf("open blobs %s: %w", dir, err)
	}
	err := b.fsys.WalkDir(b.root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), tempPrefix) {
			err = b.fsys.Remove(path)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open blobs %s: remove leftovers: %w", dir, err)
	}
	return b, nil
}

// path maps a key ("s1/h/abc") to a file; keys are relative slash paths
// without "." or ".." elements.
func (b *Blobs) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid blob key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || strings.HasPrefix(part, tempPrefix) {
			return "", fmt.Errorf("invalid blob key %q", key)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

// ensureRoot makes the root exist and its entry in its parent durable.
// Missing ancestors are created, the parent of each fsynced; existing ones
// are the operator's and left alone. The root's parent is fsynced even
// when the root exists, for the reason ensureDir gives.
func (b *Blobs) ensureRoot() error {
	if err := b.createMissing(filepath.Dir(b.root)); err != nil {
		return err
	}
	if err := b.mkdir(b.root); err != nil {
		return err
	}
	b.dirs.Store(b.root, true)
	return nil
}

// createMissing creates dir and its missing parents, fsyncing the parent
// of each directory it creates.
func (b *Blobs) createMissing(dir string) error {
	_, err := b.fsys.Stat(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := b.createMissing(parent); err != nil {
			return err
		}
	}
	return b.mkdir(dir)
}

// ensureDir makes dir, a directory below the root, and the entries of it
// and its parents durable, once per process. The parent is fsynced even
// when dir exists: another Put, or a process that was killed, may have
// created it and not yet fsynced its entry, and Stat cannot tell. The
// recursion ends at the root, which ensureRoot put in dirs.
func (b *Blobs) ensureDir(dir string) error {
	if _, ok := b.dirs.Load(dir); ok {
		return nil
	}
	if err := b.ensureDir(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := b.mkdir(dir); err != nil {
		return err
	}
	b.dirs.Store(dir, true)
	return nil
}

// mkdir creates dir unless it exists, then fsyncs its parent, so that the
// entry is durable either way.
func (b *Blobs) mkdir(dir string) error {
	if err := b.fsys.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return b.syncDir(filepath.Dir(dir))
}

func (b *Blobs) syncDir(dir string) error {
	d, err := b.fsys.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Put writes the object durably and atomically. A ctx that ends before
// the object is in place leaves nothing behind.
func (b *Blobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	start := time.Now()
	path, err := b.path(key)
	if err != nil {
		return err
	}
	if _, _, _, ok := store.ParseAppendedKey(key); ok {
		return fmt.Errorf("put blob %s: the key of an appended object", key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := b.ensureDir(dir); err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	f, err := b.fsys.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	tmp := f.Name()
	n, err := io.Copy(&cappedWriter{w: f, left: size}, r)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	if err != nil {
		f.Close()
		b.fsys.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	syncStart := time.Now()
	if err := f.Sync(); err != nil {
		f.Close()
		b.fsys.Remove(tmp)
		return fmt.Errorf("put blob %s: fsync: %w", key, err)
	}
	b.Metrics.BlobSync(time.Since(syncStart))
	if err := f.Close(); err != nil {
		b.fsys.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		b.fsys.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if err := b.fsys.Rename(tmp, path); err != nil {
		b.fsys.Remove(tmp)
		return fmt.Errorf("put blob %s: %w", key, err)
	}
	if err := b.syncDir(dir); err != nil {
		return fmt.Errorf("put blob %s: fsync directory: %w", key, err)
	}
	b.Metrics.BlobWrite(time.Since(start))
	return nil
}

// cappedWriter fails a write past its first left bytes. Put bounds the
// object on the writing side, not with an io.LimitReader, so that io.Copy
// still finds the reader's WriteTo: ingest's fragment reader then writes
// each of its buffers to the file in one call, where copying through
// os.File's ReadFrom took one write per 32 KiB.
type cappedWriter struct {
	w    io.Writer
	left int64
}

var errTooLong = errors.New("more bytes than the length given")

func (c *cappedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		n, err := c.w.Write(p[:c.left])
		c.left -= int64(n)
		if err == nil {
			err = errTooLong
		}
		return n, err
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// Open returns the object's content: a file, or an appended object's
// place in its segment.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	segment, off, size, appended := store.ParseAppendedKey(key)
	name := key
	if appended {
		name = segment
	}
	path, err := b.path(name)
	if err != nil {
		return nil, err
	}
	f, err := b.fsys.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	if !appended {
		return f, nil
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", key, err)
	}
	return &section{Reader: io.LimitReader(f, size), Closer: f}, nil
}

// section is an appended object: its bytes in the segment's file.
type section struct {
	io.Reader
	io.Closer
}

// Delete removes the object if it exists. An appended object stays: it
// goes with its segment (store.Appender). A segment that a log appends to
// stays too: the sweeper deletes a segment once no row references it, and
// a row may be on its way for what was just appended. A parked segment is
// closed and deleted.
func (b *Blobs) Delete(ctx context.Context, key string) error {
	if _, _, _, ok := store.ParseAppendedKey(key); ok {
		return nil
	}
	path, err := b.path(key)
	if err != nil {
		return err
	}
	if !b.segments.release(path) {
		return nil
	}
	if err := b.fsys.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", key, err)
	}
	return nil
}

// List calls fn with every complete object whose key starts with prefix,
// in lexical order. An object's modification time is when its Put renamed
// it into place.
func (b *Blobs) List(ctx context.Context, prefix string, fn func(store.BlobInfo) error) error {
	err := b.fsys.WalkDir(b.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.root, path)
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Descend only into directories that can hold matching keys.
			if path != b.root && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), tempPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking
		}
		if err != nil {
			return err
		}
		return fn(store.BlobInfo{Key: key, Modified: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	return nil
}
