package server

import (
	"context"
	"net/http"
	"time"

	"github.com/openkvs/openkvs/media"
)

// mediaWriteTimeout bounds one write to a GetMedia reader: a reader that
// stops reading for this long is dropped, so it cannot hold a connection
// slot forever. Readers never slow the producer: the live hub does not
// wait for them.
const mediaWriteTimeout = time.Minute

// mediaContentType is what real KVS answers GetMedia with (kvs-protocol.md §5.2).
const mediaContentType = "video/webm"

// responseSink writes chunks to an HTTP response and flushes them.
type responseSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *responseSink) Write(p []byte) (int, error) {
	s.rc.SetWriteDeadline(time.Now().Add(mediaWriteTimeout))
	return s.w.Write(p)
}

func (s *responseSink) Flush() error { return s.rc.Flush() }

// startMedia sends the 200 that starts a media payload.
func startMedia(w http.ResponseWriter) *responseSink {
	w.Header().Set("Content-Type", mediaContentType)
	w.WriteHeader(http.StatusOK)
	sink := &responseSink{w: w, rc: http.NewResponseController(w)}
	sink.Flush()
	return sink
}

func (s *Server) mediaRoutes() {
	s.handle("/getMedia", "GetMedia", s.getMedia)
	s.handle("/getMediaForFragmentList", "GetMediaForFragmentList", s.getMediaForFragmentList)
	s.handle("/listFragments", "ListFragments", jsonOp(s, func(ctx context.Context, _ *http.Request, in *media.ListFragmentsInput) (any, error) {
		st, err := s.streams.Resolve(ctx, in.Ref)
		if err != nil {
			return nil, err
		}
		return s.cfg.Media.ListFragments(ctx, st, in)
	}))
}

// getMedia serves POST /getMedia: restJson1 errors until the payload
// starts, then chunks until the client goes or the stream ends.
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request) {
	in := new(media.GetMediaInput)
	if err := decodeJSON(r, in); err != nil {
		writeError(w, r, err)
		return
	}
	info(r.Context()).stream = in.Label()
	if err := s.authorizeInput(r, in); err != nil {
		writeError(w, r, err)
		return
	}
	st, err := s.streams.Resolve(r.Context(), in.Ref)
	if err != nil {
		writeError(w, r, err)
		return
	}
	reader, err := s.cfg.Media.GetMedia(r.Context(), st, in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer reader.Close()
	if err := reader.Run(r.Context(), startMedia(w)); err != nil && r.Context().Err() == nil {
		info(r.Context()).log.Info("getMedia ended", "err", err)
	}
}

// getMediaForFragmentList serves POST /getMediaForFragmentList.
func (s *Server) getMediaForFragmentList(w http.ResponseWriter, r *http.Request) {
	in := new(media.GetMediaForFragmentListInput)
	if err := decodeJSON(r, in); err != nil {
		writeError(w, r, err)
		return
	}
	info(r.Context()).stream = in.Label()
	if err := s.authorizeInput(r, in); err != nil {
		writeError(w, r, err)
		return
	}
	if err := in.Validate(); err != nil {
		writeError(w, r, err)
		return
	}
	st, err := s.streams.Resolve(r.Context(), in.Ref)
	if err != nil {
		writeError(w, r, err)
		return
	}
	if err := s.cfg.Media.GetMediaForFragmentList(r.Context(), st, in.Fragments, startMedia(w)); err != nil && r.Context().Err() == nil {
		info(r.Context()).log.Info("getMediaForFragmentList ended", "err", err)
	}
}
