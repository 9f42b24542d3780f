package bench

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync/atomic"
	"time"

	"github.com/openkvs/openkvs/synth"
)

// video is the synthetic camera every scenario sends: one H.264-shaped
// track at 30 fps in 2-second fragments (a key frame 8 times the size of the
// others), from synth, with real codec private data and slice NAL units of
// filler, so that playback sessions can remux it. Frames are alike from fragment to fragment, so one
// fragment's frames serve as the template of all; only the Cluster start,
// which holds the timecode, differs.
type video struct {
	synth.Video
	header []byte
	frames [][]byte // one SimpleBlock element per frame, read-only
	size   int64    // bytes of one fragment
}

// newVideo returns a stream of the given bitrate in bits per second.
func newVideo(bitrate int) *video {
	v := &video{Video: synth.Video{FPS: 30, FragmentDuration: 2 * time.Second, Bitrate: bitrate, AVC: true}, header: synth.AVCHeader(1)}
	pieces := v.Fragment(0, 0)
	v.frames = pieces[1:]
	v.size = int64(len(pieces[0]))
	for _, f := range v.frames {
		v.size += int64(len(f))
	}
	return v
}

// clusterStart opens fragment i.
func (v *video) clusterStart(i int) []byte {
	return synth.Cluster(uint64(i) * uint64(v.FragmentDuration.Milliseconds()))
}

// frameAt is when frame k of a fragment is filmed, from the fragment start.
func (v *video) frameAt(k int) time.Duration {
	return v.FragmentDuration * time.Duration(k) / time.Duration(len(v.frames))
}

// stampMagic, then the frame's 8-byte sequence number, ends the payload of
// each stamped frame. Readers look for it to tell when a whole frame has
// arrived; neither filler, MKV headers nor KVS tags contain these bytes.
var stampMagic = []byte{0xB3, 'o', 'k', 'v', 's', 'B', 'N', 0xC7}

// stampSize is the stamp's length: magic and sequence number.
const stampSize = 8 + 8

// stamp copies a frame and writes the stamp of seq over its last bytes.
func stamp(frame []byte, seq uint64) []byte {
	out := bytes.Clone(frame)
	copy(out[len(out)-stampSize:], stampMagic)
	binary.BigEndian.PutUint64(out[len(out)-8:], seq)
	return out
}

// fastBody is a PutMedia body of the stream's header and n fragments, as
// fast as the connection takes it. It is generated on the fly from the
// template, so a gigabyte costs no memory, and its length is known, so the
// HTTP client sends it with a Content-Length in large writes.
type fastBody struct {
	v      *video
	n      int
	frag   int    // fragment being read
	piece  int    // -1: the Cluster start, else the frame index
	cur    []byte // rest of the piece being read
	header bool   // the header has been read
}

func newFastBody(v *video, fragments int) *fastBody {
	return &fastBody{v: v, n: fragments, piece: -1}
}

// Size is the body's length in bytes.
func (b *fastBody) Size() int64 {
	return int64(len(b.v.header)) + int64(b.n)*b.v.size
}

// nextPiece moves to the next piece; false at the end of the body.
func (b *fastBody) nextPiece() bool {
	switch {
	case !b.header:
		b.header, b.cur = true, b.v.header
	case b.frag == b.n:
		return false
	case b.piece < 0:
		b.cur = b.v.clusterStart(b.frag)
		b.piece = 0
	default:
		b.cur = b.v.frames[b.piece]
		b.piece++
		if b.piece == len(b.v.frames) {
			b.frag, b.piece = b.frag+1, -1
		}
	}
	return true
}

func (b *fastBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(b.cur) == 0 && !b.nextPiece() {
			if n == 0 {
				return 0, io.EOF
			}
			break
		}
		k := copy(p[n:], b.cur)
		b.cur = b.cur[k:]
		n += k
	}
	return n, nil
}

// WriteTo hands each piece to w without copying it first.
func (b *fastBody) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(b.cur) > 0 || b.nextPiece() {
		k, err := w.Write(b.cur)
		total += int64(k)
		b.cur = b.cur[k:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// liveBody is a PutMedia body that a camera would send: the header and each
// frame at the moment it is filmed, for n fragments. Frames can be stamped
// so that readers can tell when each arrived.
type liveBody struct {
	v     *video
	n     int
	start time.Time
	// stamped frames carry a sequence number, and sent records when each
	// was handed to the connection (UnixNano, indexed by sequence number).
	stamped bool
	sent    []atomic.Int64
	// fragmentEnd, when set, is called when fragment i ends: the next
	// Cluster starts going out, or the body ends.
	fragmentEnd func(i int, at time.Time)

	frag, piece int
	pieces      [][]byte // the current fragment's frames
	cur         []byte
	header      bool
	ended       bool         // fragmentEnd was called for the last fragment
	lateness    atomic.Int64 // nanoseconds: the most a piece went out after its time
}

// newLiveBody returns a body of n fragments whose first frame is due at
// start. With stamped set, each frame carries its sequence number (0, 1, ...
// across fragments).
func newLiveBody(v *video, n int, start time.Time, stamped bool) *liveBody {
	b := &liveBody{v: v, n: n, start: start, stamped: stamped, piece: -1}
	if stamped {
		b.sent = make([]atomic.Int64, n*len(v.frames))
	}
	return b
}

// frames is the number of frames the body holds.
func (b *liveBody) frames() int { return b.n * len(b.v.frames) }

// sentAt returns when stamped frame seq was handed to the connection (zero
// if not yet).
func (b *liveBody) sentAt(seq uint64) time.Time {
	if seq >= uint64(len(b.sent)) {
		return time.Time{}
	}
	ns := b.sent[seq].Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// next moves to the next piece and returns when it is due; false at the
// end of the body.
func (b *liveBody) next() (due time.Time, ok bool) {
	fragStart := b.start.Add(time.Duration(b.frag) * b.v.FragmentDuration)
	switch {
	case !b.header:
		b.header, b.cur = true, b.v.header
		return b.start, true
	case b.frag == b.n:
		return time.Time{}, false
	case b.piece < 0:
		if b.stamped {
			b.pieces = make([][]byte, len(b.v.frames))
			for k, f := range b.v.frames {
				b.pieces[k] = stamp(f, uint64(b.frag*len(b.v.frames)+k))
			}
		} else {
			b.pieces = b.v.frames
		}
		b.cur, b.piece = b.v.clusterStart(b.frag), 0
		return fragStart, true
	}
	b.cur = b.pieces[b.piece]
	due = fragStart.Add(b.v.frameAt(b.piece))
	b.piece++
	if b.piece == len(b.pieces) {
		b.frag, b.piece = b.frag+1, -1
	}
	return due, true
}

// Read returns the bytes that are due, waiting for the next frame's time
// when none are.
func (b *liveBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(b.cur) == 0 {
			frag, piece := b.frag, b.piece
			due, ok := b.next()
			if !ok {
				if b.fragmentEnd != nil && !b.ended {
					b.ended = true
					b.fragmentEnd(b.n-1, time.Now())
				}
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			if wait := time.Until(due); wait > 0 {
				if n > 0 {
					// Send what is due now; come back for the rest.
					b.unread(frag, piece)
					return n, nil
				}
				time.Sleep(wait)
			}
			now := time.Now()
			if late := int64(now.Sub(due)); late > b.lateness.Load() {
				b.lateness.Store(late)
			}
			if piece < 0 && frag > 0 && b.fragmentEnd != nil {
				b.fragmentEnd(frag-1, now) // the next Cluster closes it
			}
			if b.stamped && piece >= 0 {
				b.sent[frag*len(b.v.frames)+piece].Store(now.UnixNano())
			}
		}
		k := copy(p[n:], b.cur)
		b.cur = b.cur[k:]
		n += k
	}
	return n, nil
}

// unread steps back to the piece next returned, so that the next Read
// starts with it and waits for its time.
func (b *liveBody) unread(frag, piece int) {
	b.frag, b.piece, b.cur = frag, piece, nil
}
