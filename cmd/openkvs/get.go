package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/openkvs/openkvs/client"
)

const getUsage = `Usage: openkvs get --stream NAME [--start now|earliest|fragment=N|producer=TIME|server=TIME]
                   [--follow] [--raw] [--retry-for DURATION] [-o FILE|-]

Reads the stream with GetMedia and writes it as one playable Matroska file:
the stream header once, then every fragment's Cluster, with timestamps that
only increase. Where the codec setup changes (a producer session with other
tracks or codec data) one file cannot go on: with -o NAME-%d.mkv each setup
gets a file of its own (NAME-1.mkv, NAME-2.mkv, ...); otherwise get stops
there with an error. --raw writes the GetMedia payload exactly as received
instead. A dropped connection is resumed after the last whole fragment, so
the output has no gap and no duplicate; reconnects back off from 0.25 s to
10 s, for --retry-for (default: forever with --follow, else 30s).

--start picks the first fragment: now (the fragment being received, else the
next one), earliest, fragment=N (the fragment after number N), or
producer=TIME / server=TIME (the fragment holding TIME by producer or server
timestamp). TIME is RFC 3339 (2024-05-01T12:00:00.5Z), epoch seconds
(1714564800.5), now, or a time before now (-1m, -1h30m); --start -1m alone is
server=-1m. The default is earliest, or now with --follow.

Without --follow, get ends once it has written every fragment the stream had
begun when get started: it stops at the first fragment the server began
receiving after that (by the server's clock, from the response's Date
header), which it does not write, or when the stream sends nothing for
--idle, as a finished stream does. With --follow it reads until interrupted.
Progress goes to stderr. get does not write media to a terminal: give -o FILE
or pipe it. For an MP4 file of a time range use openkvs clip (GetClip):
openkvs clip --stream NAME --from -10m --to now -o x.mp4
`

func get(args []string) error {
	var c clientConfig
	var stream, start, output, format string
	var follow, raw bool
	var idle time.Duration
	var retryFor optDuration
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&stream, "stream", "", "stream `name` (required)")
	fs.StringVar(&start, "start", "", "`selector` of the first fragment: now, earliest, fragment=N, producer=TIME, server=TIME or -DURATION (default earliest, now with --follow)")
	fs.BoolVar(&follow, "follow", false, "keep reading new fragments until interrupted")
	fs.BoolVar(&raw, "raw", false, "write the GetMedia chunks exactly as received")
	fs.StringVar(&output, "o", "-", "output `file`, - for stdout; a name with %d is numbered, a file per codec setup")
	fs.StringVar(&format, "format", "mkv", "output `format`: mkv (for MP4 use openkvs clip)")
	fs.Var(&retryFor, "retry-for", "give up after the server has been unreachable this `duration`; 0 never (default: 0 with --follow, else 30s)")
	fs.DurationVar(&idle, "idle", 2*time.Second, "without --follow, stop when the stream sends nothing for this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if stream == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("get needs --stream and no arguments")
	}
	if err := checkGetOutput(format, output, stream); err != nil {
		return err
	}
	sel, err := parseStart(start, follow)
	if err != nil {
		return err
	}
	if !follow && idle <= 0 {
		return fmt.Errorf("--idle must be positive")
	}
	if !retryFor.set && !follow {
		// Without --follow get copies what is there: a server restart is
		// ridden out, a server that stays away is an error soon.
		retryFor.d = 30 * time.Second
	}
	if raw && strings.Contains(output, "%d") {
		return fmt.Errorf("-o %s: --raw writes one payload to one file, with no %%d", output)
	}

	ctx, stop := signalContext()
	defer stop()
	cfg, signed, err := c.aws(ctx)
	if err != nil {
		return err
	}
	// Asked once here so that an unknown stream is an error before -o is
	// created; the client asks again before every connection.
	if _, err := dataEndpoint(ctx, cfg, stream, types.APINameGetMedia); err != nil {
		return err
	}
	out := &outputs{name: output}
	if err := out.next(); err != nil {
		return err
	}
	dates := &dateTransport{rt: dataTransport(cfg)}
	opts := client.GetOptions{Resolve: resolver(cfg, stream, types.APINameGetMedia), Stream: stream, Start: sel, Follow: follow,
		HTTPClient: &http.Client{Transport: dates}, RetryFor: retryFor.d, Logf: logStderr}
	if !follow {
		opts.IdleTimeout = idle
	}
	if signed {
		opts.Sign = jsonSigner(cfg, c.region)
	}

	mkvOut := client.NewMKVWriter(out.w)
	prog := &getProgress{start: time.Now(), last: time.Now()}
	stats, err := client.Get(ctx, opts, func(f *client.Fragment) error {
		if !follow && f.ServerTime.After(dates.cutoff()) {
			return client.ErrStop // begun after get started: past the live edge it had then
		}
		var err error
		if raw {
			_, err = out.w.Write(f.Data)
		} else if err = mkvOut.Write(f); errors.Is(err, client.ErrNewSetup) {
			if !out.numbered() {
				return fmt.Errorf("%w: one Matroska file cannot switch to it; write a file per codec setup with -o NAME-%%d.mkv, or the payload as received with --raw", err)
			}
			if err = out.next(); err == nil {
				mkvOut.Next(out.w)
				err = mkvOut.Write(f)
			}
		}
		if err == nil {
			// Each fragment goes out whole as soon as it is read: to a
			// player reading a pipe, or to a file that others read while
			// get follows the stream.
			err = out.w.Flush()
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", out.current, err)
		}
		prog.fragment(f)
		return nil
	})
	if cerr := out.close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", out.current, cerr)
	}
	prog.done(stats)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: what was read is written
	}
	return err
}

// parseStart parses --start; empty is earliest, or now when following.
func parseStart(s string, follow bool) (client.StartSelector, error) {
	if s == "" && follow {
		s = "now"
	}
	kind, value, hasValue := strings.Cut(s, "=")
	switch strings.ToLower(kind) {
	case "", "earliest":
		if !hasValue {
			return client.StartSelector{Type: client.StartEarliest}, nil
		}
	case "now":
		if !hasValue {
			return client.StartSelector{Type: client.StartNow}, nil
		}
	case "fragment":
		if value == "" || strings.Trim(value, "0123456789") != "" {
			return client.StartSelector{}, fmt.Errorf("--start fragment=N: %q is not a fragment number", value)
		}
		return client.StartSelector{Type: client.StartFragmentNumber, AfterFragmentNumber: value}, nil
	case "producer", "server":
		if !hasValue {
			break
		}
		t, err := parseTime(value)
		if err != nil {
			return client.StartSelector{}, fmt.Errorf("--start %s: %w", s, err)
		}
		typ := client.StartProducerTimestamp
		if strings.EqualFold(kind, "server") {
			typ = client.StartServerTimestamp
		}
		return client.StartSelector{Type: typ, Timestamp: t}, nil
	}
	if d, ok := relativeTime(s); ok && !hasValue {
		// A time before now (by this clock) selects by server timestamp:
		// where the stream was then, whatever clock its producer has.
		return client.StartSelector{Type: client.StartServerTimestamp, Timestamp: time.Now().Add(d)}, nil
	}
	return client.StartSelector{}, fmt.Errorf("--start %q: want now, earliest, fragment=N, producer=TIME, server=TIME or -DURATION (-1m)", s)
}

// optDuration is a duration flag that knows whether it was given, on the
// command line or in the environment.
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	o.d, o.set = d, true
	return nil
}

// outputs is where get writes: stdout ("-"), a file, or, for a name with
// %d, a series of files numbered from 1, the next one opened where the
// codec setup changes. Writes are buffered: the caller flushes after each
// fragment.
type outputs struct {
	name    string // -o
	current string // name of the open file
	n       int    // number of the open file
	w       *bufio.Writer
	f       *os.File // nil for stdout
}

func (o *outputs) numbered() bool { return strings.Contains(o.name, "%d") }

// next closes the open file, if any, and opens the next one.
func (o *outputs) next() error {
	if err := o.close(); err != nil {
		return fmt.Errorf("write %s: %w", o.current, err)
	}
	o.n++
	o.current = strings.Replace(o.name, "%d", strconv.Itoa(o.n), 1)
	if o.name == "-" {
		o.w = bufio.NewWriterSize(os.Stdout, 1<<20)
		return nil
	}
	f, err := os.Create(o.current)
	if err != nil {
		return err
	}
	o.f, o.w = f, bufio.NewWriterSize(f, 1<<20)
	return nil
}

// close flushes and closes the open file.
func (o *outputs) close() error {
	if o.w == nil {
		return nil
	}
	err := o.w.Flush()
	if o.f != nil {
		if cerr := o.f.Close(); err == nil {
			err = cerr
		}
	}
	o.w, o.f = nil, nil
	return err
}

// dateTransport remembers the Date header of the first response: the
// server's clock when get started, to find the live edge of that moment
// without trusting the local clock.
type dateTransport struct {
	rt   http.RoundTripper
	once sync.Once
	date time.Time
}

func (d *dateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.rt.RoundTrip(r)
	if err == nil {
		d.once.Do(func() {
			t, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil {
				t = time.Now().Truncate(time.Second)
			}
			d.date = t
		})
	}
	return resp, err
}

// cutoff is the latest server time at which get can have started: Date has
// whole seconds, so fragments begun up to a second after get started may
// still be written, but none begun before it is dropped.
func (d *dateTransport) cutoff() time.Time {
	return d.date.Add(time.Second - time.Millisecond)
}

// jsonSigner signs JSON API requests with the SHA-256 of their body, as the
// SDKs do (kvs-protocol.md §1.3).
func jsonSigner(cfg aws.Config, region string) func(*http.Request) error {
	s := v4.NewSigner()
	return func(r *http.Request) error {
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if err != nil {
			return err
		}
		h := sha256.New()
		if r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return err
			}
			_, err = io.Copy(h, body)
			body.Close()
			if err != nil {
				return err
			}
		}
		hash := hex.EncodeToString(h.Sum(nil))
		r.Header.Set("X-Amz-Content-Sha256", hash)
		return s.SignHTTP(r.Context(), creds, r, hash, "kinesisvideo", region, time.Now())
	}
}

// getProgress prints one status line per second while get runs.
type getProgress struct {
	start, last time.Time
	fragments   int
	bytes       int64
	behind      int64
}

func (p *getProgress) fragment(f *client.Fragment) {
	p.fragments++
	p.bytes += int64(len(f.Data))
	p.behind = f.MillisBehindNow
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "%s: %d fragments, %.1f MB, %d ms behind now\n",
			time.Since(p.start).Round(time.Second), p.fragments, float64(p.bytes)/1e6, p.behind)
	}
}

func (p *getProgress) done(s client.GetStats) {
	fmt.Fprintf(os.Stderr, "done: %d fragments, %.1f MB in %.1fs, last %d ms behind now, %d reconnects\n",
		p.fragments, float64(p.bytes)/1e6, time.Since(p.start).Seconds(), p.behind, s.Reconnects)
}
