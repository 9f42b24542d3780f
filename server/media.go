package server

import (
	"context"
	"net/http"
	"time"

	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streams"
)

// mediaWriteTimeout bounds one write to a GetMedia reader: a reader that
// stops reading for this long is dropped, so it cannot hold a connection
// slot forever. Readers never slow the producer: the live hub does not
// wait for them.
const mediaWriteTimeout = time.Minute

// mediaContentType is what real KVS answers GetMedia with (kvs-protocol.md §5.2).
const mediaContentType = "video/webm"

// responseSink writes chunks to an HTTP response and flushes them, each
// write within mediaWriteTimeout.
type responseSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *responseSink) Write(p []byte) (int, error) {
	s.rc.SetWriteDeadline(time.Now().Add(mediaWriteTimeout))
	return s.w.Write(p)
}

func (s *responseSink) Flush() error {
	s.rc.SetWriteDeadline(time.Now().Add(mediaWriteTimeout))
	return s.rc.Flush()
}

// mediaSink returns the sink of a media response. net/http leaves a write
// deadline on a kept-alive connection for the next request, and with no
// server-wide write timeout nothing lifts it, so an earlier call's deadline
// (a control-plane answer's) may have passed already: the sink sets one
// before any write, an error answer's included, and done sets a last one
// for what net/http writes after the handler (the end of the chunked
// body), which a stalled client could otherwise hold for ever.
func mediaSink(w http.ResponseWriter) (sink *responseSink, done func()) {
	sink = &responseSink{w: w, rc: http.NewResponseController(w)}
	sink.rc.SetWriteDeadline(time.Now().Add(mediaWriteTimeout))
	return sink, func() { sink.rc.SetWriteDeadline(time.Now().Add(mediaWriteTimeout)) }
}

// start sends the 200 that starts a media payload.
func (s *responseSink) start() *responseSink {
	s.w.Header().Set("Content-Type", mediaContentType)
	s.w.WriteHeader(http.StatusOK)
	s.Flush()
	return s
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
// starts, then chunks until the client goes, the stream is deleted, the
// media service shuts down or an in-band error ends the payload.
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request) {
	sink, done := mediaSink(w)
	defer done()
	in := new(media.GetMediaInput)
	st := s.mediaStream(w, r, in, &in.Ref)
	if st == nil {
		return
	}
	reader, err := s.cfg.Media.GetMedia(r.Context(), st, in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer reader.Close()
	if err := reader.Run(r.Context(), sink.start()); err != nil && r.Context().Err() == nil {
		info(r.Context()).log.Info("getMedia ended", "err", err)
	}
}

// getMediaForFragmentList serves POST /getMediaForFragmentList.
func (s *Server) getMediaForFragmentList(w http.ResponseWriter, r *http.Request) {
	sink, done := mediaSink(w)
	defer done()
	in := new(media.GetMediaForFragmentListInput)
	st := s.mediaStream(w, r, in, &in.Ref)
	if st == nil {
		return
	}
	list, err := s.cfg.Media.GetMediaForFragmentList(r.Context(), st, in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	defer list.Close()
	if err := list.Run(r.Context(), sink.start()); err != nil && r.Context().Err() == nil {
		info(r.Context()).log.Info("getMediaForFragmentList ended", "err", err)
	}
}

// mediaStream decodes a media read's input into in, authorizes it,
// validates it when in can, and resolves the stream ref names. On failure
// it has answered the request and returns nil.
func (s *Server) mediaStream(w http.ResponseWriter, r *http.Request, in any, ref *streams.Ref) *store.Stream {
	if err := decodeJSON(r, in); err != nil {
		writeError(w, r, err)
		return nil
	}
	info(r.Context()).stream = ref.Label()
	if err := s.authorizeInput(r, in); err != nil {
		writeError(w, r, err)
		return nil
	}
	if v, ok := in.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			writeError(w, r, err)
			return nil
		}
	}
	st, err := s.streams.Resolve(r.Context(), *ref)
	if err != nil {
		writeError(w, r, err)
		return nil
	}
	return st
}
