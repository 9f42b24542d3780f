package server

import (
	"net/http"
	"slices"
	"strings"
)

// corsMaxAge is how long a browser may cache a preflight answer, in seconds.
const corsMaxAge = "600"

// corsExposed are the response headers a page's script may read: the request
// id and error type the SDKs look at, and what players cache by.
const corsExposed = "x-amzn-RequestId, x-amzn-ErrorType, x-amz-request-id, ETag, Content-Length, Content-Type"

// withCORS lets pages of the configured origins call the APIs and load the
// playback URLs from the browser, as AWS's media viewer does from its own
// origin (kvs-playback.md §5): simple responses carry
// Access-Control-Allow-Origin, and preflights are answered here, before
// authentication, allowing the headers SigV4 and the SDKs send.
func (s *Server) withCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := s.corsAllowed(origin)
		if allowed != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", allowed)
			if allowed != "*" {
				h.Add("Vary", "Origin")
			}
			h.Set("Access-Control-Expose-Headers", corsExposed)
		}
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if allowed == "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST")
		if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
			for _, name := range strings.Split(req, ",") {
				if !corsHeader(strings.TrimSpace(name)) {
					w.WriteHeader(http.StatusForbidden)
					return
				}
			}
			h.Set("Access-Control-Allow-Headers", req)
		}
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
	})
}

// corsAllowed returns the Access-Control-Allow-Origin value for origin, or ""
// when it may not call.
func (s *Server) corsAllowed(origin string) string {
	if origin == "" {
		return ""
	}
	if slices.Contains(s.cfg.CORSOrigins, "*") {
		return "*"
	}
	if slices.Contains(s.cfg.CORSOrigins, origin) {
		return origin
	}
	return ""
}

// corsHeader reports whether a browser may send the request header: what
// SigV4 signing and the AWS SDKs for JavaScript add.
func corsHeader(name string) bool {
	name = strings.ToLower(name)
	switch name {
	case "authorization", "content-type", "range", "if-none-match", "cache-control":
		return true
	}
	return strings.HasPrefix(name, "x-amz-") || strings.HasPrefix(name, "x-amzn-") || strings.HasPrefix(name, "amz-sdk-")
}
