package playback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// ErrNewSetup is returned by Progressive.Add for a fragment whose tracks or
// codec private data differ from the first fragment's: one MP4 sample entry
// per track cannot switch to them.
var ErrNewSetup = errors.New("the codec setup changes")

// ErrFull is returned by Progressive.Add for a fragment that would take the
// file's media past its limit.
var ErrFull = errors.New("the file is full")

// Progressive builds a regular (non-fragmented) MP4 of consecutive fragments
// that share one codec setup: ftyp, then a moov with every sample table, then
// one mdat. Add reads each fragment's frame index and keeps only the sample
// tables (some 150 bytes a frame); WriteTo reads the fragments again, one or
// two at a time, to write the mdat, so the file is never held in memory.
type Progressive struct {
	tracks    []*progressiveTrack
	fragments int
	size      int64 // mdat payload bytes
	end       time.Duration
}

// progressiveTrack is one track of the file: its frames' times (Samples
// without payloads, on the file's timeline) and where each frame's payload is.
type progressiveTrack struct {
	*Track
	codec *codec
	refs  []sampleRef
}

// sampleRef places a frame: the fragment (in Add order), the frame's index
// among its track's frames in that fragment, and its size in the mdat.
type sampleRef struct {
	fragment, index int32
	size            uint32
}

// NewProgressive starts a file of fragments with the tracks of header, a
// stream header's parse (ParseHeader) or a fragment's; each track must be one
// that remuxes (ErrUnsupportedCodec and the codec private data errors).
func NewProgressive(header *Fragment) (*Progressive, error) {
	p := &Progressive{}
	for _, t := range header.Tracks {
		c, err := t.codec()
		if err != nil {
			return nil, err
		}
		p.tracks = append(p.tracks, &progressiveTrack{Track: &Track{Number: t.Number, Type: t.Type, CodecID: t.CodecID,
			CodecPrivate: t.CodecPrivate}, codec: c})
	}
	return p, nil
}

// Fragments is how many fragments were added.
func (p *Progressive) Fragments() int { return p.fragments }

// Size is the bytes of media (the mdat's payload) added so far.
func (p *Progressive) Size() int64 { return p.size }

// Add appends a fragment whose Cluster Timecode lies at start on the file's
// timeline (0 is the file's beginning) and which lasts duration (0 if
// unknown). It adds nothing and returns ErrNewSetup if the fragment's tracks
// differ from the file's, ErrFull if the file's media would pass maxSize
// bytes, and ErrInvalidMediaFrame for a malformed frame.
func (p *Progressive) Add(f *Fragment, start, duration time.Duration, maxSize int64) error {
	if len(f.Tracks) != len(p.tracks) {
		return fmt.Errorf("%d tracks instead of %d: %w", len(f.Tracks), len(p.tracks), ErrNewSetup)
	}
	for i, t := range f.Tracks {
		pt := p.tracks[i]
		if t.Number != pt.Number || t.CodecID != pt.CodecID || !bytes.Equal(t.CodecPrivate, pt.CodecPrivate) {
			return fmt.Errorf("track %d (%s): %w", t.Number, t.CodecID, ErrNewSetup)
		}
	}
	var size int64
	for i, t := range f.Tracks {
		for j, s := range t.Samples {
			n, err := p.tracks[i].codec.sampleSize(s.Payload)
			if err != nil {
				return fmt.Errorf("track %d frame %d: %w", t.Number, j, err)
			}
			size += int64(n)
		}
	}
	if p.size+size > maxSize {
		return fmt.Errorf("%d bytes of media and %d more: %w", p.size, size, ErrFull)
	}
	for i, t := range f.Tracks {
		pt := p.tracks[i]
		for j, s := range t.Samples {
			n, _ := pt.codec.sampleSize(s.Payload)
			pt.Samples = append(pt.Samples, Sample{PTS: start + s.PTS, Duration: s.Duration, Keyframe: s.Keyframe})
			pt.refs = append(pt.refs, sampleRef{fragment: int32(p.fragments), index: int32(j), size: uint32(n)})
		}
	}
	p.fragments++
	p.size += size
	if duration > 0 {
		p.end = max(p.end, start+duration)
	}
	return nil
}

// sampleSize is the bytes a frame takes in the mdat: video NAL units get
// 4-byte lengths (avcc), AAC frames are copied as they are.
func (c *codec) sampleSize(payload []byte) (int, error) {
	if c.kind == kindAAC {
		return len(payload), nil
	}
	// Counted, not split: this runs for every frame of a clip twice.
	n := 0
	for rest := payload; len(rest) > 0; n++ {
		if len(rest) < c.lengthSize {
			return 0, fmt.Errorf("%w: truncated NAL unit length", ErrInvalidMediaFrame)
		}
		size := 0
		for _, b := range rest[:c.lengthSize] {
			size = size<<8 | int(b)
		}
		rest = rest[c.lengthSize:]
		if size == 0 || size > len(rest) {
			return 0, fmt.Errorf("%w: NAL unit of %d bytes in %d", ErrInvalidMediaFrame, size, len(rest))
		}
		rest = rest[size:]
	}
	return len(payload) + (4-c.lengthSize)*n, nil
}

// errMoovWritten stops the dry run that measures a file.
var errMoovWritten = errors.New("moov written")

// Length is the size of the file WriteTo writes, for a Content-Length.
func (p *Progressive) Length() (int64, error) {
	pres, err := p.presentation(func(int32) (*Fragment, error) { return nil, errMoovWritten })
	if err != nil {
		return 0, err
	}
	var n countWriter
	if err := pres.Marshal(&n); !errors.Is(err, errMoovWritten) {
		return 0, fmt.Errorf("measure the MP4: %w", err)
	}
	// Everything before the first payload is ftyp, moov and the mdat header.
	return int64(n) + p.size, nil
}

type countWriter int64

func (c *countWriter) Write(b []byte) (int, error) {
	*c += countWriter(len(b))
	return len(b), nil
}

// WriteTo writes the file; load returns fragment i (in Add order) parsed
// again. Samples are interleaved by time, so at most two fragments are held
// at once, the one being written and the one before it.
func (p *Progressive) WriteTo(w io.Writer, load func(i int) (*Fragment, error)) error {
	var cache [2]struct {
		i int32
		f *Fragment
	}
	cache[0].i, cache[1].i = -1, -1
	get := func(i int32) (*Fragment, error) {
		for _, c := range cache {
			if c.i == i && c.f != nil {
				return c.f, nil
			}
		}
		f, err := load(int(i))
		if err != nil {
			return nil, err
		}
		old := 0
		if cache[1].i < cache[0].i {
			old = 1
		}
		cache[old].i, cache[old].f = i, f
		return f, nil
	}
	pres, err := p.presentation(get)
	if err != nil {
		return err
	}
	return pres.Marshal(w)
}

// presentation lays the tracks out for mediacommon's progressive writer,
// which takes each payload from get when it writes the mdat.
func (p *Progressive) presentation(get func(int32) (*Fragment, error)) (*pmp4.Presentation, error) {
	if p.size > math.MaxUint32-1<<20 {
		// The writer's chunk offsets (stco) are 32 bits.
		return nil, fmt.Errorf("%d bytes of media: an MP4 of this writer holds at most 4 GiB", p.size)
	}
	pres := &pmp4.Presentation{}
	for _, t := range p.tracks {
		if len(t.Samples) == 0 {
			continue // a track with no frames in the clip, say audio that started later
		}
		scale := t.codec.timeScale()
		times := t.timeline(t.codec, scale, 0, p.end)
		if times[0].dts < math.MinInt32 || times[0].dts > math.MaxInt32 {
			return nil, fmt.Errorf("track %d: first decode time %d out of range", t.Number, times[0].dts)
		}
		// The edit list puts the first decode time where it lies on the
		// timeline: with B-frames before 0, so the first picture shows at 0.
		pt := &pmp4.Track{ID: int(t.Number), TimeScale: scale, TimeOffset: int32(times[0].dts),
			Codec: t.initTrack(t.codec).Codec}
		for i, st := range times {
			ref, number, c := t.refs[i], t.Number, t.codec
			pt.Samples = append(pt.Samples, &pmp4.Sample{
				Duration:        uint32(st.duration),
				PTSOffset:       int32(st.pts - st.dts),
				IsNonSyncSample: c.kind != kindAAC && !t.Samples[i].Keyframe,
				PayloadSize:     ref.size,
				GetPayload: func() ([]byte, error) {
					f, err := get(ref.fragment)
					if err != nil {
						return nil, err
					}
					ft, err := f.Track(number)
					if err != nil || int(ref.index) >= len(ft.Samples) {
						return nil, fmt.Errorf("fragment %d track %d changed since it was indexed", ref.fragment, number)
					}
					payload := ft.Samples[ref.index].Payload
					if c.kind != kindAAC && c.lengthSize != 4 {
						payload, err = c.avcc(payload) // Add checked the NAL units
					}
					if err == nil && len(payload) != int(ref.size) {
						err = fmt.Errorf("fragment %d track %d frame %d changed since it was indexed", ref.fragment, number, ref.index)
					}
					return payload, err
				},
			})
		}
		pres.Tracks = append(pres.Tracks, pt)
	}
	if len(pres.Tracks) == 0 {
		return nil, fmt.Errorf("%w: no frames", ErrInvalidMediaFrame)
	}
	return pres, nil
}
