package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runClip measures GetClip of stored fragments, one progressive MP4 file
// per call, and the server's peak RSS meanwhile, against `ffmpeg -c copy` of
// the same MKV bytes to an MP4 file.
func runClip(ctx context.Context, e *env, sc *Scenario) error {
	n := e.plan.clipFragments
	// The AWS limit of 100 MB of media would cut a clip of the bench video
	// short of n fragments: lifted, so that the figure is of n fragments.
	srv, err := e.startServer(ctx, nil, "--putmedia-bytes-per-second", unlimitedRate,
		"--getclip-calls-per-second", "1e9", "--getclip-bytes", "100000000000")
	if err != nil {
		return err
	}
	defer srv.stop()
	stream, err := e.createStream(ctx, srv, "clip", 24)
	if err != nil {
		return err
	}
	from := time.Now().Add(-time.Minute)
	e.progress("clip: storing %d fragments (%.0f MB)", n, float64(n)*float64(e.video.size)/1e6)
	if err := ingestFast(ctx, srv, stream, e.video, n); err != nil {
		return err
	}
	mkvBytes := float64(len(e.video.header)) + float64(n)*float64(e.video.size)
	ffmpeg, ffmpegErr := exec.LookPath("ffmpeg")
	input, output := filepath.Join(e.dir, "clip.mkv"), filepath.Join(e.dir, "clip.mp4")
	if ffmpegErr == nil {
		if err := writeFile(input, newFastBody(e.video, n)); err != nil {
			return err
		}
		defer os.Remove(input)
		defer os.Remove(output)
	}

	var kvsTime, baseTime time.Duration
	var clipBytes int64
	var ffmpegRSS int64
	var peakRSS func() int64
	var rssBefore int64
	if e.local() {
		rssBefore, _ = rssBytes(srv.pid())
		peakRSS = sampleRSS(srv.pid(), 20*time.Millisecond)
	}
	readKVS := func() error {
		start := time.Now()
		k, err := srv.clip(ctx, stream, from, time.Now())
		if err != nil {
			return err
		}
		clipBytes = k
		kvsTime += time.Since(start)
		return nil
	}
	readBase := func() error {
		start := time.Now()
		cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-nostdin", "-y", "-i", input, "-map", "0", "-c", "copy", "-f", "mp4", output)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
		}
		baseTime += time.Since(start)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			ffmpegRSS = max(ffmpegRSS, ru.Maxrss<<10) // KiB on Linux
		}
		return nil
	}
	for round := range e.plan.clipRounds {
		var base func() error
		if ffmpegErr == nil {
			base = readBase
		}
		if err := alternate(round, readKVS, base); err != nil {
			return err
		}
		e.progress("clip round %d/%d", round+1, e.plan.clipRounds)
	}
	rounds := float64(e.plan.clipRounds)
	f := figure(fmt.Sprintf("GetClip of %d fragments", n), mkvBytes*rounds/1e6/kvsTime.Seconds(), "MB/s")
	if ffmpegErr == nil {
		f.against("ffmpeg -c copy to MP4", mkvBytes*rounds/1e6/baseTime.Seconds())
		f.goal(">= 1 of baseline", *f.Ratio >= 1)
	} else {
		sc.note("no ffmpeg on PATH: the baseline was not measured")
	}
	sc.add(f)
	if peakRSS != nil {
		rss := figure("server peak RSS", float64(peakRSS())/(1<<20), "MiB")
		if ffmpegRSS > 0 {
			rss.against("ffmpeg peak RSS", float64(ffmpegRSS)/(1<<20))
		}
		sc.add(rss, figure("server RSS before the clips", float64(rssBefore)/(1<<20), "MiB"))
	}
	sc.note("MB of the producer's MKV per second: one GetClip call of %d stored fragments (%.0f MB of MKV, a %.0f MB MP4) read to its end, "+
		"against one `ffmpeg -c copy -f mp4` of the same MKV bytes from a file in the page cache to a file (process start included), %d rounds alternating",
		n, mkvBytes/1e6, float64(clipBytes)/1e6, e.plan.clipRounds)
	if e.local() {
		sc.note("child started with --getclip-bytes 1e11 (the AWS limit of 100 MB would cut the clip short) and --getclip-calls-per-second 1e9; peak RSS sampled every 20 ms during the GetClip and ffmpeg rounds; the RSS before them holds the ingest's live window of recent fragments (--live-stream-bytes) and garbage not yet collected")
	}
	return nil
}

// clip calls GetClip for the stream's fragments between two server
// timestamps and returns the MP4's length.
func (a *api) clip(ctx context.Context, stream string, from, to time.Time) (int64, error) {
	body, err := a.post(ctx, "/getClip", map[string]any{"StreamName": stream,
		"ClipFragmentSelector": map[string]any{"FragmentSelectorType": "SERVER_TIMESTAMP",
			"TimestampRange": map[string]any{"StartTimestamp": float64(from.UnixMilli()) / 1e3, "EndTimestamp": float64(to.UnixMilli()) / 1e3}}})
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return io.Copy(io.Discard, body)
}
