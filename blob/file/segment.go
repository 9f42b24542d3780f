package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkvs/openkvs/store"
)

// Segments (store.Appender) are files that a log appends objects to. An
// append writes its bytes at the end of the log's current segment and
// fsyncs it, which on its own makes them durable: the file exists and its
// directory entry was made durable when it was created. So a fragment
// costs one write and one fsync, where a Put creates a file (an inode),
// fsyncs it, renames it and fsyncs the directory; on ext4 with a journal
// each of those fsyncs is a journal commit. Appends that overlap share
// fsyncs. Bytes of an append that failed stay in the segment, unreferenced
// and harmless: a later append goes after them.
const (
	// DefaultSegmentSize is the size past which a log starts a new segment.
	DefaultSegmentSize = 64 << 20
	// DefaultSegmentAge is how long a log appends to one segment. Rows
	// expire by age, and a segment goes once none of its rows is left, so
	// this bounds how long retention keeps bytes past their time. It is
	// far below the shortest retention (an hour), so a segment whose rows
	// have all expired is never appended to again.
	DefaultSegmentAge = 5 * time.Minute
)

var _ store.Appender = (*Blobs)(nil)

// Log starts a log of segments under prefix.
func (b *Blobs) Log(prefix string) store.Log { return &segmentLog{b: b, prefix: prefix} }

// segments keeps track of the open segments. A log that closes parks its
// segment, still open, for the next log of its prefix (the next session of
// the stream) to go on appending to: a camera that reconnects every few
// fragments would otherwise start a segment, a file and a directory fsync
// each time. A parked segment is closed when its age is up.
type segments struct {
	mu       sync.Mutex
	inUse    map[string]bool     // paths of the segments logs append to
	parked   map[string]*segment // by prefix
	parkedAt map[string]string   // the prefix of each parked segment's path
}

// take returns the parked segment of prefix, if any, for a log to append
// to.
func (ss *segments) take(prefix string) *segment {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.parked[prefix]
	if s == nil {
		return nil
	}
	ss.unpark(prefix, s)
	ss.inUse[s.path] = true
	return s
}

// unpark takes s, parked for prefix, off the parking. The caller holds
// ss.mu.
func (ss *segments) unpark(prefix string, s *segment) {
	s.timer.Stop()
	delete(ss.parked, prefix)
	delete(ss.parkedAt, s.path)
}

// use records a new segment a log appends to.
func (ss *segments) use(s *segment) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.inUse == nil {
		ss.inUse, ss.parked, ss.parkedAt = map[string]bool{}, map[string]*segment{}, map[string]string{}
	}
	ss.inUse[s.path] = true
}

// park keeps s open for the next log of prefix until its age is up,
// closing the segment parked before it, if any.
func (ss *segments) park(prefix string, s *segment, age time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.inUse, s.path)
	if old := ss.parked[prefix]; old != nil {
		ss.unpark(prefix, old)
		old.close()
	}
	ss.parked[prefix], ss.parkedAt[s.path] = s, prefix
	s.timer = time.AfterFunc(age-time.Since(s.created), func() {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		if ss.parked[prefix] == s {
			ss.unpark(prefix, s)
			s.close()
		}
	})
}

// done records that no log appends to s any more.
func (ss *segments) done(s *segment) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.inUse, s.path)
}

// release closes the segment at path if it is parked, and reports whether
// it may be deleted: no log appends to it.
func (ss *segments) release(path string) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.inUse[path] {
		return false
	}
	if prefix, ok := ss.parkedAt[path]; ok {
		s := ss.parked[prefix]
		ss.unpark(prefix, s)
		s.close()
	}
	return true
}

// segmentLog is a store.Log.
type segmentLog struct {
	b      *Blobs
	prefix string
	mu     sync.Mutex // serialises writes and segment changes
	seg    *segment   // the segment appended to, or nil
	closed bool
}

// segment is one open segment file.
type segment struct {
	key     string
	path    string
	f       file
	created time.Time
	written atomic.Int64 // bytes whose write has returned

	syncMu sync.Mutex  // serialises fsyncs
	synced int64       // bytes durable
	err    error       // the write or fsync failure that ended the segment
	broken atomic.Bool // err is set: read without waiting for an fsync

	timer *time.Timer // closes the segment while parked (segments.park)
}

// Append writes the object at the end of the current segment and returns
// once an fsync covers it.
func (l *segmentLog) Append(ctx context.Context, r io.Reader, size int64) (string, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("append to %s: %w", l.prefix, err)
	}
	l.mu.Lock()
	seg, err := l.current(size)
	if err != nil {
		l.mu.Unlock()
		return "", fmt.Errorf("append to %s: %w", l.prefix, err)
	}
	off := seg.written.Load()
	w := &cappedWriter{w: seg.f, left: size}
	n, err := io.Copy(w, r)
	seg.written.Store(off + n)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, want %d", n, size)
	}
	var werr *writeError
	if errors.As(err, &werr) {
		// The file's state is unknown: nothing more goes into it.
		l.retire(werr.err)
	}
	l.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("append to %s: %w", seg.key, err)
	}
	if err := seg.sync(l.b, off+size); err != nil {
		return "", fmt.Errorf("append to %s: fsync: %w", seg.key, err)
	}
	l.b.Metrics.BlobWrite(time.Since(start))
	return store.AppendedKey(seg.key, off, size), nil
}

// current returns the segment to append size bytes to, starting a new one
// when there is none, the current one failed, is full or is too old. The
// caller holds l.mu.
func (l *segmentLog) current(size int64) (*segment, error) {
	if l.closed {
		return nil, errors.New("log closed")
	}
	if l.seg == nil {
		l.seg = l.b.segments.take(l.prefix)
	}
	if s := l.seg; s != nil {
		if l.usable(s, size) {
			return s, nil
		}
		l.retire(nil)
	}
	s, err := l.b.createSegment(l.prefix)
	if err != nil {
		return nil, err
	}
	l.seg = s
	return s, nil
}

// usable reports whether s takes size more bytes: it has not failed, is
// young enough and not full (an object larger than a segment goes into an
// empty one).
func (l *segmentLog) usable(s *segment, size int64) bool {
	full := s.written.Load() > 0 && s.written.Load()+size > l.b.segmentSize()
	return !full && time.Since(s.created) < l.b.segmentAge() && !s.broken.Load()
}

// retire closes the current segment once the appends in flight have
// their fsync. The caller holds l.mu.
func (l *segmentLog) retire(cause error) {
	s := l.seg
	l.seg = nil
	s.syncMu.Lock()
	if s.err == nil && cause != nil {
		s.fail(cause)
	}
	if s.err == nil && s.synced < s.written.Load() {
		if err := s.f.Sync(); err != nil {
			s.fail(err)
		}
		s.synced = s.written.Load()
	}
	s.syncMu.Unlock()
	s.close()
	l.b.segments.done(s)
}

// close closes the segment's file. No append waits on it then: retire
// made every written byte durable, or failed them.
func (s *segment) close() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.f.Close()
	if s.err == nil {
		s.fail(errClosed)
	}
}

var errClosed = errors.New("segment closed")

// Close parks the current segment for the next log of the prefix, or
// retires it if it has failed or has no room left.
func (l *segmentLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	s := l.seg
	if s == nil {
		return nil
	}
	if l.usable(s, 0) {
		l.seg = nil
		l.b.segments.park(l.prefix, s, l.b.segmentAge())
		return nil
	}
	l.retire(nil)
	if !errors.Is(s.err, errClosed) {
		return fmt.Errorf("close %s: %w", s.key, s.err)
	}
	return nil
}

// fail records the failure that ends the segment. The caller holds
// s.syncMu.
func (s *segment) fail(err error) {
	s.err = err
	s.broken.Store(true)
}

// sync makes the segment's first end bytes durable, with one fsync for
// every append whose write had returned when it began.
func (s *segment) sync(b *Blobs, end int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= end {
		return nil
	}
	if s.err != nil {
		return s.err
	}
	written := s.written.Load()
	start := time.Now()
	if err := s.f.Sync(); err != nil {
		s.fail(err)
		return err
	}
	b.Metrics.BlobSync(time.Since(start))
	s.synced = written
	return nil
}

// createSegment creates an empty segment under prefix, named by the time
// so that a prefix's segments list oldest first, and makes its entry
// durable.
func (b *Blobs) createSegment(prefix string) (*segment, error) {
	now := time.Now()
	for i := int64(0); ; i++ {
		key := fmt.Sprintf("%s/%020d", prefix, now.UnixNano()+i)
		path, err := b.path(key)
		if err != nil {
			return nil, err
		}
		dir := filepath.Dir(path)
		if err := b.ensureDir(dir); err != nil {
			return nil, err
		}
		f, err := b.fsys.Create(path)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := b.syncDir(dir); err != nil {
			f.Close()
			b.fsys.Remove(path)
			return nil, fmt.Errorf("fsync directory: %w", err)
		}
		s := &segment{key: key, path: path, f: &writeErrors{f}, created: now}
		b.segments.use(s)
		return s, nil
	}
}

func (b *Blobs) segmentSize() int64 {
	if b.SegmentSize > 0 {
		return b.SegmentSize
	}
	return DefaultSegmentSize
}

func (b *Blobs) segmentAge() time.Duration {
	if b.SegmentAge > 0 {
		return b.SegmentAge
	}
	return DefaultSegmentAge
}

// writeErrors marks the errors of the file's writes, so that Append tells
// them from its reader's: after a failed write the segment's contents are
// unknown, after a failed read they are only longer.
type writeErrors struct{ file }

type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (w *writeErrors) Write(p []byte) (int, error) {
	n, err := w.file.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}
