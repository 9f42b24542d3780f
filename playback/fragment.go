package playback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// Errors a fragment can fail with; the playback APIs map each to its exception
// (kvs-protocol.md §7.5).
var (
	ErrUnsupportedCodec        = errors.New("unsupported codec")          // UnsupportedStreamMediaTypeException
	ErrMissingCodecPrivateData = errors.New("missing codec private data") // MissingCodecPrivateDataException
	ErrInvalidCodecPrivateData = errors.New("invalid codec private data") // InvalidCodecPrivateDataException
	ErrInvalidMediaFrame       = errors.New("invalid media frame")        // InvalidMediaFrameException
	ErrNoTrack                 = errors.New("no such track")
	errNotOneFragment          = errors.New("not exactly one fragment")
)

// Fragment is one stored KVS fragment split into tracks of frames, ready to remux.
type Fragment struct {
	Tracks []*Track // in the order of the header's TrackEntry elements
}

// Track is one track of a fragment and its frames in decode (storage) order.
type Track struct {
	Number       uint64 // Matroska TrackNumber; playback URLs call it TrackNumber
	Type         uint64 // Matroska TrackType: 1 video, 2 audio
	CodecID      string
	CodecPrivate []byte
	Samples      []Sample
}

// Sample is one frame.
type Sample struct {
	PTS      time.Duration // presentation time relative to the Cluster's Timecode
	Duration time.Duration // BlockDuration if the producer wrote one, else 0
	Keyframe bool
	Payload  []byte

	start, end int // Payload's place in the fragment's arena while parsing
}

// Track returns the track with the Matroska number n.
func (f *Fragment) Track(n uint64) (*Track, error) {
	for _, t := range f.Tracks {
		if t.Number == n {
			return t, nil
		}
	}
	return nil, fmt.Errorf("track %d: %w", n, ErrNoTrack)
}

// ParseHeader reads the tracks of a stored stream header, for init segments and
// playlists; the Fragment has no samples.
func ParseHeader(header []byte) (*Fragment, error) {
	sp := mkv.NewSplitter(bytes.NewReader(header), mkv.SplitterOptions{})
	defer sp.Close()
	for {
		ev, err := sp.Next()
		if err != nil {
			return nil, fmt.Errorf("%w: stream header: %w", ErrInvalidMediaFrame, err)
		}
		if h, ok := ev.(*mkv.Header); ok {
			return fromHeader(h), nil
		}
	}
}

func fromHeader(h *mkv.Header) *Fragment {
	f := &Fragment{}
	for _, t := range h.Tracks {
		f.Tracks = append(f.Tracks, &Track{Number: t.Number, Type: t.Type, CodecID: t.CodecID,
			CodecPrivate: bytes.Clone(t.CodecPrivate)})
	}
	return f
}

// Parse splits a stored fragment: header is the producer's stream header as stored
// (EBML header, Segment and the elements before the first Cluster) and cluster the
// fragment's Cluster and any elements that followed it. The Fragment does not alias
// either slice.
func Parse(header, cluster []byte) (*Fragment, error) {
	return parse(header, cluster, false)
}

// ParsePrefix splits a fragment that is still arriving: cluster holds its bytes
// so far, and frames cut off at the end are left out.
func ParsePrefix(header, cluster []byte) (*Fragment, error) {
	return parse(header, cluster, true)
}

func parse(header, cluster []byte, prefix bool) (*Fragment, error) {
	sp := mkv.NewSplitter(io.MultiReader(bytes.NewReader(header), bytes.NewReader(cluster)), mkv.SplitterOptions{})
	defer sp.Close()
	var (
		f         *Fragment
		scale     time.Duration
		fragments int
		// every payload: the splitter reuses its buffers, and one arena per fragment beats one
		// allocation per frame; the payloads fit in the cluster's size, so it never grows.
		arena = make([]byte, 0, len(cluster))
	)
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) || prefix && f != nil && errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMediaFrame, err)
		}
		switch e := ev.(type) {
		case *mkv.Header:
			if f != nil {
				return nil, fmt.Errorf("a second stream header: %w", errNotOneFragment)
			}
			f, scale = fromHeader(e), time.Duration(e.TimecodeScale)
		case *mkv.FragmentStart:
			if fragments++; fragments > 1 {
				return nil, errNotOneFragment
			}
		case *mkv.Frame:
			t, err := f.Track(e.Track)
			if err != nil {
				return nil, fmt.Errorf("%w: block of undeclared track %d", ErrInvalidMediaFrame, e.Track)
			}
			if e.Laced {
				return nil, fmt.Errorf("%w: laced block in track %d", ErrInvalidMediaFrame, e.Track)
			}
			if len(e.Payload) == 0 {
				return nil, fmt.Errorf("%w: empty block in track %d", ErrInvalidMediaFrame, e.Track)
			}
			s := Sample{PTS: time.Duration(e.Timecode) * scale, Keyframe: e.Keyframe,
				start: len(arena), end: len(arena) + len(e.Payload)}
			if e.HasDuration {
				s.Duration = time.Duration(e.Duration) * scale
			}
			arena = append(arena, e.Payload...)
			t.Samples = append(t.Samples, s)
		}
	}
	if fragments != 1 && !(prefix && f != nil && fragments == 0) {
		return nil, errNotOneFragment
	}
	for _, t := range f.Tracks {
		for i := range t.Samples {
			s := &t.Samples[i]
			s.Payload = arena[s.start:s.end:s.end]
		}
	}
	return f, nil
}
