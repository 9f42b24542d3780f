package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// getIngest creates stream and puts the media fixtures into it, one
// PutMedia session each.
func getIngest(t *testing.T, srv *serverProc, stream string, files ...string) {
	t.Helper()
	createStream(t, srv, stream, 24)
	for _, name := range files {
		stats, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: stream, TimecodeType: "RELATIVE"}, bytes.NewReader(media(t, name)))
		if err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
		if stats.Acked != stats.Fragments {
			t.Fatalf("put %s: %+v: not every fragment persisted", name, stats)
		}
	}
}

// getRead reads stream from the earliest fragment through endpoint with
// the consumer, until it has n fragments.
func getRead(t *testing.T, endpoint, stream string, n int) ([]*client.Fragment, client.GetStats) {
	t.Helper()
	var got []*client.Fragment
	stats, err := client.Get(ctx(t), client.GetOptions{Endpoint: endpoint, Stream: stream, Start: client.StartSelector{Type: client.StartEarliest}},
		func(f *client.Fragment) error {
			got = append(got, f)
			if len(got) == n {
				return client.ErrStop
			}
			return nil
		})
	if err != nil {
		t.Fatalf("Get from %s after %d fragments: %v", endpoint, len(got), err)
	}
	return got, stats
}

func TestGetResume(t *testing.T) {
	// No call-rate or connection limits in the way: every reconnect below
	// is one cut, not a throttled retry.
	srv := startServer(t, "--getmedia-calls-per-second", "1000", "--getmedia-connections", "100")
	createStream(t, srv, "cam", 24)
	// Twelve fragments of about 100 KB. The reads take eleven: a chunk is
	// whole once the next one begins, and the stream ends after the twelfth.
	const n = 11
	v := synth.Video{Bitrate: 400_000}
	src := synth.Header(1)
	var sent [][]byte
	for i := range n + 1 {
		frag := bytes.Join(v.Fragment(0, i), nil)
		sent = append(sent, frag)
		src = append(src, frag...)
	}
	if _, err := client.Put(ctx(t), client.PutOptions{Endpoint: srv.URL, Stream: "cam"}, bytes.NewReader(src)); err != nil {
		t.Fatal(err)
	}

	whole, stats := getRead(t, srv.URL, "cam", n)
	if stats.Reconnects != 0 {
		t.Fatalf("uninterrupted read reconnected %d times", stats.Reconnects)
	}
	// Each connection starts after the last whole fragment of the one
	// before; every cut lands inside a chunk, one inside the HTTP headers.
	size := len(whole[0].Data)
	cuts := []int64{int64(size*5/2) + 300, int64(size) + 4000, 100, int64(size*3) + 17, int64(size / 2)}
	proxy := newCutProxy(t, srv.URL, true, cuts...)
	resumed, stats := getRead(t, proxy.URL(), "cam", n)

	numbers := func(frags []*client.Fragment) []string {
		var out []string
		for _, f := range frags {
			out = append(out, f.Number)
		}
		return out
	}
	if diff := cmp.Diff(numbers(whole), numbers(resumed)); diff != "" {
		t.Errorf("fragment numbers after cuts (-uninterrupted +resumed):\n%s", diff)
	}
	if !slices.IsSorted(numbers(resumed)) || len(slices.Compact(numbers(resumed))) != n {
		t.Errorf("fragment numbers %v: want %d distinct, increasing", numbers(resumed), n)
	}
	var a, b, want []byte
	for k := range n {
		a = append(a, whole[k].Cluster...)
		b = append(b, resumed[k].Cluster...)
		want = append(want, sent[k]...)
	}
	if !bytes.Equal(a, want) {
		t.Errorf("uninterrupted read: cluster bytes differ from what the producer sent")
	}
	if !bytes.Equal(a, b) {
		t.Errorf("read with cuts: %d cluster bytes, uninterrupted %d: they differ", len(b), len(a))
	}
	if stats.Reconnects != len(cuts) || proxy.Conns() != len(cuts)+1 {
		t.Errorf("%d reconnects over %d connections, want %d over %d", stats.Reconnects, proxy.Conns(), len(cuts), len(cuts)+1)
	}
}

// getList lists a stream's fragments with the SDK, every page of the given
// size, sorted by fragment number.
func getList(t *testing.T, srv *serverProc, stream string, by amtypes.FragmentSelectorType, from, to time.Time, pageSize int64) []amtypes.Fragment {
	t.Helper()
	out, _ := gmPages(t, srv, &kinesisvideoarchivedmedia.ListFragmentsInput{
		StreamName: &stream, MaxResults: &pageSize, FragmentSelector: &amtypes.FragmentSelector{
			FragmentSelectorType: by, TimestampRange: &amtypes.TimestampRange{StartTimestamp: &from, EndTimestamp: &to}}})
	slices.SortFunc(out, func(a, b amtypes.Fragment) int {
		return strings.Compare(aws.ToString(a.FragmentNumber), aws.ToString(b.FragmentNumber))
	})
	return out
}

// getCLI runs `openkvs get` against srv and returns its stderr.
func getCLI(t *testing.T, srv *serverProc, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, append([]string{"get", "--endpoint", srv.URL, "--idle", "1s"}, args...)...)
	cmd.Env = awsEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openkvs get %v: %v\n%s", args, err, stderr.String())
	}
	return stderr.String()
}

// getFFprobe decodes file and returns "codec frames" per stream and what
// ffprobe printed on stderr, failing the test unless it exits 0.
func getFFprobe(t *testing.T, file string) ([]string, string) {
	t.Helper()
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	cmd := exec.CommandContext(ctx(t), ffprobe, "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", file, err, stderr.String())
	}
	return strings.Fields(strings.ReplaceAll(stdout.String(), ",", " ")), stderr.String()
}

// getWholeChunks reads n whole chunks from a GetMedia payload and not a
// byte more, so it returns while the response stays open: a chunk ends
// with the Tags element that carries the continuation token (spec 5.3).
func getWholeChunks(t *testing.T, r io.Reader, n int) [][]byte {
	t.Helper()
	var seen bytes.Buffer
	er := mkv.NewReader(io.TeeReader(r, &seen))
	var out [][]byte
	var start int64
	for len(out) < n {
		e, err := er.Next()
		if err != nil {
			t.Fatalf("payload after %d chunks: %v", len(out), err)
		}
		switch {
		case e.ID == mkv.IDEBML:
			start = e.Offset
		case e.ID == mkv.IDSegment:
			if err := er.Enter(); err != nil {
				t.Fatalf("payload after %d chunks: %v", len(out), err)
			}
		case e.ID == mkv.IDTags && e.Level == 1:
			payload, err := io.ReadAll(er)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(payload, []byte(mkv.TagContinuationToken)) {
				out = append(out, bytes.Clone(seen.Bytes()[start:e.DataOffset()+e.Size]))
			}
		}
	}
	return out
}

// getSameChunk compares two reads of one chunk: equal but for
// MILLIS_BEHIND_NOW, which depends on when each was read.
func getSameChunk(t *testing.T, k int, got, want []byte) {
	t.Helper()
	parse := func(b []byte) *mkv.Chunk {
		c, err := mkv.NewChunkReader(bytes.NewReader(b)).Next()
		if err != nil {
			t.Fatalf("chunk %d: %v", k, err)
		}
		return c
	}
	g, w := parse(got), parse(want)
	end := func(c *mkv.Chunk) int {
		behind, err := strconv.ParseInt(c.Tags[mkv.TagMillisBehindNow], 10, 64)
		if err != nil {
			t.Fatalf("chunk %d: %v", k, err)
		}
		return len(c.Data) - len(mkv.AppendEndTags(nil, behind, c.Tags[mkv.TagContinuationToken]))
	}
	same := bytes.Equal(g.Data[:end(g)], w.Data[:end(w)])
	delete(g.Tags, mkv.TagMillisBehindNow)
	delete(w.Tags, mkv.TagMillisBehindNow)
	if !same || !cmp.Equal(g.Tags, w.Tags) {
		t.Errorf("chunk %d: %d bytes, GetMedia sent %d; they differ beyond MILLIS_BEHIND_NOW (tags %v, want %v)",
			k, len(got), len(want), g.Tags, w.Tags)
	}
}

func TestGetCLI(t *testing.T) {
	srv := startServer(t)
	getIngest(t, srv, "video", "h264.mkv")
	getIngest(t, srv, "audio", "h264_aac.mkv")
	cases := []struct {
		stream string
		chunks int
		frames []string
	}{
		{"video", 3, []string{"h264", "180"}},
		{"audio", 3, []string{"h264", "180", "aac", "283"}},
	}
	for _, tc := range cases {
		t.Run(tc.stream, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out := filepath.Join(dir, "out.mkv")
			log := getCLI(t, srv, "--stream", tc.stream, "-o", out)
			if !strings.Contains(log, fmt.Sprintf("done: %d fragments", tc.chunks)) {
				t.Errorf("openkvs get printed %q, want it to report %d fragments", log, tc.chunks)
			}
			frames, stderr := getFFprobe(t, out)
			if !slices.Equal(frames, tc.frames) {
				t.Errorf("ffprobe counted %v, want %v", frames, tc.frames)
			}
			checkFFprobeLog(t, stderr, 0)

			raw := filepath.Join(dir, "out.raw")
			getCLI(t, srv, "--stream", tc.stream, "--raw", "-o", raw)
			rawOut, err := os.ReadFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			gm, err := gmMedia(srv).GetMedia(ctx(t), &kinesisvideomedia.GetMediaInput{
				StreamName: &tc.stream, StartSelector: &types.StartSelector{StartSelectorType: types.StartSelectorTypeEarliest}})
			if err != nil {
				t.Fatal(err)
			}
			defer gm.Payload.Close()
			want := getWholeChunks(t, gm.Payload, tc.chunks)
			got := getWholeChunks(t, bytes.NewReader(rawOut), tc.chunks)
			if n := len(bytes.Join(got, nil)); n != len(rawOut) {
				t.Errorf("--raw wrote %d bytes, %d of them in %d chunks", len(rawOut), n, tc.chunks)
			}
			for k := range want {
				getSameChunk(t, k, got[k], want[k])
			}
		})
	}
}

// Where the codec setup changes between producer sessions (here ffmpeg's
// and GStreamer's H.264 parameters), one file cannot go on: get stops with
// an error naming -o NAME-%d.mkv, after writing what came before, which
// plays; with that pattern each setup gets a file of its own.
func TestGetCLISetupChange(t *testing.T) {
	srv := startServer(t)
	getIngest(t, srv, "mixed", "h264.mkv", "unknown_size.mkv")
	frags := getList(t, srv, "mixed", amtypes.FragmentSelectorTypeServerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
	slices.SortFunc(frags, func(a, b amtypes.Fragment) int { return strings.Compare(*a.FragmentNumber, *b.FragmentNumber) })
	dir := t.TempDir()

	one := filepath.Join(dir, "one.mkv")
	cmd := exec.CommandContext(ctx(t), binary, "get", "--endpoint", srv.URL, "--idle", "1s", "--stream", "mixed", "-o", one)
	cmd.Env = awsEnv(t)
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("fragment %s: the stream's codec setup changed: one Matroska file cannot switch to it; "+
		"write a file per codec setup with -o NAME-%%d.mkv, or the payload as received with --raw", *frags[3].FragmentNumber)
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("openkvs get -o one.mkv: %v\n%s\nwant exit status 1 and %q", err, out, want)
	}
	frames, log := getFFprobe(t, one)
	if want := []string{"h264", "180"}; !slices.Equal(frames, want) {
		t.Errorf("one.mkv: ffprobe counted %v, want %v", frames, want)
	}
	checkFFprobeLog(t, log, 0)

	getCLI(t, srv, "--stream", "mixed", "-o", filepath.Join(dir, "part-%d.mkv"))
	names, _ := filepath.Glob(filepath.Join(dir, "part-*.mkv"))
	if len(names) != 2 {
		t.Fatalf("files %v, want part-1.mkv and part-2.mkv", names)
	}
	for _, name := range names {
		frames, log := getFFprobe(t, name)
		if want := []string{"h264", "180"}; !slices.Equal(frames, want) {
			t.Errorf("%s: ffprobe counted %v, want %v", name, frames, want)
		}
		checkFFprobeLog(t, log, 0)
	}
	if got := mustRead(t, filepath.Join(dir, "part-1.mkv")); !bytes.Equal(got, mustRead(t, one)) {
		t.Errorf("part-1.mkv differs from one.mkv")
	}

	raw := exec.CommandContext(ctx(t), binary, "get", "--endpoint", srv.URL, "--stream", "mixed", "--raw", "-o", filepath.Join(dir, "raw-%d"))
	raw.Env = awsEnv(t)
	out, err = raw.CombinedOutput()
	if want := "-o " + filepath.Join(dir, "raw-%d") + ": --raw writes one payload to one file, with no %d"; err == nil || !strings.Contains(string(out), want) {
		t.Errorf("openkvs get --raw -o raw-%%d: %v, %q; want exit status 1 and %q", err, out, want)
	}
}

// Two uploads of the same file, with `openkvs put` (producer wall clock,
// ABSOLUTE, the second overlapping the first in time as put sends faster
// than real time) or with RELATIVE timecodes that start at 0 each time,
// export as one file that plays from start to end: every frame, with
// timestamps that increase strictly on each track.
func TestGetCLITwoSessions(t *testing.T) {
	srv := startServer(t)
	file := filepath.Join("..", "testdata", "media", "h264_aac.mkv")
	for range 2 {
		cmd := exec.CommandContext(ctx(t), binary, "put", "--endpoint", srv.URL, "--stream", "twice", "--create", file)
		cmd.Env = awsEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openkvs put: %v\n%s", err, out)
		}
	}
	getIngest(t, srv, "relative", "h264_aac.mkv", "h264_aac.mkv")
	for _, stream := range []string{"twice", "relative"} {
		t.Run(stream, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.mkv")
			getCLI(t, srv, "--stream", stream, "-o", out)
			frames, log := getFFprobe(t, out)
			if want := []string{"h264", "360", "aac", "566"}; !slices.Equal(frames, want) {
				t.Errorf("ffprobe counted %v, want %v", frames, want)
			}
			checkFFprobeLog(t, log, 0)
			for stream, pts := range ffprobePTS(t, out) {
				for i := 1; i < len(pts); i++ {
					if pts[i] <= pts[i-1] {
						t.Errorf("stream %s: packet %d has pts %d after %d", stream, i, pts[i], pts[i-1])
					}
				}
			}
		})
	}
}

// ffprobePTS returns the pts of every packet of file, in file order, by
// stream index.
func ffprobePTS(t *testing.T, file string) map[string][]int64 {
	t.Helper()
	ffprobe := requireTool(t, "ffprobe", "apt-get install -y ffmpeg")
	out, err := exec.CommandContext(ctx(t), ffprobe, "-v", "error", "-show_entries", "packet=stream_index,pts", "-of", "csv=p=0", file).Output()
	gmFatalIf(t, err, "ffprobe -show_packets %s", file)
	pts := map[string][]int64{}
	for _, line := range strings.Fields(string(out)) {
		stream, v, _ := strings.Cut(line, ",")
		n, err := strconv.ParseInt(v, 10, 64)
		gmFatalIf(t, err, "ffprobe packet %q", line)
		pts[stream] = append(pts[stream], n)
	}
	return pts
}

// checkFFprobeLog accepts ffprobe's stderr if it holds exactly the given
// number of notes about a further Segment and nothing else.
func checkFFprobeLog(t *testing.T, stderr string, segments int) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, "Found unknown-length element with ID 0x18538067"):
			n++
		default:
			t.Errorf("ffprobe: %s", line)
		}
	}
	if n != segments {
		t.Errorf("ffprobe noted %d further Segments, want %d:\n%s", n, segments, stderr)
	}
}

func TestGetCLIStart(t *testing.T) {
	srv := startServer(t)
	getIngest(t, srv, "audio", "h264_aac.mkv")
	frags := getList(t, srv, "audio", amtypes.FragmentSelectorTypeProducerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
	if len(frags) != 3 {
		t.Fatalf("%d fragments listed, want 3", len(frags))
	}
	// From the second fragment: after the first, or from a time inside the
	// second (RFC 3339 and epoch seconds).
	producer := frags[1].ProducerTimestamp.Add(500 * time.Millisecond)
	second := []string{"h264", "120", "aac", "189"}
	for _, tc := range []struct {
		start  string
		frames []string
	}{
		{"fragment=" + aws.ToString(frags[0].FragmentNumber), second},
		{"producer=" + producer.UTC().Format("2006-01-02T15:04:05.000Z"), second},
		// Ingest ran faster than real time: the first fragment's span of
		// server time holds the others' starts.
		{"server=" + mkv.FormatTimestampMillis(frags[1].ServerTimestamp.UnixMilli()), []string{"h264", "180", "aac", "283"}},
	} {
		t.Run(tc.start, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "out.mkv")
			getCLI(t, srv, "--stream", "audio", "--start", tc.start, "-o", out)
			frames, stderr := getFFprobe(t, out)
			if !slices.Equal(frames, tc.frames) {
				t.Errorf("ffprobe counted %v, want %v", frames, tc.frames)
			}
			checkFFprobeLog(t, stderr, 0)
		})
	}
}

func TestGetCLIErrors(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stream", "nope"}, "ResourceNotFoundException"},
		{[]string{"--stream", "nope", "--start", "yesterday"}, `--start "yesterday": want now, earliest, fragment=N, producer=TIME, server=TIME or -DURATION (-1m)`},
		{[]string{"--stream", "nope", "--start", "producer=soon"}, `time "soon": want RFC 3339 (2024-05-01T12:00:00.5Z), epoch seconds (1714564800.5), now, or a time before now (-1m, -1h30m)`},
	} {
		cmd := exec.CommandContext(ctx(t), binary, append([]string{"get", "--endpoint", srv.URL}, tc.args...)...)
		cmd.Env = awsEnv(t)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(string(out), tc.want) {
			t.Errorf("openkvs get %v: %v, %q; want exit 1 with %q", tc.args, err, out, tc.want)
		}
	}
}

func TestGetCLILiveEdge(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "live", 24)
	// A camera sending 200 ms fragments in real time for 8 s.
	v := synth.Video{Bitrate: 400_000, FragmentDuration: 200 * time.Millisecond}
	src := synth.Header(1)
	for i := range 40 {
		src = append(src, bytes.Join(v.Fragment(0, i), nil)...)
	}
	persisted := make(chan struct{}, 100)
	producerCtx, stopProducer := context.WithCancel(ctx(t))
	defer stopProducer()
	produced := make(chan error, 1)
	go func() {
		_, err := client.Put(producerCtx, client.PutOptions{Endpoint: srv.URL, Stream: "live", Realtime: true, OnAck: func(a client.Ack) {
			if a.EventType == "PERSISTED" {
				persisted <- struct{}{}
			}
		}}, bytes.NewReader(src))
		produced <- err
	}()
	for range 3 {
		select {
		case <-persisted:
		case err := <-produced:
			t.Fatalf("producer ended early: %v", err)
		case <-ctx(t).Done():
			t.Fatal("no 3 fragments persisted in time")
		}
	}
	started := time.Now()
	out := filepath.Join(t.TempDir(), "live.raw")
	// --idle is longer than the test: only the live-edge rule can end get.
	getCLI(t, srv, "--stream", "live", "--raw", "--idle", "30s", "-o", out)
	ended := time.Now()
	select {
	case err := <-produced:
		t.Fatalf("the producer finished (%v) before get ended: not a live stream", err)
	default:
	}
	stopProducer()
	<-produced

	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	chunks, err := mkv.ReadChunks(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, c := range chunks {
		written = append(written, c.Tags[mkv.TagFragmentNumber])
	}
	// Fragments are listed once persisted, which may trail their delivery.
	var listed []amtypes.Fragment
	eventually(t, 10*time.Second, "every fragment get wrote is listed", func() error {
		listed = getList(t, srv, "live", amtypes.FragmentSelectorTypeServerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
		if len(listed) < len(written) {
			return fmt.Errorf("%d listed, %d written", len(listed), len(written))
		}
		return nil
	})
	var before, all []string
	for _, f := range listed {
		all = append(all, aws.ToString(f.FragmentNumber))
		if f.ServerTimestamp.Before(started) {
			before = append(before, aws.ToString(f.FragmentNumber))
		}
		if slices.Contains(written, aws.ToString(f.FragmentNumber)) && !f.ServerTimestamp.Before(ended) {
			t.Errorf("fragment %s began at %s, after get ended at %s", aws.ToString(f.FragmentNumber), f.ServerTimestamp, ended)
		}
	}
	// Every fragment begun before get started, and then a run of the
	// following ones (those begun in the second the server's Date header
	// cannot tell apart), with no gap.
	if len(written) < len(before) || !slices.Equal(written, all[:len(written)]) {
		t.Errorf("get wrote fragments %v;\nbegun before it started: %v\nall: %v", written, before, all)
	}
}

func TestGetCLISigned(t *testing.T) {
	srv := startAuthServer(t)
	admin := append(awsEnv(t), "AWS_ACCESS_KEY_ID=AKIDADMIN", "AWS_SECRET_ACCESS_KEY=admin-secret")
	run := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx(t), binary, append([]string{args[0], "--endpoint", srv.URL}, args[1:]...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(admin, "put", "--stream", "cam-signed", "--create", filepath.Join("..", "testdata", "media", "h264.mkv")); err != nil {
		t.Fatalf("openkvs put: %v\n%s", err, out)
	}
	// GetMedia is signed with the SHA-256 of its JSON body.
	file := filepath.Join(t.TempDir(), "out.mkv")
	if out, err := run(admin, "get", "--stream", "cam-signed", "--idle", "1s", "-o", file); err != nil || !strings.Contains(out, "done: 3 fragments") {
		t.Fatalf("openkvs get: %v\n%s", err, out)
	}
	// One producer session: the file put, but for its Segment's size,
	// which GetMedia gives as unknown (kvs-protocol.md §5.3), and the
	// Cluster timecodes put stamped with its clock.
	got := mustRead(t, file)
	t0 := firstTimecode(t, got)
	header, clusters := restamped(t, media(t, "h264.mkv"), t0)
	if want := bytes.Join(append([][]byte{header}, clusters...), nil); !bytes.Equal(got, want) {
		t.Errorf("get wrote %d bytes that differ from the %d of the file put, stamped from %d", len(got), len(want), t0)
	}
	if out, err := run(admin, "fragments", "--stream", "cam-signed"); err != nil || !strings.Contains(out, "3 fragments") {
		t.Fatalf("openkvs fragments: %v\n%s", err, out)
	}
	wrong := append(awsEnv(t), "AWS_ACCESS_KEY_ID=AKIDADMIN", "AWS_SECRET_ACCESS_KEY=wrong")
	if out, err := run(wrong, "get", "--stream", "cam-signed"); err == nil || !strings.Contains(out, "InvalidSignatureException") {
		t.Errorf("openkvs get with a wrong secret: %v\n%s", err, out)
	}
}

// firstTimecode is the Timecode of the first Cluster in an MKV file.
func firstTimecode(t *testing.T, file []byte) uint64 {
	t.Helper()
	sp := mkv.NewSplitter(bytes.NewReader(file), mkv.SplitterOptions{})
	for {
		ev, err := sp.Next()
		gmFatalIf(t, err, "no Cluster")
		if s, ok := ev.(*mkv.FragmentStart); ok {
			return s.Timecode
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGetCLIFollow runs `openkvs get --follow` against a stream while a
// producer sends it: each fragment is in the output file as soon as it is
// complete, not when get ends; SIGINT ends get with status 0 and a file
// that plays.
func TestGetCLIFollow(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "live", 24)
	src := media(t, "h264.mkv")
	clusters := synth.ClusterSpans(src)
	if len(clusters) != 3 {
		t.Fatalf("h264.mkv has %d clusters, want 3", len(clusters))
	}
	header := src[:bytes.Index(src, clusters[0])]
	out := filepath.Join(t.TempDir(), "live.mkv")
	cmd := exec.CommandContext(ctx(t), binary, "get", "--endpoint", srv.URL, "--stream", "live", "--follow", "--start", "earliest", "-o", out)
	cmd.Env = awsEnv(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	gmFatalIf(t, cmd.Start(), "start openkvs get")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	running := true
	t.Cleanup(func() {
		if running {
			cmd.Process.Kill()
			<-exited
		}
	})
	// inFile waits until the output holds what the producer sent so far.
	inFile := func(what string, want ...[]byte) {
		t.Helper()
		sent := time.Now()
		eventually(t, 5*time.Second, what+" in the output of get --follow", func() error {
			b, err := os.ReadFile(out)
			if err != nil {
				return err
			}
			for _, w := range want {
				if !bytes.Contains(b, w) {
					return fmt.Errorf("%d bytes written, not yet the fragment", len(b))
				}
			}
			return nil
		})
		t.Logf("%s in the file %v after it was sent", what, time.Since(sent).Round(time.Millisecond))
	}

	p := gmStartProducer(t, srv, "live", "x-amzn-fragment-timecode-type", "RELATIVE", "x-amzn-producer-start-timestamp", "1700000000")
	// The first fragment is complete once the second begins.
	p.write(header, clusters[0], clusters[1][:16])
	inFile("the first fragment", clusters[0])
	p.write(clusters[1][16:], clusters[2])
	p.close()
	inFile("the second and third fragments", clusters[1], clusters[2])

	gmFatalIf(t, cmd.Process.Signal(os.Interrupt), "SIGINT")
	select {
	case err := <-exited:
		running = false
		if err != nil {
			t.Fatalf("openkvs get --follow after SIGINT: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("openkvs get --follow still running 10 s after SIGINT\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "done: 3 fragments") {
		t.Errorf("openkvs get printed %q, want it to report 3 fragments", stderr.String())
	}
	frames, log := getFFprobe(t, out)
	if want := []string{"h264", "180"}; !slices.Equal(frames, want) {
		t.Errorf("ffprobe counted %v, want %v", frames, want)
	}
	checkFFprobeLog(t, log, 0)
}
