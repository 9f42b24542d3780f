package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/images"
)

// imagesFlags lift the limits that would otherwise be what the GetImages
// scenario measures: the ingest rate of the stored stream and the 5 calls
// per second a stream takes.
var imagesFlags = []string{"--putmedia-bytes-per-second", unlimitedRate, "--getimages-calls-per-second", "1e9"}

// runImages measures GetImages over a stored stream of real H.264 (made with
// ffmpeg, which GetImages needs anyway): images per second for one image a
// second over the plan's range, decoded cold (a new JPEG quality each round
// defeats the image cache) and again from the cache, against one ffmpeg
// process extracting the same frames from the same MKV file.
func runImages(ctx context.Context, e *env, sc *Scenario) error {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return fmt.Errorf("GetImages needs ffmpeg on PATH: %w", err)
	}
	srv, err := e.startServer(ctx, nil, imagesFlags...)
	if err != nil {
		return err
	}
	defer srv.stop()
	p := e.plan
	seconds := int(p.imagesRange / time.Second)
	input := filepath.Join(e.dir, "images.mkv")
	e.progress("images: encoding %d s of %s H.264 with ffmpeg", seconds, p.imagesSize)
	// Live-camera shape, as testdata/media: 2 s closed GOPs, no B-frames,
	// one Cluster (fragment) per GOP.
	gen := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
		"-i", "testsrc2=size="+p.imagesSize+":rate=30", "-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
		"-cluster_time_limit", "5000", "-f", "matroska", input)
	if out, err := gen.CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg encode: %w: %s", err, out)
	}
	defer os.Remove(input)
	stream, err := e.createStream(ctx, srv, "images", 24)
	if err != nil {
		return err
	}
	f, err := os.Open(input)
	if err != nil {
		return err
	}
	err = srv.putMedia(ctx, stream, f, func(ack) {})
	f.Close()
	if err != nil {
		return err
	}
	var list struct {
		Fragments []struct{ ProducerTimestamp float64 }
	}
	if err := srv.call(ctx, "/listFragments", map[string]any{"StreamName": stream, "MaxResults": 1000}, &list); err != nil {
		return err
	}
	if len(list.Fragments) == 0 {
		return fmt.Errorf("the stored stream lists no fragments")
	}
	start := slices.MinFunc(list.Fragments, func(a, b struct{ ProducerTimestamp float64 }) int {
		return int(a.ProducerTimestamp*1000) - int(b.ProducerTimestamp*1000)
	}).ProducerTimestamp

	// getAll reads every page of the range; it returns the images made.
	getAll := func(quality int) (int, error) {
		in := map[string]any{"StreamName": stream, "ImageSelectorType": "PRODUCER_TIMESTAMP", "StartTimestamp": start,
			"EndTimestamp": start + float64(seconds), "SamplingInterval": 1000, "Format": "JPEG",
			"FormatConfig": map[string]string{"JPEGQuality": strconv.Itoa(quality)}, "MaxResults": 25}
		n := 0
		for {
			var out struct {
				Images []struct {
					Error        string
					ImageContent string
				}
				NextToken string
			}
			if err := srv.call(ctx, "/getImages", in, &out); err != nil {
				return n, err
			}
			for _, im := range out.Images {
				if im.Error != "" || im.ImageContent == "" {
					return n, fmt.Errorf("an image failed: %s", cmp.Or(im.Error, "no ImageContent"))
				}
				n++
			}
			if out.NextToken == "" {
				return n, nil
			}
			in["NextToken"] = out.NextToken
		}
	}
	var kvsTime, cachedTime, baseTime time.Duration
	timeKVS := func(quality int, total *time.Duration) error {
		begin := time.Now()
		n, err := getAll(quality)
		if err == nil && n != seconds {
			err = fmt.Errorf("GetImages made %d images, want %d", n, seconds)
		}
		*total += time.Since(begin)
		return err
	}
	timeBase := func(quality int) error {
		begin := time.Now()
		cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-nostdin", "-i", input, "-map", "0:v:0",
			"-vf", `select=not(mod(n\,30))`, "-fps_mode", "passthrough", "-c:v", "mjpeg", "-q:v", strconv.Itoa(images.QScale(quality)),
			"-f", "image2pipe", "pipe:1")
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
		}
		baseTime += time.Since(begin)
		return nil
	}
	for round := range p.imagesRounds {
		quality := 80 - round
		if err := alternate(round, func() error { return timeKVS(quality, &kvsTime) }, func() error { return timeBase(quality) }); err != nil {
			return err
		}
		if err := timeKVS(quality, &cachedTime); err != nil {
			return err
		}
		e.progress("images round %d/%d", round+1, p.imagesRounds)
	}
	made := float64(seconds * p.imagesRounds)
	sc.add(figure("GetImages, decoded", made/kvsTime.Seconds(), "images/s").against("one ffmpeg extracting the same frames", made/baseTime.Seconds()),
		figure("GetImages, from the cache", made/cachedTime.Seconds(), "images/s"))
	sc.note("%d JPEG images (one a second over %d s of %s H.264 at 30 fps, 2 s GOPs, %d fragments) in pages of 25, one call after another, "+
		"server default of 2 ffmpeg decoder processes; baseline: one `ffmpeg -i file.mkv -vf select=not(mod(n\\,30)) -c:v mjpeg` of the same MKV file "+
		"(process start included); %d rounds alternating, a new JPEGQuality each round so nothing is cached, then the same call again from the cache",
		seconds, seconds, p.imagesSize, len(list.Fragments), p.imagesRounds)
	return nil
}
