package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readChunks(t testing.TB, r io.Reader) []*Chunk {
	t.Helper()
	out, err := ReadChunks(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// producerStream rebuilds the PutMedia body a capture came from (spec 5.3): chunk 1 without
// the KVS Tags, then every later chunk's Cluster and trailing producer elements.
func producerStream(chunks []*Chunk) []byte {
	out := slices.Clone(chunks[0].Header)
	for _, c := range chunks {
		out = append(append(out, c.Cluster...), c.Trailing...)
	}
	return out
}

func TestChunkReaderCaptures(t *testing.T) {
	fn := map[string]string{
		"output_get_media.mkv":                      "91343852333181432392682062607743920146159169392",
		"kinesis_video_renderer_example_output.mkv": "91343852333181432392682062609776234230823574155",
		"test_mixed_tags.mkv":                       "91343852333713038908964877623801423530396737899",
	}
	tests := []struct {
		capture  string
		chunks   int
		firstTag map[string]string
	}{
		{"output_get_media.mkv", 5, map[string]string{
			TagFragmentNumber: fn["output_get_media.mkv"], TagServerTimestamp: "1511852109.126",
			TagProducerTimestamp: "1511852108.513", TagMillisBehindNow: "15858",
			TagContinuationToken: fn["output_get_media.mkv"],
			// ffmpeg's own Tags are replayed in the header; ENCODER appears twice, the last wins.
			"COMPATIBLE_BRANDS": "isomavc1mp42", "MAJOR_BRAND": "M4V ", "MINOR_VERSION": "1",
			"ENCODER": "Elemental H.264", "HANDLER_NAME": "ETI ISO Video Media Handler",
			"DURATION": "00:00:10.000000000",
		}},
		{"kinesis_video_renderer_example_output.mkv", 8, map[string]string{
			TagFragmentNumber: fn["kinesis_video_renderer_example_output.mkv"], TagServerTimestamp: "1519423069.070",
			TagProducerTimestamp: "1519423067.997", TagMillisBehindNow: "7336747",
			TagContinuationToken: fn["kinesis_video_renderer_example_output.mkv"],
		}},
		{"test_mixed_tags.mkv", 10, map[string]string{
			TagFragmentNumber: fn["test_mixed_tags.mkv"], TagServerTimestamp: "1537574915.281",
			TagProducerTimestamp: "0.000", TagMillisBehindNow: "910",
			TagContinuationToken: fn["test_mixed_tags.mkv"],
			"testTag_0":          "testTag_0_Value", "testTag_1": "testTag_1_Value", "testTag_2": "testTag_2_Value",
			"testTag_3": "testTag_3_Value", "testTag_4": "testTag_4_Value",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.capture, func(t *testing.T) {
			data := readSample(t, tt.capture)
			chunks := readChunks(t, bytes.NewReader(data))
			if len(chunks) != tt.chunks {
				t.Fatalf("got %d chunks, want %d", len(chunks), tt.chunks)
			}
			if diff := cmp.Diff(tt.firstTag, chunks[0].Tags); diff != "" {
				t.Errorf("chunk 1 tags (-want +got):\n%s", diff)
			}
			// Chunks start where the independent tree dump has its level-0 EBML headers.
			var offs []int64
			var all []byte
			for _, c := range chunks {
				offs = append(offs, c.Offset)
				all = append(all, c.Data...)
				if c.Err() != nil {
					t.Errorf("chunk at %d: unexpected in-band error %v", c.Offset, c.Err())
				}
			}
			if diff := cmp.Diff(dumpOffsets(readDump(t, tt.capture), 0, IDEBML), offs); diff != "" {
				t.Errorf("chunk offsets (-dump +got):\n%s", diff)
			}
			if !bytes.Equal(all, data) {
				t.Errorf("chunks do not add up to the capture")
			}
			// Each chunk is exactly header + start tags + cluster + trailing + end tags, with
			// the KVS tags rewritten from their values by our writer.
			for i, c := range chunks {
				want := slices.Clone(c.Header)
				want = AppendStartTags(want, c.Tags[TagFragmentNumber],
					parseMillis(t, c.Tags[TagServerTimestamp]), parseMillis(t, c.Tags[TagProducerTimestamp]))
				want = append(append(want, c.Cluster...), c.Trailing...)
				behind, _ := strconv.ParseInt(c.Tags[TagMillisBehindNow], 10, 64)
				want = AppendEndTags(want, behind, c.Tags[TagContinuationToken])
				if !bytes.Equal(want, c.Data) {
					t.Errorf("chunk %d: rebuilt %d bytes differ from the %d captured", i+1, len(want), len(c.Data))
				}
				if c.Tags[TagContinuationToken] != c.Tags[TagFragmentNumber] {
					t.Errorf("chunk %d: continuation token differs from fragment number", i+1)
				}
			}
			// One byte at a time gives the same chunks.
			slow := readChunks(t, iotest.OneByteReader(bytes.NewReader(data)))
			if len(slow) != len(chunks) {
				t.Fatalf("one-byte reads: %d chunks", len(slow))
			}
			for i := range slow {
				if !bytes.Equal(slow[i].Data, chunks[i].Data) || !bytes.Equal(slow[i].Cluster, chunks[i].Cluster) {
					t.Errorf("one-byte reads: chunk %d differs", i+1)
				}
			}
		})
	}
}

// parseMillis turns a "%d.%03d" timestamp back into milliseconds.
func parseMillis(t *testing.T, s string) int64 {
	t.Helper()
	sec, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 3 {
		t.Fatalf("timestamp %q is not %%d.%%03d", s)
	}
	a, err1 := strconv.ParseInt(sec, 10, 64)
	b, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("timestamp %q: %v %v", s, err1, err2)
	}
	return a*1000 + b
}

func TestChunkReaderMixedTagsLayout(t *testing.T) {
	data := readSample(t, "test_mixed_tags.mkv")
	chunks := readChunks(t, bytes.NewReader(data))
	// Offsets from spec 6.1: header 0..687, start tags 687..921, cluster 921..2069,
	// producer Tags 2069..2449, end tags 2449..2618.
	c := chunks[0]
	if !bytes.Equal(c.Header, data[:687]) || !bytes.Equal(c.Cluster, data[921:2069]) ||
		!bytes.Equal(c.Trailing, data[2069:2449]) || len(c.Data) != 2618 {
		t.Errorf("chunk 1 parts: header %d, cluster %d, trailing %d, total %d bytes",
			len(c.Header), len(c.Cluster), len(c.Trailing), len(c.Data))
	}
	// Later chunks replay Info and Tracks only (spec 5.3 note A).
	if !bytes.Equal(chunks[1].Header, data[2618:2925]) {
		t.Errorf("chunk 2 header is %d bytes, want 307", len(chunks[1].Header))
	}
}

// TestChunkReaderParts checks that OnPart sees a real capture's first chunk
// element by element, as laid out in spec 6.1, the Cluster child by child.
func TestChunkReaderParts(t *testing.T) {
	data := readSample(t, "test_mixed_tags.mkv")
	cr := NewChunkReader(bytes.NewReader(data))
	type span struct {
		kind       PartKind
		start, end int
	}
	var spans []span
	off := 0
	cr.OnPart(func(p ChunkPart) error {
		if n := len(spans); n > 0 && spans[n-1].kind == p.Kind && p.Kind != PartBody {
			spans[n-1].end += len(p.Data)
		} else {
			spans = append(spans, span{p.Kind, off, off + len(p.Data)})
		}
		if !bytes.Equal(p.Data, data[off:off+len(p.Data)]) {
			t.Fatalf("part at %d is not the payload's bytes", off)
		}
		off += len(p.Data)
		return nil
	})
	if _, err := cr.Next(); err != nil {
		t.Fatal(err)
	}
	// Offsets from spec 6.1, as in TestChunkReaderMixedTagsLayout.
	if first := spans[:2]; first[0] != (span{PartHeader, 0, 687}) || first[1] != (span{PartStartTags, 687, 921}) {
		t.Errorf("header and start tags: %+v", first)
	}
	body := spans[2 : len(spans)-1]
	if len(body) < 3 || body[0].start != 921 || body[len(body)-1].end != 2449 {
		t.Errorf("body parts %+v, want 921..2449 in several parts", body)
	}
	if last := spans[len(spans)-1]; last != (span{PartEndTags, 2449, 2618}) {
		t.Errorf("end tags: %+v", last)
	}
}

func TestChunkReaderErrorChunk(t *testing.T) {
	var payload []byte
	payload = AppendErrorChunk(payload, nil, "91343852333181432392682062607743920146159169392", 4000, "FRAGMENT_NOT_FOUND")
	chunks := readChunks(t, bytes.NewReader(payload))
	if len(chunks) != 1 {
		t.Fatalf("got %d chunks", len(chunks))
	}
	var me *MediaError
	if err := chunks[0].Err(); !errors.As(err, &me) {
		t.Fatalf("Err() = %v, want *MediaError", err)
	}
	want := MediaError{FragmentNumber: "91343852333181432392682062607743920146159169392", ID: 4000, Code: "FRAGMENT_NOT_FOUND"}
	if *me != want {
		t.Errorf("got %+v, want %+v", *me, want)
	}
	if chunks[0].Cluster != nil {
		t.Errorf("error chunk has a Cluster")
	}
	// EBML header, Segment with the 8-byte unknown size, then the error Tags.
	segment := []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	wantBytes := slices.Concat(defaultEBMLHeader, segment, AppendTags(nil,
		SimpleTag{TagFragmentNumber, want.FragmentNumber}, SimpleTag{TagErrorID, "4000"}, SimpleTag{TagErrorCode, want.Code}))
	if !bytes.Equal(payload, wantBytes) {
		t.Errorf("error chunk bytes:\n%x\nwant\n%x", payload, wantBytes)
	}
	// With the stream's own EBML header.
	own := readSample(t, "output_get_media.mkv")[:47]
	payload = AppendErrorChunk(nil, own, "1", 5000, "INTERNAL_ERROR")
	if !bytes.HasPrefix(payload, own) || readChunks(t, bytes.NewReader(payload))[0].Err() == nil {
		t.Errorf("error chunk with the producer's EBML header is wrong")
	}
}

func TestChunkReaderTooLarge(t *testing.T) {
	// A Cluster claiming 70 MB is refused before anything is buffered.
	input := slices.Concat(picEBML(), unknownHdr(IDSegment, 8), appendSizeN(appendID(nil, IDCluster), 70<<20, 8))
	_, err := NewChunkReader(bytes.NewReader(input)).Next()
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid) {
		t.Errorf("got %v, want ErrTooLarge", err)
	}
	if me := (&MediaError{FragmentNumber: "12", ID: 4000, Code: "NOT_FOUND"}); me.Error() != "mkv: GetMedia error 4000 (NOT_FOUND) at fragment 12" {
		t.Errorf("MediaError text %q", me.Error())
	}
}

func TestChunkReaderInvalid(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"no EBML header", el(IDSegment), "instead of an EBML header"},
		{"no Segment", picEBML(), "chunk has no Segment"},
		{"Info instead of Segment", slices.Concat(picEBML(), el(IDInfo)), "where a chunk's Segment belongs"},
		{"two clusters", slices.Concat(picEBML(), unknownHdr(IDSegment, 8), el(IDCluster, uintEl(IDTimecode, 0, 1)),
			el(IDCluster, uintEl(IDTimecode, 1, 1))), "second Cluster"},
		{"stray top-level element", slices.Concat(picEBML(), el(IDSegment), el(IDTags)), "top level of a chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewChunkReader(bytes.NewReader(tt.input)).Next()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

// A chunk is returned when its end tags arrive, before anything follows:
// at the live edge the next chunk may be seconds away.
func TestChunkReaderEndsAtEndTags(t *testing.T) {
	data := readSample(t, "output_get_media.mkv")
	chunks := readChunks(t, bytes.NewReader(data))
	first := chunks[0].Data
	pr, pw := io.Pipe()
	go pw.Write(first) // and nothing more while the chunk is read
	cr := NewChunkReader(pr)
	got := make(chan *Chunk, 1)
	go func() {
		c, err := cr.Next()
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	select {
	case c := <-got:
		if c != nil && !bytes.Equal(c.Data, first) {
			t.Errorf("chunk has %d bytes, want %d", len(c.Data), len(first))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ChunkReader waited for the next chunk before returning this one")
	}
	pw.Close()
}
