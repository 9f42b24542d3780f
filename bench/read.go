package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// scan reads r until it ends or fn returns false, calling fn with the extra
// bytes that follow each occurrence of marker, as soon as they have
// arrived. buf is the read buffer; bytes are looked at where they land, and
// only a possible partial match is carried over to the next read. The
// marker must not overlap itself. scan returns the bytes read.
func scan(r io.Reader, buf, marker []byte, extra int, fn func(after []byte) bool) (int64, error) {
	need := len(marker) + extra
	carry := 0
	var total int64
	for {
		k, err := r.Read(buf[carry:])
		total += int64(k)
		data := buf[:carry+k]
		off := 0
		for {
			i := bytes.Index(data[off:], marker)
			if i < 0 {
				off = max(off, len(data)-(len(marker)-1)) // may hold a marker's beginning
				break
			}
			if off+i+need > len(data) {
				off += i // the extra bytes have not arrived yet
				break
			}
			if !fn(data[off+i+len(marker) : off+i+need]) {
				return total, nil
			}
			off += i + need
		}
		carry = copy(buf, data[off:])
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// endTagName ends every GetMedia chunk: counting it counts fragments.
var endTagName = []byte(mkv.TagContinuationToken)

// runCatchUp measures one GetMedia session reading stored fragments from the
// start against a plain HTTP GET of the same bytes from a file.
func runCatchUp(ctx context.Context, e *env, sc *Scenario) error {
	srv, err := e.startServer(ctx, nil, "--putmedia-bytes-per-second", unlimitedRate,
		"--getmedia-bytes-per-second", unlimitedRate, "--getmedia-calls-per-second", "100")
	if err != nil {
		return err
	}
	defer srv.stop()
	stream, err := e.createStream(ctx, srv, "catchup", 24)
	if err != nil {
		return err
	}
	n := e.fragmentsFor(e.plan.catchUpBytes)
	e.progress("catch-up: storing %d fragments (%.0f MB)", n, float64(n)*float64(e.video.size)/1e6)
	if err := ingestFast(ctx, srv, stream, e.video, n); err != nil {
		return err
	}
	// The baseline serves the same producer bytes from a file in the page
	// cache: writing it leaves it there, as ingest left openkvs's blobs.
	const name = "catchup.mkv"
	if err := writeFile(filepath.Join(e.dir, "baseline", name), newFastBody(e.video, n)); err != nil {
		return err
	}

	buf := make([]byte, 256<<10)
	// rate returns the MB/s of one read.
	rate := func(bytes int64, since time.Time) float64 {
		return float64(bytes) / 1e6 / time.Since(since).Seconds()
	}
	// The servers' CPU seconds over every round, and the bytes each sent.
	var kvsCPU, baseCPU float64
	var kvsBytes, baseBytes int64
	readKVS := func() (float64, error) {
		start, cpu0 := time.Now(), srv.cpu()
		defer func() { kvsCPU += srv.cpu() - cpu0 }()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		body, err := srv.getMedia(rctx, stream, "EARLIEST")
		if err != nil {
			return 0, err
		}
		defer body.Close()
		chunks := 0
		got, err := scan(body, buf, endTagName, 0, func([]byte) bool {
			chunks++
			return chunks < n // the response stays open at the live edge
		})
		if err == nil && chunks < n {
			err = fmt.Errorf("getMedia ended after %d of %d fragments", chunks, n)
		}
		kvsBytes += got
		return rate(got, start), err
	}
	readBase := func() (float64, error) {
		start, cpu0 := time.Now(), cpuOf(e.baseline.Pid())
		defer func() { baseCPU += cpuOf(e.baseline.Pid()) - cpu0 }()
		body, err := e.base.get(ctx, e.baseline.URL+"/files/"+name)
		if err != nil {
			return 0, err
		}
		defer body.Close()
		// The same scan as for openkvs, so that the client does the same work.
		got, err := scan(body, buf, endTagName, 0, func([]byte) bool { return true })
		baseBytes += got
		return rate(got, start), err
	}
	// Each round reads once from each, in alternating order, and has its
	// own ratio: other work on the machine moves both rates by more than
	// the difference between them, and weighs on a round's two reads alike.
	type round struct{ kvs, base, ratio float64 }
	rounds := make([]round, 0, e.plan.catchUpRounds)
	for i := range e.plan.catchUpRounds {
		var r round
		var err error
		if i%2 == 0 {
			if r.kvs, err = readKVS(); err == nil {
				r.base, err = readBase()
			}
		} else {
			if r.base, err = readBase(); err == nil {
				r.kvs, err = readKVS()
			}
		}
		if err != nil {
			return err
		}
		r.ratio = r.kvs / r.base
		rounds = append(rounds, r)
		e.progress("catch-up round %d/%d: openkvs %.0f MB/s, baseline %.0f MB/s, ratio %.2f", i+1, e.plan.catchUpRounds, r.kvs, r.base, r.ratio)
	}
	all := make([]string, len(rounds))
	for i, r := range rounds {
		all[i] = fmt.Sprintf("%.0f/%.0f MB/s (%.2f)", r.kvs, r.base, r.ratio)
	}
	// The figures are the median round's (the lower of the middle two for
	// an even count).
	slices.SortFunc(rounds, func(a, b round) int { return cmp.Compare(a.ratio, b.ratio) })
	med := rounds[(len(rounds)-1)/2]
	f := figure("one session", med.kvs, "MB/s").against("GET of a file", med.base)
	sc.add(f.goal(">= 0.9 of baseline", *f.Ratio >= 0.9))
	if e.local() {
		sc.add(figure("server CPU", kvsCPU/(float64(kvsBytes)/1e9), "s/GB").
			against("baseline server", baseCPU/(float64(baseBytes)/1e9)))
	}
	sc.note("GetMedia EARLIEST over %d stored fragments (%.0f MB) until the last chunk's end tags, %d rounds alternating with the baseline (http.ServeContent of the same producer bytes); the figures are the round with the median ratio",
		n, float64(n)*float64(e.video.size)/1e6, e.plan.catchUpRounds)
	sc.note("every round, openkvs/baseline (ratio): %s", strings.Join(all, ", "))
	if e.local() {
		sc.note("child started with --getmedia-bytes-per-second %s (the default 25 MB/s per session would cap the rate)", unlimitedRate)
	} else {
		sc.note("against %s: its own --getmedia-bytes-per-second applies (25 MB/s by default)", e.opts.Target)
	}
	return nil
}

// writeFile writes r to a new file at path.
func writeFile(path string, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("baseline file: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("baseline file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("baseline file: %w", err)
	}
	return nil
}
