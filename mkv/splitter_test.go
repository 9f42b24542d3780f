package mkv

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSplitterCaptures feeds the producer streams rebuilt from the real GetMedia captures
// through the Splitter and checks that each fragment is exactly what KVS served for it.
func TestSplitterCaptures(t *testing.T) {
	tests := []struct {
		capture   string
		timecodes []uint64
		frames    []int
		codecID   string
		docType   string
		preInfo   []SimpleTag // header Tags before Info
	}{
		{"output_get_media.mkv", []uint64{0, 2000, 4000, 6000, 8000}, []int{60, 60, 60, 60, 60}, "V_MPEG4/ISO/AVC", "matroska", nil},
		{"kinesis_video_renderer_example_output.mkv", []uint64{0, 1999, 3999, 5998, 7998, 9998, 11997, 13997},
			[]int{59, 59, 59, 59, 59, 59, 59, 31}, "V_MPEG4/ISO/AVC", "matroska", nil},
		{"test_mixed_tags.mkv", []uint64{0, 5000, 10000, 15000, 20000, 25000, 30000, 35000, 40000, 45000},
			slices.Repeat([]int{10}, 10), "V_MS/VFW/FOURCC", "matroska", []SimpleTag{
				{"testTag_0", "testTag_0_Value"}, {"testTag_1", "testTag_1_Value"}, {"testTag_2", "testTag_2_Value"},
				{"testTag_3", "testTag_3_Value"}, {"testTag_4", "testTag_4_Value"}}},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			chunks := readChunks(t, bytes.NewReader(readSample(t, tt.capture)))
			input := producerStream(chunks)
			for _, mode := range []string{"whole", "one-byte"} {
				var r io.Reader = bytes.NewReader(input)
				if mode == "one-byte" {
					r = iotest.OneByteReader(r)
				}
				recs, err := split(r, SplitterOptions{})
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if !bytes.Equal(concat(recs), input) {
					t.Fatalf("%s: events do not reproduce the input", mode)
				}
				headers, frags := fragments(t, recs)
				if len(headers) != 1 {
					t.Fatalf("%s: %d headers", mode, len(headers))
				}
				h := headers[0]
				if !bytes.Equal(h.Data, chunks[0].Header) || !bytes.Equal(h.FirstChunkHeader, chunks[0].Header) {
					t.Errorf("%s: first chunk header differs from the capture's chunk 1 prefix", mode)
				}
				if !bytes.Equal(h.ChunkHeader, chunks[1].Header) {
					t.Errorf("%s: later chunk header (%d bytes) differs from the capture's chunk 2 prefix (%d)",
						mode, len(h.ChunkHeader), len(chunks[1].Header))
				}
				if h.DocType != tt.docType || h.TimecodeScale != 1_000_000 || len(h.Tracks) != 1 ||
					h.Tracks[0].Number != 1 || h.Tracks[0].Type != 1 || !strings.HasPrefix(h.Tracks[0].CodecID, tt.codecID) {
					t.Errorf("%s: header %q %d %+v", mode, h.DocType, h.TimecodeScale, h.Tracks)
				}
				if diff := cmp.Diff(tt.preInfo, h.Tags); diff != "" {
					t.Errorf("%s: header tags (-want +got):\n%s", mode, diff)
				}
				if len(frags) != len(chunks) {
					t.Fatalf("%s: %d fragments, want %d", mode, len(frags), len(chunks))
				}
				for i, f := range frags {
					want := slices.Concat(chunks[i].Cluster, chunks[i].Trailing)
					if !bytes.Equal(f.data, want) {
						t.Errorf("%s: fragment %d: %d bytes differ from the capture's cluster+trailing %d bytes",
							mode, i+1, len(f.data), len(want))
					}
					if f.timecode != tt.timecodes[i] || f.frames[1] != tt.frames[i] || f.keys != 1 {
						t.Errorf("%s: fragment %d: timecode %d, frames %v, keys %d", mode, i+1, f.timecode, f.frames, f.keys)
					}
					wantReason := EndNextCluster
					if i == len(frags)-1 {
						wantReason = EndOfInput
					}
					if f.reason != wantReason {
						t.Errorf("%s: fragment %d ended by %v", mode, i+1, f.reason)
					}
				}
			}
		})
	}
}

func TestSplitterCaptureTrailingElements(t *testing.T) {
	// test_mixed_tags: the producer metadata after each cluster belongs to that fragment.
	chunks := readChunks(t, bytes.NewReader(readSample(t, "test_mixed_tags.mkv")))
	recs, err := split(bytes.NewReader(producerStream(chunks)), SplitterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, frags := fragments(t, recs)
	want := []SimpleTag{{"testTag_0", "testTag_0_Value"}, {"testTag_1", "testTag_1_Value"},
		{"testTag_2", "testTag_2_Value"}, {"testTag_3", "testTag_3_Value"}, {"testTag_4", "testTag_4_Value"}}
	if diff := cmp.Diff(want, frags[0].tags); diff != "" {
		t.Errorf("fragment 1 tags (-want +got):\n%s", diff)
	}
	// Position inside the cluster, then the five Tags after it.
	if diff := cmp.Diff([]ID{IDPosition, IDTags, IDTags, IDTags, IDTags, IDTags}, frags[0].dataIDs); diff != "" {
		t.Errorf("fragment 1 data elements (-want +got):\n%s", diff)
	}
	// output_get_media: CRC-32 precedes Timecode and so opens the FragmentStart; the last
	// fragment carries ffmpeg's trailing Cues.
	chunks = readChunks(t, bytes.NewReader(readSample(t, "output_get_media.mkv")))
	recs, err = split(bytes.NewReader(producerStream(chunks)), SplitterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, frags = fragments(t, recs)
	if diff := cmp.Diff([]ID{IDCues}, frags[4].dataIDs); diff != "" {
		t.Errorf("fragment 5 data elements (-want +got):\n%s", diff)
	}
	for _, r := range recs {
		// 12-byte Cluster header, 6-byte CRC-32, then Timecode.
		if r.kind == "start" && (r.data[12] != byte(IDCRC32) || r.data[18] != byte(IDTimecode)) {
			t.Errorf("fragment start %x: want Cluster header, CRC-32, Timecode", r.data)
		}
	}
}

// TestSplitterPIC splits a synthetic stream shaped like the KVS producer SDK's: unknown-size
// Segment and Clusters, 8-byte Timecodes and block sizes, EoFR tags and metadata tags.
func TestSplitterPIC(t *testing.T) {
	hdr := slices.Concat(picEBML(), unknownHdr(IDSegment, 1), tags8("first", "1"),
		picHeader(videoTrack)[len(picEBML())+5:])
	c1, c2, c3 := picCluster(1000, 3), picCluster(2000, 2), picCluster(3000, 1)
	meta := tags8("note", "for fragment 2")
	input := slices.Concat(hdr, c1, eofrTags(), meta, c2, tags8("after", "c2"), c3, eofrTags(), tags8("late", "x"))
	for _, r := range []io.Reader{bytes.NewReader(input), iotest.OneByteReader(bytes.NewReader(input)),
		iotest.HalfReader(bytes.NewReader(input)), iotest.DataErrReader(bytes.NewReader(input))} {
		recs, err := split(r, SplitterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(concat(recs), input) {
			t.Fatal("events do not reproduce the input")
		}
		var kinds []string
		for _, r := range recs {
			k := r.kind
			if r.kind == "end" {
				k += ":" + r.reason.String()
			}
			kinds = append(kinds, k)
		}
		want := []string{"header",
			"start", "data", "frame", "frame", "frame", "data", "end:end-of-fragment tag",
			"start", "data", "frame", "frame", "data", "end:next cluster",
			"start", "data", "frame", "data", "end:end-of-fragment tag",
			"trailer"}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
		h := recs[0].header
		if !bytes.Equal(h.Data, hdr) || h.TimecodeScale != 1_000_000 || h.DocType != "matroska" {
			t.Errorf("header: %d bytes, scale %d, doctype %q", len(h.Data), h.TimecodeScale, h.DocType)
		}
		if diff := cmp.Diff([]Track{videoTrack}, h.Tracks); diff != "" {
			t.Errorf("tracks (-want +got):\n%s", diff)
		}
		// The 1-byte unknown Segment size becomes the 8-byte form; Tags before Info only in chunk 1.
		seg8 := []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
		rest := picHeader(videoTrack)[len(picEBML())+5:] // Info and Tracks
		if want := slices.Concat(picEBML(), seg8, tags8("first", "1"), rest); !bytes.Equal(h.FirstChunkHeader, want) {
			t.Errorf("FirstChunkHeader:\n%x\nwant\n%x", h.FirstChunkHeader, want)
		}
		if want := slices.Concat(picEBML(), seg8, rest); !bytes.Equal(h.ChunkHeader, want) {
			t.Errorf("ChunkHeader:\n%x\nwant\n%x", h.ChunkHeader, want)
		}
		// Fragment 2 opens with the metadata held after the EoFR.
		start2 := recs[8]
		if !bytes.HasPrefix(start2.data, meta) || start2.timecode != 2000 {
			t.Errorf("fragment 2 start: timecode %d, data %x", start2.timecode, start2.data)
		}
		if diff := cmp.Diff([]SimpleTag{{"note", "for fragment 2"}}, start2.tags); diff != "" {
			t.Errorf("fragment 2 held tags (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]SimpleTag{{"late", "x"}}, recs[len(recs)-1].tags); diff != "" {
			t.Errorf("trailer tags (-want +got):\n%s", diff)
		}
		if f := recs[3]; f.track != 1 || f.rel != 0 || !f.key {
			t.Errorf("first frame: %+v", f)
		}
		if f := recs[4]; f.rel != 33 || f.key {
			t.Errorf("second frame: %+v", f)
		}
	}
}

// TestSplitterEoFRPrompt checks that a fragment closed by an EoFR tag is reported without
// waiting for more input: the producer SDK sends nothing until it gets the ACK (spec 4.4).
func TestSplitterEoFRPrompt(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	input := slices.Concat(picHeader(videoTrack), picCluster(0, 2), eofrTags())
	go func() {
		// Write in small pieces, then keep the connection open.
		for i := 0; i < len(input); i += 7 {
			if _, err := pw.Write(input[i:min(i+7, len(input))]); err != nil {
				return
			}
		}
	}()
	s := NewSplitter(pr, SplitterOptions{})
	done := make(chan EndReason, 1)
	go func() {
		for {
			ev, err := s.Next()
			if err != nil {
				close(done)
				return
			}
			if end, ok := ev.(*FragmentEnd); ok {
				done <- end.Reason
				return
			}
		}
	}()
	select {
	case reason, ok := <-done:
		if !ok || reason != EndEoFR {
			t.Fatalf("got reason %v (ok %v), want EoFR", reason, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fragment end not reported while the stream stays open")
	}
	pw.CloseWithError(errBoom)
}

func TestSplitterNewHeaderAndKnownSegment(t *testing.T) {
	// Document 1: unknown-size Segment with one fragment. Document 2: a known-size Segment
	// whose known-size Clusters end with it.
	doc1 := slices.Concat(picHeader(videoTrack), picCluster(0, 2))
	body := slices.Concat(el(IDInfo, uintEl(IDTimecodeScale, 1000, 2)),
		el(IDCluster, uintEl(IDTimecode, 7, 1), el(IDSimpleBlock, blockBody(2, -5, 0x80, []byte("x")))),
		el(IDCluster, uintEl(IDTimecode, 9, 1), el(IDBlockGroup, el(IDBlock, blockBody(2, 4, 0, []byte("y"))),
			uintEl(IDBlockDuration, 40, 1), el(IDReferenceBlock, []byte{0xFC}))))
	doc2 := slices.Concat(picEBML(), el(IDSegment, body))
	input := slices.Concat(doc1, doc2)
	recs, err := split(bytes.NewReader(input), SplitterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(concat(recs), input) {
		t.Fatal("events do not reproduce the input")
	}
	headers, frags := fragments(t, recs)
	if len(headers) != 2 || len(frags) != 3 {
		t.Fatalf("%d headers, %d fragments", len(headers), len(frags))
	}
	if frags[0].reason != EndNewHeader || frags[1].reason != EndNextCluster || frags[2].reason != EndOfInput {
		t.Errorf("reasons %v %v %v", frags[0].reason, frags[1].reason, frags[2].reason)
	}
	if headers[1].TimecodeScale != 1000 || !bytes.Equal(headers[0].Data, picHeader(videoTrack)) {
		t.Errorf("second header scale %d", headers[1].TimecodeScale)
	}
	var frames []rec
	for _, r := range recs {
		if r.kind == "frame" {
			frames = append(frames, r)
		}
	}
	last := frames[len(frames)-1]
	if f := frames[len(frames)-2]; f.track != 2 || f.rel != -5 || !f.key {
		t.Errorf("SimpleBlock frame: %+v", f)
	}
	if last.track != 2 || last.rel != 4 || last.key {
		t.Errorf("BlockGroup frame: %+v", last)
	}
}

func TestSplitterBlockGroupDuration(t *testing.T) {
	input := slices.Concat(picHeader(videoTrack), picCluster(0, 0)[:0], unknownHdr(IDCluster, 1),
		uintEl(IDTimecode, 0, 1), el(IDBlockGroup, el(IDBlock, blockBody(1, 3, 0, []byte("z"))), uintEl(IDBlockDuration, 33, 1)))
	s := NewSplitter(bytes.NewReader(input), SplitterOptions{})
	for {
		ev, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := ev.(*Frame); ok {
			if !f.Keyframe || !f.HasDuration || f.Duration != 33 || f.Timecode != 3 {
				t.Errorf("frame %+v", f)
			}
			return
		}
	}
}

func TestSplitterEmptyAndHeaderOnly(t *testing.T) {
	recs, err := split(bytes.NewReader(nil), SplitterOptions{})
	if err != nil || len(recs) != 0 {
		t.Errorf("empty input: %v, %d events", err, len(recs))
	}
	hdr := picHeader(videoTrack)
	recs, err = split(bytes.NewReader(hdr), SplitterOptions{})
	if err != nil || len(recs) != 1 || recs[0].kind != "header" || !bytes.Equal(recs[0].data, hdr) {
		t.Errorf("header-only input: %v, %+v", err, recs)
	}
}

func TestSplitterInvalid(t *testing.T) {
	hdr := picHeader(videoTrack)
	cl := unknownHdr(IDCluster, 1)
	tc := uintEl(IDTimecode, 0, 1)
	sb := simpleBlock8(1, 0, true, []byte{1})
	tests := []struct {
		name   string
		input  []byte
		off    int64 // expected InvalidError offset
		msg    string
		cutEOF bool // also wraps io.ErrUnexpectedEOF
	}{
		{"not EBML", el(IDInfo), 0, "unexpected Info at top level", false},
		{"Segment first", el(IDSegment), 0, "Segment without an EBML header", false},
		{"EBML only", picEBML(), 40, "EBML header not followed by a Segment", true},
		{"EBML then Info", slices.Concat(picEBML(), el(IDInfo)), 40, "unexpected Info at top level", false},
		{"Cluster outside Segment", slices.Concat(picEBML(), el(IDSegment), el(IDCluster)), 45, "Cluster outside a Segment", false},
		{"second Segment", slices.Concat(picEBML(), el(IDSegment), el(IDSegment)), 45, "second Segment", false},
		{"Segment inside Segment", slices.Concat(picEBML(), el(IDSegment, el(IDSegment))), 45, "Segment nested at level 1", false},
		{"block before Timecode", slices.Concat(hdr, cl, sb), int64(len(hdr) + 5), "SimpleBlock before the Cluster Timecode", false},
		{"Cluster without Timecode at EOF", slices.Concat(hdr, cl), int64(len(hdr)), "Cluster ends before its Timecode", false},
		{"Cluster without Timecode", slices.Concat(hdr, cl, cl), int64(len(hdr)), "Cluster ends before its Timecode", false},
		{"second Timecode", slices.Concat(hdr, cl, tc, tc), int64(len(hdr) + 5 + 3), "second Timecode", false},
		{"long Timecode", slices.Concat(hdr, cl, el(IDTimecode, make([]byte, 9))), int64(len(hdr) + 5), "Timecode of 9 bytes", false},
		{"Cluster in Cluster", slices.Concat(hdr, el(IDCluster, tc, el(IDCluster))), int64(len(hdr) + 5 + 3), "Cluster inside a Cluster", false},
		{"truncated frame", slices.Concat(hdr, cl, tc, sb[:len(sb)-1]), int64(len(hdr) + 5 + 3 + len(sb) - 1), "SimpleBlock payload", true},
		{"truncated header", slices.Concat(hdr, cl, tc, sb[:3]), int64(len(hdr) + 5 + 3 + 3), "size of SimpleBlock", true},
		{"short block", slices.Concat(hdr, cl, tc, el(IDSimpleBlock, []byte{0x81, 0})), int64(len(hdr) + 5 + 3 + 2), "block header of 2 bytes", false},
		{"BlockGroup without Block", slices.Concat(hdr, cl, tc, el(IDBlockGroup, uintEl(IDBlockDuration, 1, 1))), int64(len(hdr) + 5 + 3), "BlockGroup without a Block", false},
		{"bad Tags", slices.Concat(hdr, cl, tc, el(IDTags, el(IDTag, []byte{0xFF}))), int64(len(hdr) + 5 + 3 + 8), "invalid element ID 0xFF", false},
		{"unknown-size Info", slices.Concat(picEBML(), unknownHdr(IDSegment, 1), unknownHdr(IDInfo, 1)), 45, "Info has unknown size", false},
		{"zero TimecodeScale", slices.Concat(picEBML(), unknownHdr(IDSegment, 1), el(IDInfo, uintEl(IDTimecodeScale, 0, 1))), 50, "TimecodeScale is 0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.input), iotest.OneByteReader(bytes.NewReader(tt.input))} {
				recs, err := split(r, SplitterOptions{})
				var ie *InvalidError
				if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want *InvalidError", err)
				}
				if ie.Offset != tt.off || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("got %q at offset %d, want %q at %d", err, ie.Offset, tt.msg, tt.off)
				}
				if errors.Is(err, io.ErrUnexpectedEOF) != tt.cutEOF {
					t.Errorf("wraps io.ErrUnexpectedEOF: %v, want %v", !tt.cutEOF, tt.cutEOF)
				}
				wantPrefix(t, concat(recs), tt.input)
			}
		})
	}
}

func TestSplitterLimits(t *testing.T) {
	hdr := picHeader(videoTrack)
	big := slices.Concat(hdr, picCluster(0, 0), simpleBlock8(1, 0, true, make([]byte, 2000)))
	_, err := split(bytes.NewReader(big), SplitterOptions{MaxFrameSize: 1000})
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid) {
		t.Errorf("oversized frame: %v, want ErrTooLarge only", err)
	}
	_, err = split(bytes.NewReader(hdr), SplitterOptions{MaxElementSize: 100})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized header: %v", err)
	}
	// A frame that claims 40 MB but sends 10 bytes costs a few KB, not 40 MB.
	claim := slices.Concat(hdr, picCluster(0, 0), appendSizeN(appendID(nil, IDSimpleBlock), 40<<20, 8), make([]byte, 10))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = split(bytes.NewReader(claim), SplitterOptions{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated huge frame: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("allocated %d bytes for a truncated 40 MB claim", grew)
	}
}

func TestSplitterReadError(t *testing.T) {
	input := slices.Concat(picHeader(videoTrack), picCluster(0, 3))
	recs, err := split(&errReader{data: input[:len(input)-4], err: errBoom}, SplitterOptions{})
	if !errors.Is(err, errBoom) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want the reader's error and not ErrInvalid", err)
	}
	wantPrefix(t, concat(recs), input)
}

// TestSplitterSteadyStateAllocs checks that frames and cluster changes cost no allocation.
func TestSplitterSteadyStateAllocs(t *testing.T) {
	input := picHeader(videoTrack)
	for i := range 50 {
		input = append(input, picCluster(uint64(i)*1000, 30)...)
		input = append(input, el(IDVoid, make([]byte, 10))...)
	}
	s := NewSplitter(bytes.NewReader(input), SplitterOptions{})
	for range 100 { // warm up past the header and first fragments
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per event in the steady state", allocs)
	}
}

// BenchmarkSplitter splits the producer stream of output_get_media (2.5 MB, 300 frames).
func BenchmarkSplitter(b *testing.B) {
	chunks := readChunks(b, bytes.NewReader(readSample(b, "output_get_media.mkv")))
	input := producerStream(chunks)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	frames := 0
	r := bytes.NewReader(input)
	for b.Loop() {
		r.Reset(input)
		s := NewSplitter(r, SplitterOptions{})
		for {
			ev, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := ev.(*Frame); ok {
				frames++
			}
		}
	}
	b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
}
