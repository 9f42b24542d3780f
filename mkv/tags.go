package mkv

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Tag names KVS writes into GetMedia chunks (spec 5.3–5.5) or reads from producers (spec 4.2).
const (
	TagFragmentNumber    = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"    // start tags: 47-digit fragment number
	TagServerTimestamp   = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"   // start tags: ingest time, "%d.%03d" seconds
	TagProducerTimestamp = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP" // start tags: fragment timestamp, "%d.%03d" seconds
	TagMillisBehindNow   = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"  // end tags: how far the chunk lags, in ms
	TagContinuationToken = "AWS_KINESISVIDEO_CONTINUATION_TOKEN" // end tags: token to resume after this chunk
	TagErrorCode         = "AWS_KINESISVIDEO_ERROR_CODE"         // in-band error description
	TagErrorID           = "AWS_KINESISVIDEO_ERROR_ID"           // in-band error number, decimal
	TagEndOfFragment     = "AWS_KINESISVIDEO_END_OF_FRAGMENT"    // producer EoFR tag: closes the open fragment
)

// SimpleTag is one Matroska SimpleTag: a TagName with its TagString (or TagBinary) value.
type SimpleTag struct {
	Name, Value string
}

// isServiceTag reports whether name is one of the tags the GetMedia service itself writes.
func isServiceTag(name string) bool {
	switch name {
	case TagFragmentNumber, TagServerTimestamp, TagProducerTimestamp, TagMillisBehindNow,
		TagContinuationToken, TagErrorCode, TagErrorID:
		return true
	}
	return false
}

// appendSimpleTags appends the SimpleTags of a Tags element payload (Tags > Tag > SimpleTag)
// to dst. base is the payload's absolute offset. TagBinary values are returned as raw bytes;
// nested SimpleTags are not descended into.
func appendSimpleTags(dst []SimpleTag, payload []byte, base int64) ([]SimpleTag, error) {
	tags := newChildren(payload, base)
	for tags.next() {
		if tags.id != IDTag {
			continue
		}
		tag := tags.sub()
		for tag.next() {
			if tag.id != IDSimpleTag {
				continue
			}
			st := tag.sub()
			var t SimpleTag
			for st.next() {
				switch st.id {
				case IDTagName:
					t.Name = decodeString(st.body)
				case IDTagString:
					t.Value = decodeString(st.body)
				case IDTagBinary:
					t.Value = string(st.body)
				}
			}
			if st.err != nil {
				return dst, st.err
			}
			dst = append(dst, t)
		}
		if tag.err != nil {
			return dst, tag.err
		}
	}
	return dst, tags.err
}

// AppendTags appends a Tags element holding one Tag with a SimpleTag (TagName + TagString)
// per tag, in the exact layout KVS uses for its GetMedia tags (spec 5.3): no Targets and
// every size field 4 bytes wide (10 xx xx xx).
func AppendTags(dst []byte, tags ...SimpleTag) []byte {
	tagSize := 0
	for _, t := range tags {
		tagSize += 6 + simpleTagSize(t)
	}
	dst = appendID(dst, IDTags)
	dst = appendSize4(dst, 6+tagSize)
	dst = appendID(dst, IDTag)
	dst = appendSize4(dst, tagSize)
	for _, t := range tags {
		dst = appendID(dst, IDSimpleTag)
		dst = appendSize4(dst, simpleTagSize(t))
		dst = appendID(dst, IDTagName)
		dst = appendSize4(dst, len(t.Name))
		dst = append(dst, t.Name...)
		dst = appendID(dst, IDTagString)
		dst = appendSize4(dst, len(t.Value))
		dst = append(dst, t.Value...)
	}
	return dst
}

// simpleTagSize is the payload size of a SimpleTag written by AppendTags.
func simpleTagSize(t SimpleTag) int {
	return 6 + len(t.Name) + 6 + len(t.Value)
}

// FormatTimestampMillis formats a millisecond timestamp as seconds with exactly three
// decimals ("%d.%03d"), the format of KVS's timestamp tags (spec 5.4): 1511852109126 gives
// "1511852109.126".
func FormatTimestampMillis(ms int64) string {
	sign := ""
	u := uint64(ms)
	if ms < 0 {
		sign, u = "-", -u
	}
	frac := strconv.FormatUint(1000+u%1000, 10)[1:]
	return sign + strconv.FormatUint(u/1000, 10) + "." + frac
}

// ParseTimestamp reads a KVS timestamp tag value, epoch seconds with decimals (spec 5.4), to
// the millisecond.
func ParseTimestamp(v string) (time.Time, error) {
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(s, 0) || math.IsNaN(s) {
		return time.Time{}, fmt.Errorf("%q is not epoch seconds", v)
	}
	return time.UnixMilli(int64(math.Round(s * 1000))), nil
}

// AppendStartTags appends the Tags element KVS places before a chunk's Cluster: fragment
// number, server timestamp and producer timestamp (spec 5.3).
func AppendStartTags(dst []byte, fragmentNumber string, serverMillis, producerMillis int64) []byte {
	return AppendTags(dst,
		SimpleTag{TagFragmentNumber, fragmentNumber},
		SimpleTag{TagServerTimestamp, FormatTimestampMillis(serverMillis)},
		SimpleTag{TagProducerTimestamp, FormatTimestampMillis(producerMillis)})
}

// AppendEndTags appends the Tags element KVS places at the end of a chunk: milliseconds
// behind now and the continuation token (spec 5.3).
func AppendEndTags(dst []byte, millisBehindNow int64, continuationToken string) []byte {
	return AppendTags(dst,
		SimpleTag{TagMillisBehindNow, strconv.FormatInt(millisBehindNow, 10)},
		SimpleTag{TagContinuationToken, continuationToken})
}

// defaultEBMLHeader is the EBML header the KVS producer SDK writes (spec 4.2, PIC MkvStatics.c).
var defaultEBMLHeader = []byte{
	0x1A, 0x45, 0xDF, 0xA3, 0xA3,
	0x42, 0x86, 0x81, 0x01,
	0x42, 0xF7, 0x81, 0x01,
	0x42, 0xF2, 0x81, 0x04,
	0x42, 0xF3, 0x81, 0x08,
	0x42, 0x82, 0x88, 'm', 'a', 't', 'r', 'o', 's', 'k', 'a',
	0x42, 0x87, 0x81, 0x02,
	0x42, 0x85, 0x81, 0x02,
}

// appendUnknownSegment appends a Segment header with the 8-byte unknown size every GetMedia
// chunk uses (01 FF FF FF FF FF FF FF, spec 5.3).
func appendUnknownSegment(dst []byte) []byte {
	dst = appendID(dst, IDSegment)
	return appendSizeN(dst, UnknownSize, 8)
}

// AppendDocumentStart appends the start of a chunk that carries only tags: an EBML header
// and a Segment of unknown size. ebmlHeader is the stream's EBML header element; nil selects
// the producer SDK's standard Matroska header.
func AppendDocumentStart(dst, ebmlHeader []byte) []byte {
	if ebmlHeader == nil {
		ebmlHeader = defaultEBMLHeader
	}
	return appendUnknownSegment(append(dst, ebmlHeader...))
}

// AppendErrorChunk appends a complete in-band GetMedia error chunk: an EBML header, a
// Segment of unknown size and a Tags element with the fragment number, error ID and error
// code (spec 5.5 recommendation). ebmlHeader is the stream's EBML header element
// (Header.EBML); nil selects the producer SDK's standard Matroska header.
func AppendErrorChunk(dst, ebmlHeader []byte, fragmentNumber string, errorID int64, errorCode string) []byte {
	return AppendTags(AppendDocumentStart(dst, ebmlHeader),
		SimpleTag{TagFragmentNumber, fragmentNumber},
		SimpleTag{TagErrorID, strconv.FormatInt(errorID, 10)},
		SimpleTag{TagErrorCode, errorCode})
}
