package mkv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// maxDepth bounds how deep a caller can Enter, so hostile nesting cannot grow the stack
// without limit. Matroska itself nests fewer than 10 levels.
const maxDepth = 64

// Element is the header of one EBML element as returned by Reader.Next.
type Element struct {
	ID        ID    // Element ID
	Offset    int64 // absolute input offset of the element's first byte (its ID)
	HeaderLen int   // length of the ID and size field together
	Size      int64 // payload length in bytes, or UnknownSize
	Level     int   // nesting depth: 0 for the EBML header and Segment, 1 for Segment children
}

// Unknown reports whether the element's size field was all ones (RFC 8794 §6.2).
func (e Element) Unknown() bool { return e.Size == UnknownSize }

// DataOffset returns the absolute offset of the element's payload.
func (e Element) DataOffset() int64 { return e.Offset + int64(e.HeaderLen) }

// AppendHeader appends the element's ID and size field exactly as they were read: an EBML
// VINT of a given width and value has only one encoding, so the bytes are reproduced
// without being kept.
func (e Element) AppendHeader(dst []byte) []byte {
	n := idLen(e.ID)
	dst = appendID(dst, e.ID)
	return appendSizeN(dst, e.Size, e.HeaderLen-n)
}

// container is a master element the caller entered and that has not ended yet.
type container struct {
	id      ID
	end     int64 // offset just past the element, or -1 while no ancestor bounds an unknown size
	unknown bool  // size unknown: also ends at the first element that cannot be its child
}

// Reader reads an EBML stream element by element, in the manner of archive/tar: Next
// returns the next element header, Read reads its payload, and whatever is left unread is
// skipped by the following Next. To descend into a master element call Enter before
// reading its payload; the following Next then returns its first child. An unknown-size
// element that is not entered is skipped child by child, as it has no length to skip.
//
// Reader calls the underlying reader only when it needs more bytes for the element at hand,
// so on a live stream it never waits for data beyond that element (whatever one underlying
// Read returns early is kept in a 64 KiB buffer).
type Reader struct {
	br        *bufio.Reader
	off       int64       // absolute offset of the next byte br will return
	stack     []container // entered elements that have not ended, outermost first
	cur       Element     // element returned by the last Next
	hasCur    bool        // cur is valid and not yet finished
	entered   bool        // Enter was called for cur
	touched   bool        // Read was called for cur
	remaining int64       // unread payload bytes of cur (known size only)
	skipLevel int         // >= 0 while Next discards descendants of an unknown-size element
	err       error       // sticky error
	// grow, when set, is asked before appendPayload enlarges a buffer by n bytes.
	grow func(n int) error
}

// NewReader returns a Reader reading from r. It buffers r internally; a *bufio.Reader of
// sufficient size is used as is.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10), skipLevel: -1}
}

// Next skips the rest of the current element (unless it was entered) and returns the next
// element header. It returns io.EOF when the input ends cleanly between elements and no
// entered element with a known size is still open.
func (r *Reader) Next() (Element, error) {
	if r.err != nil {
		return Element{}, r.err
	}
	if err := r.finishCurrent(); err != nil {
		return Element{}, r.fail(err)
	}
	for {
		e, err := r.readHeader()
		if err != nil {
			return Element{}, r.fail(err)
		}
		if r.skipLevel >= 0 && e.Level > r.skipLevel {
			// A descendant of an unknown-size element the caller did not enter.
			if e.Unknown() {
				if err := r.push(e); err != nil {
					return Element{}, r.fail(err)
				}
				continue
			}
			r.cur = e // named by a truncation error
			if err := r.discard(e.Size); err != nil {
				return Element{}, r.fail(err)
			}
			continue
		}
		r.skipLevel = -1
		r.cur, r.hasCur, r.entered, r.touched = e, true, false, false
		r.remaining = max(e.Size, 0)
		return e, nil
	}
}

// Enter descends into the current element, which must not have been read from: the next
// call to Next returns its first child, or the element after it if it has none.
func (r *Reader) Enter() error {
	if r.err != nil {
		return r.err
	}
	if !r.hasCur || r.entered || r.touched {
		return errors.New("mkv: Enter must directly follow Next")
	}
	if err := r.push(r.cur); err != nil {
		return r.fail(err)
	}
	r.entered = true
	return nil
}

// Read reads from the payload of the current element; it returns io.EOF at the payload's
// end. Entered elements and unknown-size elements have no payload to read.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.hasCur || r.entered {
		return 0, io.EOF
	}
	if r.cur.Unknown() {
		return 0, fmt.Errorf("mkv: %v at offset %d has unknown size: Enter it instead of reading", r.cur.ID, r.cur.Offset)
	}
	if r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := r.br.Read(p)
	r.off += int64(n)
	r.remaining -= int64(n)
	r.touched = true
	if err != nil {
		if err == io.EOF {
			err = r.truncated()
		} else {
			err = r.ioError(err)
		}
		return n, r.fail(err)
	}
	return n, nil
}

// appendPayload appends the unread rest of the current element's payload to dst. It grows
// dst only as bytes arrive, so a hostile size claim costs no more memory than the bytes
// actually sent.
func (r *Reader) appendPayload(dst []byte) ([]byte, error) {
	for r.remaining > 0 {
		if len(dst) == cap(dst) {
			// Double, but no further than the payload needs: memory follows the bytes that
			// arrived, not the size an element claims.
			more := int(min(r.remaining, int64(max(cap(dst), 4096))))
			if r.grow != nil {
				if err := r.grow(more); err != nil {
					return dst, err
				}
				grown := make([]byte, len(dst), len(dst)+more)
				copy(grown, dst)
				dst = grown
			} else {
				dst = slices.Grow(dst, more)
			}
		}
		n := int(min(int64(cap(dst)-len(dst)), r.remaining))
		m, err := io.ReadFull(r, dst[len(dst):len(dst)+n])
		dst = dst[:len(dst)+m]
		if err != nil {
			return dst, err
		}
	}
	return dst, nil
}

func (r *Reader) fail(err error) error {
	r.err = err
	r.hasCur = false
	return err
}

// finishCurrent skips what the caller left of the current element.
func (r *Reader) finishCurrent() error {
	if !r.hasCur {
		return nil
	}
	r.hasCur = false
	switch {
	case r.entered:
		return nil
	case r.cur.Unknown():
		// No length to skip: enter it and let Next drop its descendants.
		if err := r.push(r.cur); err != nil {
			return err
		}
		r.skipLevel = r.cur.Level
		return nil
	default:
		return r.discard(r.remaining)
	}
}

func (r *Reader) discard(n int64) error {
	for n > 0 {
		chunk := int(min(n, 1<<30))
		m, err := r.br.Discard(chunk)
		r.off += int64(m)
		n -= int64(m)
		r.remaining = n
		if err != nil {
			if err == io.EOF {
				return r.truncated()
			}
			return r.ioError(err)
		}
	}
	r.remaining = 0
	return nil
}

// push makes e the innermost open container.
func (r *Reader) push(e Element) error {
	if len(r.stack) >= maxDepth {
		return invalidf(e.Offset, "%v nested deeper than %d levels", e.ID, maxDepth)
	}
	c := container{id: e.ID, end: -1, unknown: e.Unknown()}
	if c.unknown {
		// An unknown size still cannot reach past a parent with a known end.
		if n := len(r.stack); n > 0 {
			c.end = r.stack[n-1].end
		}
	} else {
		c.end = e.DataOffset() + e.Size
	}
	r.stack = append(r.stack, c)
	return nil
}

// readHeader reads the next element header and works out its level, closing the entered
// elements it lies outside of.
func (r *Reader) readHeader() (Element, error) {
	for n := len(r.stack); n > 0 && r.stack[n-1].end == r.off; n-- {
		r.stack = r.stack[:n-1]
	}
	start := r.off
	id, err := r.readID()
	if err != nil {
		if err == io.EOF {
			for _, c := range r.stack {
				if c.end >= 0 {
					return Element{}, &InvalidError{Offset: r.off, Err: io.ErrUnexpectedEOF,
						Msg: fmt.Sprintf("input ends inside %v, which ends at offset %d", c.id, c.end)}
				}
			}
			r.stack = r.stack[:0]
		}
		return Element{}, err
	}
	size, err := r.readSize(start, id)
	if err != nil {
		return Element{}, err
	}
	e := Element{ID: id, Offset: start, HeaderLen: int(r.off - start), Size: size}
	for n := len(r.stack); n > 0 && r.stack[n-1].unknown && endsUnknownSize(r.stack[n-1].id, id); n-- {
		r.stack = r.stack[:n-1]
	}
	e.Level = len(r.stack)
	if e.Unknown() && id != IDSegment && id != IDCluster {
		// Matroska allows unknown sizes for Segment and Cluster only (RFC 9559 §6.2).
		return Element{}, invalidf(start, "%v has unknown size", id)
	}
	if n := len(r.stack); n > 0 {
		if p := r.stack[n-1]; p.end >= 0 {
			if e.DataOffset() > p.end || (!e.Unknown() && e.Size > p.end-e.DataOffset()) {
				return Element{}, invalidf(start, "%v of %d bytes exceeds its parent %v, which ends at offset %d",
					id, e.Size, p.id, p.end)
			}
		}
	}
	return e, nil
}

// readID reads an Element ID. It returns io.EOF only if the input ends before its first byte.
func (r *Reader) readID() (ID, error) {
	start := r.off
	b, err := r.readByte()
	if err != nil {
		return 0, err
	}
	n := vintLen(b)
	if n > maxIDLen {
		return 0, invalidf(start, "element ID starting with byte 0x%02X is longer than %d bytes", b, maxIDLen)
	}
	id := uint32(b)
	for range n - 1 {
		if b, err = r.readByte(); err != nil {
			return 0, r.headerEOF(err, "element ID")
		}
		id = id<<8 | uint32(b)
	}
	if !validID(id, n) {
		return 0, invalidf(start, "invalid element ID 0x%0*X", 2*n, id)
	}
	return ID(id), nil
}

// readSize reads the data size field of the element with ID id that starts at start.
func (r *Reader) readSize(start int64, id ID) (int64, error) {
	var buf [maxSizeLen]byte
	b, err := r.readByte()
	if err != nil {
		return 0, r.headerEOF(err, "size of "+id.String())
	}
	n := vintLen(b)
	if n > maxSizeLen {
		return 0, invalidf(start, "size field of %v is longer than %d bytes", id, maxSizeLen)
	}
	buf[0] = b
	for i := 1; i < n; i++ {
		if buf[i], err = r.readByte(); err != nil {
			return 0, r.headerEOF(err, "size of "+id.String())
		}
	}
	return decodeSize(buf[:n]), nil
}

func (r *Reader) readByte() (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, io.EOF
		}
		return 0, r.ioError(err)
	}
	r.off++
	return b, nil
}

// headerEOF turns an io.EOF inside an element header into a truncation error.
func (r *Reader) headerEOF(err error, what string) error {
	if err == io.EOF {
		return &InvalidError{Offset: r.off, Msg: "input ends inside " + what, Err: io.ErrUnexpectedEOF}
	}
	return err
}

func (r *Reader) truncated() error {
	return &InvalidError{Offset: r.off, Err: io.ErrUnexpectedEOF,
		Msg: fmt.Sprintf("input ends inside %v payload, %d bytes short", r.cur.ID, r.remaining)}
}

// ioError wraps an error of the underlying reader without changing what it matches.
func (r *Reader) ioError(err error) error {
	return fmt.Errorf("mkv: reading input at offset %d: %w", r.off, err)
}
