package playback

import (
	"fmt"
	"time"
)

// Part is a partial segment of a track (low-latency HLS, RFC 8216bis §4.4.4.9): a
// run of frames in decode order.
type Part struct {
	From, To    int           // the track's samples [From, To)
	Start       time.Duration // presentation time of its first frame, relative to the Cluster
	Duration    time.Duration // until the next part's start, or the fragment's end
	Independent bool          // it starts with a key frame
	Final       bool          // no more frames will join it
}

// Parts cuts the track into parts of about target: a part ends where a frame,
// in decode order, is presented target or more after the part began. The cut
// depends only on the frames before it, so a part keeps its frames as more of
// the fragment arrives. complete says the fragment has all its frames, and
// duration (0 if unknown) is its length, which the last part runs to.
func (t *Track) Parts(target time.Duration, complete bool, duration time.Duration) []Part {
	var out []Part
	for i, s := range t.Samples {
		if len(out) == 0 || s.PTS >= out[len(out)-1].Start+target {
			if len(out) > 0 {
				last := &out[len(out)-1]
				last.To, last.Final, last.Duration = i, true, s.PTS-last.Start
			}
			out = append(out, Part{From: i, Start: s.PTS, Independent: s.Keyframe || t.Type != trackVideo})
		}
	}
	if len(out) > 0 {
		last := &out[len(out)-1]
		last.To, last.Final = len(t.Samples), complete
		if complete && duration > last.Start {
			last.Duration = duration - last.Start
		} else {
			last.Duration = max(t.Samples[len(t.Samples)-1].PTS-last.Start, 0)
		}
	}
	return out
}

// trackVideo is the Matroska TrackType of video tracks.
const trackVideo = 1

// PartSegment returns one part of a track as an fMP4 media segment, placed on the
// timeline as MediaSegment places the whole fragment.
func (f *Fragment) PartSegment(track uint64, seq uint32, start time.Duration, p Part) ([]byte, error) {
	t, err := f.Track(track)
	if err != nil {
		return nil, err
	}
	c, err := t.codec()
	if err != nil {
		return nil, err
	}
	if p.From < 0 || p.To > len(t.Samples) || p.From >= p.To {
		return nil, fmt.Errorf("track %d: part of frames [%d, %d) out of %d: %w", track, p.From, p.To, len(t.Samples), ErrInvalidMediaFrame)
	}
	// The timeline of the frames so far: decode times as the whole
	// fragment's, and the last frame lasting until the part's end.
	times := t.timeline(c, c.timeScale(), start, start+p.Start+p.Duration)
	if times[p.From].dts < 0 {
		return nil, fmt.Errorf("track %d: the part's first decode time is before the timeline's origin", track)
	}
	// A later frame of the fragment ends the part: its last frame lasts
	// until that frame's decode time.
	last := times[p.To-1].duration
	if p.To < len(t.Samples) {
		last = times[p.To].dts - times[p.To-1].dts
	}
	return t.writeFragment(c, seq, times, p.From, p.To, last)
}
