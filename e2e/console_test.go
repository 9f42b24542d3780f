package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/wait"
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
	behind := p.behindProducer()
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

// TestConsoleArchive scrubs the stream page's timeline: a click plays the
// archive from the moment under the pointer, and a drag selects a range
// that "Download MP4" saves as a clip (GetClip) that ffprobe decodes.
func TestConsoleArchive(t *testing.T) {
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	media := liveMedia(t, 10)
	srv := startServer(t)
	liveProducer(t, srv, "cam", media)
	// The producer disconnects once its 10 s are sent and persisted.
	wait.For(t, "the producer to finish", func() bool {
		st, err := client.DescribeStreamStatus(ctx(t), client.StatusOptions{Endpoint: srv.URL}, "cam")
		return err == nil && st.Producer == nil
	})
	var frags []amtypes.Fragment
	for _, f := range gmListAll(t, srv, "cam") {
		frags = append(frags, f)
	}
	// A fragment at each key frame: every second and at x264's scene cuts.
	if len(frags) < 10 {
		t.Fatalf("%d fragments archived, want 10 or more", len(frags))
	}
	slices.SortFunc(frags, func(a, b amtypes.Fragment) int {
		return aws.ToTime(a.ServerTimestamp).Compare(aws.ToTime(b.ServerTimestamp))
	})
	p := openConsole(t, srv, "#/stream/cam")
	p.waitFor("#timeline .span", "")
	p.do(map[string]any{"op": "click", "selector": `button[aria-pressed]:text-is("10 min")`})
	fraction := func(at time.Time) float64 {
		var span []float64
		if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": `[+document.getElementById("timeline").dataset.from, +document.getElementById("timeline").dataset.to]`}), &span); err != nil {
			t.Fatal(err)
		}
		return (float64(at.UnixMilli()) - span[0]) / (span[1] - span[0])
	}

	target := aws.ToTime(frags[3].ServerTimestamp).Add(500 * time.Millisecond)
	p.do(map[string]any{"op": "click", "selector": "#timeline", "x": fraction(target), "y": 0.9})
	var cursor float64
	if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": `+document.getElementById("timeline").dataset.cursor`}), &cursor); err != nil {
		t.Fatal(err)
	}
	chosen := time.UnixMilli(int64(cursor))
	// One pixel of a 10 minute timeline is about half a second.
	if d := chosen.Sub(target).Abs(); d > 2*time.Second {
		t.Fatalf("the click chose %v, %v from the target %v", chosen, d, target)
	}
	got := p.until("the archive to play from the chosen time", 30*time.Second, func(s sample) bool {
		return s.PlayingDate != nil && s.Frames > 0 && s.Variance >= minVariance && *s.PlayingDate >= chosen.UnixMilli()-50 && *s.PlayingDate < chosen.UnixMilli()+3000
	})
	if first := time.UnixMilli(*got[len(got)-1].PlayingDate); first.After(chosen.Add(1500 * time.Millisecond)) {
		t.Errorf("the archive played first at %v, want within 1.5 s after the chosen %v", first, chosen)
	}
	p.playsPictures(1, 20*time.Second)
	p.screenshot("console-archive.png")

	from := aws.ToTime(frags[0].ServerTimestamp).Add(1200 * time.Millisecond)
	to := from.Add(5 * time.Second)
	p.do(map[string]any{"op": "drag", "selector": "#timeline", "from": fraction(from), "to": fraction(to)})
	// The range the page asked for, to the second its inputs hold; the clip
	// holds the fragments that start in it, 30 frames a second.
	var asked []int64
	if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": `["clip-from", "clip-to"].map((id) => new Date(document.getElementById(id).value).getTime())`}), &asked); err != nil {
		t.Fatal(err)
	}
	if d := time.UnixMilli(asked[0]).Sub(from).Abs(); d > 2*time.Second {
		t.Errorf("the selection starts at %v, %v from the dragged-from %v", time.UnixMilli(asked[0]), d, from)
	}
	// GetClip's clip of that range, then the page's: byte for byte the same,
	// and it decodes. The page retries its GetClip past the rate of 1 a second.
	sdk := getClip(t, srv, "cam", &amtypes.ClipFragmentSelector{FragmentSelectorType: amtypes.ClipFragmentSelectorTypeServerTimestamp,
		TimestampRange: &amtypes.ClipTimestampRange{StartTimestamp: aws.Time(time.UnixMilli(asked[0])), EndTimestamp: aws.Time(time.UnixMilli(asked[1]))}})
	path := filepath.Join(t.TempDir(), "clip.mp4")
	p.do(map[string]any{"op": "download", "selector": "#clip button[type=submit]", "path": path})
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want, err := os.ReadFile(sdk); err != nil || !bytes.Equal(page, want) {
		t.Errorf("the downloaded clip (%d bytes) differs from GetClip's for %v to %v (%d bytes, %v)", len(page),
			time.UnixMilli(asked[0]), time.UnixMilli(asked[1]), len(want), err)
	}
	wantProgressive(t, path)
	if n := decodedFrames(t, ffmpeg, path, "v"); n < 90 {
		t.Errorf("the downloaded clip decodes to %d video frames, want 90 or more (3 s or more of 30 fps)", n)
	}
	out, err := exec.Command(requireTool(t, "ffprobe", "apt-get install -y ffmpeg"), "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, []string{"h264", "aac"}) {
		t.Errorf("the clip's streams %q, want h264 and aac", got)
	}
}

// TestConsoleStreams lists on the streams page the streams made through the
// API, and creates, changes the retention of and deletes one from the page.
func TestConsoleStreams(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	kv := srv.control()
	for _, s := range []struct {
		name  string
		hours int32
	}{{"alpha", 0}, {"beta", 48}} {
		if _, err := kv.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(s.name), DataRetentionInHours: aws.Int32(s.hours),
			MediaType: aws.String("video/h264")}); err != nil {
			t.Fatal(err)
		}
	}
	p := openConsole(t, srv, "")
	p.waitFor(`tr[data-stream="beta"]`, "")
	if got, want := p.texts("tr[data-stream] td:nth-child(2)"), []string{"alpha", "beta"}; !slices.Equal(got, want) {
		t.Errorf("streams listed %q, want %q", got, want)
	}
	if got, want := p.texts(`tr[data-stream="beta"] td[data-label="Retention"]`), []string{"2 d"}; !slices.Equal(got, want) {
		t.Errorf("retention of beta %q, want %q", got, want)
	}

	p.do(map[string]any{"op": "fill", "selector": `#create input[name="name"]`, "value": "gamma"})
	p.do(map[string]any{"op": "fill", "selector": `#create input[name="hours"]`, "value": "2"})
	p.do(map[string]any{"op": "click", "selector": `#create button[type="submit"]`})
	p.waitFor(`tr[data-stream="gamma"]`, "")
	describe := func(name string) (*kinesisvideo.DescribeStreamOutput, error) {
		return kv.DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String(name)})
	}
	if d, err := describe("gamma"); err != nil || aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 2 {
		t.Fatalf("gamma after creating it on the page: %+v, %v; want retention 2", d, err)
	}

	p.do(map[string]any{"op": "click", "selector": `tr[data-stream="gamma"] button:text-is("Retention")`})
	p.do(map[string]any{"op": "fill", "selector": `dialog input[name="hours"]`, "value": "5"})
	p.do(map[string]any{"op": "click", "selector": `dialog button[value="ok"]`})
	p.waitFor(`tr[data-stream="gamma"] td[data-label="Retention"]`, "5 h")
	if d, err := describe("gamma"); err != nil || aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 5 {
		t.Fatalf("gamma after changing its retention on the page: %+v, %v; want retention 5", d, err)
	}

	// Deleting asks for the stream's name first.
	p.do(map[string]any{"op": "click", "selector": `tr[data-stream="gamma"] button:text-is("Delete")`})
	p.do(map[string]any{"op": "click", "selector": `dialog button[value="ok"]`})
	if _, err := describe("gamma"); err != nil {
		t.Fatalf("gamma was deleted without its name typed: %v", err)
	}
	p.do(map[string]any{"op": "fill", "selector": `dialog input[name="confirm"]`, "value": "gamma"})
	p.do(map[string]any{"op": "click", "selector": `dialog button[value="ok"]`})
	p.waitFor("#toast", "Stream gamma deleted.")
	var notFound *types.ResourceNotFoundException
	if _, err := describe("gamma"); !errors.As(err, &notFound) {
		t.Fatalf("DescribeStream of the deleted gamma: %v, want ResourceNotFoundException", err)
	}
}

// TestConsoleAuth signs in to the console of a server with --credentials:
// a wrong secret is refused with the server's message, and a key whose
// policy names one stream sees only that stream.
func TestConsoleAuth(t *testing.T) {
	t.Parallel()
	path := writeCredentials(t, filepath.Join(t.TempDir(), "credentials.json"), `{"keys": [
  {"accessKeyId": "AKIDADMIN", "secretAccessKey": "admin-secret"},
  {"accessKeyId": "AKIDCAMA", "secretAccessKey": "cam-a-secret", "policy": [
    {"actions": ["kinesisvideo:ListStreams", "kinesisvideo:DescribeStream", "kinesisvideo:GetDataEndpoint",
      "kinesisvideo:ListFragments", "kinesisvideo:GetImages"], "streams": ["cam-a"]}]}
]}`)
	srv := startServer(t, "--credentials", path)
	kv := srv.controlAs("AKIDADMIN", "admin-secret")
	for _, name := range []string{"cam-a", "cam-b"} {
		if _, err := kv.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	p := openConsole(t, srv, "")
	p.waitFor("#login", "")
	signIn := func(key, secret string) {
		p.do(map[string]any{"op": "fill", "selector": `#login input[name="key"]`, "value": key})
		p.do(map[string]any{"op": "fill", "selector": `#login input[name="secret"]`, "value": secret})
		p.do(map[string]any{"op": "click", "selector": `#login button[type="submit"]`})
	}
	signIn("AKIDCAMA", "wrong-secret")
	p.waitFor("#login-error", "signature")
	if got, want := p.texts("#login-error"), []string{msgBadSignature}; !slices.Equal(got, want) {
		t.Errorf("sign-in with a wrong secret says %q, want %q", got, want)
	}
	p.screenshot("console-login.png")
	signIn("AKIDCAMA", "cam-a-secret")
	p.waitFor(`tr[data-stream="cam-a"]`, "")
	if got, want := p.texts("tr[data-stream] td:nth-child(2)"), []string{"cam-a"}; !slices.Equal(got, want) {
		t.Errorf("streams listed to the key of cam-a %q, want %q", got, want)
	}
	// The secret stays in the tab's session storage only.
	var stored []string
	if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": `[localStorage.length, sessionStorage.length].map(String)`}), &stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, []string{"0", "1"}) {
		t.Errorf("local and session storage hold %q items, want 0 and 1", stored)
	}
}
