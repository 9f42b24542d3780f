package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
)

// TestSplitterMidFragment checks that an input resuming a fragment without
// its stream header (a producer reconnecting mid-fragment) is told apart
// from garbage: both are invalid, only the first matches ErrMidFragment.
func TestSplitterMidFragment(t *testing.T) {
	for name, tt := range map[string]struct {
		input []byte
		mid   bool
	}{
		"bare SimpleBlocks": {slices.Concat(simpleBlock8(1, 33, false, []byte{1, 2}), simpleBlock8(1, 66, false, []byte{3})), true},
		"Cluster":           {picCluster(1000, 2), true},
		"Cluster Timecode":  {slices.Concat(uintEl(IDTimecode, 1000, 8), simpleBlock8(1, 0, true, []byte{1})), true},
		"BlockGroup":        {el(IDBlockGroup, el(IDBlock, blockBody(1, 0, 0, []byte{1}))), true},
		"end-of-fragment":   {eofrTags(), true},
		"text":              {[]byte("hello, this is not Matroska at all"), false},
		"Info first":        {slices.Concat(el(IDInfo, uintEl(IDTimecodeScale, 1_000_000, 8)), picCluster(0, 1)), false},
		"garbage, header":   {slices.Concat([]byte("junk"), picHeader(videoTrack), picCluster(0, 1)), false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := split(bytes.NewReader(tt.input), SplitterOptions{})
			if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrMidFragment) != tt.mid {
				t.Fatalf("error %v: ErrInvalid %t, ErrMidFragment %t; want true, %t",
					err, errors.Is(err, ErrInvalid), errors.Is(err, ErrMidFragment), tt.mid)
			}
		})
	}
}

func TestSplitterMaxHeaderSize(t *testing.T) {
	big := videoTrack
	big.CodecPrivate = make([]byte, 5000)
	input := slices.Concat(picHeader(big), picCluster(0, 1))
	_, err := split(bytes.NewReader(input), SplitterOptions{MaxHeaderSize: 4096})
	if !errors.Is(err, ErrHeaderTooLarge) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("header of %d bytes with a 4096-byte limit: %v", len(picHeader(big)), err)
	}
	if _, err := split(bytes.NewReader(input), SplitterOptions{MaxHeaderSize: 8192}); err != nil {
		t.Fatalf("the same header within an 8192-byte limit: %v", err)
	}
}

// meter is a Memory that refuses to go past limit and checks that the
// Splitter never gives back more than it took.
type meter struct {
	t           *testing.T
	held, peak  int
	limit       int
	grows, errs int
}

var errNoMemory = errors.New("no memory")

func (m *meter) Grow(n int) error {
	if n <= 0 {
		m.t.Fatalf("Grow(%d)", n)
	}
	if m.limit > 0 && m.held+n > m.limit {
		m.errs++
		return errNoMemory
	}
	m.grows++
	m.held += n
	m.peak = max(m.peak, m.held)
	return nil
}

func (m *meter) Shrink(n int) {
	if n <= 0 || n > m.held {
		m.t.Fatalf("Shrink(%d) with %d held", n, m.held)
	}
	m.held -= n
}

// TestSplitterMemory checks the accounting of the Splitter's buffers: a
// large frame is reported before it is buffered and let go after it was
// consumed, Close returns everything, and a refused Grow ends the Splitter.
func TestSplitterMemory(t *testing.T) {
	const frame = 3 << 20
	input := slices.Concat(picHeader(videoTrack), picCluster(0, 0), simpleBlock8(1, 0, true, make([]byte, frame)), picCluster(1000, 30))
	m := &meter{t: t}
	s := NewSplitter(bytes.NewReader(input), SplitterOptions{Memory: m})
	var sawBig bool
	for {
		ev, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := ev.(*Frame); ok && len(f.Data) > frame {
			sawBig = true
			if m.held < len(f.Data) {
				t.Fatalf("a %d-byte frame is buffered with %d bytes accounted", len(f.Data), m.held)
			}
		}
		if _, ok := ev.(*Frame); ok && sawBig && len(ev.(*Frame).Data) < 100 && m.held > retainedBuffer {
			t.Fatalf("%d bytes still accounted after the large frame was consumed", m.held)
		}
	}
	if !sawBig || m.peak < frame {
		t.Fatalf("peak %d bytes accounted for a %d-byte frame", m.peak, frame)
	}
	s.Close()
	if m.held != 0 {
		t.Fatalf("%d bytes accounted after Close", m.held)
	}
	if _, err := s.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}

	m = &meter{t: t, limit: 1 << 20}
	_, err := split(bytes.NewReader(input), SplitterOptions{Memory: m})
	if !errors.Is(err, errNoMemory) || m.errs != 1 || m.held > m.limit {
		t.Fatalf("with a 1 MiB limit: %v after %d refusals, %d bytes held", err, m.errs, m.held)
	}
}
