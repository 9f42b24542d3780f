package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openkvs/openkvs/synth"
)

// producerStream is the header and n fragments of v, as a producer sends
// them, and the fragments' timecodes.
func producerStream(v *video, n int) ([]byte, []uint64) {
	b, err := io.ReadAll(newFastBody(v, n))
	if err != nil {
		panic(err)
	}
	var tcs []uint64
	for i := range n {
		tcs = append(tcs, uint64(i)*uint64(v.FragmentDuration.Milliseconds()))
	}
	return b, tcs
}

// The fragmenter cuts at every Cluster however the stream is cut into
// reads: the header, then each Cluster to the next, byte for byte, with
// the timecode of the fragment each cut completes.
func TestFragmenterAcrossReads(t *testing.T) {
	v := newVideo(200_000)
	stream, tcs := producerStream(v, 4)
	spans := synth.ClusterSpans(stream)
	if len(spans) != 4 {
		t.Fatalf("the oracle found %d Clusters, want 4", len(spans))
	}
	want := append([][]byte{stream[:len(stream)-len(bytes.Join(spans, nil))]}, spans...)
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"7 bytes":  func() io.Reader { return io.MultiReader(chunks(stream, 7)...) },
	} {
		t.Run(name, func(t *testing.T) {
			got := [][]byte{nil}
			var cutTimecodes []uint64
			f := &fragmenter{}
			f.write = func(p []byte) error {
				got[len(got)-1] = append(got[len(got)-1], p...)
				return nil
			}
			f.cut = func() error {
				if f.Clusters > 0 {
					cutTimecodes = append(cutTimecodes, f.Timecode)
				}
				got = append(got, nil)
				return nil
			}
			if err := readInto(r(), make([]byte, 4096), f.feed); err != nil {
				t.Fatal(err)
			}
			cutTimecodes = append(cutTimecodes, f.Timecode) // the end completes the last
			if len(got) != len(want) {
				t.Fatalf("%d pieces, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("piece %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
				}
			}
			if f.Clusters != 4 || !slices.Equal(cutTimecodes, tcs) {
				t.Fatalf("%d Clusters with timecodes %v, want 4 with %v", f.Clusters, cutTimecodes, tcs)
			}
		})
	}
}

// chunks cuts b into readers of n bytes.
func chunks(b []byte, n int) []io.Reader {
	var out []io.Reader
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, bytes.NewReader(b[:k]))
		b = b[k:]
	}
	return out
}

func TestElementHeader(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		id   uint64
		size int64
		ok   bool
	}{
		{[]byte{0x1F, 0x43, 0xB6, 0x75, 0xFF}, idCluster, -1, true},
		{[]byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, idSegment, -1, true},
		{[]byte{0xE7, 0x88}, idTimecode, 8, true},
		{[]byte{0xA3, 0x01, 0, 0, 0, 0, 0, 0x40, 0x01}, 0xA3, 0x4001, true},
		{[]byte{0x1F, 0x43, 0xB6}, 0, 0, false},
		{[]byte{0xA3, 0x01, 0}, 0, 0, false},
	} {
		id, size, ok, err := elementHeader(c.in)
		if err != nil || id != c.id || size != c.size || ok != c.ok {
			t.Errorf("elementHeader(% x) = %#x, %d, %v, %v; want %#x, %d, %v", c.in, id, size, ok, err, c.id, c.size, c.ok)
		}
	}
	if _, _, _, err := elementHeader([]byte{0x08, 0x80}); !errors.Is(err, errElement) {
		t.Errorf("a 5-byte ID: %v, want %v", err, errElement)
	}
	if _, _, _, err := elementHeader([]byte{0xA3, 0x00}); !errors.Is(err, errElement) {
		t.Errorf("a size starting with 0: %v, want %v", err, errElement)
	}
}

// The baseline's PutMedia, over real HTTP with the bench's own client: one
// PERSISTED ACK per fragment with its timecode, each fragment in a file of
// its own, the header in the first.
func TestBaselinePutMedia(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	logs, logw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeBaseline(ctx, dir, logw) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	line, err := readLine(logs)
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, logs)
	url := line[strings.Index(line, `"url":"`)+7:]
	url = url[:strings.IndexByte(url, '"')]
	a := newAPI(url)
	defer a.close()
	if err := a.createStream(ctx, "cam", 24); err != nil {
		t.Fatal(err)
	}
	v := newVideo(200_000)
	stream, tcs := producerStream(v, 3)
	// A body read in pieces of odd sizes, as a chunked upload arrives.
	var got []uint64
	err = a.putMedia(ctx, "cam", iotest.HalfReader(io.MultiReader(chunks(stream, 1000)...)), func(k ack) {
		if k.EventType != "PERSISTED" {
			t.Errorf("ACK %+v", k)
		}
		got = append(got, k.FragmentTimecode)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, tcs) {
		t.Fatalf("PERSISTED timecodes %v, want %v", got, tcs)
	}
	spans := synth.ClusterSpans(stream)
	for i, want := range append([][]byte{stream[:len(stream)-len(bytes.Join(spans, nil))]}, spans...) {
		b, err := os.ReadFile(filepath.Join(dir, "ingest", "cam", strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("file %d: %d bytes, want %d", i, len(b), len(want))
		}
	}
}

// readLine reads one line from r, byte by byte (nothing past it).
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

func TestOfBaselineGoal(t *testing.T) {
	for _, c := range []struct {
		n, base  float64
		bounded  bool
		met      *bool
		notTried string
	}{
		{80, 100, true, ptr(true), ""},
		{79, 100, true, ptr(false), ""},
		{300, 100, false, nil, "a search stopped before a step failed"},
		{8, 0, true, nil, "the baseline passed no step"},
	} {
		f := figure("largest N", c.n, "streams").against("baseline server", c.base)
		f.ofBaseline(0.8, c.bounded)
		if f.Target != ">= 0.8 of baseline" || !equalPtr(f.Met, c.met) || f.NotTried != c.notTried {
			t.Errorf("N=%v of %v, bounded %v: target %q, met %v, not tried %q", c.n, c.base, c.bounded, f.Target, f.Met, f.NotTried)
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// CPU per stream-minute and RSS per stream are plain ratios of what was
// measured.
func TestPerStream(t *testing.T) {
	w := cpuWindow{server: 6, secs: 12}
	if got := w.perStreamMinute(10); got != 3 {
		t.Errorf("6 CPU s over 10 streams x 12 s: %v CPU s/stream-min, want 3", got)
	}
	if got := (cpuWindow{}).perStreamMinute(10); got != 0 {
		t.Errorf("no window: %v, want 0", got)
	}
	if got := rssPerStream(100<<20, 300<<20, 100); got != 2 {
		t.Errorf("RSS 100 -> 300 MiB over 100 streams: %v MiB, want 2", got)
	}
}

// The window reads the CPU at its start and end; collected before its end,
// it reports nothing.
func TestMeasureWindow(t *testing.T) {
	var cpu float64
	now := time.Now()
	to := now.Add(60 * time.Millisecond)
	w := measureWindow(context.Background(), now.Add(20*time.Millisecond), to, func() float64 {
		cpu += 1.5
		return cpu
	})
	<-time.After(time.Until(to)) // the window is wall time: let it pass
	got, ok := w()
	if !ok || got.server != 1.5 || got.secs != 0.04 {
		t.Errorf("window: %+v, %v; want 1.5 CPU s over 0.04 s", got, ok)
	}
	now = time.Now()
	w = measureWindow(context.Background(), now.Add(time.Hour), now.Add(2*time.Hour), func() float64 { return 0 })
	if _, ok := w(); ok {
		t.Error("a window that has not begun reported a measurement")
	}
}

// The RTSP publishers send the very NAL units and parameter sets the
// PutMedia producers carry in their Matroska frames.
func TestAccessUnits(t *testing.T) {
	v := newVideo(4_000_000)
	au, err := accessUnits(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(au) != 60 || au[0][0]&0x1F != 5 || au[1][0]&0x1F != 1 {
		t.Fatalf("%d access units, NAL types %d, %d; want 60, IDR (5) then non-IDR (1)", len(au), au[0][0]&0x1F, au[1][0]&0x1F)
	}
	if !bytes.HasSuffix(v.frames[7], au[7]) || len(v.frames[7])-len(au[7]) != 1+8+4+4 {
		t.Fatalf("frame 7: NAL unit of %d bytes in a %d-byte SimpleBlock", len(au[7]), len(v.frames[7]))
	}
	sps, pps, err := parameterSets(synth.AVCCodecPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if len(sps) != 25 || sps[0]&0x1F != 7 || len(pps) != 4 || pps[0]&0x1F != 8 {
		t.Fatalf("SPS %x, PPS %x", sps, pps)
	}
	if _, _, err := parameterSets(synth.AVCCodecPrivate[:20]); err == nil {
		t.Error("a truncated avcC record parsed")
	}
}
