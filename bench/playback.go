package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// playbackFlags lift the per-session request limits of HLS and DASH
// sessions (10 segment requests per second by default), which would
// otherwise be what the playback scenarios measure.
var playbackFlags = []string{"--putmedia-bytes-per-second", unlimitedRate,
	"--segment-calls-per-second", "1e9", "--playlist-calls-per-second", "1e9", "--init-calls-per-second", "1e9"}

// storedSegments stores n fragments of the video in a new stream, opens an
// ON_DEMAND HLS session (fragmented MP4) over them and returns the URLs of
// their media segments, in order.
func (e *env) storedSegments(ctx context.Context, srv *server, name string, n int) ([]string, error) {
	stream, err := e.createStream(ctx, srv, name, 24)
	if err != nil {
		return nil, err
	}
	from := time.Now().Add(-time.Minute)
	e.progress("%s: storing %d fragments (%.0f MB)", name, n, float64(n)*float64(e.video.size)/1e6)
	if err := ingestFast(ctx, srv, stream, e.video, n); err != nil {
		return nil, err
	}
	var session struct{ HLSStreamingSessionURL string }
	err = srv.call(ctx, "/getHLSStreamingSessionURL", map[string]any{
		"StreamName": stream, "PlaybackMode": "ON_DEMAND", "MaxMediaPlaylistFragmentResults": 5000,
		"HLSFragmentSelector": map[string]any{"FragmentSelectorType": "SERVER_TIMESTAMP",
			"TimestampRange": map[string]any{"StartTimestamp": from.Unix(), "EndTimestamp": time.Now().Add(time.Minute).Unix()}},
	}, &session)
	if err != nil {
		return nil, err
	}
	master, err := srv.playlist(ctx, session.HLSStreamingSessionURL)
	if err != nil {
		return nil, err
	}
	var media []string
	for _, u := range master {
		if strings.Contains(u, "TrackNumber=1") {
			media, err = srv.playlist(ctx, u)
			if err != nil {
				return nil, err
			}
		}
	}
	if len(media) != n {
		return nil, fmt.Errorf("the media playlist of track 1 lists %d segments, want %d", len(media), n)
	}
	return media, nil
}

// playlist fetches an HLS playlist and returns the URLs it lists.
func (a *api) playlist(ctx context.Context, u string) ([]string, error) {
	base, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	body, err := a.get(ctx, u)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var out []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ref, err := url.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("playlist %s: %w", u, err)
		}
		out = append(out, base.ResolveReference(ref).String())
	}
	return out, sc.Err()
}

// runRemux measures how fast openkvs serves stored fragments as fMP4 media
// segments against ffmpeg remuxing the same MKV bytes to fragmented MP4 with
// `-c copy`.
func runRemux(ctx context.Context, e *env, sc *Scenario) error {
	srv, err := e.startServer(ctx, nil, playbackFlags...)
	if err != nil {
		return err
	}
	defer srv.stop()
	n := e.fragmentsFor(e.plan.remuxBytes)
	segments, err := e.storedSegments(ctx, srv, "remux", n)
	if err != nil {
		return err
	}
	mkvBytes := float64(len(e.video.header)) + float64(n)*float64(e.video.size)
	ffmpeg, ffmpegErr := exec.LookPath("ffmpeg")
	input := filepath.Join(e.dir, "remux.mkv")
	if ffmpegErr == nil {
		if err := writeFile(input, newFastBody(e.video, n)); err != nil {
			return err
		}
		defer os.Remove(input)
	}

	var kvsTime, baseTime time.Duration
	var segBytes int64
	readKVS := func() error {
		start := time.Now()
		for _, u := range segments {
			k, err := srv.fetch(ctx, u)
			if err != nil {
				return err
			}
			segBytes += k
		}
		kvsTime += time.Since(start)
		return nil
	}
	readBase := func() error {
		start := time.Now()
		cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-nostdin", "-i", input, "-map", "0", "-c", "copy",
			"-f", "mp4", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "pipe:1")
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
		}
		baseTime += time.Since(start)
		return nil
	}
	for round := range e.plan.remuxRounds {
		var base func() error
		if ffmpegErr == nil {
			base = readBase
		}
		if err := alternate(round, readKVS, base); err != nil {
			return err
		}
		e.progress("remux round %d/%d", round+1, e.plan.remuxRounds)
	}
	rounds := float64(e.plan.remuxRounds)
	f := figure("fMP4 media segments", mkvBytes*rounds/1e6/kvsTime.Seconds(), "MB/s")
	if ffmpegErr == nil {
		f.against("ffmpeg -c copy to fMP4", mkvBytes*rounds/1e6/baseTime.Seconds())
		f.goal(">= 1 of baseline", *f.Ratio >= 1)
	} else {
		sc.note("no ffmpeg on PATH: the baseline was not measured")
	}
	sc.add(f)
	sc.note("MB of the producer's MKV per second: %d stored fragments (%.0f MB of MKV, %.0f MB of fMP4 segments) fetched one after another over one connection, "+
		"against one `ffmpeg -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof` of the same MKV bytes from a file in the page cache (process start included), %d rounds alternating",
		n, mkvBytes/1e6, float64(segBytes)/rounds/1e6, e.plan.remuxRounds)
	if e.local() {
		sc.note("child started with --segment-calls-per-second 1e9 (the default 10 per session would cap the rate)")
	}
	return nil
}

// runSegmentTTFB measures the time to the first byte of archived fMP4 media
// segments, fetched in random order, against that of a plain GET of a file
// of one fragment's size.
func runSegmentTTFB(ctx context.Context, e *env, sc *Scenario) error {
	srv, err := e.startServer(ctx, nil, playbackFlags...)
	if err != nil {
		return err
	}
	defer srv.stop()
	segments, err := e.storedSegments(ctx, srv, "ttfb", e.plan.ttfbFragments)
	if err != nil {
		return err
	}
	const name = "fragment.mkv"
	if err := writeFile(filepath.Join(e.dir, "baseline", name), newFastBody(e.video, 1)); err != nil {
		return err
	}
	file := e.baseline.URL + "/files/" + name
	var kvs, base []time.Duration
	timeKVS := func() error {
		d, err := srv.firstByte(ctx, segments[rand.IntN(len(segments))])
		kvs = append(kvs, d)
		return err
	}
	timeBase := func() error {
		d, err := e.base.firstByte(ctx, file)
		base = append(base, d)
		return err
	}
	for i := range e.plan.ttfbRequests {
		if err := alternate(i, timeKVS, timeBase); err != nil {
			return err
		}
	}
	slices.Sort(kvs)
	slices.Sort(base)
	sc.add(figure("p50", ms(percentile(kvs, 0.5)), "ms").against("GET of a file", ms(percentile(base, 0.5))),
		figure("p99", ms(percentile(kvs, 0.99)), "ms").against("GET of a file", ms(percentile(base, 0.99))))
	sc.note("%d requests for random segments of %d stored fragments of %.1f MB, each remuxed on request, interleaved with GETs of a file of one fragment's MKV bytes (http.ServeContent)",
		e.plan.ttfbRequests, e.plan.ttfbFragments, float64(e.video.size)/1e6)
	return nil
}

// fetch reads a URL's whole body and returns its length.
func (a *api) fetch(ctx context.Context, u string) (int64, error) {
	body, err := a.get(ctx, u)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return io.Copy(io.Discard, body)
}

// firstByte is the time from sending a GET of u to its first body byte;
// the rest of the body is read, not timed.
func (a *api) firstByte(ctx context.Context, u string) (time.Duration, error) {
	start := time.Now()
	body, err := a.get(ctx, u)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	var one [1]byte
	if _, err := io.ReadFull(body, one[:]); err != nil {
		return 0, fmt.Errorf("get %s: %w", u, err)
	}
	d := time.Since(start)
	if _, err := io.Copy(io.Discard, body); err != nil && !errors.Is(err, http.ErrBodyReadAfterClose) {
		return 0, err
	}
	return d, nil
}
