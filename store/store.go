// Package store defines what openkvs keeps and the two small interfaces that
// keep it: a Catalog (streams and the fragment index, in SQL) and Blobs
// (fragment payloads and shared MKV headers). Each backend lives in its own
// package and passes the conformance suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Errors every backend returns (wrapped or not) so callers can use errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrVersionMismatch = errors.New("version mismatch")
)

// Stream status values (kvs-protocol.md §3.2).
const (
	StatusCreating = "CREATING"
	StatusActive   = "ACTIVE"
	StatusUpdating = "UPDATING"
	StatusDeleting = "DELETING"
)

// Stream is one video stream's metadata.
type Stream struct {
	ID             int64 // assigned by the catalog on create
	Name           string
	ARN            string
	DeviceName     string
	MediaType      string
	KMSKeyID       string
	Version        string
	Status         string
	CreationTime   time.Time
	RetentionHours int64
	StorageTier    string
	Tags           map[string]string
	// ImageGeneration and Notification are the stream's image generation
	// and notification configurations, as JSON documents the control plane
	// owns; "" when never set. The catalog stores them as they are.
	ImageGeneration string
	Notification    string
}

// Fragment is one row of the fragment index: a stored MKV Cluster and the
// elements that followed it, plus the header it is replayed with.
type Fragment struct {
	StreamID     int64
	Number       string // fixed-width decimal: string order is numeric order
	ProducerTime time.Time
	ServerTime   time.Time
	Duration     time.Duration
	Size         int64
	BlobKey      string // payload object in Blobs
	HeaderKey    string // shared header object in Blobs
}

// TimeField selects which fragment timestamp a range query uses.
type TimeField int

// The two fragment timestamps.
const (
	ProducerTime TimeField = iota
	ServerTime
)

// FragmentQuery selects fragments of one stream whose start time (of the
// chosen field) lies in [From, To], in (time, number) order, starting after
// the position After when it is set.
type FragmentQuery struct {
	Field    TimeField
	From, To time.Time
	After    *FragmentCursor
	Limit    int
}

// FragmentCursor is a position in (time, number) order, so that pagination
// stays stable while new fragments arrive.
type FragmentCursor struct {
	Time   time.Time
	Number string
}

// Catalog keeps streams and the fragment index.
type Catalog interface {
	// CreateStream inserts s, assigning s.ID; ErrExists if the name is taken.
	// An ID is never assigned twice, even after its stream was deleted:
	// blob keys and in-flight work name streams by ID.
	CreateStream(ctx context.Context, s *Stream) error
	// StreamByName returns the stream with that name or ErrNotFound.
	StreamByName(ctx context.Context, name string) (*Stream, error)
	// StreamByARN returns the stream with that ARN or ErrNotFound.
	StreamByARN(ctx context.Context, arn string) (*Stream, error)
	// ListStreams returns up to limit streams whose names start with prefix
	// and sort after the name after, in name order.
	ListStreams(ctx context.Context, prefix, after string, limit int) ([]*Stream, error)
	// UpdateStream replaces the stored stream s.ID with s if its version is
	// still oldVersion; ErrVersionMismatch otherwise, ErrNotFound if gone.
	UpdateStream(ctx context.Context, s *Stream, oldVersion string) error
	// DeleteStream removes stream id and its fragment rows, and records the
	// ID among the deleted streams whose blobs are still to be deleted;
	// ErrNotFound if gone.
	DeleteStream(ctx context.Context, id int64) error
	// DeletedStreams returns the IDs of deleted streams whose blobs may
	// still exist, so that a clean-up a crash cut short is finished later.
	DeletedStreams(ctx context.Context) ([]int64, error)
	// ForgetDeletedStream records that every blob of deleted stream id is
	// gone; forgetting an ID that is not recorded is not an error.
	ForgetDeletedStream(ctx context.Context, id int64) error
	// ReserveSequence reserves n fragment sequence numbers of stream id and
	// returns the first; reservations never overlap, across restarts too.
	ReserveSequence(ctx context.Context, id int64, n uint64) (uint64, error)

	// AddFragments indexes fragments whose blobs are already durable, all
	// or none: ErrExists if a number is taken, ErrNotFound if the stream is
	// gone. With a lease (a Cluster's; nil with one node) the rows are
	// added only if it is still the stream's current lease, checked in the
	// same transaction: ErrLeaseLost otherwise, so a node that lost a
	// stream can never commit its rows.
	AddFragments(ctx context.Context, lease *Lease, fs []*Fragment) error
	// Fragments returns the indexed fragments of stream id among numbers, in
	// the order asked; numbers with no row are left out.
	Fragments(ctx context.Context, id int64, numbers []string) ([]*Fragment, error)
	// QueryFragments returns fragments of stream id matching q.
	QueryFragments(ctx context.Context, id int64, q FragmentQuery) ([]*Fragment, error)
	// FragmentsAfter returns up to limit fragments of stream id whose number
	// sorts after the given one ("" for the first), in number order.
	FragmentsAfter(ctx context.Context, id int64, number string, limit int) ([]*Fragment, error)
	// LatestFragments returns the newest limit fragments of stream id (the
	// largest numbers), oldest first: a live playlist's window.
	LatestFragments(ctx context.Context, id int64, limit int) ([]*Fragment, error)
	// DeleteFragmentsBefore removes up to limit fragments of stream id whose
	// server time is before t and returns them, so their blobs can go.
	DeleteFragmentsBefore(ctx context.Context, id int64, t time.Time, limit int) ([]*Fragment, error)
	// HasBlobKey reports whether any fragment row references the blob key as
	// payload or header, or references an object appended to it when key is
	// a segment (Appender: a payload key that starts with key and "@"); the
	// sweeper deletes only blobs that are unreferenced.
	HasBlobKey(ctx context.Context, key string) (bool, error)

	// Close releases the catalog.
	Close() error
}

// Blobs keeps fragment payloads and headers as immutable objects.
type Blobs interface {
	// Put stores the size bytes r yields as the object, atomically: it is
	// absent or complete, and durable when Put returns nil. The length is
	// known up front so that an object store takes one plain PUT; r
	// yielding more or fewer bytes is an error and stores nothing.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Open returns a reader of the object or ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every complete object whose key starts with
	// prefix, in key order.
	List(ctx context.Context, prefix string, fn func(BlobInfo) error) error
}

// Prefetcher is implemented by Blobs whose Open waits long for the first
// byte (an object store's round trip): a reader that knows which objects
// it opens next calls Prefetch so that they are on their way meanwhile.
// Prefetch is a hint: it never fails and may do nothing.
type Prefetcher interface {
	// Prefetch starts fetching the object key, of size bytes, for an Open
	// to come.
	Prefetch(key string, size int64)
}

// Appender is implemented by Blobs that can keep a writer's objects one
// after another in a segment, an object of its own, instead of one object
// each: an append costs one write and one fsync of a file that exists,
// where a Put creates, fsyncs and renames a file and fsyncs its directory.
// An appended object is read with Open under the key Append returns
// (AppendedKey); Delete of it frees nothing, since its bytes go with its
// segment: the sweeper deletes a segment (a key List yields, with
// Modified the time of its last append) once no fragment row references
// an object in it (Catalog.HasBlobKey).
type Appender interface {
	// Log starts a log of objects appended to segments whose keys start
	// with prefix and a slash. A log is used by one writer and closed when
	// it is done. Two logs open at once never append to one segment; a log
	// may go on with a segment that a closed log of its prefix left.
	Log(prefix string) Log
}

// Log appends objects to segments (Appender).
type Log interface {
	// Append stores the size bytes r yields as a new object and returns
	// its key once it is durable. r yielding more or fewer bytes, or any
	// failure, is an error, and no key refers to what was written. Append
	// may be called by several goroutines at once.
	Append(ctx context.Context, r io.Reader, size int64) (key string, err error)
	// Close ends the log; its segments stay.
	Close() error
}

// AppendedKey is the key of the object of size bytes at offset off of the
// segment whose key is segment.
func AppendedKey(segment string, off, size int64) string {
	return fmt.Sprintf("%s@%d+%d", segment, off, size)
}

// ParseAppendedKey splits the key of an appended object (AppendedKey); ok
// is false for any other key.
func ParseAppendedKey(key string) (segment string, off, size int64, ok bool) {
	segment, place, found := strings.Cut(key, "@")
	if !found || segment == "" {
		return "", 0, 0, false
	}
	o, s, found := strings.Cut(place, "+")
	off, errOff := strconv.ParseInt(o, 10, 64)
	size, errSize := strconv.ParseInt(s, 10, 64)
	if !found || errOff != nil || errSize != nil || off < 0 || size < 0 || off > math.MaxInt64-size ||
		AppendedKey(segment, off, size) != key {
		return "", 0, 0, false
	}
	return segment, off, size, true
}

// BlobInfo describes one stored object.
type BlobInfo struct {
	Key      string
	Modified time.Time // when its Put completed
}

// The rule that lets the sweeper delete blobs that no catalog row
// references without racing a writer, on one node or several: a writer adds
// a row only for blobs whose Put completed less than MaxReferenceDelay
// before (a longer-lived writer, such as a PutMedia session reusing its
// stream header, writes the blob again under a new key), so an
// unreferenced blob older than BlobGrace will never be referenced and may
// go. BlobGrace leaves a wide margin for a commit in flight and for clock
// differences between nodes and the object store.
const (
	MaxReferenceDelay = 20 * time.Minute
	BlobGrace         = time.Hour
)
