package mkv

// Event is one piece of a stream split by Splitter: *Header, *FragmentStart, *Frame,
// *FragmentData, *FragmentEnd or *Trailer. Concatenating Bytes of all events in order
// reproduces the input exactly.
type Event interface {
	// Bytes returns the input bytes the event covers, possibly none.
	Bytes() []byte
	isEvent()
}

// Header is a complete stream header: the EBML header, the Segment header and the level-1
// elements before the first Cluster. Unlike the other events it is never reused, so it can
// be kept for replay in GetMedia chunks.
type Header struct {
	Data             []byte      // input bytes as received
	EBML             []byte      // the EBML header element, part of Data
	FirstChunkHeader []byte      // GetMedia chunk prefix for the first fragment after this header
	ChunkHeader      []byte      // GetMedia chunk prefix for later fragments
	DocType          string      // EBML DocType, "matroska" or "webm"
	TimecodeScale    uint64      // nanoseconds per timecode unit, 1,000,000 unless Info says otherwise
	Tracks           []Track     // the TrackEntry elements of Tracks
	Tags             []SimpleTag // SimpleTags of Tags elements before Info: first-fragment metadata
}

// Track is the part of a Matroska TrackEntry that ingest checks.
type Track struct {
	Number       uint64 // TrackNumber, referenced by blocks
	UID          uint64 // TrackUID
	Type         uint64 // TrackType: 1 video, 2 audio
	CodecID      string // CodecID such as V_MPEG4/ISO/AVC
	CodecPrivate []byte // CodecPrivate, nil if absent
}

// FragmentStart opens a fragment: a Cluster began and its Timecode was read.
type FragmentStart struct {
	Data     []byte      // elements held since an EoFR, then the Cluster header and children up to Timecode
	Offset   int64       // absolute input offset of the Cluster
	Timecode uint64      // Cluster Timecode in TimecodeScale units
	Tags     []SimpleTag // SimpleTags of held Tags elements (producer metadata sent after an EoFR)
}

// Frame is one complete SimpleBlock or BlockGroup of the open fragment.
type Frame struct {
	Data        []byte // the whole element, header included
	Track       uint64 // track number of the block
	Timecode    int16  // timecode relative to the Cluster Timecode, in TimecodeScale units
	Keyframe    bool   // SimpleBlock key flag (0x80), or a BlockGroup without ReferenceBlock
	Laced       bool   // the block uses lacing (flags 0x06): Payload starts with the lace header
	Payload     []byte // the block's frame data after its header, part of Data
	Duration    uint64 // BlockDuration, valid if HasDuration
	HasDuration bool   // the BlockGroup had a BlockDuration
}

// FragmentData is any other element of the open fragment: Position, PrevSize, CRC-32 or
// Void inside the Cluster, or a level-1 element (Tags, Cues, Void...) after it.
type FragmentData struct {
	Data []byte      // the whole element
	ID   ID          // its Element ID
	Tags []SimpleTag // its SimpleTags if it is a Tags element
}

// FragmentEnd closes the open fragment; it carries no bytes.
type FragmentEnd struct {
	Reason EndReason // what closed the fragment
}

// Trailer holds level-1 elements that followed an EoFR-closed fragment but were not
// followed by a Cluster (the input or the document ended), so belong to no fragment.
type Trailer struct {
	Data []byte      // the elements
	Tags []SimpleTag // SimpleTags of Tags among them
}

// EndReason says why a fragment ended (spec 4.2).
type EndReason int

// Fragment end reasons.
const (
	EndNextCluster EndReason = iota + 1 // the next Cluster started
	EndEoFR                             // a Tags element with AWS_KINESISVIDEO_END_OF_FRAGMENT ended
	EndNewHeader                        // a new EBML header started
	EndOfInput                          // the input ended
)

// String names the reason.
func (r EndReason) String() string {
	switch r {
	case EndNextCluster:
		return "next cluster"
	case EndEoFR:
		return "end-of-fragment tag"
	case EndNewHeader:
		return "new header"
	case EndOfInput:
		return "end of input"
	}
	return "unknown"
}

// Bytes returns Data.
func (h *Header) Bytes() []byte { return h.Data }

// Bytes returns Data.
func (f *FragmentStart) Bytes() []byte { return f.Data }

// Bytes returns Data.
func (f *Frame) Bytes() []byte { return f.Data }

// Bytes returns Data.
func (f *FragmentData) Bytes() []byte { return f.Data }

// Bytes returns nil: a fragment end covers no input.
func (f *FragmentEnd) Bytes() []byte { return nil }

// Bytes returns Data.
func (t *Trailer) Bytes() []byte { return t.Data }

func (*Header) isEvent()        {}
func (*FragmentStart) isEvent() {}
func (*Frame) isEvent()         {}
func (*FragmentData) isEvent()  {}
func (*FragmentEnd) isEvent()   {}
func (*Trailer) isEvent()       {}
