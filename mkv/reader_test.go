package mkv

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// dumpMasters are the master elements the tree dumps descend into.
var dumpMasters = map[ID]bool{IDEBML: true, IDSegment: true, IDSeekHead: true, IDSeek: true, IDInfo: true,
	IDTracks: true, IDTrackEntry: true, IDVideo: true, IDTags: true, IDTag: true, IDSimpleTag: true,
	IDTargets: true, IDCluster: true, IDCues: true}

// walk reads every element of r, entering the masters in enter, and returns the elements
// with the payload bytes of the ones not entered.
func walk(t *testing.T, r io.Reader, enter map[ID]bool) ([]Element, [][]byte) {
	t.Helper()
	rd := NewReader(r)
	var els []Element
	var payloads [][]byte
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return els, payloads
		}
		if err != nil {
			t.Fatalf("after %d elements: %v", len(els), err)
		}
		els = append(els, e)
		if enter[e.ID] {
			if err := rd.Enter(); err != nil {
				t.Fatal(err)
			}
			payloads = append(payloads, nil)
			continue
		}
		if e.Unknown() { // skipped child by child by the next Next
			payloads = append(payloads, nil)
			continue
		}
		p, err := io.ReadAll(rd)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
}

// TestReaderTreeDumps compares the Reader with the independent walker that produced the
// capture dumps: every element (SimpleBlocks aside, which the dumps summarise) with the
// same level, offset, ID, size and size-field width.
func TestReaderTreeDumps(t *testing.T) {
	for _, capture := range captures {
		t.Run(capture, func(t *testing.T) {
			els, _ := walk(t, bytes.NewReader(readSample(t, capture)), dumpMasters)
			var got []dumpLine
			for _, e := range els {
				if e.ID == IDSimpleBlock {
					continue
				}
				got = append(got, dumpLine{level: e.Level, off: e.Offset, id: e.ID, size: e.Size, sizeLen: e.HeaderLen - idLen(e.ID)})
			}
			want := readDump(t, capture)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(dumpLine{})); diff != "" {
				t.Errorf("elements (-dump +reader):\n%s", diff)
			}
		})
	}
}

func TestReaderOneByteReads(t *testing.T) {
	for _, name := range []string{"h264.mkv", "unknown_size.mkv"} {
		data := readMedia(t, name)
		enter := map[ID]bool{IDSegment: true, IDCluster: true, IDTracks: true, IDTrackEntry: true}
		fastEls, fastPayloads := walk(t, bytes.NewReader(data), enter)
		slowEls, slowPayloads := walk(t, iotest.OneByteReader(bytes.NewReader(data)), enter)
		if !slices.Equal(fastEls, slowEls) {
			t.Errorf("%s: elements differ between whole and one-byte reads", name)
		}
		if !slices.EqualFunc(fastPayloads, slowPayloads, bytes.Equal) {
			t.Errorf("%s: payloads differ between whole and one-byte reads", name)
		}
		// Headers plus payloads of the leaves rebuild the file.
		var rebuilt []byte
		for i, e := range fastEls {
			rebuilt = append(e.AppendHeader(rebuilt), fastPayloads[i]...)
		}
		if !bytes.Equal(rebuilt, data) {
			t.Errorf("%s: element headers and payloads do not rebuild the file", name)
		}
	}
}

func TestReaderUnknownSizes(t *testing.T) {
	cluster := slices.Concat(unknownHdr(IDCluster, 1), uintEl(IDTimecode, 5, 8), simpleBlock8(1, 0, true, []byte("f")))
	doc := slices.Concat(picEBML(), unknownHdr(IDSegment, 1), cluster, el(IDVoid, []byte{0}), cluster, tags8("a", "b"))
	input := slices.Concat(doc, doc)
	els, _ := walk(t, bytes.NewReader(input), map[ID]bool{IDSegment: true, IDCluster: true})
	type lv struct {
		id    ID
		level int
	}
	var got []lv
	for _, e := range els {
		got = append(got, lv{e.ID, e.Level})
	}
	one := []lv{{IDEBML, 0}, {IDSegment, 0}, {IDCluster, 1}, {IDTimecode, 2}, {IDSimpleBlock, 2},
		// Void is a global element and may sit inside the Cluster (RFC 8794 §11.3.2).
		{IDVoid, 2}, {IDCluster, 1}, {IDTimecode, 2}, {IDSimpleBlock, 2}, {IDTags, 1}}
	if diff := cmp.Diff(slices.Concat(one, one), got, cmp.AllowUnexported(lv{})); diff != "" {
		t.Errorf("levels (-want +got):\n%s", diff)
	}
	if e := els[len(one)]; e.Offset != int64(len(doc)) || e.ID != IDEBML {
		t.Errorf("second document starts at %d, want %d", e.Offset, len(doc))
	}

	// An unknown-size Cluster inside a known-size Segment ends with the Segment.
	known := slices.Concat(picEBML(), el(IDSegment, cluster), el(IDVoid))
	els, _ = walk(t, bytes.NewReader(known), map[ID]bool{IDSegment: true, IDCluster: true})
	if last := els[len(els)-1]; last.ID != IDVoid || last.Level != 0 {
		t.Errorf("element after the Segment: %v at level %d", last.ID, last.Level)
	}

	// Not entering an unknown-size element skips its children.
	rd := NewReader(bytes.NewReader(input))
	var top []ID
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		top = append(top, e.ID)
		if e.ID == IDSegment {
			if err := rd.Enter(); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []ID{IDEBML, IDSegment, IDCluster, IDCluster, IDTags, IDEBML, IDSegment, IDCluster, IDCluster, IDTags}
	if diff := cmp.Diff(want, top); diff != "" {
		t.Errorf("skipping clusters (-want +got):\n%s", diff)
	}
}

func TestReaderReadAndEnter(t *testing.T) {
	input := slices.Concat(el(IDInfo, strEl(IDTitle, "hello")), unknownHdr(IDSegment, 8), el(IDVoid, []byte{1, 2}))
	rd := NewReader(bytes.NewReader(input))
	e, _ := rd.Next()
	buf := make([]byte, 3)
	if n, err := rd.Read(buf); n != 3 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if err := rd.Enter(); err == nil {
		t.Error("Enter after Read succeeded")
	}
	e, err := rd.Next() // skips the unread rest of Info
	if err != nil || e.ID != IDSegment || e.Offset != 13 || !e.Unknown() || e.HeaderLen != 12 {
		t.Fatalf("got %+v, %v", e, err)
	}
	if _, err := rd.Read(buf); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("Read of an unknown-size element: %v", err)
	}
	if err := rd.Enter(); err != nil {
		t.Fatal(err)
	}
	if n, err := rd.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read of an entered element: %d, %v", n, err)
	}
	e, err = rd.Next()
	if err != nil || e.ID != IDVoid || e.Level != 1 || e.DataOffset() != 27 {
		t.Fatalf("got %+v, %v", e, err)
	}
	if p, err := io.ReadAll(rd); err != nil || !bytes.Equal(p, []byte{1, 2}) {
		t.Errorf("payload %x, %v", p, err)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
}

func TestReaderInvalid(t *testing.T) {
	// 70 nested BlockGroups; the 65th cannot be entered.
	deep := el(IDVoid)
	var hdrLens []int
	for range 70 {
		outer := el(IDBlockGroup, deep)
		hdrLens = append(hdrLens, len(outer)-len(deep))
		deep = outer
	}
	slices.Reverse(hdrLens)
	deepOff := 0
	for _, n := range hdrLens[:maxDepth] {
		deepOff += n
	}
	tagsOnly := map[ID]bool{IDTags: true}
	segmentOnly := map[ID]bool{IDSegment: true}
	all := map[ID]bool{IDBlockGroup: true}
	tests := []struct {
		name   string
		input  []byte
		enter  map[ID]bool // elements to Enter
		off    int64
		msg    string
		cutEOF bool
	}{
		{"ID all ones", []byte{0xFF, 0x80}, nil, 0, "invalid element ID 0xFF", false},
		{"ID all zeros", []byte{0x80, 0x80}, nil, 0, "invalid element ID 0x80", false},
		{"ID too long", []byte{0x08, 1, 2, 3, 4, 0x80}, nil, 0, "longer than 4 bytes", false},
		{"ID zero byte", []byte{0x00}, nil, 0, "longer than 4 bytes", false},
		{"ID not shortest", []byte{0x40, 0x01, 0x80}, nil, 0, "invalid element ID 0x4001", false},
		{"size too long", []byte{0xEC, 0x00}, nil, 0, "size field of Void is longer than 8 bytes", false},
		{"child exceeds parent", el(IDTags, []byte{0x73, 0x73, 0x85, 1}), tagsOnly, 5, "Tag of 5 bytes exceeds its parent Tags", false},
		{"header crosses parent end", slices.Concat(el(IDTags, []byte{0x73}), []byte{0x73, 0x80}), tagsOnly, 5, "exceeds its parent Tags", false},
		{"truncated ID", []byte{0x1A, 0x45}, nil, 2, "input ends inside element ID", true},
		{"truncated size", []byte{0x1A, 0x45, 0xDF, 0xA3, 0x40}, nil, 5, "input ends inside size of EBML", true},
		{"truncated payload", []byte{0xEC, 0x85, 1, 2}, nil, 4, "input ends inside Void payload, 3 bytes short", true},
		{"truncated known parent", slices.Concat(picEBML(), el(IDSegment, el(IDVoid), el(IDVoid)))[:47], segmentOnly, 47,
			"input ends inside Segment, which ends at offset 49", true},
		{"unknown size not allowed", unknownHdr(IDTags, 1), nil, 0, "Tags has unknown size", false},
		{"nested too deep", deep, all, int64(deepOff), "BlockGroup nested deeper than 64 levels", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.input), iotest.OneByteReader(bytes.NewReader(tt.input))} {
				err := drain(r, tt.enter)
				var ie *InvalidError
				if !errors.As(err, &ie) {
					t.Fatalf("got %v, want *InvalidError", err)
				}
				if ie.Offset != tt.off || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("got %q at offset %d, want %q at %d", err, ie.Offset, tt.msg, tt.off)
				}
				if errors.Is(err, io.ErrUnexpectedEOF) != tt.cutEOF {
					t.Errorf("wraps io.ErrUnexpectedEOF: %v", !tt.cutEOF)
				}
			}
		})
	}
}

// drain reads all elements, entering those in enter, and all payloads; it returns the first error.
func drain(r io.Reader, enter map[ID]bool) error {
	rd := NewReader(r)
	for {
		e, err := rd.Next()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if enter[e.ID] {
			if err := rd.Enter(); err != nil {
				return err
			}
			continue
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return err
		}
	}
}

func TestReaderIOError(t *testing.T) {
	input := readMedia(t, "h264.mkv")[:5000]
	for _, enter := range []map[ID]bool{nil, {IDSegment: true, IDCluster: true}} {
		err := drain(&errReader{data: input, err: errBoom}, enter)
		if !errors.Is(err, errBoom) || errors.Is(err, ErrInvalid) {
			t.Errorf("got %v, want the reader's own error", err)
		}
	}
}

func TestIDString(t *testing.T) {
	if IDCluster.String() != "Cluster" || ID(0x4321).String() != "0x4321" {
		t.Errorf("got %q and %q", IDCluster, ID(0x4321))
	}
}
