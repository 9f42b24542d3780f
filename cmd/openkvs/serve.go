package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openkvs/openkvs/access"
	"github.com/openkvs/openkvs/console"
	"github.com/openkvs/openkvs/health"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/server"
	"github.com/openkvs/openkvs/streams"
)

// serveConfig is everything `openkvs serve` is told by flags or environment.
type serveConfig struct {
	addr, data, region, account, publicURL string
	logLevel, logFormat                    string
	shutdownTimeout                        time.Duration

	catalog string // a PostgreSQL URL, or "" for SQLite in data

	credentials, tlsCert, tlsKey                   string
	insecure                                       bool
	readHeaderTimeout, idleTimeout, requestTimeout time.Duration
	maxHeaderBytes, maxConnsPerIP                  int
	unauthenticatedBodyBytes                       int64
	corsOrigins                                    string

	metrics      bool
	metricsAddr  string
	pprofAddr    string
	minFreeBytes uint64
	memoryLimit  int64

	media   mediaConfig
	cluster clusterConfig
}

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
var regionPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

func serve(args []string) error {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4567", "`host:port` to listen on")
	fs.StringVar(&c.data, "data", "./openkvs-data", "`directory` for the catalog and fragment data")
	fs.StringVar(&c.catalog, "catalog", "", "catalog `URL`: postgres://user:password@host/db for a PostgreSQL catalog nodes share (default: SQLite in --data)")
	fs.StringVar(&c.region, "region", "us-east-1", "AWS `region` the server answers as (used in ARNs and signatures)")
	fs.StringVar(&c.account, "account", "000000000000", "12-digit AWS `account` id used in ARNs")
	fs.StringVar(&c.publicURL, "public-url", "", "base `URL` GetDataEndpoint returns (default: derived from the listen address, or each request's Host when listening on all addresses)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log `format`: text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run after SIGINT/SIGTERM")
	fs.StringVar(&c.credentials, "credentials", "", "credentials `file` of access keys and policies; turns SigV4 authentication on (SIGHUP re-reads it)")
	fs.BoolVar(&c.insecure, "insecure", false, "allow listening on a non-loopback address without --credentials (anyone who can connect may call every API)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate `file` (chain) to serve HTTPS with; needs --tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", server.DefaultReadHeaderTimeout, "time a client has for the TLS handshake, request line and headers")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", server.DefaultIdleTimeout, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", server.DefaultMaxHeaderBytes, "largest request line plus headers, in `bytes` (more is answered 431)")
	fs.DurationVar(&c.requestTimeout, "request-timeout", server.DefaultRequestTimeout, "time a JSON API call has to send its body, and a control-plane answer to be sent")
	fs.Int64Var(&c.unauthenticatedBodyBytes, "unauthenticated-body-bytes", server.DefaultUnauthenticatedBodyBytes, "memory, in `bytes`, for JSON bodies over 4 KiB still arriving or not yet authenticated, all connections together (at least 1048576)")
	fs.StringVar(&c.corsOrigins, "cors-origins", "*", "comma-separated `origins` whose web pages may call the APIs and load playback URLs (* for any, empty for none)")
	fs.IntVar(&c.maxConnsPerIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "open connections one client IP address may hold; more are closed at once")
	fs.BoolVar(&c.metrics, "metrics", true, "collect Prometheus metrics and serve them at /metrics (on the API port only while authentication is off; see --metrics-addr)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "`host:port` of a second, unauthenticated plain-HTTP listener for /metrics, /healthz and /readyz")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "`host:port` of an unauthenticated plain-HTTP listener serving Go's profiles at /debug/pprof/ (for profiling; off by default)")
	fs.Uint64Var(&c.minFreeBytes, "min-free-bytes", 100<<20, "free `bytes` on the data directory's file system below which /healthz fails")
	fs.Int64Var(&c.memoryLimit, "memory-limit", 0, "the Go runtime's soft memory limit in `bytes`; 0 derives it from --live-total-bytes (1.5 times it plus 256 MiB) unless GOMEMLIMIT is set")
	c.media.flags(fs)
	c.cluster.flags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	log, err := newLogger(c.logLevel, c.logFormat)
	if err != nil {
		return err
	}
	if !accountPattern.MatchString(c.account) {
		return fmt.Errorf("--account %q must be 12 digits", c.account)
	}
	if !regionPattern.MatchString(c.region) {
		return fmt.Errorf("--region %q is not a region name like us-east-1", c.region)
	}
	if c.publicURL != "" {
		if u, err := url.Parse(c.publicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("--public-url %q must be a base URL like http://host:port", c.publicURL)
		}
		c.publicURL = c.publicURL[:len(c.publicURL)-len(urlSuffix(c.publicURL))]
	}
	creds, tlsConfig, err := c.loadSecurity()
	if err != nil {
		return err
	}
	if c.memoryLimit < 0 {
		return fmt.Errorf("--memory-limit %d must be 0 (derived) or a number of bytes", c.memoryLimit)
	}
	if err := checkDataDir(c.data); err != nil {
		return err
	}
	catalog, err := openCatalog(c.catalog, c.data)
	if err != nil {
		return err
	}
	defer catalog.Close()
	svc := streams.New(catalog, c.region, c.account)
	node, err := c.cluster.newNode(catalog, log)
	if err != nil {
		return err
	}
	if node != nil {
		c.media.ingest.Owner = node
		svc.SetRouter(node)
		if c.media.follow, err = c.cluster.feed(node, catalog, creds, c.region, log); err != nil {
			return err
		}
	}
	var reg *prometheus.Registry
	if c.metrics {
		reg = metrics.NewRegistry()
		c.media.withMetrics(reg)
	}
	dataPlane, err := openMedia(&c.media, c.data, catalog, svc, log)
	if err != nil {
		return err
	}
	memLimit, memSource := setMemoryLimit(c.media.live.MaxTotalBytes, c.memoryLimit)
	checker := &health.Checker{
		Catalog: func(ctx context.Context) error {
			_, err := catalog.ListStreams(ctx, "", "", 1)
			return err
		},
		Dir: c.data, MinFreeBytes: c.minFreeBytes,
	}
	var metricsHandler http.Handler
	if reg != nil {
		metrics.RegisterLiveMemory(reg, func() int64 { return dataPlane.hub.Stats().Bytes }, dataPlane.hub.MaxTotalBytes)
		metrics.RegisterDiskFree(reg, func() (uint64, error) { return health.FreeBytes(c.data) })
		metricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})
	}

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", c.addr, unwrapSyscall(err))
	}
	tcpAddr := ln.Addr().(*net.TCPAddr)
	authMode, err := c.authMode(tcpAddr, creds)
	if err != nil {
		ln.Close()
		return err
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsConfig)
	}
	publicURL := c.publicURL
	if publicURL == "" {
		publicURL = derivePublicURL(tcpAddr, scheme)
	}
	scfg := server.Config{Ingest: dataPlane.ingest, Media: dataPlane.media, Streaming: dataPlane.streaming, Clip: dataPlane.clip, Images: dataPlane.images, CORSOrigins: strings.FieldsFunc(c.corsOrigins, func(r rune) bool { return r == ',' || r == ' ' }), PublicURL: publicURL, ShutdownTimeout: c.shutdownTimeout, Logger: log,
		Region: c.region, ReadHeaderTimeout: c.readHeaderTimeout, IdleTimeout: c.idleTimeout,
		MaxHeaderBytes: c.maxHeaderBytes, RequestTimeout: c.requestTimeout,
		UnauthenticatedBodyBytes: c.unauthenticatedBodyBytes, MaxConnsPerIP: c.maxConnsPerIP, Health: checker, Console: console.Handler()}
	if creds != nil {
		scfg.Credentials = creds.Store
	} else {
		// Without authentication every API is open to whoever can connect:
		// the metrics may be too. With it, they need --metrics-addr.
		scfg.PublicMetrics = metricsHandler
	}
	if reg != nil {
		scfg.Metrics = metrics.NewHTTP(reg)
	}
	srv := server.New(scfg, svc)
	var opsLn net.Listener
	if c.metricsAddr != "" {
		if opsLn, err = net.Listen("tcp", c.metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("cannot listen on --metrics-addr %s: %w", c.metricsAddr, unwrapSyscall(err))
		}
		defer opsLn.Close()
	}
	if c.pprofAddr != "" {
		pprofLn, err := net.Listen("tcp", c.pprofAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("cannot listen on --pprof-addr %s: %w", c.pprofAddr, unwrapSyscall(err))
		}
		defer pprofLn.Close()
		go servePprof(pprofLn, log)
		log.Info("serving profiles", "pprof_addr", pprofLn.Addr().String())
	}

	ctx, stop := signalContext()
	defer stop()
	// Catch SIGHUP before "listening" is logged: its default action would
	// end the server.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go reloadOnHangup(ctx, log, creds, hup)
	if node != nil {
		if err := c.cluster.join(ctx, node, tcpAddr, publicURL); err != nil {
			ln.Close()
			return err
		}
		defer func() {
			// After the server stopped: its sessions ended, the node
			// hands its streams over at once.
			lctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
			defer cancel()
			if err := node.Stop(lctx); err != nil {
				log.Warn("leave cluster", "err", err)
			}
		}()
		log.Info("cluster mode", "node_id", node.ID(), "url", node.URL(), "lease_ttl", node.TTL())
		// The start-up sweep runs on whichever node holds the sweeper.
		srv.MarkReady()
	} else {
		dataPlane.sweeper.Started = srv.MarkReady
	}
	dataPlane.run(ctx, c.media.sweepInterval, node)
	if opsLn != nil {
		// Up until the server has stopped: /readyz says it is shutting down.
		opsCtx, stopOps := context.WithCancel(context.Background())
		defer stopOps()
		go serveOps(opsCtx, opsLn, srv.OpsHandler(metricsHandler), log)
	}
	if creds == nil && !tcpAddr.IP.IsLoopback() {
		log.Warn("authentication is off on a non-loopback address (--insecure): anyone who can connect may call every API")
	}
	if err := warnIfShared(log, c.credentials); err != nil {
		return err
	}
	attrs := []any{"addr", ln.Addr().String(), "url", scheme + "://" + ln.Addr().String(), "memory_limit", memLimit,
		"memory_limit_from", memSource, "data", c.data, "region", c.region, "account", c.account, "auth", authMode,
		"metrics", metricsWhere(reg != nil, scfg.PublicMetrics != nil, opsLn)}
	if opsLn != nil {
		attrs = append(attrs, "metrics_addr", opsLn.Addr().String())
	}
	log.Info("listening", attrs...)
	return srv.Serve(ctx, ln)
}

// metricsWhere says where /metrics is served, for the start-up log.
func metricsWhere(on, public bool, ops net.Listener) string {
	switch {
	case !on:
		return "off"
	case public && ops != nil:
		return "/metrics on the API port and on --metrics-addr"
	case public:
		return "/metrics on the API port"
	case ops != nil:
		return "/metrics on --metrics-addr"
	}
	return "collected, not served: authentication is on; give --metrics-addr"
}

// serveOps serves the operational endpoints on ln until ctx ends.
func serveOps(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: server.DefaultReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("--metrics-addr listener failed", "err", err)
	}
}

// servePprof serves the runtime's profiles on ln until it is closed.
func servePprof(ln net.Listener, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: server.DefaultReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if err := hs.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
		log.Error("--pprof-addr listener failed", "err", err)
	}
}

// setMemoryLimit gives the Go runtime a soft memory limit: explicit, the
// --memory-limit flag (or OPENKVS_MEMORY_LIMIT), wins; else GOMEMLIMIT, as
// for any Go program; else one derived from --live-total-bytes, which
// bounds the media the server holds. Without a limit the collector lets
// garbage grow as large as the live heap, doubling the resident memory the
// media limit promises. Half the media limit and 256 MiB on top leave room
// for connections, parse buffers in flight and the catalog. It returns the
// limit in force and where it came from.
func setMemoryLimit(liveBytes, flagLimit int64) (int64, string) {
	if liveBytes <= 0 {
		liveBytes = live.DefaultMaxTotalBytes
	}
	source := "--memory-limit"
	switch {
	case flagLimit > 0:
		debug.SetMemoryLimit(flagLimit)
	case os.Getenv("GOMEMLIMIT") != "":
		source = "GOMEMLIMIT"
	default:
		source = "--live-total-bytes"
		debug.SetMemoryLimit(liveBytes + liveBytes/2 + 256<<20)
	}
	return debug.SetMemoryLimit(-1), source
}

// urlSuffix is the trailing slash clients must not see: producers append
// "/putMedia" to the data endpoint verbatim (kvs-protocol.md §1.2).
func urlSuffix(u string) string {
	if len(u) > 0 && u[len(u)-1] == '/' {
		return "/"
	}
	return ""
}

// derivePublicURL is the listen address as a URL, or "" (each request's
// scheme and Host) when listening on all addresses.
func derivePublicURL(a *net.TCPAddr, scheme string) string {
	if a.IP == nil || a.IP.IsUnspecified() {
		return ""
	}
	return scheme + "://" + a.String()
}

// checkDataDir creates dir and proves it writable, so that a bad directory
// is one clear line at start-up rather than a failure at the first write.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, unwrapSyscall(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapSyscall(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// unwrapSyscall keeps only the innermost error text ("address already in
// use") so the one-line message does not repeat the operation and address.
func unwrapSyscall(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		// slog writes a time.Duration as integer nanoseconds in JSON; the
		// text format's "1.5s" is what a person reading either expects.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// loadSecurity checks the authentication, TLS and limit flags and loads the
// credentials file (nil when none is given) and the TLS certificate (nil
// config without TLS).
func (c *serveConfig) loadSecurity() (*access.Reloader, *tls.Config, error) {
	switch {
	case c.readHeaderTimeout <= 0 || c.idleTimeout <= 0 || c.requestTimeout <= 0:
		return nil, nil, fmt.Errorf("--read-header-timeout, --idle-timeout and --request-timeout must be positive")
	case c.maxHeaderBytes < 4096:
		return nil, nil, fmt.Errorf("--max-header-bytes %d is too small for SigV4-signed requests; give at least 4096", c.maxHeaderBytes)
	case c.unauthenticatedBodyBytes < server.MinUnauthenticatedBodyBytes:
		return nil, nil, fmt.Errorf("--unauthenticated-body-bytes %d is too small for one request body; give at least %d",
			c.unauthenticatedBodyBytes, server.MinUnauthenticatedBodyBytes)
	case c.maxConnsPerIP <= 0:
		return nil, nil, fmt.Errorf("--max-conns-per-ip must be positive")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return nil, nil, fmt.Errorf("--tls-cert and --tls-key must be given together")
	}
	var creds *access.Reloader
	if c.credentials != "" {
		var err error
		if creds, err = access.NewReloader(c.credentials); err != nil {
			// NewReloader words its error as a reload ("reload: credentials
			// file ..."); at start-up the file is being loaded.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return nil, nil, err
		}
	}
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS certificate %s and key %s: %w", c.tlsCert, c.tlsKey, err)
		}
		// No ALPN "h2": KVS clients speak HTTP/1.1 (PutMedia's chunked body
		// and ACK stream, and signed transfer-encoding headers, are HTTP/1.1),
		// and the limits above are the HTTP/1.1 server's.
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return creds, tlsConfig, nil
}

// warnIfShared logs a warning when the credentials file at path (if any)
// may be read or written by other users than its owner: its secrets would
// let them sign as any key, and a writer could add keys of their own.
func warnIfShared(log *slog.Logger, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("credentials file: %w", err)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		log.Warn("credentials file is readable or writable by group or others; run chmod 600 on it",
			"file", path, "mode", fmt.Sprintf("%04o", mode))
	}
	return nil
}

// authMode says how requests to a server bound to a are authenticated, for
// the start-up log. Without credentials only a loopback address is served
// unless --insecure says otherwise (DESIGN.md "Configuration and
// defaults"): the refusal is one line that says so.
func (c *serveConfig) authMode(a *net.TCPAddr, creds *access.Reloader) (string, error) {
	switch {
	case creds != nil:
		return fmt.Sprintf("sigv4 (%d keys)", creds.Store().Len()), nil
	case a.IP.IsLoopback():
		return "off (loopback)", nil
	case c.insecure:
		return "off (--insecure)", nil
	}
	return "", fmt.Errorf("refusing to serve %s without authentication: give --credentials FILE, or --insecure to let anyone who can connect call every API", c.addr)
}

// reloadOnHangup re-reads the credentials file on each signal from hup
// until ctx ends. Requests in flight and open connections keep going; a
// file that fails to load is logged and the previous keys stay in force.
func reloadOnHangup(ctx context.Context, log *slog.Logger, creds *access.Reloader, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if creds == nil {
			log.Warn("SIGHUP ignored: no --credentials file to re-read")
			continue
		}
		if err := creds.Reload(); err != nil {
			log.Error("credentials not reloaded; keeping the previous keys", "err", err)
			continue
		}
		log.Info("credentials reloaded", "keys", creds.Store().Len())
	}
}
