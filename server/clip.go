package server

import (
	"bufio"
	"net/http"
	"strconv"

	"github.com/openkvs/openkvs/clip"
)

// clipContentType is what GetClip answers with; AWS's is unconfirmed
// (kvs-playback.md §5), this is the registered type of the payload.
const clipContentType = "video/mp4"

// getClip serves POST /getClip: restJson1 errors until the clip is indexed,
// then the MP4 with its Content-Length, written as it is read from the store.
func (s *Server) getClip(w http.ResponseWriter, r *http.Request) {
	sink, done := mediaSink(w)
	defer done()
	in := new(clip.Input)
	st := s.mediaStream(w, r, in, &in.Ref)
	if st == nil {
		return
	}
	c, err := s.cfg.Clip.Clip(r.Context(), st, in)
	if err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", clipContentType)
	h.Set("Content-Length", strconv.FormatInt(c.Length(), 10))
	w.WriteHeader(http.StatusOK)
	// A failure now cuts the body short of its Content-Length, which
	// clients report as an error.
	// Frames go out in writes of 256 KiB, not one (and one deadline) each.
	bw := bufio.NewWriterSize(sink, 256<<10)
	err = c.WriteTo(r.Context(), bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && r.Context().Err() == nil {
		info(r.Context()).log.Warn("getClip ended early", "err", err, "fragments", c.Fragments())
	}
}
