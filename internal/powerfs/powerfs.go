// Package powerfs is an in-memory file system that can lose power, for
// tests of code that promises durability (blob/file). A process crash
// cannot test an fsync: the kernel's page cache outlives the process. A
// power cut does not, and powerfs forgets at a cut what a power cut may
// lose, as LazyFS (github.com/dsrhaslab/lazyfs) does with its default
// settings:
//
//   - a file's contents revert to what they were at its last fsync (empty
//     if it was never fsynced);
//   - a directory's entries (created, renamed in or out, removed) revert to
//     what they were at its last fsync; an fsync of a file does not make
//     its name durable;
//   - a file or directory is durable only through a chain of durable
//     entries from the root, so a synced file renamed into a directory
//     whose own entry was never synced is lost.
//
// FS.CutAfter(k) lets k more operations happen and fails every later one
// with ErrPowerCut, as a dead machine would; FS.Dead tells when; FS.Durable
// returns what a reboot would find. Paths are slash-separated and
// relative, "." being the root, which exists durably from the start.
package powerfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrPowerCut is the error of every operation after the cut.
var ErrPowerCut = errors.New("power cut")

// Handle is an open file or directory: the interface blob/file's
// fileSystem returns, spelled out so that the two are the same type.
type Handle = interface {
	io.ReadWriteSeeker
	io.Closer
	Name() string
	Sync() error
}

// node is a file or a directory, shared by every entry that names it.
type node struct {
	dir     bool
	data    []byte           // a file's contents now
	synced  []byte           // a file's contents at its last fsync
	entries map[string]*node // a directory's entries now
	durable map[string]*node // a directory's entries at its last fsync
	mtime   time.Time
}

func newDir() *node {
	return &node{dir: true, entries: map[string]*node{}, durable: map[string]*node{}, mtime: time.Now()}
}

// FS is the file system. It is safe for concurrent use.
type FS struct {
	mu    sync.Mutex
	root  *node
	ops   int           // operations done
	armed bool          // CutAfter was called
	limit int           // operations done when the power fails
	dead  chan struct{} // closed when the power fails
	temps int           // names handed out by CreateTemp
}

// New returns an empty file system that never loses power.
func New() *FS { return &FS{root: newDir(), dead: make(chan struct{})} }

// CutAfter makes the power fail after k more operations: they happen, and
// every operation after them returns ErrPowerCut. Call it at most once.
func (s *FS) CutAfter(k int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed, s.limit = true, s.ops+k
	s.checkCut()
}

// Ops returns how many operations have been done.
func (s *FS) Ops() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops
}

// Dead returns a channel that is closed when the power fails.
func (s *FS) Dead() <-chan struct{} { return s.dead }

func (s *FS) cut() bool { return s.armed && s.ops >= s.limit }

// checkCut closes dead when the power has just failed. The caller holds mu.
func (s *FS) checkCut() {
	if s.armed && s.ops == s.limit {
		close(s.dead)
	}
}

// op counts one operation, or fails it after the cut. The caller holds mu.
func (s *FS) op(name, path string) error {
	if s.cut() {
		return &fs.PathError{Op: name, Path: path, Err: ErrPowerCut}
	}
	s.ops++
	s.checkCut()
	return nil
}

// Durable returns what a reboot would find: a new file system, which
// never loses power, holding only what was durable when the power failed
// (or now, if it has not).
func (s *FS) Durable() *FS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &FS{root: durableCopy(s.root), dead: make(chan struct{})}
}

// durableCopy copies the durable state of directory d.
func durableCopy(d *node) *node {
	c := newDir()
	for name, n := range d.durable {
		if n.dir {
			c.entries[name] = durableCopy(n)
		} else {
			c.entries[name] = &node{data: slices.Clone(n.synced), synced: slices.Clone(n.synced), mtime: n.mtime}
		}
	}
	c.durable = maps.Clone(c.entries)
	return c
}

// Paths lists every file and directory below the root, in lexical order.
func (s *FS) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	var walk func(dir string, d *node)
	walk = func(dir string, d *node) {
		for _, name := range slices.Sorted(maps.Keys(d.entries)) {
			p := path.Join(dir, name)
			out = append(out, p)
			if d.entries[name].dir {
				walk(p, d.entries[name])
			}
		}
	}
	walk(".", s.root)
	return out
}

// lookup returns the node at name. The caller holds mu.
func (s *FS) lookup(op, name string) (*node, error) {
	n := s.root
	if name == "." {
		return n, nil
	}
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	for _, part := range strings.Split(name, "/") {
		if !n.dir || n.entries[part] == nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		n = n.entries[part]
	}
	return n, nil
}

// parent returns the directory holding name and name's last element.
// The caller holds mu.
func (s *FS) parent(op, name string) (*node, string, error) {
	if name == "." {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	d, err := s.lookup(op, path.Dir(name))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return d, path.Base(name), nil
}

// CreateTemp creates a new empty file in dir, named by pattern with its
// first "*" replaced by a number, and opens it for writing.
func (s *FS) CreateTemp(dir, pattern string) (Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("createtemp", dir); err != nil {
		return nil, err
	}
	d, err := s.lookup("createtemp", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, &fs.PathError{Op: "createtemp", Path: dir, Err: fs.ErrInvalid}
	}
	s.temps++
	prefix, suffix, _ := strings.Cut(pattern, "*")
	name := path.Join(dir, fmt.Sprintf("%s%d%s", prefix, s.temps, suffix))
	n := &node{mtime: time.Now()}
	d.entries[path.Base(name)] = n
	return &handle{fsys: s, n: n, name: name, write: true}, nil
}

// Create creates a new empty file and opens it for writing; fs.ErrExist
// if name exists.
func (s *FS) Create(name string) (Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("create", name); err != nil {
		return nil, err
	}
	d, base, err := s.parent("create", name)
	if err != nil {
		return nil, err
	}
	if _, ok := d.entries[base]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	n := &node{mtime: time.Now()}
	d.entries[base] = n
	return &handle{fsys: s, n: n, name: name, write: true}, nil
}

// Open opens a file for reading, or a directory for Sync.
func (s *FS) Open(name string) (Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("open", name); err != nil {
		return nil, err
	}
	n, err := s.lookup("open", name)
	if err != nil {
		return nil, err
	}
	return &handle{fsys: s, n: n, name: name}, nil
}

// Rename moves the entry oldpath to newpath, replacing a file there.
func (s *FS) Rename(oldpath, newpath string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("rename", oldpath); err != nil {
		return err
	}
	from, oldName, err := s.parent("rename", oldpath)
	if err != nil {
		return err
	}
	to, newName, err := s.parent("rename", newpath)
	if err != nil {
		return err
	}
	n := from.entries[oldName]
	if n == nil {
		return &fs.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	if old := to.entries[newName]; old != nil && old.dir {
		return &fs.PathError{Op: "rename", Path: newpath, Err: fs.ErrExist}
	}
	delete(from.entries, oldName)
	to.entries[newName] = n
	return nil
}

// Remove removes a file or an empty directory.
func (s *FS) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("remove", name); err != nil {
		return err
	}
	d, base, err := s.parent("remove", name)
	if err != nil {
		return err
	}
	n := d.entries[base]
	if n == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if n.dir && len(n.entries) > 0 {
		return &fs.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	delete(d.entries, base)
	return nil
}

// Mkdir creates a directory; perm is ignored.
func (s *FS) Mkdir(name string, perm fs.FileMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("mkdir", name); err != nil {
		return err
	}
	if _, err := s.lookup("mkdir", name); err == nil {
		return &fs.PathError{Op: "mkdir", Path: name, Err: fs.ErrExist}
	}
	d, base, err := s.parent("mkdir", name)
	if err != nil {
		return err
	}
	d.entries[base] = newDir()
	return nil
}

// Stat describes the file or directory at name.
func (s *FS) Stat(name string) (fs.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("stat", name); err != nil {
		return nil, err
	}
	n, err := s.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return info(path.Base(name), n), nil
}

// WalkDir walks the tree at root as filepath.WalkDir does; reading each
// directory is one operation.
func (s *FS) WalkDir(root string, fn fs.WalkDirFunc) error {
	return fs.WalkDir(walker{s}, root, fn)
}

// walker is the view of FS that fs.WalkDir needs.
type walker struct{ s *FS }

func (w walker) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.ErrUnsupported}
}

func (w walker) Stat(name string) (fs.FileInfo, error) { return w.s.Stat(name) }

func (w walker) ReadDir(name string) ([]fs.DirEntry, error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.op("readdir", name); err != nil {
		return nil, err
	}
	d, err := s.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	var out []fs.DirEntry
	for _, name := range slices.Sorted(maps.Keys(d.entries)) {
		out = append(out, fs.FileInfoToDirEntry(info(name, d.entries[name])))
	}
	return out, nil
}

// fileInfo is a snapshot of a node's attributes.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func info(name string, n *node) fileInfo {
	if n.dir {
		return fileInfo{name: name, mode: fs.ModeDir | 0o755, mtime: n.mtime}
	}
	return fileInfo{name: name, size: int64(len(n.data)), mode: 0o644, mtime: n.mtime}
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }

// handle is an open file or directory.
type handle struct {
	fsys   *FS
	n      *node
	name   string
	write  bool // opened by CreateTemp or Create
	off    int  // read offset
	closed bool
}

// do runs one operation on the handle under the file system's lock.
func (h *handle) do(op string, fn func() error) error {
	h.fsys.mu.Lock()
	defer h.fsys.mu.Unlock()
	if err := h.fsys.op(op, h.name); err != nil {
		return err
	}
	if h.closed {
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	}
	return fn()
}

func (h *handle) Name() string { return h.name }

func (h *handle) Write(p []byte) (int, error) {
	err := h.do("write", func() error {
		if !h.write {
			return &fs.PathError{Op: "write", Path: h.name, Err: fs.ErrPermission}
		}
		h.n.data = append(h.n.data, p...)
		h.n.mtime = time.Now()
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *handle) Read(p []byte) (int, error) {
	var n int
	err := h.do("read", func() error {
		if h.n.dir {
			return &fs.PathError{Op: "read", Path: h.name, Err: fs.ErrInvalid}
		}
		if h.off >= len(h.n.data) {
			return io.EOF
		}
		n = copy(p, h.n.data[h.off:])
		h.off += n
		return nil
	})
	return n, err
}

// Seek sets the offset of the next Read; writes always append.
func (h *handle) Seek(offset int64, whence int) (int64, error) {
	var pos int64
	err := h.do("seek", func() error {
		switch whence {
		case io.SeekStart:
			pos = offset
		case io.SeekCurrent:
			pos = int64(h.off) + offset
		case io.SeekEnd:
			pos = int64(len(h.n.data)) + offset
		}
		if pos < 0 {
			return &fs.PathError{Op: "seek", Path: h.name, Err: fs.ErrInvalid}
		}
		h.off = int(pos)
		return nil
	})
	return pos, err
}

// Sync makes the file's contents, or the directory's entries, durable.
func (h *handle) Sync() error {
	return h.do("sync", func() error {
		if h.n.dir {
			h.n.durable = maps.Clone(h.n.entries)
		} else {
			h.n.synced = slices.Clone(h.n.data)
		}
		return nil
	})
}

func (h *handle) Close() error {
	return h.do("close", func() error {
		h.closed = true
		return nil
	})
}
