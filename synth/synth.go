// Package synth writes synthetic MKV producer streams in the shape the
// official KVS producer sends (unknown-size Segment and Clusters, 8-byte
// Timecode, SimpleBlocks), for tests and benchmarks. Frames carry filler
// bytes, not decodable video; with Video.AVC the filler is shaped as H.264
// (codec private data and length-prefixed slice NAL units), so that it can
// be remuxed, though not decoded.
package synth

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Matroska element IDs (RFC 8794 encoding).
var (
	idEBML        = []byte{0x1A, 0x45, 0xDF, 0xA3}
	idDocType     = []byte{0x42, 0x82}
	idSegment     = []byte{0x18, 0x53, 0x80, 0x67}
	idInfo        = []byte{0x15, 0x49, 0xA9, 0x66}
	idScale       = []byte{0x2A, 0xD7, 0xB1}
	idTracks      = []byte{0x16, 0x54, 0xAE, 0x6B}
	idTrackEntry  = []byte{0xAE}
	idTrackNumber = []byte{0xD7}
	idTrackType   = []byte{0x83}
	idCodecID     = []byte{0x86}
	idCodecPriv   = []byte{0x63, 0xA2}
	idCluster     = []byte{0x1F, 0x43, 0xB6, 0x75}
	idTimecode    = []byte{0xE7}
	idSimpleBlock = []byte{0xA3}
	idTags        = []byte{0x12, 0x54, 0xC3, 0x67}
	idTag         = []byte{0x73, 0x73}
	idSimpleTag   = []byte{0x67, 0xC8}
	idTagName     = []byte{0x45, 0xA3}
	idTagString   = []byte{0x44, 0x87}
)

// size8 is an 8-byte EBML size field, as the producer SDK writes them.
func size8(n int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	b[0] = 0x01
	return b
}

func element(id []byte, payload ...[]byte) []byte {
	n := 0
	for _, p := range payload {
		n += len(p)
	}
	out := make([]byte, 0, len(id)+8+n)
	out = append(append(out, id...), size8(n)...)
	for _, p := range payload {
		out = append(out, p...)
	}
	return out
}

func uintElement(id []byte, v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return element(id, b)
}

// Header is an EBML header, an unknown-size Segment, Info with a 1 ms
// TimecodeScale, and Tracks declaring video tracks with these numbers.
func Header(tracks ...uint64) []byte {
	return header(nil, tracks)
}

// AVCHeader is Header with AVCCodecPrivate on every track.
func AVCHeader(tracks ...uint64) []byte {
	return header(AVCCodecPrivate, tracks)
}

// AVCCodecPrivate is a real avcC record (H.264 High profile 640x360, one
// SPS and one PPS), that of testdata/media/h264.mkv (x264 core 164).
var AVCCodecPrivate = []byte{
	0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xb4, 0x05, 0x01,
	0x7f, 0xcb, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x00, 0x03, 0x01, 0xe0, 0x78, 0xb1,
	0x75, 0x01, 0x00, 0x04, 0x68, 0xef, 0x0f, 0xcb, 0xfd, 0xf8, 0xf8, 0x00,
}

// Slice NAL unit headers of the same file's first IDR and P pictures: the
// bytes a parser looks at before the slice data.
var (
	idrSlice = []byte{0x65, 0x88, 0x84, 0x09, 0xff, 0xc2}
	pSlice   = []byte{0x41, 0x9a, 0x26, 0x21, 0x3f, 0xfd}
)

func header(codecPrivate []byte, tracks []uint64) []byte {
	out := element(idEBML, element(idDocType, []byte("matroska")))
	out = append(out, idSegment...)
	out = append(out, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	out = append(out, element(idInfo, uintElement(idScale, 1_000_000))...)
	var entries [][]byte
	for _, n := range tracks {
		fields := [][]byte{uintElement(idTrackNumber, n), uintElement(idTrackType, 1), element(idCodecID, []byte("V_MPEG4/ISO/AVC"))}
		if codecPrivate != nil {
			fields = append(fields, element(idCodecPriv, codecPrivate))
		}
		entries = append(entries, element(idTrackEntry, fields...))
	}
	return append(out, element(idTracks, entries...)...)
}

// Frame is one SimpleBlock.
type Frame struct {
	Track    uint64
	Timecode int16 // relative to the Cluster, in ms
	Size     int   // payload bytes; 100 if zero
	Key      bool
	AVC      bool // the payload is one length-prefixed H.264 slice NAL unit
}

// Cluster is an unknown-size Cluster with the given frames. Frame payloads
// are filler whose first byte is the frame's index.
func Cluster(timecode uint64, frames ...Frame) []byte {
	out := append([]byte{}, idCluster...)
	out = append(out, 0xFF)
	out = append(out, uintElement(idTimecode, timecode)...)
	for i, f := range frames {
		out = append(out, block(f, i)...)
	}
	return out
}

// block is one SimpleBlock whose filler payload starts with index.
func block(f Frame, index int) []byte {
	size := f.Size
	if size == 0 {
		size = 100
	}
	head := []byte{0x80 | byte(f.Track), byte(uint16(f.Timecode) >> 8), byte(f.Timecode), 0}
	if f.Key {
		head[3] = 0x80
	}
	payload := make([]byte, size)
	if f.AVC && size > 4+len(idrSlice) {
		binary.BigEndian.PutUint32(payload, uint32(size-4))
		slice := pSlice
		if f.Key {
			slice = idrSlice
		}
		copy(payload[4:], slice)
		payload[4+len(slice)] = byte(index)
	} else {
		payload[0] = byte(index)
	}
	return element(idSimpleBlock, head, payload)
}

// Frames is n frames of one track, every interval ms, the first a key frame.
func Frames(track uint64, n int, interval int16) []Frame {
	out := make([]Frame, n)
	for i := range out {
		out[i] = Frame{Track: track, Timecode: int16(i) * interval, Key: i == 0}
	}
	return out
}

// Tags is a producer Tags element with one SimpleTag per name/value pair.
func Tags(pairs ...string) []byte {
	var simple [][]byte
	for i := 0; i+1 < len(pairs); i += 2 {
		simple = append(simple, element(idSimpleTag, element(idTagName, []byte(pairs[i])), element(idTagString, []byte(pairs[i+1]))))
	}
	return element(idTags, element(idTag, simple...))
}

// Video describes a realistic single-track camera stream.
type Video struct {
	FPS              int           // frames per second (30)
	FragmentDuration time.Duration // one key frame and Cluster per fragment (2 s)
	Bitrate          int           // bits per second (4 Mbit/s)
	AVC              bool          // frames shaped as H.264 (see AVCHeader)
}

func (v Video) withDefaults() Video {
	if v.FPS == 0 {
		v.FPS = 30
	}
	if v.FragmentDuration == 0 {
		v.FragmentDuration = 2 * time.Second
	}
	if v.Bitrate == 0 {
		v.Bitrate = 4_000_000
	}
	return v
}

// FramesPerFragment is how many frames one fragment holds.
func (v Video) FramesPerFragment() int {
	v = v.withDefaults()
	return int(v.FragmentDuration.Seconds() * float64(v.FPS))
}

// Fragment returns fragment i (a Cluster starting at timecode base + i ×
// FragmentDuration in ms) as a list of byte pieces: the Cluster start,
// then one piece per frame, so a caller can send frame by frame. The key
// frame is 8 times the size of the others, as in real H.264.
func (v Video) Fragment(base uint64, i int) [][]byte {
	v = v.withDefaults()
	n := v.FramesPerFragment()
	perFragment := v.Bitrate / 8 * int(v.FragmentDuration.Milliseconds()) / 1000
	small := perFragment / (n + 7)
	interval := int16(1000 / v.FPS)
	pieces := [][]byte{Cluster(base + uint64(i)*uint64(v.FragmentDuration.Milliseconds()))}
	for k := range n {
		size := small
		if k == 0 {
			size = 8 * small
		}
		pieces = append(pieces, block(Frame{Track: 1, Timecode: int16(k) * interval, Size: size, Key: k == 0, AVC: v.AVC}, k))
	}
	return pieces
}

// ClusterSpans splits MKV bytes at every Cluster ID, each span running to
// the next Cluster or the end. Tests use it as an oracle for what each
// fragment must hold that does not depend on openkvs's own parser (a
// Cluster ID inside frame data would mislead it: check the span count).
func ClusterSpans(data []byte) [][]byte {
	var starts []int
	for i := 0; i+len(idCluster) <= len(data); i++ {
		if bytes.Equal(data[i:i+len(idCluster)], idCluster) {
			starts = append(starts, i)
		}
	}
	var out [][]byte
	for k, s := range starts {
		end := len(data)
		if k+1 < len(starts) {
			end = starts[k+1]
		}
		out = append(out, data[s:end])
	}
	return out
}
