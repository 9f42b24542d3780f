package mkv

import "bytes"

// defaultTimecodeScale is the Matroska default TimecodeScale: 1 ms units (RFC 9559 §5.1.2.1).
const defaultTimecodeScale = 1_000_000

// headerBuilder collects a stream header while it arrives and parses the parts ingest needs.
type headerBuilder struct {
	data     []byte       // input bytes so far
	ebmlLen  int          // length of the EBML header element at the start of data
	parts    []headerPart // level-1 elements, in order
	infoSeen bool
	h        Header
}

// headerPart is one level-1 element of the header, as a range of data.
type headerPart struct {
	start, end int
	beforeInfo bool // a Tags element before Info: first-fragment metadata (spec 5.3 note A)
}

func newHeaderBuilder() *headerBuilder {
	return &headerBuilder{h: Header{TimecodeScale: defaultTimecodeScale}}
}

// parseEBML reads the DocType from the EBML header element that fills data.
func (b *headerBuilder) parseEBML(e Element) error {
	b.ebmlLen = len(b.data)
	c := newChildren(b.data[e.HeaderLen:], e.DataOffset())
	for c.next() {
		if c.id == IDDocType {
			b.h.DocType = decodeString(c.body)
		}
	}
	return c.err
}

// addPart records and parses the level-1 element e that occupies data[start:].
func (b *headerBuilder) addPart(e Element, start int) error {
	payload := b.data[start+e.HeaderLen:]
	part := headerPart{start: start, end: len(b.data)}
	var err error
	switch e.ID {
	case IDInfo:
		b.infoSeen = true
		err = b.parseInfo(payload, e.DataOffset())
	case IDTracks:
		err = b.parseTracks(payload, e.DataOffset())
	case IDTags:
		if !b.infoSeen {
			part.beforeInfo = true
			b.h.Tags, err = appendSimpleTags(b.h.Tags, payload, e.DataOffset())
		}
	}
	b.parts = append(b.parts, part)
	return err
}

func (b *headerBuilder) parseInfo(payload []byte, base int64) error {
	c := newChildren(payload, base)
	for c.next() {
		if c.id != IDTimecodeScale {
			continue
		}
		v, ok := c.uint()
		if !ok {
			break
		}
		if v == 0 {
			return invalidf(c.off, "TimecodeScale is 0")
		}
		b.h.TimecodeScale = v
	}
	return c.err
}

func (b *headerBuilder) parseTracks(payload []byte, base int64) error {
	tracks := newChildren(payload, base)
	for tracks.next() {
		if tracks.id != IDTrackEntry {
			continue
		}
		var t Track
		c := tracks.sub()
		for c.next() {
			switch c.id {
			case IDTrackNumber:
				t.Number, _ = c.uint()
			case IDTrackUID:
				t.UID, _ = c.uint()
			case IDTrackType:
				t.Type, _ = c.uint()
			case IDCodecID:
				t.CodecID = decodeString(c.body)
			case IDCodecPrivate:
				t.CodecPrivate = bytes.Clone(c.body)
			}
		}
		if c.err != nil {
			return c.err
		}
		b.h.Tracks = append(b.h.Tracks, t)
	}
	return tracks.err
}

// finish completes the Header with both GetMedia chunk prefixes (spec 5.3).
func (b *headerBuilder) finish() *Header {
	h := &b.h
	h.Data = b.data
	h.EBML = b.data[:b.ebmlLen]
	h.FirstChunkHeader = b.chunkHeader(true)
	h.ChunkHeader = b.chunkHeader(false)
	return h
}

// chunkHeader builds a chunk prefix: the producer's EBML header unchanged, a Segment of
// 8-byte unknown size, then the level-1 elements unchanged. Chunks after the first leave out
// Tags that came before Info, as KVS does (spec 5.3 note A, test_mixed_tags capture).
func (b *headerBuilder) chunkHeader(first bool) []byte {
	out := append([]byte(nil), b.data[:b.ebmlLen]...)
	out = appendUnknownSegment(out)
	for _, p := range b.parts {
		if first || !p.beforeInfo {
			out = append(out, b.data[p.start:p.end]...)
		}
	}
	return out
}
