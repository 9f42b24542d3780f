package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The console tests open openkvs's own web console (console/) in Chromium
// with the browser tests' driver. CONSOLE_SCREENSHOTS=DIR saves the
// screenshots shown in the README there (docs/console-*.png).

// openConsole opens the console of srv at fragment (such as "#/stream/cam").
func openConsole(t *testing.T, srv *serverProc, fragment string) *playback {
	t.Helper()
	return needBrowser(t).open(t, srv.URL+"/"+fragment)
}

// screenshot saves the page as docs/NAME when CONSOLE_SCREENSHOTS is set.
func (p *playback) screenshot(name string) {
	if dir := os.Getenv("CONSOLE_SCREENSHOTS"); dir != "" {
		abs, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			p.t.Fatal(err)
		}
		p.do(map[string]any{"op": "screenshot", "path": abs})
	}
}

// texts returns the inner text of every element selector matches.
func (p *playback) texts(selector string) []string {
	p.t.Helper()
	var out []string
	if err := json.Unmarshal(p.do(map[string]any{"op": "text", "selector": selector}), &out); err != nil {
		p.t.Fatal(err)
	}
	return out
}

// waitFor waits until an element matching selector and holding text shows.
func (p *playback) waitFor(selector, text string) {
	p.t.Helper()
	p.do(map[string]any{"op": "waitFor", "selector": selector, "text": text, "timeout": 20000})
}

// TestConsoleLive opens the stream page of a stream a producer is sending
// in real time: the console's own MSE player plays its low-latency HLS,
// and the test measures how far behind the producer the picture on screen
// is (the console places each fragment at its server timestamp, so
// currentTime is the wall-clock time of the picture) and how long it took
// to start. The streams page then shows the producer, its bitrate and a
// live thumbnail.
func TestConsoleLive(t *testing.T) {
	media := liveMedia(t, 60)
	srv := startServer(t)
	liveProducer(t, srv, "cam", media)
	p := openConsole(t, srv, "#/stream/cam")
	first := p.until("the first picture", 30*time.Second, func(s sample) bool { return s.Frames > 0 && s.Variance >= minVariance })
	// From the start of the page's navigation, by the page's clock.
	var origin float64
	if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": "performance.timeOrigin"}), &origin); err != nil {
		t.Fatal(err)
	}
	startup := time.Duration(float64(first[len(first)-1].Now)-origin) * time.Millisecond
	p.playsPictures(2, 30*time.Second)
	const latencyWindow = 10 * time.Second
	var behind []time.Duration
	until := time.Now().Add(latencyWindow)
	p.until("the latency samples", latencyWindow+5*time.Second, func(s sample) bool {
		if s.PlayingDate != nil {
			behind = append(behind, time.Duration(s.Now-*s.PlayingDate)*time.Millisecond)
		}
		return time.Now().After(until)
	})
	if len(behind) < 50 {
		t.Fatalf("%d latency samples in %v, want 50 or more", len(behind), latencyWindow)
	}
	slices.Sort(behind)
	p50, p99 := behind[len(behind)/2], behind[len(behind)*99/100]
	t.Logf("console live view: first picture %v after the page was opened (to the 100 ms of sampling); behind the producer p50 %v, p99 %v (%d samples over %v)",
		startup.Round(time.Millisecond), p50, p99, len(behind), latencyWindow)
	if behind[0] < 0 || p99 > 3*time.Second {
		t.Errorf("behind the producer from %v to %v: want 0 to 3 s", behind[0], behind[len(behind)-1])
	}
	p.waitFor("#play-state", "behind")
	p.screenshot("console-stream.png")

	p.do(map[string]any{"op": "goto", "url": srv.URL + "/#/"})
	p.waitFor(`tr[data-stream="cam"] .producer`, "Connected")
	p.do(map[string]any{"op": "waitFor", "selector": `tr[data-stream="cam"] img.thumb[src^="data:image/jpeg"]`, "timeout": 30000})
	got := p.texts(`tr[data-stream="cam"] .producer`)
	if len(got) != 1 || !strings.HasPrefix(got[0], "Connected") || !strings.HasSuffix(got[0], "bit/s") {
		t.Errorf("producer cell %q, want Connected and a bitrate", got)
	}
	p.screenshot("console-streams.png")
}
