package mkv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// captures are the real GetMedia payloads of spec 6.
var captures = []string{"output_get_media.mkv", "kinesis_video_renderer_example_output.mkv", "test_mixed_tags.mkv"}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "kvs-samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readMedia(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "media", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rec is a test-owned copy of one Splitter event (the Splitter reuses its events).
type rec struct {
	kind     string // "header", "start", "frame", "data", "end", "trailer"
	data     []byte
	header   *Header
	timecode uint64 // start: cluster timecode
	track    uint64
	rel      int16
	key      bool
	id       ID
	tags     []SimpleTag
	reason   EndReason
}

func record(ev Event) rec {
	r := rec{data: slices.Clone(ev.Bytes())}
	switch ev := ev.(type) {
	case *Header:
		r.kind, r.header = "header", ev
	case *FragmentStart:
		r.kind, r.timecode, r.tags = "start", ev.Timecode, slices.Clone(ev.Tags)
	case *Frame:
		r.kind, r.track, r.rel, r.key = "frame", ev.Track, ev.Timecode, ev.Keyframe
	case *FragmentData:
		r.kind, r.id, r.tags = "data", ev.ID, slices.Clone(ev.Tags)
	case *FragmentEnd:
		r.kind, r.reason = "end", ev.Reason
	case *Trailer:
		r.kind, r.tags = "trailer", slices.Clone(ev.Tags)
	}
	return r
}

// split runs a Splitter over r to the end, closes it and returns the recorded events and
// the final error (nil after a clean io.EOF).
func split(r io.Reader, opts SplitterOptions) ([]rec, error) {
	s := NewSplitter(r, opts)
	defer s.Close()
	var out []rec
	for {
		ev, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, record(ev))
	}
}

func concat(recs []rec) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.data...)
	}
	return b
}

// fragment is the events of one fragment, gathered for assertions.
type fragment struct {
	timecode uint64
	data     []byte         // FragmentStart + Frame + FragmentData bytes
	frames   map[uint64]int // frames per track
	keys     int
	dataIDs  []ID
	tags     []SimpleTag // from FragmentData Tags
	reason   EndReason
}

// fragments groups recorded events by fragment; it fails on events out of place.
func fragments(t *testing.T, recs []rec) (headers []*Header, frags []fragment) {
	t.Helper()
	var cur *fragment
	for i, r := range recs {
		switch r.kind {
		case "header":
			if cur != nil {
				t.Fatalf("event %d: header inside a fragment", i)
			}
			headers = append(headers, r.header)
		case "start":
			if cur != nil {
				t.Fatalf("event %d: fragment start inside a fragment", i)
			}
			cur = &fragment{timecode: r.timecode, data: slices.Clone(r.data), frames: map[uint64]int{}}
		case "frame", "data":
			if cur == nil {
				t.Fatalf("event %d: %s outside a fragment", i, r.kind)
			}
			cur.data = append(cur.data, r.data...)
			if r.kind == "frame" {
				cur.frames[r.track]++
				if r.key {
					cur.keys++
				}
			} else {
				cur.dataIDs = append(cur.dataIDs, r.id)
				cur.tags = append(cur.tags, r.tags...)
			}
		case "end":
			if cur == nil {
				t.Fatalf("event %d: fragment end outside a fragment", i)
			}
			cur.reason = r.reason
			frags = append(frags, *cur)
			cur = nil
		case "trailer":
			if cur != nil {
				t.Fatalf("event %d: trailer inside a fragment", i)
			}
		}
	}
	if cur != nil {
		t.Fatalf("fragment at timecode %d never ended", cur.timecode)
	}
	return headers, frags
}

// errReader fails with err after returning data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

var errBoom = errors.New("boom: connection reset")

func wantPrefix(t *testing.T, got, input []byte) {
	t.Helper()
	if !bytes.HasPrefix(input, got) {
		t.Fatalf("event bytes (%d) are not a prefix of the input (%d)", len(got), len(input))
	}
}
