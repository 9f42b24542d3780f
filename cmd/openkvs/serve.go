package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/openkvs/openkvs/server"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/streams"
)

// serveConfig is everything `openkvs serve` is told by flags or environment.
type serveConfig struct {
	addr, data, region, account, publicURL string
	logLevel, logFormat                    string
	shutdownTimeout                        time.Duration
}

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
var regionPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

func serve(args []string) error {
	var c serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:4567", "`host:port` to listen on")
	fs.StringVar(&c.data, "data", "./openkvs-data", "`directory` for the catalog and fragment data")
	fs.StringVar(&c.region, "region", "us-east-1", "AWS `region` the server answers as (used in ARNs and signatures)")
	fs.StringVar(&c.account, "account", "000000000000", "12-digit AWS `account` id used in ARNs")
	fs.StringVar(&c.publicURL, "public-url", "", "base `URL` GetDataEndpoint returns (default: derived from the listen address, or each request's Host when listening on all addresses)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log `format`: text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long in-flight requests may run after SIGINT/SIGTERM")
	if err := parseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
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
	if err := checkDataDir(c.data); err != nil {
		return err
	}
	catalog, err := sqlite.Open(filepath.Join(c.data, "catalog.db"))
	if err != nil {
		return err
	}
	defer catalog.Close()

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", c.addr, unwrapSyscall(err))
	}
	publicURL := c.publicURL
	if publicURL == "" {
		publicURL = derivePublicURL(ln.Addr().(*net.TCPAddr))
	}
	svc := streams.New(catalog, c.region, c.account)
	srv := server.New(server.Config{PublicURL: publicURL, ShutdownTimeout: c.shutdownTimeout, Logger: log}, svc)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String(),
		"data", c.data, "region", c.region, "account", c.account)
	return srv.Serve(ctx, ln)
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
// Host) when listening on all addresses.
func derivePublicURL(a *net.TCPAddr) string {
	if a.IP == nil || a.IP.IsUnspecified() {
		return ""
	}
	return "http://" + a.String()
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
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
