package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/openkvs/openkvs/access"
	"github.com/openkvs/openkvs/api"
)

type ctxKey int

const requestKey ctxKey = iota

// requestInfo is what the middleware and handlers share about one request.
type requestInfo struct {
	id     string
	log    *slog.Logger
	stream string // set by the handler once it knows the stream
	errTyp string // set by writeError paths for the access log

	action    string        // IAM action of the route, e.g. "DescribeStream"
	operation string        // the route's name in request metrics
	body      []byte        // the JSON body, read once by route (nil for PutMedia)
	accessKey string        // verified access key id; "" while authentication is off
	keys      *access.Store // the keys the request was authenticated with
}

func info(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestKey).(*requestInfo)
	if ri == nil {
		return &requestInfo{log: slog.Default()}
	}
	return ri
}

// newRequestID returns a random UUID (version 4), the form AWS uses.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// statusRecorder remembers the status for the access log and passes
// flushing and full-duplex control through to the real writer.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 { // an informational 1xx comes before the status
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// withRequest gives every request an id (sent as x-amzn-RequestId), a
// logger carrying it, an access-log line and a panic guard.
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &requestInfo{id: newRequestID()}
		ri.log = s.log.With("request_id", ri.id)
		w.Header().Set("x-amzn-RequestId", ri.id)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				ri.log.Error("handler panic", "panic", p, "path", r.URL.Path)
				if rec.status == 0 {
					writeError(rec, r, api.Internal())
				}
			}
			elapsed := time.Since(start)
			op, level := ri.operation, slog.LevelInfo
			if probe := probeOperation(r.URL.Path); probe != "" {
				op, level = probe, slog.LevelDebug // probes come every few seconds
			} else if op == "" {
				op = "unknown"
			}
			s.cfg.Metrics.Request(op, rec.status, elapsed)
			if !ri.log.Enabled(r.Context(), level) {
				return
			}
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status,
				"bytes", rec.bytes, "duration", elapsed.Round(time.Microsecond)}
			if ri.stream != "" {
				attrs = append(attrs, "stream", ri.stream)
			}
			if ri.errTyp != "" {
				attrs = append(attrs, "error", ri.errTyp)
			}
			ri.log.Log(r.Context(), level, "request", attrs...)
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestKey, ri)))
	})
}
