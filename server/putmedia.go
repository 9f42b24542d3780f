package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/streams"
)

// PutMedia request headers (kvs-protocol.md §4.1).
const (
	hdrStreamName     = "x-amzn-stream-name"
	hdrStreamARN      = "x-amzn-stream-arn"
	hdrTimecodeType   = "x-amzn-fragment-timecode-type"
	hdrProducerStart  = "x-amzn-producer-start-timestamp"
	putMediaMediaType = "application/json"
)

// putMediaHeaders are the PutMedia parameters, which come in headers: each
// must be signed when present (route.signedHeaders). The official C
// producer signs every header but content-type, content-length,
// x-amz-security-token and authorization (kvs-protocol.md §1.3), the Java
// SDK v1 and aws-sdk-go-v2 sign x-amzn-* headers, and curl --aws-sigv4
// signs every header given with -H.
var putMediaHeaders = []string{hdrStreamName, hdrStreamARN, hdrTimecodeType, hdrProducerStart}

// putMediaParams validates the PutMedia headers; failures are restJson1
// errors sent before the response starts.
func putMediaParams(r *http.Request) (streams.Ref, ingest.Params, error) {
	var ref streams.Ref
	if v := r.Header.Get(hdrStreamName); v != "" {
		ref.StreamName = &v
	}
	if v := r.Header.Get(hdrStreamARN); v != "" {
		ref.StreamARN = &v
	}
	var p ingest.Params
	if ref.StreamName == nil && ref.StreamARN == nil {
		return ref, p, api.InvalidArgument("PutMedia needs the header %s or %s.", hdrStreamName, hdrStreamARN)
	}
	switch tt := r.Header.Get(hdrTimecodeType); tt {
	case "ABSOLUTE":
		p.TimecodeType = ingest.Absolute
	case "RELATIVE":
		p.TimecodeType = ingest.Relative
	default:
		return ref, p, api.InvalidArgument("Header %s must be ABSOLUTE or RELATIVE, not %q.", hdrTimecodeType, tt)
	}
	if v := r.Header.Get(hdrProducerStart); v != "" {
		t, err := ingest.ParseProducerStartTimestamp(v)
		if err != nil {
			return ref, p, api.InvalidArgument("Header %s: %v.", hdrProducerStart, err)
		}
		p.StartTime = t
	} else if p.TimecodeType == ingest.Relative {
		return ref, p, api.InvalidArgument("Header %s is required with RELATIVE timecodes.", hdrProducerStart)
	}
	return ref, p, nil
}

// putMedia serves POST /putMedia: after the headers are checked it answers
// 200 at once and streams one ACK line per event while it reads the MKV
// body, full duplex (kvs-protocol.md §4.3).
func (s *Server) putMedia(w http.ResponseWriter, r *http.Request) {
	// An error before the body is read closes the connection: the body is
	// a stream that may never end, so it cannot be drained for keep-alive.
	fail := func(err error) {
		w.Header().Set("Connection", "close")
		writeError(w, r, err)
	}
	ref, p, err := putMediaParams(r)
	if err != nil {
		fail(err)
		return
	}
	info(r.Context()).stream = ref.Label()
	if err := s.authorizeInput(r, &ref); err != nil {
		fail(err)
		return
	}
	st, err := s.streams.Resolve(r.Context(), ref)
	if err != nil {
		fail(err)
		return
	}
	sess, err := s.cfg.Ingest.Open(r.Context(), st)
	if err != nil {
		fail(err)
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		s.log.Warn("putMedia without full duplex", "err", err)
	}
	if expectsContinue(r) {
		// libcurl, under the official C and C++ producers, sends this and holds
		// the body back until a 100 Continue arrives, or for its expect
		// timeout (1 s) when the 200 comes first. Go would send the 100
		// only at the first body read, which follows the 200 here.
		w.WriteHeader(http.StatusContinue)
	}
	w.Header().Set("Content-Type", putMediaMediaType)
	// A session may end before its body does (an ERROR, a takeover, a
	// deleted stream), its read cut short by a deadline: the connection
	// cannot carry another request, and net/http, which cannot tell, would
	// read the rest of the body as one. Producers open a new connection for
	// each PutMedia anyway.
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	p.Body = r.Body
	p.RemoteAddr, p.UserAgent = r.RemoteAddr, r.UserAgent()
	p.SetReadDeadline = rc.SetReadDeadline
	p.Ack = func(line []byte) error {
		// A client that stops reading ACKs must not stall ingest forever.
		rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.Write(line); err != nil {
			return err
		}
		return rc.Flush()
	}
	sess.Run(r.Context(), p)
}

// expectsContinue reports whether the client waits for 100 Continue before
// it sends the body (RFC 9110 §10.1.1).
func expectsContinue(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}
