package server

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/streaming"
)

// Content types of the playback resources; AWS's are unconfirmed
// (kvs-playback.md §5), these are the registered ones.
const (
	contentM3U8 = "application/vnd.apple.mpegurl"
	contentMP4  = "video/mp4"
	contentTS   = "video/MP2T"
	contentMPD  = "application/dash+xml"
)

// playbackWriteTimeout bounds sending one playlist or segment.
const playbackWriteTimeout = time.Minute

func (s *Server) streamingRoutes() {
	s.handle("/getHLSStreamingSessionURL", "GetHLSStreamingSessionURL", jsonOp(s, func(ctx context.Context, r *http.Request, in *streaming.HLSInput) (any, error) {
		st, err := s.streams.Resolve(ctx, in.Ref)
		if err != nil {
			return nil, err
		}
		return s.cfg.Streaming.HLS(ctx, st, in, s.dataEndpoint(r))
	}))
	s.handle("/getDASHStreamingSessionURL", "GetDASHStreamingSessionURL", jsonOp(s, func(ctx context.Context, r *http.Request, in *streaming.DASHInput) (any, error) {
		st, err := s.streams.Resolve(ctx, in.Ref)
		if err != nil {
			return nil, err
		}
		return s.cfg.Streaming.DASH(ctx, st, in, s.dataEndpoint(r))
	}))
}

// isPlayback reports whether path is a playback resource: a GET authorized by
// its session token rather than a signature, as on AWS.
func isPlayback(path string) bool {
	return strings.HasPrefix(path, "/hls/v1/") || strings.HasPrefix(path, "/dash/v1/")
}

// servePlayback answers the GET resources of HLS and DASH sessions
// (kvs-protocol.md §7.5, §7.6).
func (s *Server) servePlayback(w http.ResponseWriter, r *http.Request) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(playbackWriteTimeout))
	if s.cfg.Streaming == nil {
		writeError(w, r, api.UnknownOperation("No operation is served at %s %s.", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, api.MethodNotAllowed("%s takes GET, not %s.", r.URL.Path, r.Method))
		return
	}
	q := r.URL.Query()
	token := q.Get("SessionToken")
	if token == "" {
		writeError(w, r, api.InvalidArgument("SessionToken is required."))
		return
	}
	svc, ctx := s.cfg.Streaming, r.Context()
	dash := strings.HasPrefix(r.URL.Path, "/dash/")
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	var (
		pl  *streaming.Playlist
		seg *streaming.Segment
		ct  string
		err error
	)
	switch {
	case !dash && name == "getHLSMasterPlaylist.m3u8":
		ct = contentM3U8
		pl, err = svc.HLSMaster(ctx, token)
	case !dash && name == "getHLSMediaPlaylist.m3u8":
		var track uint64
		var block *streaming.Blocking
		if track, err = trackNumber(q); err == nil {
			block, err = blocking(q)
		}
		if err == nil {
			ct = contentM3U8
			pl, err = svc.HLSMedia(ctx, token, track, block)
		}
	case dash && name == "getDASHManifest.mpd":
		ct = contentMPD
		pl, err = svc.DASHManifest(ctx, token)
	case name == "getMP4InitFragment.mp4":
		var track uint64
		if track, err = trackNumber(q); err == nil {
			seq := 0
			if v := q.Get("SequenceNumber"); v != "" {
				if seq, err = strconv.Atoi(v); err != nil || seq < 0 {
					err = api.InvalidArgument("SequenceNumber %q is not a number.", v)
				}
			}
			if err == nil {
				ct = contentMP4
				seg, err = svc.InitSegment(ctx, token, track, seq, dash)
			}
		}
	case name == "getMP4MediaFragment.mp4":
		var track uint64
		part := int64(-1)
		if track, err = trackNumber(q); err == nil && !dash {
			part, err = optionalNumber(q, "PartNumber")
		}
		switch {
		case err != nil:
		case q.Has("PartAfter") && !dash:
			// A preload hint between fragments (streaming.NextPart).
			ct = contentMP4
			seg, err = svc.NextPart(ctx, token, q.Get("PartAfter"), track)
		default:
			ct = contentMP4
			seg, err = svc.MediaSegment(ctx, token, q.Get("FragmentNumber"), track, dash, int(part))
		}
	case !dash && name == "getTSFragment.ts":
		ct = contentTS
		seg, err = svc.TSFragment(ctx, token, q.Get("FragmentNumber"))
	default:
		err = api.UnknownOperation("No playback resource is served at %s.", r.URL.Path)
	}
	if ct != "" {
		// A resource served: its name labels request metrics (a bounded set).
		info(ctx).operation = name
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	var body []byte
	if seg != nil {
		// Segments of stored fragments never change.
		h.Set("ETag", seg.ETag)
		h.Set("Cache-Control", "private, max-age=86400, immutable")
		if match := r.Header.Get("If-None-Match"); match != "" && match == seg.ETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body = seg.Body
	} else {
		// A live playlist changes with every fragment; a final one does not.
		if pl.Final {
			h.Set("Cache-Control", "private, max-age=300")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		body = pl.Body
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// blocking reads the low-latency HLS parameters of a playlist request
// (RFC 8216bis §6.2.5.2): nil without _HLS_msn.
func blocking(q url.Values) (*streaming.Blocking, error) {
	msn, err := optionalNumber(q, "_HLS_msn")
	if err != nil || msn < 0 {
		if q.Has("_HLS_part") && err == nil {
			return nil, api.InvalidArgument("_HLS_part needs _HLS_msn.")
		}
		return nil, err
	}
	part, err := optionalNumber(q, "_HLS_part")
	if err != nil {
		return nil, err
	}
	return &streaming.Blocking{MSN: msn, Part: part}, nil
}

// optionalNumber reads a non-negative integer parameter, -1 when absent.
func optionalNumber(q url.Values, name string) (int64, error) {
	if !q.Has(name) {
		return -1, nil
	}
	n, err := strconv.ParseInt(q.Get(name), 10, 64)
	if err != nil || n < 0 {
		return 0, api.InvalidArgument("%s %q is not a number.", name, q.Get(name))
	}
	return n, nil
}

// trackNumber reads the TrackNumber parameter: 1 or 2.
func trackNumber(q url.Values) (uint64, error) {
	v := q.Get("TrackNumber")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < 1 || n > 2 {
		return 0, api.InvalidArgument("TrackNumber %q must be 1 or 2.", v)
	}
	return n, nil
}
