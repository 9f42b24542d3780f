package playback

import (
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
)

// TrackInfo is what a playlist or manifest says about a track.
type TrackInfo struct {
	Number        uint64
	Video         bool
	Codec         string // RFC 6381 codecs parameter: avc1.64001e, hvc1.1.6.L93.B0, mp4a.40.2
	Width, Height int    // video
	SampleRate    int    // audio
}

// Info describes the track for playlists and manifests; it fails as remuxing
// would (ErrUnsupportedCodec, ErrMissingCodecPrivateData, ErrInvalidCodecPrivateData).
func (t *Track) Info() (TrackInfo, error) {
	c, err := t.codec()
	if err != nil {
		return TrackInfo{}, err
	}
	info := TrackInfo{Number: t.Number, Video: c.kind != kindAAC}
	switch c.kind {
	case kindH264:
		sps, err := avc.ParseSPSNALUnit(c.sps, false)
		if err != nil {
			return TrackInfo{}, fmt.Errorf("track %d: %w: SPS: %w", t.Number, ErrInvalidCodecPrivateData, err)
		}
		// Lower-case hex, as AWS's master playlists spell it (kvs-playback.md §1).
		info.Codec = fmt.Sprintf("avc1.%02x%02x%02x", sps.Profile, sps.ProfileCompatibility, sps.Level)
		info.Width, info.Height = int(sps.Width), int(sps.Height)
	case kindH265:
		sps, err := hevc.ParseSPSNALUnit(c.sps)
		if err != nil {
			return TrackInfo{}, fmt.Errorf("track %d: %w: SPS: %w", t.Number, ErrInvalidCodecPrivateData, err)
		}
		info.Codec = hevc.CodecString("hvc1", sps) // the sample entry mediacommon writes
		w, h := sps.ImageSize()
		info.Width, info.Height = int(w), int(h)
	case kindAAC:
		info.Codec = fmt.Sprintf("mp4a.40.%d", c.aac.Type)
		info.SampleRate = c.aac.SampleRate
	}
	return info, nil
}

// FrameRate is the track's frames per second over its presentation times (0
// with fewer than two frames).
func (t *Track) FrameRate() float64 {
	if len(t.Samples) < 2 {
		return 0
	}
	lo, hi := t.Samples[0].PTS, t.Samples[0].PTS
	for _, s := range t.Samples {
		lo, hi = min(lo, s.PTS), max(hi, s.PTS)
	}
	if hi == lo {
		return 0
	}
	return float64(len(t.Samples)-1) / (hi - lo).Seconds()
}
