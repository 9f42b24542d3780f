package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
)

// The stream kvssink sends: 30 s of 25 fps video, a key frame every second,
// so 30 one-second fragments (kvssink cuts a fragment at each key frame).
const (
	kvssinkFrames   = 750
	kvssinkFPS      = 25
	kvssinkInterval = 1000 / kvssinkFPS // ms between frames
)

// kvssinkConnectFailed is in the line the producer logs for each PutMedia
// connection attempt that found no server listening.
const kvssinkConnectFailed = "/putMedia with result Couldn't connect to server"

// kvssinkLogConfig makes the producer log to stdout at DEBUG, its default,
// but with milliseconds, and independently of the working directory (its
// default config path is ../kvs_log_configuration). DEBUG includes every
// ACK the producer receives, which the test reads.
const kvssinkLogConfig = `log4cplus.rootLogger=DEBUG, out
log4cplus.appender.out=log4cplus::ConsoleAppender
log4cplus.appender.out.layout=log4cplus::PatternLayout
log4cplus.appender.out.layout.ConversionPattern=%D{%H:%M:%S.%q} %-5p %m%n
`

// TestKvssinkCrash streams with the official KVS producer (GStreamer
// kvssink) and kills the server with SIGKILL mid-stream. The server stays
// down until a reconnect attempt of the producer has failed, which makes
// PIC resume the next connection inside a fragment without a stream header
// (a failed attempt clears its rollback flag); the server must answer that
// with the retriable ERROR 4000, so that PIC sends the fragment again whole,
// and no frame may be lost.
func TestKvssinkCrash(t *testing.T) {
	env := kvssinkEnv(t)
	// The producer reconnects to the URL it was given: the server must come
	// back on the same port. A later --addr overrides the one start() passes.
	srv := startServer(t, "--addr", freeAddr(t), "--listfragments-calls-per-second", "1000")
	createStream(t, srv, "cam", 24)
	p := startKvssink(t, env, srv.URL, "cam", kvssinkFrames)

	// Five fragments stored, the sixth on its way: crash.
	eventually(t, 30*time.Second, "5 fragments listed", func() error {
		if n := len(gmListAll(t, srv, "cam")); n < 5 {
			return fmt.Errorf("%d listed", n)
		}
		return nil
	})
	srv.Kill()
	killed := time.Now()
	// PIC reconnects at once (about every 10 ms here: its backoff delays the
	// DescribeStream step, which kvssink answers from its cache), so one
	// attempt fails within milliseconds.
	p.out.waitFor(t, "a failed PutMedia connection attempt", func(b []byte, err error) bool {
		return bytes.Contains(b, []byte(kvssinkConnectFailed))
	})
	detected := time.Since(killed)
	srv.start()
	down := time.Since(killed)
	restarted := time.Now()
	p.wait(t, kvssinkFrames/kvssinkFPS*time.Second+30*time.Second)
	t.Logf("failed attempt seen %v after SIGKILL; server down %v; producer done %v after the restart",
		detected.Round(time.Millisecond), down.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))

	out := p.out.waitFor(t, "the end of the producer's output", func(_ []byte, err error) bool { return err != nil })
	crash := bytes.Index(out, []byte(kvssinkConnectFailed))
	t.Logf("producer: %d PutMedia connections, %d of them failed to connect; ACKs after the crash up to the first PERSISTED: %s",
		bytes.Count(out, []byte("New upload handle")), bytes.Count(out, []byte(kvssinkConnectFailed)),
		kvssinkAckSummary(kvssinkAcks(out[crash:])))

	// The first connection after the restart started inside a fragment; the
	// server ended it with ERROR 4000, the producer got that, and the next
	// connection sent the fragment whole.
	ends := putMediaEnds(srv)
	t.Logf("PutMedia sessions that ended with an error after the restart: %q", ends)
	if len(ends) != 1 || !strings.Contains(ends[0], "STREAM_READ_ERROR (4000)") || !strings.Contains(ends[0], mkv.ErrMidFragment.Error()) {
		t.Errorf("want exactly one PutMedia session ended after the restart, with STREAM_READ_ERROR (4000) for %q", mkv.ErrMidFragment)
	}
	var errorIDs []int
	for _, a := range kvssinkAcks(out[crash:]) {
		if a.EventType == "ERROR" {
			errorIDs = append(errorIDs, a.ErrorID)
		}
	}
	if !slices.Equal(errorIDs, []int{4000}) {
		t.Errorf("the producer got ERROR ACKs %v after the crash, want [4000]", errorIDs)
	}

	persisted := map[uint64]bool{} // fragments the producer knew were stored before the crash
	for _, a := range kvssinkAcks(out[:crash]) {
		if a.EventType == "PERSISTED" {
			persisted[a.FragmentTimecode] = true
		}
	}
	kvssinkCheckStored(t, srv, "cam", kvssinkFrames, persisted)
}

// kvssinkEnv returns the environment that lets gst-launch-1.0 load the
// kvssink built by tools/build-official-producer.sh in $KVS_PRODUCER_DIR,
// or skips the test: building the producer takes about ten minutes, so
// neither developers nor CI are required to have it.
func kvssinkEnv(t *testing.T) []string {
	t.Helper()
	dir := os.Getenv("KVS_PRODUCER_DIR")
	build := "MIRRORS=<dir of the awslabs mirrors> KVS_PRODUCER_DIR=<dir> tools/build-official-producer.sh"
	if dir == "" {
		t.Skipf("KVS_PRODUCER_DIR is not set; it names the official KVS producer built with: %s", build)
	}
	plugins := filepath.Join(dir, "src", "producer-sdk-cpp", "build")
	if _, err := os.Stat(filepath.Join(plugins, "libgstkvssink.so")); err != nil {
		t.Skipf("KVS_PRODUCER_DIR=%s holds no kvssink (%v); build it with: %s", dir, err, build)
	}
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 not installed; install it with: apt-get install gstreamer1.0-tools")
	}
	return []string{"LD_LIBRARY_PATH=" + filepath.Join(dir, "prefix", "lib"), "GST_PLUGIN_PATH=" + plugins}
}

// freeAddr returns a loopback address with a port that is free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// kvssinkProc is a running gst-launch-1.0 pipeline ending in kvssink.
type kvssinkProc struct {
	out    *gmRecorder // stdout and stderr together, in order
	exited chan struct{}
	err    error // set when exited is closed
}

// startKvssink streams frames of test video to stream through the server
// at controlURL. The process is killed, with its process group, when the
// test ends, and its output is logged if the test failed.
func startKvssink(t *testing.T, env []string, controlURL, stream string, frames int) *kvssinkProc {
	t.Helper()
	dir := t.TempDir()
	logConfig := filepath.Join(dir, "kvs_log_configuration")
	if err := os.WriteFile(logConfig, []byte(kvssinkLogConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("gst-launch-1.0", "-e",
		"videotestsrc", "is-live=true", fmt.Sprintf("num-buffers=%d", frames), "!",
		fmt.Sprintf("video/x-raw,width=320,height=240,framerate=%d/1", kvssinkFPS), "!",
		"x264enc", "tune=zerolatency", fmt.Sprintf("key-int-max=%d", kvssinkFPS), "bframes=0", "!",
		"h264parse", "!", "video/x-h264,stream-format=avc,alignment=au", "!",
		"kvssink", "stream-name="+stream, "aws-region=us-east-1", "access-key=AKIDEXAMPLE", "secret-key=SECRETEXAMPLE",
		"log-config="+logConfig)
	cmd.Dir = dir
	// kvssink has no endpoint property: it takes the control plane from
	// CONTROL_PLANE_URI, and the data endpoint from GetDataEndpoint.
	cmd.Env = append(append(os.Environ(), env...), "CONTROL_PLANE_URI="+controlURL)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	p := &kvssinkProc{out: gmRecord(r), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
		if t.Failed() {
			out := p.out.waitFor(t, "the end of the producer's output", func(_ []byte, err error) bool { return err != nil })
			t.Logf("gst-launch-1.0 output:\n%s", out)
		}
	})
	return p
}

// wait waits for the pipeline to end and fails the test unless it exits 0.
func (p *kvssinkProc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("gst-launch-1.0: %v", p.err)
		}
	case <-time.After(timeout):
		t.Fatalf("gst-launch-1.0 still running after %v", timeout)
	}
}

// kvssinkAckJSON matches the ACKs in the producer's DEBUG log lines, which
// quote each response chunk it receives; an ACK it rejects is quoted again
// after "Failed to submit ACK: ".
var kvssinkAckJSON = regexp.MustCompile(`(Failed to submit ACK: )?(\{"EventType":[^{}]*\})`)

// kvssinkAcks returns the ACKs the producer received, in order, from its
// output out.
func kvssinkAcks(out []byte) []client.Ack {
	var acks []client.Ack
	for _, m := range kvssinkAckJSON.FindAllSubmatch(out, -1) {
		var a client.Ack
		if len(m[1]) == 0 && json.Unmarshal(m[2], &a) == nil {
			acks = append(acks, a)
		}
	}
	return acks
}

// kvssinkAckSummary writes ACKs compactly (event@timecode, with the error
// id of an ERROR), up to the first PERSISTED.
func kvssinkAckSummary(acks []client.Ack) string {
	var s []string
	for _, a := range acks {
		if a.EventType == "ERROR" {
			s = append(s, fmt.Sprintf("ERROR %d@%d", a.ErrorID, a.FragmentTimecode))
		} else {
			s = append(s, fmt.Sprintf("%s@%d", a.EventType, a.FragmentTimecode))
		}
		if a.EventType == "PERSISTED" {
			break
		}
	}
	return strings.Join(s, " ")
}

// putMediaEnds returns the errors of the PutMedia sessions that srv logged
// as ended with one, in order.
func putMediaEnds(srv *serverProc) []string {
	var out []string
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		var rec struct{ Msg, Err string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "putMedia session ended" {
			out = append(out, rec.Err)
		}
	}
	return out
}

// kvssinkFragment is a stored fragment as GetMediaForFragmentList returns it.
type kvssinkFragment struct {
	number   string
	timecode uint64  // Cluster Timecode: the producer's timestamp in ms
	cluster  []byte  // the Cluster element
	frames   []int64 // absolute timestamps of its blocks, in ms
}

// kvssinkCheckStored reads every fragment of stream back and checks that
// the frames stored are the frames sent: that many distinct timestamps,
// kvssinkInterval ms apart. A frame may be stored twice only within a whole
// fragment stored twice, which happens when the producer sent again a
// fragment whose PERSISTED ACK it never got (so not among persisted): the
// service accepts it as a new fragment (kvs-protocol.md §4.5).
func kvssinkCheckStored(t *testing.T, srv *serverProc, stream string, frames int, persisted map[uint64]bool) {
	t.Helper()
	stored := kvssinkRead(t, srv, stream, slices.Sorted(maps.Keys(gmListAll(t, srv, stream))))

	byTimecode := map[uint64][]kvssinkFragment{}
	owner := map[int64]uint64{} // frame timestamp -> timecode of the fragment holding it
	total := 0
	for _, f := range stored {
		byTimecode[f.timecode] = append(byTimecode[f.timecode], f)
		total += len(f.frames)
		for _, ts := range f.frames {
			if tc, ok := owner[ts]; ok && tc != f.timecode {
				t.Errorf("frame %d is in the fragments at %d and at %d: a fragment was stored in part", ts, tc, f.timecode)
			}
			owner[ts] = f.timecode
		}
	}
	var copies []string
	for tc, same := range byTimecode {
		for _, f := range same[1:] {
			copies = append(copies, fmt.Sprintf("%d (%s = %s)", tc, f.number, same[0].number))
			if !bytes.Equal(f.cluster, same[0].cluster) {
				t.Errorf("fragments %s and %s at %d differ", same[0].number, f.number, tc)
			}
		}
		if len(same) > 1 && persisted[tc] {
			t.Errorf("fragment at %d is stored %d times although the producer got its PERSISTED ACK before the crash", tc, len(same))
		}
	}
	t.Logf("%d fragments stored, %d frames, %d distinct; stored twice: %v", len(stored), total, len(owner), copies)

	timestamps := slices.Sorted(maps.Keys(owner))
	if len(timestamps) != frames {
		t.Errorf("%d distinct frames stored, want %d", len(timestamps), frames)
	}
	for i := 1; i < len(timestamps); i++ {
		if gap := timestamps[i] - timestamps[i-1]; gap != kvssinkInterval {
			t.Errorf("frames at %d and %d are %d ms apart, want %d: %d frames missing", timestamps[i-1], timestamps[i], gap, kvssinkInterval, gap/kvssinkInterval-1)
		}
	}
}

// kvssinkRead returns the fragments with GetMediaForFragmentList.
func kvssinkRead(t *testing.T, srv *serverProc, stream string, numbers []string) []kvssinkFragment {
	t.Helper()
	resp, err := gmArchived(srv).GetMediaForFragmentList(ctx(t), &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
		StreamName: aws.String(stream), Fragments: numbers})
	gmFatalIf(t, err, "GetMediaForFragmentList")
	defer resp.Payload.Close()
	payload, err := io.ReadAll(resp.Payload)
	gmFatalIf(t, err, "read GetMediaForFragmentList payload")
	chunks := gmChunks(t, payload)
	if len(chunks) != len(numbers) {
		t.Fatalf("%d chunks for %d fragments", len(chunks), len(numbers))
	}
	out := make([]kvssinkFragment, len(chunks))
	for i, c := range chunks {
		if got := c.Tags[mkv.TagFragmentNumber]; got != numbers[i] || c.Err() != nil {
			t.Fatalf("chunk %d: fragment %s (error %v), want %s", i, got, c.Err(), numbers[i])
		}
		out[i] = kvssinkFragment{number: numbers[i], cluster: c.Cluster}
		out[i].timecode, out[i].frames = kvssinkFrameTimes(t, c)
	}
	return out
}

// kvssinkFrameTimes returns the Cluster Timecode of a GetMedia chunk and
// the absolute timestamps of its blocks: Cluster Timecode plus the block's
// relative timecode, in ms (kvssink sends ABSOLUTE timecodes).
func kvssinkFrameTimes(t *testing.T, c *mkv.Chunk) (uint64, []int64) {
	t.Helper()
	sp := mkv.NewSplitter(bytes.NewReader(c.Data), mkv.SplitterOptions{})
	defer sp.Close()
	var cluster uint64
	var frames []int64
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return cluster, frames
		}
		gmFatalIf(t, err, "chunk of fragment %s", c.Tags[mkv.TagFragmentNumber])
		switch e := ev.(type) {
		case *mkv.Header:
			if e.TimecodeScale != 1_000_000 {
				t.Fatalf("fragment %s: TimecodeScale %d, want 1 ms", c.Tags[mkv.TagFragmentNumber], e.TimecodeScale)
			}
		case *mkv.FragmentStart:
			cluster = e.Timecode
		case *mkv.Frame:
			frames = append(frames, int64(cluster)+int64(e.Timecode))
		}
	}
}
