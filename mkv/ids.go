package mkv

import "fmt"

// ID is an EBML Element ID as it appears on the wire, VINT marker bits included
// (RFC 8794 §5), which is also how the Matroska specification (RFC 9559 §5.1) lists them.
type ID uint32

// EBML header and global elements, RFC 8794 §11.2 and §11.3.
const (
	IDEBML               ID = 0x1A45DFA3 // EBML header, the root element every EBML document starts with
	IDEBMLVersion        ID = 0x4286     // EBMLVersion, inside the EBML header
	IDEBMLReadVersion    ID = 0x42F7     // EBMLReadVersion, inside the EBML header
	IDEBMLMaxIDLength    ID = 0x42F2     // EBMLMaxIDLength, inside the EBML header
	IDEBMLMaxSizeLength  ID = 0x42F3     // EBMLMaxSizeLength, inside the EBML header
	IDDocType            ID = 0x4282     // DocType ("matroska" or "webm"), inside the EBML header
	IDDocTypeVersion     ID = 0x4287     // DocTypeVersion, inside the EBML header
	IDDocTypeReadVersion ID = 0x4285     // DocTypeReadVersion, inside the EBML header
	IDVoid               ID = 0xEC       // Void, padding allowed at any level
	IDCRC32              ID = 0xBF       // CRC-32 of the parent's other children, allowed in any master
)

// Matroska elements, RFC 9559 §5.1. Level-1 elements are the direct children of Segment.
const (
	IDSegment         ID = 0x18538067 // Segment, the Matroska root element (level 0)
	IDSeekHead        ID = 0x114D9B74 // SeekHead, level 1: index of level-1 elements
	IDSeek            ID = 0x4DBB     // Seek, one SeekHead entry
	IDSeekID          ID = 0x53AB     // SeekID, the element ID a Seek points to
	IDSeekPosition    ID = 0x53AC     // SeekPosition, the Segment-relative offset a Seek points to
	IDInfo            ID = 0x1549A966 // Info, level 1: segment information
	IDTimecodeScale   ID = 0x2AD7B1   // TimecodeScale (TimestampScale), nanoseconds per timecode unit
	IDDuration        ID = 0x4489     // Duration of the Segment, a float in TimecodeScale units
	IDSegmentUID      ID = 0x73A4     // SegmentUID, 16 random bytes
	IDTitle           ID = 0x7BA9     // Title of the Segment
	IDMuxingApp       ID = 0x4D80     // MuxingApp, the muxing library
	IDWritingApp      ID = 0x5741     // WritingApp, the writing application
	IDTracks          ID = 0x1654AE6B // Tracks, level 1: the track list
	IDTrackEntry      ID = 0xAE       // TrackEntry, one track
	IDTrackNumber     ID = 0xD7       // TrackNumber, the number blocks refer to
	IDTrackUID        ID = 0x73C5     // TrackUID, the track's unique ID
	IDTrackType       ID = 0x83       // TrackType: 1 video, 2 audio, 17 subtitle, ...
	IDName            ID = 0x536E     // Name of a track
	IDCodecID         ID = 0x86       // CodecID such as V_MPEG4/ISO/AVC
	IDCodecPrivate    ID = 0x63A2     // CodecPrivate, codec initialisation data
	IDDefaultDuration ID = 0x23E383   // DefaultDuration of a track's frames in nanoseconds
	IDVideo           ID = 0xE0       // Video settings of a track
	IDAudio           ID = 0xE1       // Audio settings of a track
	IDCluster         ID = 0x1F43B675 // Cluster, level 1: one KVS fragment
	IDTimecode        ID = 0xE7       // Timecode (Timestamp) of a Cluster, in TimecodeScale units
	IDPosition        ID = 0xA7       // Position of the Cluster in the Segment
	IDPrevSize        ID = 0xAB       // PrevSize, size of the previous Cluster
	IDSimpleBlock     ID = 0xA3       // SimpleBlock, one frame with its flags
	IDBlockGroup      ID = 0xA0       // BlockGroup, a Block with extra properties
	IDBlock           ID = 0xA1       // Block, the frame inside a BlockGroup
	IDBlockDuration   ID = 0x9B       // BlockDuration, inside a BlockGroup
	IDReferenceBlock  ID = 0xFB       // ReferenceBlock, present when a BlockGroup's frame is not a key frame
	IDCues            ID = 0x1C53BB6B // Cues, level 1: seek index
	IDChapters        ID = 0x1043A770 // Chapters, level 1
	IDAttachments     ID = 0x1941A469 // Attachments, level 1
	IDTags            ID = 0x1254C367 // Tags, level 1: metadata (and KVS fragment tags)
	IDTag             ID = 0x7373     // Tag, one group of SimpleTags
	IDTargets         ID = 0x63C0     // Targets, what a Tag applies to
	IDSimpleTag       ID = 0x67C8     // SimpleTag, one name/value pair
	IDTagName         ID = 0x45A3     // TagName, the name of a SimpleTag
	IDTagString       ID = 0x4487     // TagString, a UTF-8 SimpleTag value
	IDTagBinary       ID = 0x4485     // TagBinary, a binary SimpleTag value
)

var idNames = map[ID]string{
	IDEBML: "EBML", IDEBMLVersion: "EBMLVersion", IDEBMLReadVersion: "EBMLReadVersion",
	IDEBMLMaxIDLength: "EBMLMaxIDLength", IDEBMLMaxSizeLength: "EBMLMaxSizeLength",
	IDDocType: "DocType", IDDocTypeVersion: "DocTypeVersion", IDDocTypeReadVersion: "DocTypeReadVersion",
	IDVoid: "Void", IDCRC32: "CRC-32", IDSegment: "Segment", IDSeekHead: "SeekHead", IDSeek: "Seek",
	IDSeekID: "SeekID", IDSeekPosition: "SeekPosition", IDInfo: "Info", IDTimecodeScale: "TimecodeScale",
	IDDuration: "Duration", IDSegmentUID: "SegmentUID", IDTitle: "Title", IDMuxingApp: "MuxingApp",
	IDWritingApp: "WritingApp", IDTracks: "Tracks", IDTrackEntry: "TrackEntry", IDTrackNumber: "TrackNumber",
	IDTrackUID: "TrackUID", IDTrackType: "TrackType", IDName: "Name", IDCodecID: "CodecID",
	IDCodecPrivate: "CodecPrivate", IDDefaultDuration: "DefaultDuration", IDVideo: "Video", IDAudio: "Audio",
	IDCluster: "Cluster", IDTimecode: "Timecode", IDPosition: "Position", IDPrevSize: "PrevSize",
	IDSimpleBlock: "SimpleBlock", IDBlockGroup: "BlockGroup", IDBlock: "Block", IDBlockDuration: "BlockDuration",
	IDReferenceBlock: "ReferenceBlock", IDCues: "Cues", IDChapters: "Chapters", IDAttachments: "Attachments",
	IDTags: "Tags", IDTag: "Tag", IDTargets: "Targets", IDSimpleTag: "SimpleTag", IDTagName: "TagName",
	IDTagString: "TagString", IDTagBinary: "TagBinary",
}

// String returns the element's Matroska name, or its hex value for IDs this package does not name.
func (id ID) String() string {
	if name, ok := idNames[id]; ok {
		return name
	}
	return fmt.Sprintf("0x%X", uint32(id))
}

// isLevel1 reports whether id is a direct child of Segment in the Matroska schema; an
// unknown-size Cluster ends at the first such element (RFC 8794 §6.2).
func isLevel1(id ID) bool {
	switch id {
	case IDSeekHead, IDInfo, IDTracks, IDCluster, IDCues, IDChapters, IDAttachments, IDTags:
		return true
	}
	return false
}

// isRoot reports whether id may only appear at level 0 (RFC 8794 §11.2.1, RFC 9559 §5.1.1).
func isRoot(id ID) bool {
	return id == IDEBML || id == IDSegment
}

// endsUnknownSize reports whether an element with ID child cannot be a child of the
// unknown-size element parent and therefore ends it (RFC 8794 §6.2): a Segment ends at a
// root element, a Cluster also at any of its siblings. Unknown IDs stay inside, as the RFC
// requires.
func endsUnknownSize(parent, child ID) bool {
	if isRoot(child) {
		return true
	}
	return parent == IDCluster && isLevel1(child)
}
