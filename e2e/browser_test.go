package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/client"
)

// browserDir holds the player page, the driver script and, once
// `npm ci --prefix e2e/browser` ran, the players and playwright-core.
const browserDir = "browser"

// browser is what the browser tests need: Debian's Chromium, node, the npm
// packages, and a page server on an origin of its own.
type browser struct {
	chromium, node string
	pages          *httptest.Server
}

// needBrowser finds the tools of the browser tests, failing under CI and
// skipping elsewhere where one is missing, and serves the player page.
func needBrowser(t *testing.T) *browser {
	t.Helper()
	b := &browser{
		chromium: requireTool(t, "chromium", "apt-get install -y chromium"),
		node:     requireTool(t, "node", "apt-get install -y nodejs npm"),
	}
	for _, pkg := range []string{"playwright-core", "hls.js", "dashjs"} {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", pkg, "package.json")); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("npm package %s is required in CI but not installed (install: npm ci --prefix e2e/browser)", pkg)
			}
			t.Skipf("npm package %s not installed; install it with: npm ci --prefix e2e/browser", pkg)
		}
	}
	// Another port is another origin: the page reaches openkvs only
	// through CORS, as a viewer page on a web site would.
	b.pages = httptest.NewServer(http.FileServer(http.Dir(browserDir)))
	t.Cleanup(b.pages.Close)
	return b
}

// sample is one reading of the page's probe().
type sample struct {
	Now         int64   // Date.now() in the page
	CurrentTime float64 // video.currentTime
	ReadyState  int
	Width       int // video.videoWidth
	Frames      int // getVideoPlaybackQuality().totalVideoFrames
	Dropped     int
	Variance    float64  // of the luma of the picture on screen
	PlayingDate *int64   // wall-clock ms of the picture on screen
	Buffered    string   // video.buffered, as "start-end" ranges
	Errors      []string // fatal player and media errors
	Notes       []string // what the player did since the sample before
	Log         string   // a line of the driver, not a sample
}

// reply is the driver's answer to a command (playback.do).
type reply struct {
	Reply int
	Value json.RawMessage
	Error string
}

// playback is a page open in Chromium, read every 100 ms.
type playback struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	samples chan sample
	replies chan reply
	done    chan error
	logs    []string
	lastID  int
	closing sync.Once // close may come from the test and again at its end
}

// play opens the player page for src in a new Chromium; the browser is
// closed when the test ends, and killed if it does not close.
func (b *browser) play(t *testing.T, player, src string, lowLatency bool) *playback {
	t.Helper()
	q := url.Values{"player": {player}, "src": {src}}
	if lowLatency {
		q.Set("lowLatency", "1")
	}
	return b.open(t, b.pages.URL+"/player.html?"+q.Encode())
}

// open opens page in a new Chromium, as play does.
func (b *browser) open(t *testing.T, page string) *playback {
	t.Helper()
	const limit = 3 * time.Minute
	cmd := exec.Command(b.node, "play.mjs", b.chromium, page, t.TempDir(), "100", fmt.Sprint(limit.Milliseconds()))
	cmd.Dir = browserDir
	// Chromium runs as node's child: kill the whole group, never leave one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the browser driver: %v", err)
	}
	p := &playback{t: t, cmd: cmd, stdin: stdin, samples: make(chan sample, 1000), replies: make(chan reply, 1), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r reply
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Reply != 0 {
				p.replies <- r
				continue
			}
			var s sample
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				s.Log = "driver: " + sc.Text()
			}
			select {
			case p.samples <- s:
			default: // nobody reads any more
			}
		}
		close(p.samples)
		close(p.replies)
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.Bytes())
		}
		p.done <- err
	}()
	t.Cleanup(p.close)
	return p
}

// do runs a command of the driver (play.mjs) on the page, such as
// {"op": "click", "selector": "#x"}, and returns its value; the test fails
// if it fails or takes over a minute.
func (p *playback) do(cmd map[string]any) json.RawMessage {
	p.t.Helper()
	p.lastID++
	cmd["id"] = p.lastID
	line, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		p.t.Fatalf("send %s to the browser driver: %v", line, err)
	}
	select {
	case r, ok := <-p.replies:
		switch {
		case !ok:
			p.t.Fatalf("the browser driver ended before answering %s\n%s", line, strings.Join(p.logs, "\n"))
		case r.Error != "":
			p.t.Fatalf("%s: %s\n%s", line, r.Error, strings.Join(p.logs, "\n"))
		}
		return r.Value
	case <-time.After(time.Minute):
		p.t.Fatalf("no answer to %s within a minute", line)
	}
	return nil
}

// close asks the driver to close the browser and kills them if that takes
// longer than 10 s.
func (p *playback) close() {
	p.closing.Do(func() {
		p.stdin.Close()
		// Drained aside: a driver that does not exit must not keep close from
		// reaching the kill below.
		go func() {
			for range p.samples {
			}
		}()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// until reads samples until cond holds for one, failing the test if the
// player reports an error or within is over; it returns every sample read.
func (p *playback) until(what string, within time.Duration, cond func(sample) bool) []sample {
	p.t.Helper()
	timeout := time.After(within)
	var seen []sample
	for {
		select {
		case s, ok := <-p.samples:
			if !ok {
				p.t.Fatalf("the browser driver ended before %s: %v\n%s", what, <-p.done, strings.Join(p.logs, "\n"))
			}
			if s.Log != "" {
				p.logs = append(p.logs, s.Log)
				continue
			}
			for _, n := range s.Notes {
				p.logs = append(p.logs, "page: "+n)
			}
			s.Notes = nil
			if len(s.Errors) > 0 {
				p.t.Fatalf("the player failed before %s: %v\n%s", what, s.Errors, strings.Join(p.logs, "\n"))
			}
			seen = append(seen, s)
			if cond(s) {
				return seen
			}
		case <-timeout:
			last := "no sample"
			if len(seen) > 0 {
				last = fmt.Sprintf("%+v", seen[len(seen)-1])
			}
			p.t.Fatalf("timed out after %v waiting for %s; last sample %s\n%s", within, what, last, strings.Join(p.logs, "\n"))
		}
	}
}

// latencyWindow is how long behindProducer samples.
const latencyWindow = 10 * time.Second

// behindProducer samples, for latencyWindow, how far the picture on screen
// is behind the wall clock (its program date against the page's clock) and
// returns the samples sorted, at least 50 of them.
func (p *playback) behindProducer() []time.Duration {
	p.t.Helper()
	var behind []time.Duration
	until := time.Now().Add(latencyWindow)
	p.until("the latency samples", latencyWindow+5*time.Second, func(s sample) bool {
		if s.PlayingDate != nil {
			behind = append(behind, time.Duration(s.Now-*s.PlayingDate)*time.Millisecond)
		}
		return time.Now().After(until)
	})
	if len(behind) < 50 {
		p.t.Fatalf("%d latency samples in %v, want 50 or more", len(behind), latencyWindow)
	}
	slices.Sort(behind)
	return behind
}

// minVariance is the least luma variance of a picture that is not blank:
// testsrc's colour bars and gradients have thousands, a black or
// single-colour picture under 1.
const minVariance = 100

// playsPictures waits until the player has played at least seconds of
// media with the frames that takes, showing a picture that is not blank.
func (p *playback) playsPictures(seconds float64, within time.Duration) []sample {
	p.t.Helper()
	var first *sample
	return p.until(fmt.Sprintf("%.0f s of pictures to play", seconds), within, func(s sample) bool {
		if s.Frames == 0 {
			return false
		}
		if first == nil {
			first = &s
		}
		return s.CurrentTime-first.CurrentTime >= seconds && s.Frames-first.Frames >= int(seconds*25) && s.Variance >= minVariance
	})
}

// TestBrowserOnDemand plays ON_DEMAND HLS (fMP4) and DASH sessions of
// H.264+AAC media in Chromium with hls.js and dash.js, from a page on
// another origin.
func TestBrowserOnDemand(t *testing.T) {
	t.Parallel()
	b := needBrowser(t)
	srv := startServer(t)
	start := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	playStream(t, srv, "cam", "h264_aac.mkv", start)
	from, to := start.Add(-time.Second), start.Add(time.Minute)
	for _, tc := range []struct{ player, url string }{
		{"hls", hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("cam"),
			PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: odRange(amtypes.HLSFragmentSelectorTypeProducerTimestamp, from, to)})},
		{"dash", dashURL(t, srv, &kinesisvideoarchivedmedia.GetDASHStreamingSessionURLInput{StreamName: aws.String("cam"),
			PlaybackMode: amtypes.DASHPlaybackModeOnDemand, DASHFragmentSelector: &amtypes.DASHFragmentSelector{
				FragmentSelectorType: amtypes.DASHFragmentSelectorTypeProducerTimestamp,
				TimestampRange:       &amtypes.DASHTimestampRange{StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(to)}}})},
	} {
		t.Run(tc.player, func(t *testing.T) {
			p := b.play(t, tc.player, tc.url, false)
			// The media is 6 s long: 3 s of it must play, 640x360.
			got := p.playsPictures(3, 30*time.Second)
			if w := got[len(got)-1].Width; w != 640 {
				t.Errorf("video width %d, want 640", w)
			}
		})
	}
}

// liveMedia makes seconds of H.264+AAC media as a camera sends it: a key
// frame, and so a fragment, every second.
func liveMedia(t *testing.T, seconds int) []byte {
	t.Helper()
	return ffmpegMedia(t, seconds, "-cluster_time_limit", "1100", "-cluster_size_limit", "50000000")
}

// ffmpegMedia makes seconds of H.264+AAC media, a key frame every second,
// with the Matroska muxer options given. With none it is what ffmpeg writes
// to a pipe: a cluster every key frame or 32 KiB, so that some fragments
// open with frames that depend on the one before.
func ffmpegMedia(t *testing.T, seconds int, muxer ...string) []byte {
	t.Helper()
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	d := fmt.Sprint(seconds)
	args := []string{"-v", "error",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30:duration=" + d, "-f", "lavfi", "-i", "sine=frequency=440:duration=" + d,
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "1"}
	args = append(append(args, muxer...), "-f", "matroska", "-")
	cmd := exec.CommandContext(ctx(t), ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// liveProducer sends media to a new stream in real time, as a camera
// would, and returns once its first fragment is persisted; the producer
// stops when the test ends.
func liveProducer(t *testing.T, srv *serverProc, stream string, media []byte) {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if _, err := srv.control().CreateStream(cx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	persisted := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(cx, client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE", Realtime: true,
			OnAck: func(a client.Ack) {
				if a.EventType == "PERSISTED" {
					select {
					case persisted <- struct{}{}:
					default:
					}
				}
			}}, bytes.NewReader(media))
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-persisted:
	case err := <-done:
		t.Fatalf("producer ended before its first fragment was persisted: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no fragment persisted within 15 s")
	}
}

// TestBrowserLive plays LIVE sessions of a stream a producer is sending in
// real time, HLS with hls.js and DASH with dash.js, and measures how far
// behind the producer the picture on screen is: the wall-clock time of the
// frame on screen (EXT-X-PROGRAM-DATE-TIME, which is the server timestamp
// of each fragment, or the MPD timeline) against the page's clock, sampled
// every 100 ms for latencyWindow. The producer, server and browser share
// this machine's clock. It does not run in parallel with other tests, which
// would add their load to the latency.
func TestBrowserLive(t *testing.T) {
	b := needBrowser(t)
	media := liveMedia(t, 40)
	srv := startServer(t)
	for _, tc := range []struct {
		name, player string
		lowLatency   bool
	}{
		{name: "LL-HLS", player: "hls", lowLatency: true},
		{name: "HLS", player: "hls"},
		{name: "DASH", player: "dash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "live-" + strings.ToLower(tc.name)
			liveProducer(t, srv, stream, media)
			var u string
			if tc.player == "hls" {
				// The producer's media is continuous: no discontinuity
				// markers. With SERVER_TIMESTAMP's default, one before every
				// fragment, hls.js 1.7.4 can deadlock at start: when its
				// audio and video start in different fragments, the audio
				// waits for the video's timestamps of its discontinuity,
				// which the video never loads while it waits for the audio
				// to create the media buffers (readyState stays 0).
				u = hlsURL(t, srv, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String(stream),
					DisplayFragmentTimestamp: amtypes.HLSDisplayFragmentTimestampAlways,
					DiscontinuityMode:        amtypes.HLSDiscontinuityModeNever,
					HLSFragmentSelector:      &amtypes.HLSFragmentSelector{FragmentSelectorType: amtypes.HLSFragmentSelectorTypeServerTimestamp}})
			} else {
				u = dashURL(t, srv, &kinesisvideoarchivedmedia.GetDASHStreamingSessionURLInput{StreamName: aws.String(stream),
					DASHFragmentSelector: &amtypes.DASHFragmentSelector{FragmentSelectorType: amtypes.DASHFragmentSelectorTypeServerTimestamp}})
			}
			p := b.play(t, tc.player, u, tc.lowLatency)
			p.playsPictures(2, 30*time.Second)
			behind := p.behindProducer()
			p50, p99 := behind[len(behind)/2], behind[len(behind)*99/100]
			t.Logf("%s behind the producer: p50 %v, p99 %v (%d samples over %v)", tc.name, p50, p99, len(behind), latencyWindow)
			if behind[0] < 0 || p99 > 15*time.Second {
				t.Errorf("%s behind the producer from %v to %v: want 0 to 15 s", tc.name, behind[0], behind[len(behind)-1])
			}
		})
	}
}
