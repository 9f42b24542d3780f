package playback

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
)

// tsOffset keeps MPEG-TS decode times, and the PCR that precedes them, above zero for
// a session timeline that starts at 0.
const tsOffset = 10 * time.Second

// tsClockMask keeps a 90 kHz time within the 33 bits PES and PCR fields hold
// (ISO/IEC 13818-1 §2.4.3.7): times wrap every 26.5 hours, as on broadcast.
const tsClockMask = 1<<33 - 1

// tsFrame is one access unit of any track, for writing in decode order.
type tsFrame struct {
	track    *mpegts.Track
	c        *codec
	pts, dts int64
	payload  []byte
}

// TS returns the whole fragment, every track, as one MPEG-TS segment that decodes on
// its own: PAT and PMT first, and an access unit delimiter and the codec's parameter
// sets before each key frame (KVS producers keep them only in CodecPrivate), AAC in
// ADTS. start is where the Cluster Timecode lies on the session's timeline and
// duration the fragment's length (0 if unknown).
func (f *Fragment) TS(start, duration time.Duration) ([]byte, error) {
	var frames []tsFrame
	var tracks []*mpegts.Track
	start += tsOffset
	var end time.Duration
	if duration > 0 {
		end = start + duration
	}
	for _, t := range f.Tracks {
		c, err := t.codec()
		if err != nil {
			return nil, err
		}
		tt := &mpegts.Track{PID: uint16(256 + len(tracks))}
		switch c.kind {
		case kindH264:
			tt.Codec = &tscodecs.H264{}
		case kindH265:
			tt.Codec = &tscodecs.H265{}
		case kindAAC:
			tt.Codec = &tscodecs.MPEG4Audio{Config: c.aac}
		}
		tracks = append(tracks, tt)
		// The TS clock is 90 kHz for every stream (ISO/IEC 13818-1 §2.4.3.7).
		times := t.timeline(c, videoTimeScale, start, end)
		for i, s := range t.Samples {
			frames = append(frames, tsFrame{track: tt, c: c, pts: times[i].pts, dts: times[i].dts, payload: s.Payload})
		}
	}
	// Interleave by decode time; the stable sort keeps each track's order.
	slices.SortStableFunc(frames, func(a, b tsFrame) int { return cmp.Compare(a.dts, b.dts) })
	var buf bytes.Buffer
	w := &mpegts.Writer{W: &buf, Tracks: tracks}
	if err := w.Initialize(); err != nil {
		return nil, fmt.Errorf("start MPEG-TS: %w", err)
	}
	for i, fr := range frames {
		pts, dts := fr.pts&tsClockMask, fr.dts&tsClockMask
		var err error
		switch fr.c.kind {
		case kindAAC:
			err = w.WriteMPEG4Audio(fr.track, pts, [][]byte{fr.payload})
		case kindH264, kindH265:
			var au [][]byte
			if au, err = fr.c.nalus(fr.payload); err != nil {
				return nil, fmt.Errorf("frame %d: %w", i, err)
			}
			au = fr.c.withParameterSets(au)
			if fr.c.kind == kindH264 {
				err = w.WriteH264(fr.track, pts, dts, au)
			} else {
				err = w.WriteH265(fr.track, pts, dts, au)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("frame %d: write MPEG-TS: %w", i, err)
		}
	}
	return buf.Bytes(), nil
}

// withParameterSets puts the codec's parameter sets before the first NAL unit of a
// random-access access unit that does not carry its own.
func (c *codec) withParameterSets(au [][]byte) [][]byte {
	switch c.kind {
	case kindH264:
		if !h264.IsRandomAccess(au) {
			return au
		}
		for _, n := range au {
			if h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
				return au
			}
		}
		return append([][]byte{c.sps, c.pps}, au...)
	case kindH265:
		if !h265.IsRandomAccess(au) {
			return au
		}
		for _, n := range au {
			if h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
				return au
			}
		}
		return append([][]byte{c.vps, c.sps, c.pps}, au...)
	}
	return au
}
