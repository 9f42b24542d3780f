package streaming

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/playback"
)

// Playlist is a rendered playlist or manifest.
type Playlist struct {
	Body []byte
	// Final is set when the text can no longer change (an ON_DEMAND session or
	// a LIVE_REPLAY one that reached its end), so it may be cached.
	Final bool
}

// HLSMaster renders a session's master playlist (kvs-playback.md §1):
// version 1, an audio rendition for track 2 of fMP4 sessions, one variant.
func (s *Service) HLSMaster(ctx context.Context, token string) (*Playlist, error) {
	sess, err := s.open(ctx, token, kindHLS, func(l limiters) error { return allow(l.playlist, "playlist") })
	if err != nil {
		return nil, err
	}
	infos, stats, err := s.describe(ctx, sess)
	if err != nil {
		return nil, err
	}
	q := "SessionToken=" + token
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:1\n")
	codecs := []string{}
	audio := false
	for _, in := range infos {
		codecs = append(codecs, in.Codec)
		if in.Number == 2 && sess.tok.Container == ContainerFMP4 {
			audio = true
			fmt.Fprintf(&b, "#EXT-X-MEDIA:AUTOSELECT=YES,FORCED=NO,TYPE=AUDIO,URI=\"getHLSMediaPlaylist.m3u8?%s&TrackNumber=2\",GROUP-ID=\"audio\",DEFAULT=NO,NAME=\"audio\"\n", q)
		}
	}
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:CODECS=\"%s\"", strings.Join(codecs, ","))
	if v := infos[0]; v.Video {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		if stats.frameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.2f", stats.frameRate)
		}
	}
	fmt.Fprintf(&b, ",BANDWIDTH=%d", stats.bandwidth)
	if audio {
		b.WriteString(",AUDIO=\"audio\"")
	}
	fmt.Fprintf(&b, "\ngetHLSMediaPlaylist.m3u8?%s&TrackNumber=1\n", q)
	return &Playlist{Body: []byte(b.String()), Final: true}, nil
}

// HLSMedia renders the media playlist of one track (kvs-playback.md §1).
func (s *Service) HLSMedia(ctx context.Context, token string, track uint64) (*Playlist, error) {
	sess, err := s.open(ctx, token, kindHLS, func(l limiters) error { return allow(l.playlist, "playlist") })
	if err != nil {
		return nil, err
	}
	if err := s.refresh(ctx, sess); err != nil {
		return nil, err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.entries) == 0 {
		return nil, noFragments()
	}
	if err := s.checkTrack(ctx, sess, track); err != nil {
		return nil, err
	}
	tok := sess.tok
	q := "SessionToken=" + token
	ended := sess.ended()
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	if tok.Mode == ModeOnDemand {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	target := 1
	for _, e := range sess.entries {
		target = max(target, int(math.Ceil(e.f.Duration.Seconds())))
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:%d\n", target, sess.entries[0].index)
	if sess.slidDisc > 0 {
		// The recommended reading of RFC 8216 §4.3.3.3 that AWS misses
		// (kvs-playback.md §2): discontinuities that slid out of the window.
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", sess.slidDisc)
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, e := range sess.entries {
		if e.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if tok.Container == ContainerFMP4 && (i == 0 || e.init != sess.entries[i-1].init) {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?%s&TrackNumber=%d", q, track)
			if tok.Discontinuity != DiscontinuityNever || e.init > 0 {
				fmt.Fprintf(&b, "&SequenceNumber=%d", e.init)
			}
			b.WriteString("\"\n")
		}
		if tok.DisplayTimestamp {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", sess.fragmentTime(e.f).UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%s,\n", seconds(e.f.Duration))
		if tok.Container == ContainerFMP4 {
			fmt.Fprintf(&b, "getMP4MediaFragment.mp4?FragmentNumber=%s&%s&TrackNumber=%d\n", e.f.Number, q, track)
		} else {
			fmt.Fprintf(&b, "getTSFragment.ts?FragmentNumber=%s&%s\n", e.f.Number, q)
		}
	}
	if ended {
		if tok.Discontinuity == DiscontinuityAlways {
			b.WriteString("#EXT-X-DISCONTINUITY\n") // as AWS ends its ALWAYS playlists
		}
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return &Playlist{Body: []byte(b.String()), Final: ended}, nil
}

// seconds formats a duration with at most 3 decimals, trailing zeros cut.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Milliseconds())/1000, 'f', -1, 64)
}

// checkTrack refuses a track number the session's media does not have.
func (s *Service) checkTrack(ctx context.Context, sess *session, track uint64) error {
	h, err := s.header(ctx, sess.headers[sess.entries[len(sess.entries)-1].init])
	if err != nil {
		return err
	}
	if _, err := h.info.Track(track); err != nil {
		return api.InvalidArgument("TrackNumber %d: the stream has no such track.", track)
	}
	return nil
}

// mediaStats are the variant's figures a master playlist announces.
type mediaStats struct {
	bandwidth int64   // peak bits per second over the listed fragments
	frameRate float64 // video frames per second of one fragment
}

// describe refreshes the session and returns its tracks, from the newest
// listed fragment's header, and its bandwidth and frame rate.
func (s *Service) describe(ctx context.Context, sess *session) ([]playback.TrackInfo, mediaStats, error) {
	var st mediaStats
	if err := s.refresh(ctx, sess); err != nil {
		return nil, st, err
	}
	sess.mu.Lock()
	if len(sess.entries) == 0 {
		sess.mu.Unlock()
		return nil, st, noFragments()
	}
	newest := sess.entries[len(sess.entries)-1]
	key := sess.headers[newest.init]
	for _, e := range sess.entries {
		if ms := e.f.Duration.Milliseconds(); ms > 0 {
			st.bandwidth = max(st.bandwidth, e.f.Size*8*1000/ms)
		}
	}
	sess.mu.Unlock()
	h, err := s.header(ctx, key)
	if err != nil {
		return nil, st, err
	}
	infos, err := playable(h.info, sess.tok.Kind)
	if err != nil {
		return nil, st, err
	}
	if infos[0].Video {
		frag, err := s.fragment(ctx, newest.f)
		if err != nil {
			return nil, st, err
		}
		if t, err := frag.Track(1); err == nil {
			st.frameRate = t.FrameRate()
		}
	}
	return infos, st, nil
}
