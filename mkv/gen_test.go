package mkv

import (
	"encoding/binary"
	"slices"
)

// Helpers that build synthetic EBML/Matroska streams for tests.

// el builds a known-size element with the shortest size field.
func el(id ID, payload ...[]byte) []byte {
	body := slices.Concat(payload...)
	n := 1
	for int64(len(body)) >= int64(1)<<(7*n)-1 {
		n++
	}
	return elN(id, n, body)
}

// elN builds a known-size element with an n-byte size field.
func elN(id ID, n int, payload ...[]byte) []byte {
	body := slices.Concat(payload...)
	return append(appendSizeN(appendID(nil, id), int64(len(body)), n), body...)
}

// unknownHdr builds the header of an unknown-size element with an n-byte size field.
func unknownHdr(id ID, n int) []byte {
	return appendSizeN(appendID(nil, id), UnknownSize, n)
}

// uintEl builds an unsigned-integer element whose payload is width bytes wide.
func uintEl(id ID, v uint64, width int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return el(id, b[8-width:])
}

func strEl(id ID, s string) []byte { return el(id, []byte(s)) }

// blockBody builds a Block/SimpleBlock payload: track VINT, relative timecode, flags, frame.
func blockBody(track uint64, tc int16, flags byte, frame []byte) []byte {
	b := appendSizeN(nil, int64(track), 1)
	b = binary.BigEndian.AppendUint16(b, uint16(tc))
	return append(append(b, flags), frame...)
}

// simpleBlock8 builds a SimpleBlock with an 8-byte size field, as the KVS producer SDK does.
func simpleBlock8(track uint64, tc int16, key bool, frame []byte) []byte {
	var flags byte
	if key {
		flags = 0x80
	}
	return elN(IDSimpleBlock, 8, blockBody(track, tc, flags, frame))
}

// tags8 builds a Tags element the way PIC writes producer metadata: 8-byte sizes everywhere.
func tags8(pairs ...string) []byte {
	var sts [][]byte
	for i := 0; i+1 < len(pairs); i += 2 {
		sts = append(sts, elN(IDSimpleTag, 8,
			elN(IDTagName, 8, []byte(pairs[i])), elN(IDTagString, 8, []byte(pairs[i+1]))))
	}
	return elN(IDTags, 8, elN(IDTag, 8, sts...))
}

func eofrTags() []byte { return tags8(TagEndOfFragment, "") }

// picEBML is the PIC EBML header template (spec 4.2).
func picEBML() []byte { return slices.Clone(defaultEBMLHeader) }

// picHeader builds EBML header, unknown-size Segment (1-byte FF) and Info + Tracks with
// the given tracks (number, type, codec).
func picHeader(tracks ...Track) []byte {
	var entries [][]byte
	for _, t := range tracks {
		entries = append(entries, el(IDTrackEntry,
			uintEl(IDTrackNumber, t.Number, 1), uintEl(IDTrackUID, t.UID, 8), uintEl(IDTrackType, t.Type, 1),
			strEl(IDCodecID, t.CodecID), el(IDCodecPrivate, t.CodecPrivate)))
	}
	return slices.Concat(picEBML(), unknownHdr(IDSegment, 1),
		el(IDInfo, el(IDSegmentUID, make([]byte, 16)), uintEl(IDTimecodeScale, 1_000_000, 8),
			strEl(IDTitle, "Kinesis Video SDK")),
		elN(IDTracks, 4, entries...))
}

// picCluster builds an unknown-size Cluster with an 8-byte Timecode, Position 0 and
// frames SimpleBlocks on track 1, the first a key frame.
func picCluster(timecode uint64, frames int) []byte {
	c := slices.Concat(unknownHdr(IDCluster, 1), uintEl(IDTimecode, timecode, 8), uintEl(IDPosition, 0, 1))
	for i := range frames {
		c = append(c, simpleBlock8(1, int16(i*33), i == 0, []byte{0, 0, 0, 1, byte(i)})...)
	}
	return c
}

var videoTrack = Track{Number: 1, UID: 0x1122334455667788, Type: 1, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2, 3}}
