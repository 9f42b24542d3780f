package playback

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	mp4codecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// videoTimeScale is the MP4 and MPEG-TS clock of video tracks: 90 kHz, which holds
// the millisecond timecodes KVS producers write exactly.
const videoTimeScale = 90000

// aacFrameSamples is the PCM samples one AAC access unit decodes to (ISO/IEC 14496-3
// §4.5.1.1), 960 when the config's frameLengthFlag is set.
func aacFrameSamples(c *codec) int64 {
	if c.aac.FrameLengthFlag {
		return 960
	}
	return 1024
}

// timeScale is the track's MP4 clock.
func (c *codec) timeScale() uint32 {
	if c.kind == kindAAC {
		return uint32(c.aac.SampleRate)
	}
	return videoTimeScale
}

// ticks converts a time on the output timeline to clock ticks without overflowing
// for times as large as the Unix epoch's nanoseconds.
func ticks(d time.Duration, scale uint32) int64 {
	s := int64(scale)
	return int64(d/time.Second)*s + int64(d%time.Second)*s/int64(time.Second)
}

// sampleTime is one sample's place on the output clock.
type sampleTime struct {
	dts, pts int64
	duration int64
}

// timeline places the track's samples on a clock of scale ticks per second: the Cluster's Timecode
// is at start, and end (if after the last sample) is where the fragment ends. Decode
// times are the sorted presentation times shifted back by the fragment's largest
// reordering delay, so no frame decodes after it is shown (MPEG-TS needs that, and
// ffmpeg's MP4 reader shifts every presentation time by the largest negative
// composition offset, so signed offsets would move the picture).
func (t *Track) timeline(c *codec, scale uint32, start, end time.Duration) []sampleTime {
	out := make([]sampleTime, len(t.Samples))
	if len(out) == 0 {
		return out
	}
	if c.kind == kindAAC {
		// Millisecond timecodes cannot hold AAC frame times; the codec fixes them.
		first := ticks(start+t.Samples[0].PTS, scale)
		n, rate := aacFrameSamples(c)*int64(scale), int64(c.aac.SampleRate)
		for i := range out {
			at := first + int64(i)*n/rate
			out[i] = sampleTime{dts: at, pts: at, duration: first + int64(i+1)*n/rate - at}
		}
		return out
	}
	sorted := make([]int64, len(out))
	for i, s := range t.Samples {
		out[i].pts = ticks(start+s.PTS, scale)
		sorted[i] = out[i].pts
	}
	slices.Sort(sorted)
	var shift int64
	for i := range out {
		shift = max(shift, sorted[i]-out[i].pts)
	}
	for i := range out {
		out[i].dts = sorted[i] - shift
	}
	for i := range out[:len(out)-1] {
		out[i].duration = out[i+1].dts - out[i].dts
	}
	last := &out[len(out)-1]
	switch s := t.Samples[len(t.Samples)-1]; {
	case end > 0 && ticks(end, scale)-shift > last.dts:
		last.duration = ticks(end, scale) - shift - last.dts
	case s.Duration > 0:
		last.duration = ticks(s.Duration, scale)
	case len(out) > 1:
		last.duration = out[len(out)-2].duration
	default:
		last.duration = int64(scale) / 30 // a lone frame of unknown length: one frame at 30 fps
	}
	return out
}

// initTrack describes the track for an fMP4 init segment.
func (t *Track) initTrack(c *codec) *fmp4.InitTrack {
	it := &fmp4.InitTrack{ID: int(t.Number), TimeScale: c.timeScale()}
	switch c.kind {
	case kindH264:
		it.Codec = &mp4codecs.H264{SPS: c.sps, PPS: c.pps}
	case kindH265:
		it.Codec = &mp4codecs.H265{VPS: c.vps, SPS: c.sps, PPS: c.pps}
	case kindAAC:
		it.Codec = &mp4codecs.MPEG4Audio{Config: c.aac}
	}
	return it
}

// InitSegment returns the fMP4 initialization segment (ftyp and moov) of one track,
// which every media segment of that track made from fragments with the same header
// follows.
func (f *Fragment) InitSegment(track uint64) ([]byte, error) {
	t, err := f.Track(track)
	if err != nil {
		return nil, err
	}
	c, err := t.codec()
	if err != nil {
		return nil, err
	}
	var buf seekablebuffer.Buffer
	if err := (fmp4.Init{Tracks: []*fmp4.InitTrack{t.initTrack(c)}}).Marshal(&buf); err != nil {
		// mediacommon parses the SPS to fill in the picture size.
		return nil, fmt.Errorf("track %d: %w: %w", track, ErrInvalidCodecPrivateData, err)
	}
	return buf.Bytes(), nil
}

// MediaSegment returns one track of the fragment as an fMP4 media segment (moof and
// mdat) with sequence number seq. start is where the fragment's Cluster Timecode lies
// on the output timeline and duration the fragment's length (0 if unknown); the
// timeline's origin is the caller's, the same for every segment of a session.
func (f *Fragment) MediaSegment(track uint64, seq uint32, start, duration time.Duration) ([]byte, error) {
	t, err := f.Track(track)
	if err != nil {
		return nil, err
	}
	c, err := t.codec()
	if err != nil {
		return nil, err
	}
	if len(t.Samples) == 0 {
		return nil, fmt.Errorf("track %d: %w: no frames in the fragment", track, ErrInvalidMediaFrame)
	}
	var end time.Duration
	if duration > 0 {
		end = start + duration
	}
	times := t.timeline(c, c.timeScale(), start, end)
	if times[0].dts < 0 {
		return nil, fmt.Errorf("track %d: the fragment's first decode time is before the timeline's origin: start it later", track)
	}
	return t.writeFragment(c, seq, times, 0, len(t.Samples), times[len(times)-1].duration)
}

// writeFragment writes the track's frames [from, to) as one moof and mdat, the
// last frame lasting last. The boxes are written with mp4ff: mediacommon's
// reflection-driven box writer allocated some 4,000 times per 2 s segment and
// held remux below ffmpeg's copy speed.
func (t *Track) writeFragment(c *codec, seq uint32, times []sampleTime, from, to int, last int64) ([]byte, error) {
	frag, err := mp4.CreateFragment(seq, uint32(t.Number))
	if err != nil {
		return nil, fmt.Errorf("track %d: %w", t.Number, err)
	}
	size := 0
	for i := from; i < to; i++ {
		s := t.Samples[i]
		payload := s.Payload
		if c.kind != kindAAC {
			if payload, err = c.avcc(payload); err != nil {
				return nil, fmt.Errorf("track %d frame %d: %w", t.Number, i, err)
			}
		}
		st := times[i]
		dur := st.duration
		if i == to-1 {
			dur = last
		}
		flags := mp4.SyncSampleFlags
		if c.kind != kindAAC && !s.Keyframe {
			flags = mp4.NonSyncSampleFlags
		}
		if i == from {
			frag.Moof.Traf.Tfdt.SetBaseMediaDecodeTime(uint64(st.dts))
		}
		frag.Moof.Traf.Trun.AddSample(mp4.NewSample(flags, uint32(dur), uint32(len(payload)), int32(st.pts-st.dts)))
		// The mdat refers to the payloads rather than gathering them:
		// Encode then copies each once, into the segment.
		frag.Mdat.AddSampleDataPart(payload)
		size += len(payload)
	}
	// Sized up front: growing by doubling copied a 1 MB segment several times.
	buf := bytes.NewBuffer(make([]byte, 0, size+256+16*(to-from)))
	if err := frag.Encode(buf); err != nil {
		return nil, fmt.Errorf("track %d: write media segment: %w", t.Number, err)
	}
	return buf.Bytes(), nil
}
