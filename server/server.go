// Package server is openkvs's HTTP layer: it routes each KVS API path to
// the package that implements it, decodes restJson1 requests, encodes
// responses and typed errors exactly as AWS clients expect them
// (kvs-protocol.md §2), and gives every request an id and a log line.
// Domain logic lives in the packages it calls.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/openkvs/openkvs/access"
	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/clip"
	"github.com/openkvs/openkvs/console"
	"github.com/openkvs/openkvs/health"
	"github.com/openkvs/openkvs/images"
	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/sigv4"
	"github.com/openkvs/openkvs/streaming"
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

	// Region is the region SigV4 signatures must be scoped to.
	Region string
	// Credentials returns the access keys that may call the server; it is
	// asked for every request, so a reloaded file applies to the next one.
	// Nil turns authentication off.
	Credentials func() *access.Store

	// Limits against slow or malicious clients; zero means the default.
	// There is no overall read or write timeout: PutMedia and GetMedia
	// stream for as long as the client wants and set their own deadlines.

	// ReadHeaderTimeout bounds the TLS handshake plus the request line and
	// headers (slowloris). Default DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request.
	// Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; more is answered
	// 431. Default DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// RequestTimeout bounds receiving the body of a JSON call and sending a
	// control-plane response. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// UnauthenticatedBodyBytes bounds the memory of JSON bodies over 4 KiB
	// that are still arriving or not yet authenticated, across all
	// connections; a body waits its turn for it within RequestTimeout, then
	// is answered 503. At least 1 MiB (the largest body). Default
	// DefaultUnauthenticatedBodyBytes.
	UnauthenticatedBodyBytes int64
	// MaxConnsPerIP bounds the open connections of one client address;
	// more are closed as soon as they are accepted. Default
	// DefaultMaxConnsPerIP.
	MaxConnsPerIP int

	// Ingest runs PutMedia sessions; nil leaves /putMedia unserved.
	Ingest *ingest.Manager
	// Media serves GetMedia, GetMediaForFragmentList and ListFragments;
	// nil leaves them unserved.
	Media *media.Service
	// Streaming serves HLS and DASH sessions; nil leaves them unserved.
	Streaming *streaming.Service
	// Clip serves GetClip; nil leaves it unserved.
	Clip *clip.Service
	// Images serves GetImages; nil leaves it unserved.
	Images *images.Service
	// CORSOrigins are the origins whose pages may call the server from a
	// browser: "*" for any, none to send no CORS headers.
	CORSOrigins []string

	// Metrics counts requests by operation and status; nil counts nothing.
	Metrics *metrics.HTTP
	// PublicMetrics serves /metrics on the API listener; nil leaves it
	// unserved there (see OpsHandler for a listener of its own).
	PublicMetrics http.Handler
	// Health runs the /healthz checks; nil reports healthy with no checks.
	Health *health.Checker
	// Console serves the web console at / and under console.Prefix; nil
	// leaves them unserved.
	Console http.Handler
}

// Defaults of the Config limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultRequestTimeout    = time.Minute
	// DefaultUnauthenticatedBodyBytes holds 64 bodies of the largest size,
	// or some 500 of the largest valid request.
	DefaultUnauthenticatedBodyBytes = 64 << 20
	// DefaultMaxConnsPerIP leaves room for hundreds of cameras behind one
	// NAT address (a PutMedia connection each, and a few control calls),
	// while one address cannot hold more goroutines and connection buffers
	// than 1024 connections need.
	DefaultMaxConnsPerIP = 1024
)

// MinUnauthenticatedBodyBytes is the smallest UnauthenticatedBodyBytes:
// room for one body of the largest size.
const MinUnauthenticatedBodyBytes = maxJSONBody

// Server serves the KVS APIs over HTTP.
type Server struct {
	cfg      Config
	log      *slog.Logger
	streams  *streams.Service
	routes   map[string]route
	verifier *sigv4.Verifier     // nil while authentication is off
	bodies   *semaphore.Weighted // the UnauthenticatedBodyBytes budget
	conns    *connLimiter
	ready    atomic.Bool // start-up work done (MarkReady)
	stopping atomic.Bool // Serve is shutting down
}

// New returns a Server for the given control plane.
func New(cfg Config, svc *streams.Service) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxHeaderBytes = cmp.Or(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	cfg.RequestTimeout = cmp.Or(cfg.RequestTimeout, DefaultRequestTimeout)
	cfg.UnauthenticatedBodyBytes = max(cmp.Or(cfg.UnauthenticatedBodyBytes, DefaultUnauthenticatedBodyBytes), MinUnauthenticatedBodyBytes)
	cfg.MaxConnsPerIP = cmp.Or(max(cfg.MaxConnsPerIP, 0), DefaultMaxConnsPerIP)
	s := &Server{cfg: cfg, log: cfg.Logger, streams: svc, routes: map[string]route{}, verifier: newVerifier(cfg),
		bodies: semaphore.NewWeighted(cfg.UnauthenticatedBodyBytes), conns: newConnLimiter(cfg.MaxConnsPerIP, cfg.Logger)}
	s.controlRoutes()
	s.unservedRoutes()
	s.statusRoutes()
	if cfg.Ingest != nil {
		s.handle("/putMedia", "PutMedia", s.putMedia, putMediaHeaders...)
	}
	if cfg.Media != nil {
		s.mediaRoutes()
	}
	if cfg.Streaming != nil {
		s.streamingRoutes()
	}
	if cfg.Clip != nil {
		s.handle("/getClip", "GetClip", s.getClip)
	}
	if cfg.Images != nil {
		s.handle("/getImages", "GetImages", jsonOp(s, func(ctx context.Context, _ *http.Request, in *images.Input) (any, error) {
			st, err := s.streams.Resolve(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			return cfg.Images.Get(ctx, st, in)
		}))
	}
	return s
}

// Handler returns the root handler: every API path, the status API,
// /healthz, /readyz, /metrics (with PublicMetrics), the console (with
// Console), and restJson1 errors for anything else.
func (s *Server) Handler() http.Handler {
	return s.withRequest(s.withCORS(http.HandlerFunc(s.route)))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if s.serveOps(w, r) {
		return
	}
	if isPlayback(r.URL.Path) {
		s.servePlayback(w, r)
		return
	}
	if s.cfg.Console != nil && isConsole(r.URL.Path) {
		// Static files that hold no secret: the APIs they call authenticate.
		info(r.Context()).operation = "Console"
		s.cfg.Console.ServeHTTP(w, r)
		return
	}
	rt, ok := s.routes[r.URL.Path]
	if name, sub := strings.CutPrefix(r.URL.Path, StreamStatusPath+"/"); !ok && sub && name != "" && !strings.Contains(name, "/") {
		rt, ok = s.routes[StreamStatusPath+"/"]
	}
	if !ok {
		writeError(w, r, api.UnknownOperation("No operation is served at %s %s.", r.Method, r.URL.Path))
		return
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		writeError(w, r, api.MethodNotAllowed("%s takes %s, not %s.", r.URL.Path, rt.method, r.Method))
		return
	}
	info(r.Context()).action, info(r.Context()).operation = rt.action, rt.operation
	if s.admit(w, r, rt) {
		rt.handler(w, r)
	}
}

// isConsole reports whether path is the console's page or one of its files.
func isConsole(path string) bool {
	return path == "/" || path+"/" == console.Prefix || strings.HasPrefix(path, console.Prefix)
}

// admit authenticates a request for rt: the checks that need no body
// first, then (for a JSON call) the body, read within its budget, then the
// signature. On failure it has answered the request and returns false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route) bool {
	sig, err := s.checkHeaders(r, rt)
	if err != nil {
		// Answered before a byte of the body is read: net/http must not
		// drain it for keep-alive either.
		w.Header().Set("Connection", "close")
		writeError(w, r, err)
		return false
	}
	ri := info(r.Context())
	release := func() {}
	if !bodyStreams(rt.action) {
		if ri.body, release, err = s.readBody(w, r); err != nil {
			writeError(w, r, err)
			return false
		}
		defer release() // even if authenticate panics
	}
	err = s.authenticate(r, sig, ri.body)
	// Authenticated or refused, the body no longer counts against the budget.
	release()
	if err != nil {
		if bodyStreams(rt.action) {
			// Do not let net/http drain a media stream nobody will read.
			w.Header().Set("Connection", "close")
		}
		writeError(w, r, err)
		return false
	}
	return true
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
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ConnState:         s.conns.track,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cfg.Ingest != nil {
		// PutMedia sessions never go idle by themselves: end them so that
		// Shutdown can wait for the rest.
		hs.RegisterOnShutdown(func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			if err := s.cfg.Ingest.Shutdown(ctx); err != nil {
				s.log.Warn("ingest shutdown", "err", err)
			}
		})
	}
	if s.cfg.Media != nil {
		// Readers at the live edge wait for fragments that may never come.
		hs.RegisterOnShutdown(s.cfg.Media.Shutdown)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
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
