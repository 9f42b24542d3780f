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
	"github.com/openkvs/openkvs/store"
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

// HLSMedia renders the media playlist of one track (kvs-playback.md §1). For a
// low-latency session, block asks to wait until the playlist reaches a part
// (RFC 8216bis §6.2.5.2); nil asks for the playlist as it is.
func (s *Service) HLSMedia(ctx context.Context, token string, track uint64, block *Blocking) (*Playlist, error) {
	check := func(l limiters) error { return allow(l.playlist, "playlist") }
	if block != nil {
		// Blocking reloads are paced by the media: a budget of their own.
		check = func(l limiters) error { return allow(l.blocking, "blocking playlist") }
	}
	sess, err := s.open(ctx, token, kindHLS, check)
	if err != nil {
		return nil, err
	}
	if block != nil && !s.lowLatency(sess) {
		return nil, api.InvalidArgument("_HLS_msn and _HLS_part are for LIVE sessions of fragmented MP4.")
	}
	ctx, cancel := context.WithTimeout(ctx, blockLimit)
	defer cancel()
	for {
		pl, tail, end, err := s.renderMedia(ctx, sess, token, track)
		if err != nil || block == nil || end.reaches(*block) {
			return pl, err
		}
		// RFC 8216bis §6.2.5.2: more than two segments ahead is an error.
		if block.MSN > end.msn+2 {
			return nil, api.InvalidArgument("_HLS_msn %d is more than two fragments after the newest, %d.", block.MSN, end.msn)
		}
		s.waitChange(ctx, sess, tail)
		if ctx.Err() != nil {
			// Waited long enough: the playlist as it is.
			pl, _, _, err := s.renderMedia(context.WithoutCancel(ctx), sess, token, track)
			return pl, err
		}
	}
}

// renderMedia writes the media playlist as the session stands now.
func (s *Service) renderMedia(ctx context.Context, sess *session, token string, track uint64) (*Playlist, []*hubFragment, edge, error) {
	if err := s.refresh(ctx, sess); err != nil {
		return nil, nil, edge{}, err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if len(sess.entries) == 0 {
		return nil, nil, edge{}, noFragments()
	}
	if err := s.checkTrack(ctx, sess, track); err != nil {
		return nil, nil, edge{}, err
	}
	tok := sess.tok
	q := "SessionToken=" + token
	ended := sess.ended()
	ll := s.lowLatency(sess)
	var tail []*hubFragment
	if ll {
		var err error
		if tail, err = s.tail(ctx, sess); err != nil {
			return nil, nil, edge{}, err
		}
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	if tok.Mode == ModeOnDemand {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	target := 1
	for _, e := range sess.entries {
		target = max(target, int(math.Ceil(e.f.Duration.Seconds())))
	}
	for _, h := range tail {
		target = max(target, int(math.Ceil(h.duration.Seconds())))
	}
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	if ll {
		fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%s\n#EXT-X-PART-INF:PART-TARGET=%s\n",
			seconds(partHoldBack), seconds(partTarget))
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", sess.entries[0].index)
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
		if ll && i >= len(sess.entries)-partedEntries {
			if f := s.hub.Stream(tok.Stream).Get(e.f.Number); f != nil {
				if h, err := s.snapshot(f); err == nil && h.complete {
					if parts, err := h.parts(track); err == nil {
						writeParts(&b, parts, e.f.Number, q, track)
					}
				}
			}
		}
		fmt.Fprintf(&b, "#EXTINF:%s,\n", seconds(e.f.Duration))
		if tok.Container == ContainerFMP4 {
			fmt.Fprintf(&b, "getMP4MediaFragment.mp4?FragmentNumber=%s&%s&TrackNumber=%d\n", e.f.Number, q, track)
		} else {
			fmt.Fprintf(&b, "getTSFragment.ts?FragmentNumber=%s&%s\n", e.f.Number, q)
		}
	}
	end := edge{msn: sess.entries[len(sess.entries)-1].index, parts: -1}
	prev := sess.last
	for i, h := range tail {
		msn := sess.next + int64(i)
		start := sess.pick(h.meta.ProducerTime, h.meta.ServerTime)
		if disc := tok.Discontinuity == DiscontinuityAlways ||
			tok.Discontinuity == DiscontinuityOnGap && gap(start, sess.fragmentTime(prev).Add(prev.Duration)); disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if tok.DisplayTimestamp {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", start.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		parts, err := h.parts(track)
		if err != nil {
			return nil, nil, edge{}, playback.APIError(err)
		}
		writeParts(&b, parts, h.meta.Number, q, track)
		if h.complete {
			fmt.Fprintf(&b, "#EXTINF:%s,\n", seconds(h.duration))
			fmt.Fprintf(&b, "getMP4MediaFragment.mp4?FragmentNumber=%s&%s&TrackNumber=%d\n", h.meta.Number, q, track)
			end = edge{msn: msn, parts: -1}
			prev = &store.Fragment{ProducerTime: h.meta.ProducerTime, ServerTime: h.meta.ServerTime, Duration: h.duration}
			continue
		}
		n := finalParts(parts)
		end = edge{msn: msn, parts: n}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", partURI(h.meta.Number, q, track, n))
	}
	if ll && !ended && (len(tail) == 0 || tail[len(tail)-1].complete) {
		// Between fragments: hint the first part of the next one, which
		// players expect a live low-latency playlist to end with (hls.js
		// otherwise takes the last segment for one in progress). With
		// DiscontinuityMode ALWAYS, its discontinuity comes first.
		last := sess.last.Number
		if len(tail) > 0 {
			last = tail[len(tail)-1].meta.Number
		}
		if tok.Discontinuity == DiscontinuityAlways {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"getMP4MediaFragment.mp4?PartAfter=%s&%s&TrackNumber=%d&PartNumber=0\"\n", last, q, track)
	}
	if ended {
		if tok.Discontinuity == DiscontinuityAlways {
			b.WriteString("#EXT-X-DISCONTINUITY\n") // as AWS ends its ALWAYS playlists
		}
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return &Playlist{Body: []byte(b.String()), Final: ended}, tail, end, nil
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
		frag, err := s.Fragment(ctx, newest.f)
		if err != nil {
			return nil, st, err
		}
		if t, err := frag.Track(1); err == nil {
			st.frameRate = t.FrameRate()
		}
	}
	return infos, st, nil
}
