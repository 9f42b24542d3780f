package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
)

// fuzzSeeds are synthetic streams added to the committed corpus in testdata/fuzz.
func fuzzSeeds() [][]byte {
	pic := slices.Concat(picHeader(videoTrack), picCluster(0, 2), eofrTags(), tags8("k", "v"), picCluster(100, 1))
	return [][]byte{
		pic,
		pic[:len(pic)-3],
		slices.Concat(picEBML(), el(IDSegment, el(IDCluster, uintEl(IDTimecode, 1, 1),
			el(IDBlockGroup, el(IDBlock, blockBody(1, 0, 0, []byte{1})), el(IDReferenceBlock, []byte{1}))))),
		slices.Concat(pic, picEBML(), unknownHdr(IDSegment, 8), picCluster(5, 1)),
	}
}

// FuzzReader walks arbitrary input, entering every element that may be a master, and
// checks that the Reader terminates with io.EOF or an InvalidError, never panics, and only
// moves forward.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	masters := map[ID]bool{IDEBML: true, IDSegment: true, IDCluster: true, IDTracks: true, IDTrackEntry: true,
		IDTags: true, IDTag: true, IDSimpleTag: true, IDBlockGroup: true, IDInfo: true, IDSeekHead: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		last := int64(-1)
		buf := make([]byte, 512)
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("%d elements from %d bytes", i, len(data))
			}
			e, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error is not ErrInvalid: %v", err)
				}
				return
			}
			if e.Offset <= last || e.Offset+int64(e.HeaderLen) > int64(len(data)) || e.Level > maxDepth {
				t.Fatalf("element %+v after offset %d in %d bytes", e, last, len(data))
			}
			last = e.Offset
			if masters[e.ID] && i%3 != 2 { // sometimes skip a master instead
				if err := rd.Enter(); err != nil && !errors.Is(err, ErrInvalid) {
					t.Fatal(err)
				}
				continue
			}
			if e.Unknown() {
				continue
			}
			if _, err := rd.Read(buf); err != nil && err != io.EOF && !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
		}
	})
}

// FuzzSplitter checks the Splitter's promises on arbitrary input: it ends with io.EOF or
// an ErrInvalid/ErrTooLarge error (or its Memory's refusal), the events' bytes are exactly
// the input (or a prefix of it on error), fragments are well nested, every byte of buffer
// it reported is given back, and one-byte reads give the same result.
func FuzzSplitter(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &meter{t: t, limit: 1 << 17}
		opts := SplitterOptions{MaxFrameSize: 1 << 16, MaxElementSize: 1 << 16, MaxHeaderSize: 1 << 15, Memory: m}
		recs, err := split(bytes.NewReader(data), opts)
		if m.held != 0 {
			t.Fatalf("%d bytes of buffer still accounted after Close", m.held)
		}
		got := concat(recs)
		switch {
		case err == nil:
			if !bytes.Equal(got, data) {
				t.Fatalf("events hold %d bytes of %d", len(got), len(data))
			}
		case errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) || errors.Is(err, errNoMemory):
			if !bytes.HasPrefix(data, got) {
				t.Fatal("event bytes are not a prefix of the input")
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		open := false
		for i, r := range recs {
			switch r.kind {
			case "start":
				if open {
					t.Fatalf("event %d: start inside a fragment", i)
				}
				open = true
			case "frame", "data":
				if !open {
					t.Fatalf("event %d: %s outside a fragment", i, r.kind)
				}
			case "end":
				if !open {
					t.Fatalf("event %d: end outside a fragment", i)
				}
				open = false
			case "header", "trailer":
				if open {
					t.Fatalf("event %d: %s inside a fragment", i, r.kind)
				}
			}
		}
		if err == nil && open {
			t.Fatal("input ended with a fragment open")
		}
		if len(data) > 4096 {
			return
		}
		opts.Memory = &meter{t: t, limit: m.limit}
		slow, slowErr := split(iotest.OneByteReader(bytes.NewReader(data)), opts)
		if (err == nil) != (slowErr == nil) || len(slow) != len(recs) || !bytes.Equal(concat(slow), got) {
			t.Fatalf("one-byte reads differ: %v vs %v, %d vs %d events", slowErr, err, len(slow), len(recs))
		}
	})
}
