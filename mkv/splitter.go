package mkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("mkv: splitter closed")

// Default limits of SplitterOptions.
const (
	DefaultMaxFrameSize   = 50 << 20 // a frame cannot be larger than a KVS fragment (50 MB, spec 4.6)
	DefaultMaxElementSize = 50 << 20 // generous for Tags and Cues inside a fragment, yet bounded
	// DefaultMaxHeaderSize bounds a stream header: the producer SDKs cap each track's
	// CodecPrivate at 1 MiB (MKV_MAX_CODEC_PRIVATE_LEN) and a stream has at most 3 tracks.
	DefaultMaxHeaderSize = 4 << 20
)

// SplitterOptions bounds the memory a Splitter may use; zero fields take the defaults.
type SplitterOptions struct {
	// MaxFrameSize is the largest SimpleBlock or BlockGroup, header included; default DefaultMaxFrameSize.
	MaxFrameSize int64
	// MaxElementSize bounds the Data of every other event; default DefaultMaxElementSize.
	MaxElementSize int64
	// MaxHeaderSize bounds a Header's Data: the EBML header and the Segment's elements
	// before the first Cluster; default DefaultMaxHeaderSize.
	MaxHeaderSize int64
	// Memory, when set, is told about the Splitter's buffers, so that the memory of many
	// Splitters can be bounded together: Grow before a buffer grows (an error ends the
	// Splitter with that error, before the memory is taken), Shrink when buffers are let go.
	Memory Memory
}

// Memory accounts for the bytes a Splitter's buffers hold.
type Memory interface {
	Grow(n int) error
	Shrink(n int)
}

// retainedBuffer is the capacity above which the Splitter lets a buffer go once its event
// was consumed, rather than keep the memory of one large frame for the rest of the input.
const retainedBuffer = 1 << 20

type splitState int

const (
	stStart        splitState = iota // expecting an EBML header
	stNeedSegment                    // EBML header read, expecting its Segment
	stHeader                         // inside a Segment, before its first Cluster
	stClusterStart                   // a Cluster began, its Timecode not read yet
	stCluster                        // inside the Cluster of the open fragment
	stAfterCluster                   // fragment open, level-1 elements after its Cluster
	stAfterEoFR                      // fragment closed by an EoFR tag; holding level-1 elements
)

// Splitter cuts one PutMedia MKV stream into a header and fragments (spec 4.2): each Cluster
// starts a fragment, which ends at the next Cluster, after a Tags element carrying
// AWS_KINESISVIDEO_END_OF_FRAGMENT (EoFR), at a new EBML header or at the end of the input.
// Level-1 elements after a Cluster belong to its fragment (spec 5.3 note B); after an EoFR
// they are held and open the next fragment instead. Every input byte is in exactly one
// event's Data, in order.
//
// Events other than *Header, and the Data of every event, are reused: they are valid only
// until the next call to Next. In the steady state Next does not allocate.
type Splitter struct {
	r     *Reader
	opts  SplitterOptions
	state splitState
	hb    *headerBuilder // header being collected
	buf   []byte         // Data of the event being built
	held  []byte         // level-1 elements held after an EoFR
	tags  []SimpleTag    // SimpleTags of held Tags elements

	start   FragmentStart
	frame   Frame
	data    FragmentData
	end     FragmentEnd
	trailer Trailer

	queue [3]Event // events ready to return; one element yields at most two
	qhead int
	qlen  int
	err   error // sticky; io.EOF after the input ended

	accounted int // bytes of buffer capacity reported to opts.Memory
}

// NewSplitter returns a Splitter reading the stream from r.
func NewSplitter(r io.Reader, opts SplitterOptions) *Splitter {
	if opts.MaxFrameSize <= 0 {
		opts.MaxFrameSize = DefaultMaxFrameSize
	}
	if opts.MaxElementSize <= 0 {
		opts.MaxElementSize = DefaultMaxElementSize
	}
	if opts.MaxHeaderSize <= 0 {
		opts.MaxHeaderSize = DefaultMaxHeaderSize
	}
	s := &Splitter{r: NewReader(r), opts: opts}
	if opts.Memory != nil {
		s.r.grow = s.grow
	}
	return s
}

// grow reports n more bytes of buffer capacity before they are allocated.
func (s *Splitter) grow(n int) error {
	if err := s.opts.Memory.Grow(n); err != nil {
		return err
	}
	s.accounted += n
	return nil
}

// buffered is the capacity of the buffers the Splitter holds now.
func (s *Splitter) buffered() int {
	n := cap(s.buf) + cap(s.held)
	if s.hb != nil {
		n += cap(s.hb.data)
	}
	return n
}

// settle drops a large event buffer that was consumed and brings opts.Memory in line with
// the buffers held: small appends outside the Reader (element headers, held elements) are
// reported after the fact.
func (s *Splitter) settle() error {
	if cap(s.buf) > retainedBuffer {
		s.buf = nil
	}
	if s.opts.Memory == nil {
		return nil
	}
	switch n := s.buffered(); {
	case n > s.accounted:
		return s.grow(n - s.accounted)
	case n < s.accounted:
		s.opts.Memory.Shrink(s.accounted - n)
		s.accounted = n
	}
	return nil
}

// Close lets the Splitter's buffers go and reports them to opts.Memory. The Splitter must
// not be used afterwards.
func (s *Splitter) Close() {
	s.buf, s.held, s.hb = nil, nil, nil
	s.settle()
	s.err = ErrClosed
}

// Next returns the next event, or io.EOF after the last one. Malformed input yields an error
// matching ErrInvalid, an element above a limit one matching ErrTooLarge; errors of the
// underlying reader are returned wrapped and match neither.
func (s *Splitter) Next() (Event, error) {
	for s.qlen == 0 {
		if s.err != nil {
			return nil, s.err
		}
		// The events of the last step were consumed: their buffers are free.
		if s.err = s.settle(); s.err == nil {
			s.err = s.step()
		}
	}
	ev := s.queue[s.qhead]
	s.queue[s.qhead] = nil
	s.qhead = (s.qhead + 1) % len(s.queue)
	s.qlen--
	return ev, nil
}

func (s *Splitter) push(ev Event) {
	s.queue[(s.qhead+s.qlen)%len(s.queue)] = ev
	s.qlen++
}

// step consumes one element.
func (s *Splitter) step() error {
	e, err := s.r.Next()
	if err == io.EOF {
		if err := s.closeDocument(EndOfInput, s.r.off); err != nil {
			return err
		}
		return io.EOF
	}
	if err != nil {
		return err
	}
	if e.Level > 0 && isRoot(e.ID) {
		return invalidf(e.Offset, "%v nested at level %d", e.ID, e.Level)
	}
	switch e.Level {
	case 0:
		return s.topLevel(e)
	case 1:
		return s.segmentChild(e)
	default: // only Segment and Cluster are entered, so this is a Cluster child
		return s.clusterChild(e)
	}
}

func (s *Splitter) topLevel(e Element) error {
	switch e.ID {
	case IDEBML:
		if err := s.closeDocument(EndNewHeader, e.Offset); err != nil {
			return err
		}
		s.hb = newHeaderBuilder()
		var err error
		if s.hb.data, err = s.readWhole(nil, e, s.opts.MaxHeaderSize); err != nil {
			return err
		}
		s.state = stNeedSegment
		return s.hb.parseEBML(e)
	case IDSegment:
		switch s.state {
		case stNeedSegment:
			s.hb.data = e.AppendHeader(s.hb.data)
			s.state = stHeader
			return s.r.Enter()
		case stStart:
			return invalidf(e.Offset, "Segment without an EBML header")
		}
		return invalidf(e.Offset, "second Segment in one EBML document")
	case IDCluster, IDTimecode, IDSimpleBlock, IDBlockGroup, IDTags:
		if e.Offset == 0 {
			return &InvalidError{Offset: 0, Msg: fmt.Sprintf("the input starts with a %v, without a stream header", e.ID), Err: ErrMidFragment}
		}
		if e.ID == IDCluster {
			return invalidf(e.Offset, "Cluster outside a Segment")
		}
	}
	return invalidf(e.Offset, "unexpected %v at top level", e.ID)
}

// closeDocument ends whatever the current EBML document left open, before a new EBML header
// at offset off or at the end of the input.
func (s *Splitter) closeDocument(reason EndReason, off int64) error {
	switch s.state {
	case stNeedSegment:
		err := &InvalidError{Offset: off, Msg: "EBML header not followed by a Segment"}
		if reason == EndOfInput {
			err.Err = io.ErrUnexpectedEOF
		}
		return err
	case stHeader:
		s.push(s.hb.finish())
		s.hb = nil
	case stClusterStart:
		return invalidf(s.start.Offset, "Cluster ends before its Timecode")
	case stCluster, stAfterCluster:
		s.end.Reason = reason
		s.push(&s.end)
	case stAfterEoFR:
		if len(s.held) > 0 {
			s.trailer = Trailer{Data: s.held, Tags: s.tags}
			s.push(&s.trailer)
			s.held, s.tags = s.held[:0], s.tags[:0] // the trailer keeps the bytes until the next Next
		}
	}
	s.state = stStart
	return nil
}

func (s *Splitter) segmentChild(e Element) error {
	switch s.state {
	case stHeader:
		if e.ID == IDCluster {
			s.push(s.hb.finish())
			s.hb = nil
			return s.startCluster(e)
		}
		start := len(s.hb.data)
		if total := int64(start) + int64(e.HeaderLen) + e.Size; !e.Unknown() && total > s.opts.MaxHeaderSize {
			return headerTooLarge(e, total, s.opts.MaxHeaderSize)
		}
		var err error
		if s.hb.data, err = s.readWhole(s.hb.data, e, s.opts.MaxElementSize); err != nil {
			return err
		}
		return s.hb.addPart(e, start)
	case stClusterStart:
		return invalidf(s.start.Offset, "Cluster ends before its Timecode (at %v, offset %d)", e.ID, e.Offset)
	case stCluster, stAfterCluster:
		if e.ID == IDCluster {
			s.end.Reason = EndNextCluster
			s.push(&s.end)
			return s.startCluster(e)
		}
		return s.trailingElement(e)
	default: // stAfterEoFR
		if e.ID == IDCluster {
			return s.startCluster(e)
		}
		start := len(s.held)
		var err error
		if s.held, err = s.readWhole(s.held, e, s.opts.MaxElementSize); err != nil {
			return err
		}
		if e.ID == IDTags {
			s.tags, err = appendSimpleTags(s.tags, s.held[start+e.HeaderLen:], e.DataOffset())
		}
		return err
	}
}

// trailingElement handles a level-1 element after the open fragment's Cluster.
func (s *Splitter) trailingElement(e Element) error {
	var err error
	if s.buf, err = s.readWhole(s.buf[:0], e, s.opts.MaxElementSize); err != nil {
		return err
	}
	s.state = stAfterCluster
	s.data = FragmentData{Data: s.buf, ID: e.ID, Tags: s.data.Tags[:0]}
	if e.ID == IDTags {
		if s.data.Tags, err = appendSimpleTags(s.data.Tags, s.buf[e.HeaderLen:], e.DataOffset()); err != nil {
			return err
		}
	}
	s.push(&s.data)
	if hasEoFR(s.data.Tags) {
		// Reported at once: the producer waits for the ACK before sending more (spec 4.4).
		s.end.Reason = EndEoFR
		s.push(&s.end)
		s.state = stAfterEoFR
		s.held, s.tags = s.held[:0], s.tags[:0]
	}
	return nil
}

func hasEoFR(tags []SimpleTag) bool {
	for _, t := range tags {
		if t.Name == TagEndOfFragment {
			return true
		}
	}
	return false
}

// startCluster begins a fragment's Data with the held elements and the Cluster header.
func (s *Splitter) startCluster(e Element) error {
	s.buf = append(s.buf[:0], s.held...)
	s.start.Tags = append(s.start.Tags[:0], s.tags...)
	s.held, s.tags = s.held[:0], s.tags[:0]
	s.start.Offset = e.Offset
	s.buf = e.AppendHeader(s.buf)
	s.state = stClusterStart
	return s.r.Enter()
}

func (s *Splitter) clusterChild(e Element) error {
	if e.ID == IDCluster {
		return invalidf(e.Offset, "Cluster inside a Cluster")
	}
	var err error
	if s.state == stClusterStart {
		switch e.ID {
		case IDSimpleBlock, IDBlockGroup:
			return invalidf(e.Offset, "%v before the Cluster Timecode", e.ID)
		case IDTimecode:
			if e.Size > 8 {
				return invalidf(e.Offset, "Timecode of %d bytes", e.Size)
			}
			if s.buf, err = s.readWhole(s.buf, e, s.opts.MaxElementSize); err != nil {
				return err
			}
			s.start.Timecode, _ = decodeUint(s.buf[len(s.buf)-int(e.Size):])
			s.start.Data = s.buf
			s.state = stCluster
			s.push(&s.start)
			return nil
		}
		// CRC-32, Void, Position... before Timecode open the fragment's Data.
		s.buf, err = s.readWhole(s.buf, e, s.opts.MaxElementSize)
		return err
	}
	switch e.ID {
	case IDTimecode:
		return invalidf(e.Offset, "second Timecode in a Cluster")
	case IDSimpleBlock, IDBlockGroup:
		if s.buf, err = s.readWhole(s.buf[:0], e, s.opts.MaxFrameSize); err != nil {
			return err
		}
		if err := s.frame.parse(e, s.buf); err != nil {
			return err
		}
		s.push(&s.frame)
		return nil
	}
	if s.buf, err = s.readWhole(s.buf[:0], e, s.opts.MaxElementSize); err != nil {
		return err
	}
	s.data = FragmentData{Data: s.buf, ID: e.ID, Tags: s.data.Tags[:0]}
	s.push(&s.data)
	return nil
}

// readWhole appends element e, header and payload, to dst, refusing to let dst grow past limit.
func (s *Splitter) readWhole(dst []byte, e Element, limit int64) ([]byte, error) {
	if e.Unknown() {
		return dst, invalidf(e.Offset, "%v of unknown size where a sized element is required", e.ID)
	}
	if total := int64(len(dst)) + int64(e.HeaderLen) + e.Size; total > limit {
		return dst, tooLarge(e, total, limit)
	}
	return s.r.appendPayload(e.AppendHeader(dst))
}

// parse fills f from the SimpleBlock or BlockGroup e held in data.
func (f *Frame) parse(e Element, data []byte) error {
	*f = Frame{Data: data}
	body := data[e.HeaderLen:]
	if e.ID == IDSimpleBlock {
		flags, err := f.parseBlock(body, e.DataOffset())
		f.Keyframe = flags&0x80 != 0
		return err
	}
	c := newChildren(body, e.DataOffset())
	var block []byte
	var blockOff int64
	f.Keyframe = true
	for c.next() {
		switch c.id {
		case IDBlock:
			block, blockOff = c.body, c.bodyOff
		case IDBlockDuration:
			f.Duration, f.HasDuration = c.uint()
		case IDReferenceBlock:
			f.Keyframe = false
		}
	}
	if c.err != nil {
		return c.err
	}
	if block == nil {
		return invalidf(e.Offset, "BlockGroup without a Block")
	}
	_, err := f.parseBlock(block, blockOff)
	return err
}

// parseBlock reads a Block header (RFC 9559 §10.1): track number VINT, signed 16-bit
// relative timecode, flags. It returns the flags.
func (f *Frame) parseBlock(b []byte, off int64) (byte, error) {
	if len(b) == 0 {
		return 0, invalidf(off, "empty block")
	}
	n := vintLen(b[0])
	if n > maxSizeLen || len(b) < n+3 {
		return 0, invalidf(off, "block header of %d bytes is truncated", len(b))
	}
	track := decodeSize(b[:n])
	if track == UnknownSize {
		return 0, invalidf(off, "block track number is reserved all-ones")
	}
	f.Track = uint64(track)
	f.Timecode = int16(binary.BigEndian.Uint16(b[n:]))
	f.Laced = b[n+2]&0x06 != 0
	f.Payload = b[n+3:]
	return b[n+2], nil
}
