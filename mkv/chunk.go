package mkv

import (
	"fmt"
	"io"
	"strconv"
)

// MaxChunkSize bounds the bytes a ChunkReader buffers for one chunk: a 50 MB fragment plus
// its header and tags.
const MaxChunkSize = 64 << 20

// Chunk is one GetMedia chunk: a complete MKV document of EBML header, unknown-size Segment,
// the replayed producer header, KVS start Tags, one Cluster, trailing producer elements and
// KVS end Tags (spec 5.3). Its byte slices are its own and may be kept.
type Chunk struct {
	Data     []byte            // the whole chunk as received
	Offset   int64             // absolute payload offset of the chunk's first byte
	Header   []byte            // the prefix before the first KVS Tags element (or the Cluster)
	Cluster  []byte            // the producer's Cluster element, nil in an error chunk
	Trailing []byte            // producer level-1 elements after the Cluster, KVS Tags left out
	Tags     map[string]string // every SimpleTag of the chunk's Tags elements; a later duplicate wins
}

// Err returns the chunk's in-band error (spec 5.5) as a *MediaError, or nil if it has none.
func (c *Chunk) Err() error {
	idText, hasID := c.Tags[TagErrorID]
	code, hasCode := c.Tags[TagErrorCode]
	if !hasID && !hasCode {
		return nil
	}
	id, _ := strconv.ParseInt(idText, 10, 64)
	return &MediaError{FragmentNumber: c.Tags[TagFragmentNumber], ID: id, Code: code}
}

// MediaError is an error KVS reported inside a GetMedia payload (spec 5.5).
type MediaError struct {
	FragmentNumber string // AWS_KINESISVIDEO_FRAGMENT_NUMBER of the error chunk
	ID             int64  // AWS_KINESISVIDEO_ERROR_ID, 0 if missing or not a number
	Code           string // AWS_KINESISVIDEO_ERROR_CODE
}

// Error describes the in-band error.
func (e *MediaError) Error() string {
	return fmt.Sprintf("mkv: GetMedia error %d (%s) at fragment %s", e.ID, e.Code, e.FragmentNumber)
}

// ChunkReader splits a GetMedia payload into chunks, each starting at an EBML header at
// level 0, as consumers such as the KVS parser libraries do (spec 5.6).
type ChunkReader struct {
	r       *Reader
	pending Element // EBML header that ended the previous chunk
	hasNext bool    // pending is valid
	err     error   // sticky
	onPart  func(ChunkPart) error
}

// PartKind says where a ChunkPart belongs in its chunk (spec 5.3).
type PartKind uint8

// Chunk parts, in the order a chunk holds them.
const (
	PartHeader    PartKind = iota + 1 // EBML header, Segment header, producer header elements
	PartStartTags                     // a KVS Tags element before the Cluster (or an in-band error)
	PartBody                          // the producer's bytes between the start and end Tags
	PartEndTags                       // a KVS Tags element after the Cluster
)

// ChunkPart is one element of a chunk, handed to OnPart as soon as it is read. A Cluster
// comes child by child (its own part is its ID and size), so that a live reader can pass
// each frame on as it arrives; concatenating a chunk's parts gives its Data.
type ChunkPart struct {
	Kind PartKind
	Data []byte            // the element's bytes; valid only during the call
	Tags map[string]string // the SimpleTags of the chunk read so far, this part's included; read-only
}

// NewChunkReader returns a ChunkReader reading a GetMedia payload from r.
func NewChunkReader(r io.Reader) *ChunkReader {
	return &ChunkReader{r: NewReader(r)}
}

// OnPart makes Next call fn with every element of a chunk as soon as it is read, before the
// chunk is whole; an error from fn ends Next with it.
func (c *ChunkReader) OnPart(fn func(ChunkPart) error) { c.onPart = fn }

// part hands one element to the OnPart function, if there is one.
func (c *ChunkReader) part(kind PartKind, data []byte, tags map[string]string) error {
	if c.onPart == nil {
		return nil
	}
	return c.onPart(ChunkPart{Kind: kind, Data: data, Tags: tags})
}

// Next returns the next chunk, or io.EOF after the last one. A chunk ends with the Tags
// element that carries AWS_KINESISVIDEO_CONTINUATION_TOKEN or an in-band error, always a
// GetMedia chunk's last element, so it is returned as soon as that element is read: a live
// reader does not wait for the next fragment. Chunks without such tags
// (GetMediaForFragmentList) end where the next chunk begins or the payload ends.
func (c *ChunkReader) Next() (*Chunk, error) {
	if c.err != nil {
		return nil, c.err
	}
	ch, err := c.readChunk()
	if err != nil {
		c.err = err
		return nil, err
	}
	return ch, nil
}

// ReadChunks reads a whole finished payload, such as a GetMediaForFragmentList response or
// a GetMedia response that has ended, into its chunks.
func ReadChunks(r io.Reader) ([]*Chunk, error) {
	cr := NewChunkReader(r)
	var out []*Chunk
	for {
		c, err := cr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("chunk %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
}

func (c *ChunkReader) readChunk() (*Chunk, error) {
	e, err := c.first()
	if err != nil {
		return nil, err
	}
	if e.Level != 0 || e.ID != IDEBML {
		return nil, invalidf(e.Offset, "chunk starts with %v instead of an EBML header", e.ID)
	}
	ch := &Chunk{Offset: e.Offset, Tags: make(map[string]string)}
	data, err := c.readWhole(nil, e)
	if err != nil {
		return nil, err
	}
	if err := c.part(PartHeader, data, ch.Tags); err != nil {
		return nil, err
	}
	if e, err = c.r.Next(); err != nil || e.ID != IDSegment || e.Level != 0 {
		if err == io.EOF {
			return nil, &InvalidError{Offset: c.r.off, Msg: "chunk has no Segment", Err: io.ErrUnexpectedEOF}
		} else if err == nil {
			err = invalidf(e.Offset, "%v where a chunk's Segment belongs", e.ID)
		}
		return nil, err
	}
	data = e.AppendHeader(data)
	if err := c.part(PartHeader, data[len(data)-e.HeaderLen:], ch.Tags); err != nil {
		return nil, err
	}
	if err := c.r.Enter(); err != nil {
		return nil, err
	}
	headerEnd, clusterStart, clusterEnd := -1, -1, -1
	for {
		e, err := c.r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if e.Level == 0 {
			if e.ID != IDEBML {
				return nil, invalidf(e.Offset, "%v at the top level of a chunk", e.ID)
			}
			c.pending, c.hasNext = e, true
			break
		}
		if e.Level == 1 && clusterStart >= 0 && clusterEnd < 0 {
			clusterEnd = len(data)
		}
		if e.Level == 1 && e.ID == IDCluster {
			if clusterStart >= 0 {
				return nil, invalidf(e.Offset, "second Cluster in one chunk")
			}
			if headerEnd < 0 {
				headerEnd = len(data)
			}
			clusterStart = len(data)
			// Collected child by child, so that OnPart sees each frame as it arrives; it
			// ends where the next level-1 element starts (or, of known size, where its
			// size says).
			if total := int64(len(data)) + int64(e.HeaderLen) + e.Size; !e.Unknown() && total > MaxChunkSize {
				return nil, tooLarge(e, total, MaxChunkSize)
			}
			data = e.AppendHeader(data)
			if err := c.part(PartBody, data[clusterStart:], ch.Tags); err != nil {
				return nil, err
			}
			if err := c.r.Enter(); err != nil {
				return nil, err
			}
			continue
		}
		start := len(data)
		if data, err = c.readWhole(data, e); err != nil {
			return nil, err
		}
		if e.Level > 1 {
			if err := c.part(PartBody, data[start:], ch.Tags); err != nil {
				return nil, err
			}
			continue
		}
		service, last := false, false
		if e.ID == IDTags {
			tags, err := appendSimpleTags(nil, data[start+e.HeaderLen:], e.DataOffset())
			if err != nil {
				return nil, err
			}
			for _, t := range tags {
				ch.Tags[t.Name] = t.Value
				service = service || isServiceTag(t.Name)
				last = last || t.Name == TagContinuationToken || t.Name == TagErrorID
			}
		}
		kind := PartBody
		switch {
		case service && headerEnd < 0:
			headerEnd = start
			kind = PartStartTags
		case service && clusterStart < 0:
			kind = PartStartTags
		case service:
			kind = PartEndTags
		case headerEnd < 0:
			kind = PartHeader
		case clusterStart >= 0:
			ch.Trailing = append(ch.Trailing, data[start:]...)
		}
		if err := c.part(kind, data[start:], ch.Tags); err != nil {
			return nil, err
		}
		if last {
			break
		}
	}
	if clusterStart >= 0 {
		if clusterEnd < 0 {
			clusterEnd = len(data)
		}
		ch.Cluster = data[clusterStart:clusterEnd:clusterEnd]
	}
	if headerEnd < 0 {
		headerEnd = len(data)
	}
	ch.Data = data
	ch.Header = data[:headerEnd:headerEnd]
	return ch, nil
}

// first returns the chunk's first element: the EBML header that ended the previous chunk, or
// the next element of the payload.
func (c *ChunkReader) first() (Element, error) {
	if c.hasNext {
		c.hasNext = false
		return c.pending, nil
	}
	return c.r.Next()
}

// readWhole appends element e to dst, keeping the chunk within MaxChunkSize.
func (c *ChunkReader) readWhole(dst []byte, e Element) ([]byte, error) {
	if e.Unknown() {
		return dst, invalidf(e.Offset, "%v of unknown size where a sized element is required", e.ID)
	}
	if total := int64(len(dst)) + int64(e.HeaderLen) + e.Size; total > MaxChunkSize {
		return dst, tooLarge(e, total, MaxChunkSize)
	}
	return c.r.appendPayload(e.AppendHeader(dst))
}
