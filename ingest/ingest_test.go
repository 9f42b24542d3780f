package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
	"github.com/openkvs/openkvs/synth"
)

// harness is a Manager over real storage in a temporary directory.
type harness struct {
	t       *testing.T
	m       *Manager
	catalog store.Catalog
	blobs   store.Blobs
	hub     *live.Hub
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	return newHarnessLive(t, opts, live.Options{})
}

// newHarnessLive is newHarness with a live hub bounded by lopts.
func newHarnessLive(t *testing.T, opts Options, lopts live.Options) *harness {
	t.Helper()
	c, b := storetest.Embedded(t)
	hub := live.NewHub(lopts)
	return &harness{t: t, m: NewManager(c, b, hub, opts, nil), catalog: c, blobs: b, hub: hub}
}

func (h *harness) stream(name string, retention int64) *store.Stream {
	h.t.Helper()
	st := &store.Stream{Name: name, ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/" + name + "/1",
		Status: store.StatusActive, RetentionHours: retention, Version: "v", StorageTier: "HOT", CreationTime: time.Now()}
	if err := h.catalog.CreateStream(context.Background(), st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// ackLog collects ACK lines as the server would write them.
type ackLog struct {
	mu    sync.Mutex
	lines []string
}

func (a *ackLog) write(line []byte) error {
	a.mu.Lock()
	a.lines = append(a.lines, string(line))
	a.mu.Unlock()
	return nil
}

// acks parses the lines, checking each is one JSON object ended by "\n"
// with the exact key layout of real KVS ACKs.
func (a *ackLog) acks(t *testing.T) []Ack {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	layout := regexp.MustCompile(`^\{"EventType":"(BUFFERING|RECEIVED|PERSISTED)","FragmentTimecode":[0-9]+,"FragmentNumber":"[0-9]{47}"\}\n$|` +
		`^\{"EventType":"ERROR","FragmentTimecode":[0-9]+,"FragmentNumber":"[0-9]{47}","ErrorCode":"[A-Z_]+","ErrorId":[0-9]+\}\n$|^\{"EventType":"IDLE"\}\n$`)
	var out []Ack
	for _, l := range a.lines {
		if !layout.MatchString(l) {
			t.Fatalf("ACK line %q does not have the KVS layout", l)
		}
		var raw struct {
			EventType        string
			FragmentTimecode uint64
			FragmentNumber   string
			ErrorId          int
			ErrorCode        string
		}
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, Ack{raw.EventType, raw.FragmentTimecode, raw.FragmentNumber, raw.ErrorId, raw.ErrorCode})
	}
	return out
}

// put runs one session over body to its end.
func (h *harness) put(st *store.Stream, p Params, body []byte) ([]Ack, error) {
	h.t.Helper()
	s, err := h.m.Open(context.Background(), st)
	if err != nil {
		h.t.Fatal(err)
	}
	var log ackLog
	p.Body = bytes.NewReader(body)
	p.Ack = log.write
	err = s.Run(context.Background(), p)
	return log.acks(h.t), err
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkAckOrder asserts BUFFERING < RECEIVED < PERSISTED per fragment, in
// fragment order, and returns the fragment numbers with their timecodes.
func checkAckOrder(t *testing.T, acks []Ack, persisted bool) ([]string, []uint64) {
	t.Helper()
	type seen struct{ b, r, p int }
	pos := map[string]*seen{}
	var numbers []string
	var timecodes []uint64
	for i, a := range acks {
		s := pos[a.FragmentNumber]
		switch a.EventType {
		case AckBuffering:
			if s != nil {
				t.Fatalf("second BUFFERING for %s", a.FragmentNumber)
			}
			pos[a.FragmentNumber] = &seen{b: i, r: -1, p: -1}
			numbers = append(numbers, a.FragmentNumber)
			timecodes = append(timecodes, a.FragmentTimecode)
		case AckReceived:
			s.r = i
		case AckPersisted:
			s.p = i
		case AckIdle:
		default:
			t.Fatalf("unexpected ACK %+v", a)
		}
	}
	for k, n := range numbers {
		s := pos[n]
		if s.r < s.b || (persisted && s.p < s.r) || (!persisted && s.p != -1) {
			t.Errorf("fragment %d: BUFFERING at %d, RECEIVED at %d, PERSISTED at %d", k, s.b, s.r, s.p)
		}
		if k > 0 && n <= numbers[k-1] {
			t.Errorf("fragment number %s does not sort after %s", n, numbers[k-1])
		}
	}
	return numbers, timecodes
}

// storedFragments returns the indexed fragments in number order with their
// payload bytes.
func (h *harness) storedFragments(st *store.Stream) ([]*store.Fragment, [][]byte) {
	h.t.Helper()
	frags, err := h.catalog.FragmentsAfter(context.Background(), st.ID, "", 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	var data [][]byte
	for _, f := range frags {
		r, err := h.blobs.Open(context.Background(), f.BlobKey)
		if err != nil {
			h.t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		data = append(data, b)
	}
	return frags, data
}

func TestIngestFixtures(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_250)
	for _, tc := range []struct {
		file      string
		timecodes []uint64
		durations []time.Duration
	}{
		{"h264.mkv", []uint64{0, 2000, 4000}, []time.Duration{2000, 2000, 2000}},
		{"h264_aac.mkv", []uint64{0, 2005, 4010}, nil},
		{"unknown_size.mkv", []uint64{0, 2000, 4000}, []time.Duration{2000, 2000, 2000}},
	} {
		for _, typ := range []TimecodeType{Absolute, Relative} {
			t.Run(fmt.Sprintf("%s/%d", tc.file, typ), func(t *testing.T) {
				h := newHarness(t, Options{})
				st := h.stream("s", 24)
				src := readFile(t, filepath.Join("..", "testdata", "media", tc.file))
				acks, err := h.put(st, Params{TimecodeType: typ, StartTime: start}, src)
				if err != nil {
					t.Fatal(err)
				}
				numbers, timecodes := checkAckOrder(t, acks, true)
				if fmt.Sprint(timecodes) != fmt.Sprint(tc.timecodes) {
					t.Errorf("ACK timecodes = %v, want %v", timecodes, tc.timecodes)
				}
				frags, data := h.storedFragments(st)
				want := synth.ClusterSpans(src)
				if len(frags) != len(want) || len(numbers) != len(want) {
					t.Fatalf("%d fragments stored, %d acknowledged, want %d", len(frags), len(numbers), len(want))
				}
				for k, f := range frags {
					if f.Number != numbers[k] {
						t.Errorf("fragment %d: stored %s, acknowledged %s", k, f.Number, numbers[k])
					}
					if !bytes.Equal(data[k], want[k]) {
						t.Errorf("fragment %d: stored %d bytes differ from the source's %d cluster bytes", k, len(data[k]), len(want[k]))
					}
					if f.Size != int64(len(want[k])) {
						t.Errorf("fragment %d: Size %d, want %d", k, f.Size, len(want[k]))
					}
					wantProducer := time.UnixMilli(int64(tc.timecodes[k]))
					if typ == Relative {
						wantProducer = start.Add(time.Duration(tc.timecodes[k]) * time.Millisecond)
					}
					if !f.ProducerTime.Equal(wantProducer) {
						t.Errorf("fragment %d: producer time %v, want %v", k, f.ProducerTime, wantProducer)
					}
					if tc.durations != nil && f.Duration != tc.durations[k]*time.Millisecond {
						t.Errorf("fragment %d: duration %v, want %v", k, f.Duration, tc.durations[k]*time.Millisecond)
					}
					if d := time.Since(f.ServerTime); d < 0 || d > time.Minute {
						t.Errorf("fragment %d: server time %v is not now", k, f.ServerTime)
					}
					if store.FragmentSequence(f.Number) == ^uint64(0) {
						t.Errorf("fragment %d: number %s does not decode", k, f.Number)
					}
				}
			})
		}
	}
}

// producerStream rebuilds what a producer sent from a GetMedia capture:
// the first chunk's header, then every chunk's Cluster and trailing
// elements. It returns the stream and each fragment's expected bytes.
func producerStream(t *testing.T, capture string) ([]byte, [][]byte, []*mkv.Chunk) {
	t.Helper()
	chunks, err := mkv.ReadChunks(bytes.NewReader(readFile(t, filepath.Join("..", "testdata", "kvs-samples", capture))))
	if err != nil {
		t.Fatal(err)
	}
	stream := bytes.Clone(chunks[0].Header)
	var frags [][]byte
	for _, c := range chunks {
		f := concat(c.Cluster, c.Trailing)
		frags = append(frags, f)
		stream = append(stream, f...)
	}
	return stream, frags, chunks
}

func TestIngestCaptures(t *testing.T) {
	for _, tc := range []struct {
		capture string
		start   int64 // producer start timestamp in ms, read off the capture
	}{
		{"output_get_media.mkv", 1511852108513},
		{"kinesis_video_renderer_example_output.mkv", -1},
		{"test_mixed_tags.mkv", 0},
	} {
		t.Run(tc.capture, func(t *testing.T) {
			h := newHarness(t, Options{})
			st := h.stream("s", 1)
			stream, want, chunks := producerStream(t, tc.capture)
			start := tc.start
			if start < 0 { // derive it from the first chunk's tags
				start = parseTagMillis(t, chunks[0].Tags[mkv.TagProducerTimestamp]) - clusterMillis(t, chunks[0])
			}
			sub := h.hub.Stream(st.ID)
			acks, err := h.put(st, Params{TimecodeType: Relative, StartTime: time.UnixMilli(start)}, stream)
			if err != nil {
				t.Fatal(err)
			}
			checkAckOrder(t, acks, true)
			frags, data := h.storedFragments(st)
			if len(frags) != len(chunks) {
				t.Fatalf("%d fragments, want %d", len(frags), len(chunks))
			}
			for k, f := range frags {
				if !bytes.Equal(data[k], want[k]) {
					t.Errorf("fragment %d: stored bytes differ from the capture's cluster", k)
				}
				if got, wantTS := mkv.FormatTimestampMillis(f.ProducerTime.UnixMilli()), chunks[k].Tags[mkv.TagProducerTimestamp]; got != wantTS {
					t.Errorf("fragment %d: producer timestamp %s, capture says %s", k, got, wantTS)
				}
				// The live hub replays the header exactly as AWS did.
				lf := sub.Get(f.Number)
				if lf == nil {
					t.Fatalf("fragment %d not in the live window", k)
				}
				if !bytes.Equal(lf.Meta().Header, chunks[k].Header) {
					t.Errorf("fragment %d: chunk header (%d bytes) differs from the capture's (%d bytes)", k, len(lf.Meta().Header), len(chunks[k].Header))
				}
			}
		})
	}
}

func parseTagMillis(t *testing.T, s string) int64 {
	var sec, ms int64
	if _, err := fmt.Sscanf(s, "%d.%03d", &sec, &ms); err != nil {
		t.Fatalf("timestamp tag %q: %v", s, err)
	}
	return sec*1000 + ms
}

// clusterMillis reads a chunk's Cluster Timecode with the mkv Reader.
func clusterMillis(t *testing.T, c *mkv.Chunk) int64 {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(c.Cluster))
	if _, err := r.Next(); err != nil { // the Cluster
		t.Fatal(err)
	}
	if err := r.Enter(); err != nil {
		t.Fatal(err)
	}
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatalf("no Timecode in cluster: %v", err)
		}
		if e.ID == mkv.IDTimecode {
			b, _ := io.ReadAll(io.LimitReader(r, e.Size))
			var v int64
			for _, x := range b {
				v = v<<8 | int64(x)
			}
			return v
		}
	}
}
