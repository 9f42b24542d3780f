package server

import (
	"encoding/json"
	"net/http"

	"github.com/openkvs/openkvs/health"
)

// Operational endpoints. They are answered without authentication, so that
// load balancers, container runtimes and Prometheus can reach them; their
// requests are logged at debug level only, so that a probe every few
// seconds does not fill the log.
const (
	healthzPath = "/healthz"
	readyzPath  = "/readyz"
	metricsPath = "/metrics"
)

// probeOperation names an operational endpoint in request metrics and
// tells withRequest to log it at debug level; "" for any other path.
func probeOperation(path string) string {
	switch path {
	case healthzPath:
		return "healthz"
	case readyzPath:
		return "readyz"
	case metricsPath:
		return "metrics"
	}
	return ""
}

// serveOps answers an operational endpoint on the public port and reports
// whether path was one. /metrics is served there only when
// Config.PublicMetrics is set.
func (s *Server) serveOps(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case healthzPath:
		s.healthz(w, r)
	case readyzPath:
		s.readyz(w, r)
	case metricsPath:
		if s.cfg.PublicMetrics == nil {
			return false
		}
		s.cfg.PublicMetrics.ServeHTTP(w, r)
	default:
		return false
	}
	return true
}

// OpsHandler serves /metrics (with metrics, unless nil), /healthz and
// /readyz, for a listener of their own (--metrics-addr): no API, no
// authentication.
func (s *Server) OpsHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(healthzPath, s.healthz)
	mux.HandleFunc(readyzPath, s.readyz)
	if metrics != nil {
		mux.Handle(metricsPath, metrics)
	}
	return mux
}

// healthz answers whether the server can do its job now: 200 with every
// check passed, else 503 naming the check that failed (health.Report).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	rep := health.Report{Healthy: true, Checks: []health.Check{}}
	if s.cfg.Health != nil {
		rep = s.cfg.Health.Check(r.Context())
	}
	status := http.StatusOK
	if !rep.Healthy {
		status = http.StatusServiceUnavailable
	}
	writeProbe(w, status, rep)
}

// Readiness is the JSON answer of /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Reason says why the server is not ready: "starting" until its
	// start-up work is done, "shutting down" once it stops.
	Reason string `json:"reason,omitempty"`
}

// readyz answers 200 once start-up work is done (MarkReady) until the
// server starts shutting down, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	rd := Readiness{Ready: true}
	switch {
	case s.stopping.Load():
		rd = Readiness{Reason: "shutting down"}
	case !s.ready.Load():
		rd = Readiness{Reason: "starting"}
	}
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeProbe(w, status, rd)
}

// MarkReady says the server's start-up work is done: /readyz answers 200
// from now until shutdown.
func (s *Server) MarkReady() { s.ready.Store(true) }

func writeProbe(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
