// Package server is openkvs's HTTP layer: it routes each KVS API path to
// the package that implements it, decodes restJson1 requests, encodes
// responses and typed errors exactly as AWS clients expect them
// (kvs-protocol.md §2), and gives every request an id and a log line.
// Domain logic lives in the packages it calls.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/streams"
)

// Config is what the HTTP layer needs to know about its deployment.
type Config struct {
	// PublicURL is the base URL GetDataEndpoint returns. Empty means the
	// scheme and Host of each request, for servers listening on all
	// addresses, where no single address is right for every client.
	PublicURL string
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after a shutdown signal.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Server serves the KVS APIs over HTTP.
type Server struct {
	cfg     Config
	log     *slog.Logger
	streams *streams.Service
	routes  map[string]http.HandlerFunc
}

// New returns a Server for the given control plane.
func New(cfg Config, svc *streams.Service) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, streams: svc, routes: map[string]http.HandlerFunc{}}
	s.controlRoutes()
	return s
}

// Handler returns the root handler: every API path, /healthz, and
// restJson1 errors for anything else.
func (s *Server) Handler() http.Handler {
	return s.withRequest(http.HandlerFunc(s.route))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
		return
	}
	h, ok := s.routes[r.URL.Path]
	if !ok {
		writeError(w, r, api.UnknownOperation("No operation is served at %s %s.", r.Method, r.URL.Path))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, r, api.MethodNotAllowed("%s takes POST, not %s.", r.URL.Path, r.Method))
		return
	}
	h(w, r)
}

// dataEndpoint is the base URL returned by GetDataEndpoint for r.
func (s *Server) dataEndpoint(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish within
// ShutdownTimeout, and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
