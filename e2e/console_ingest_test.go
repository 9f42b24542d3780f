package e2e

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openkvs/openkvs/bench"
	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/wait"
)

// TestConsoleIngestCost measures what an open console costs ingest (issue
// #14: "the console adds nothing to the server's hot paths"). It is a
// measurement, not run unless asked for, since it takes minutes and its
// numbers depend on the machine:
//
//	CONSOLE_INGEST_ROUNDS=4 go test ./e2e -run TestConsoleIngestCost -v -timeout 30m
//
// One server takes a camera (ffmpeg, 640x360 at 30 fps in real time, H.264
// and AAC) on stream cam for the whole run. In alternating rounds, `openkvs
// bench --target URL --scenarios ingest` measures ingest into the server
// (benchRuns runs a side), with no browser, then with headless Chromium
// showing the live view of cam in one tab and the streams page in another.
// The server's access log shows that both tabs keep calling the server
// through every measurement, and the live view's clock that it keeps
// playing.
func TestConsoleIngestCost(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("CONSOLE_INGEST_ROUNDS"))
	if rounds < 1 {
		t.Skip("a measurement: CONSOLE_INGEST_ROUNDS=4 go test ./e2e -run TestConsoleIngestCost -v -timeout 30m")
	}
	const benchRuns = 3
	b := needBrowser(t)
	ffmpeg := requireTool(t, "ffmpeg", "apt-get install -y ffmpeg")
	srv := startServer(t, "--putmedia-bytes-per-second", "1e12", "--putmedia-calls-per-second", "100")
	camera(t, srv, ffmpeg, "cam")

	// ingest runs the bench's ingest scenario benchRuns times and returns
	// the mean of their MB/s and the server's CPU seconds meanwhile.
	ingest := func() (float64, float64) {
		cpu0, err := bench.CPUSeconds(srv.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for range benchRuns {
			out := filepath.Join(t.TempDir(), "bench.json")
			cx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			b, err := exec.CommandContext(cx, binary, "bench", "--target", srv.URL, "--scenarios", "ingest", "--json", out).CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("openkvs bench: %v\n%s", err, b)
			}
			var rep struct {
				Scenarios []struct{ Figures []struct{ Value float64 } }
			}
			if b, err = os.ReadFile(out); err != nil || json.Unmarshal(b, &rep) != nil || len(rep.Scenarios) != 1 || len(rep.Scenarios[0].Figures) != 1 {
				t.Fatalf("bench report %s: %v", b, err)
			}
			sum += rep.Scenarios[0].Figures[0].Value
		}
		cpu1, err := bench.CPUSeconds(srv.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return sum / benchRuns, cpu1 - cpu0
	}
	var open, closed, openCPU, closedCPU []float64
	for round := range rounds {
		for _, withConsole := range []bool{round%2 == 1, round%2 == 0} {
			if !withConsole {
				mb, cpu := ingest()
				closed, closedCPU = append(closed, mb), append(closedCPU, cpu)
				t.Logf("round %d, console closed: %.0f MB/s, server CPU %.1f s", round+1, mb, cpu)
				continue
			}
			p := b.open(t, srv.URL+"/#/stream/cam")
			p.playsPictures(1, 30*time.Second)
			p.do(map[string]any{"op": "tab", "url": srv.URL + "/#/"})
			from := srv.logs.len()
			clock := func() float64 {
				var v float64
				if err := json.Unmarshal(p.do(map[string]any{"op": "eval", "expr": "document.querySelector('video').currentTime"}), &v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			start, played := time.Now(), clock()
			mb, cpu := ingest()
			took := time.Since(start)
			played = clock() - played
			live, page, gap := consoleCalls(t, srv.logs.since(from), start)
			p.close()
			open, openCPU = append(open, mb), append(openCPU, cpu)
			t.Logf("round %d, console open: %.0f MB/s, server CPU %.1f s; in %v the live view played %.1f s and made %d calls, the streams page %d, the longest pause between calls %v",
				round+1, mb, cpu, took.Round(time.Second), played, live, page, gap.Round(time.Millisecond))
			if played < took.Seconds()-3 || live == 0 || page == 0 || gap > 5*time.Second {
				t.Errorf("round %d: the console did not keep working through the measurement", round+1)
			}
		}
	}
	mo, mc := mean(open), mean(closed)
	co, cc := mean(openCPU), mean(closedCPU)
	t.Logf("ingest with the console open %.0f MB/s, closed %.0f MB/s (means of %d rounds of %d bench runs each): open/closed %.3f; server CPU seconds a round open %.2f, closed %.2f: open/closed %.3f",
		mo, mc, rounds, benchRuns, mo/mc, co, cc, co/cc)
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// consoleCalls counts the requests of the console's two tabs in server
// log lines: the live view's (session URL, playlists, segments of cam) and
// the streams page's (stream status, ListStreams); and the longest time
// from since without a request of either.
func consoleCalls(t *testing.T, lines []string, since time.Time) (live, page int, gap time.Duration) {
	t.Helper()
	last := since
	for _, l := range lines {
		var rec struct {
			Time              time.Time
			Msg, Path, Stream string
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "request" {
			continue
		}
		switch {
		case rec.Stream == "cam" && rec.Path != "/putMedia":
			live++
		case strings.HasPrefix(rec.Path, "/openkvs/v1/streams") || rec.Path == "/listStreams":
			page++
		default:
			continue
		}
		gap = max(gap, rec.Time.Sub(last))
		last = rec.Time
	}
	return live, page, max(gap, time.Since(last))
}

// camera sends 640x360 H.264 and AAC that ffmpeg encodes in real time to
// stream, from now until the test ends.
func camera(t *testing.T, srv *serverProc, ffmpeg, stream string) {
	t.Helper()
	createStream(t, srv, stream, 1)
	cx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(cx, ffmpeg, "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-bf", "0", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "1", "-f", "matroska", "-")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := client.Put(cx, client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE"}, out)
		io.Copy(io.Discard, out)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		<-done
	})
	wait.For(t, "the camera's first fragment", func() bool {
		st, err := client.DescribeStreamStatus(ctx(t), client.StatusOptions{Endpoint: srv.URL}, stream)
		return err == nil && st.Producer != nil && st.Producer.NewestFragment != nil
	})
}
