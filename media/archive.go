package media

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streams"
)

// Fragment selector types of ListFragments (kvs-protocol.md §7.1).
const (
	FragmentsByProducerTime = "PRODUCER_TIMESTAMP"
	FragmentsByServerTime   = "SERVER_TIMESTAMP"
)

// DefaultMaxResults is the ListFragments page size when none is asked
// (the model gives none; AWS APIs commonly use 100).
const DefaultMaxResults = 100

// ListFragmentsInput is the ListFragments request.
type ListFragmentsInput struct {
	streams.Ref
	MaxResults       *int64                `json:"MaxResults"`
	NextToken        *string               `json:"NextToken"`
	FragmentSelector *api.FragmentSelector `json:"FragmentSelector"`
}

// Fragment describes one fragment in ListFragments.
type Fragment struct {
	FragmentNumber               string        `json:"FragmentNumber"`
	FragmentSizeInBytes          int64         `json:"FragmentSizeInBytes"`
	ProducerTimestamp            api.Timestamp `json:"ProducerTimestamp"`
	ServerTimestamp              api.Timestamp `json:"ServerTimestamp"`
	FragmentLengthInMilliseconds int64         `json:"FragmentLengthInMilliseconds"`
}

// ListFragmentsOutput is the ListFragments response.
type ListFragmentsOutput struct {
	Fragments []Fragment `json:"Fragments"`
	NextToken string     `json:"NextToken,omitempty"`
}

// pageToken is what a ListFragments NextToken carries: the query and the
// position after the last fragment returned, so the next page goes on in
// (time, number) order however many fragments arrive meanwhile.
type pageToken struct {
	Field  store.TimeField `json:"f"`
	From   int64           `json:"s"`
	To     int64           `json:"e"`
	Time   int64           `json:"t"`
	Number string          `json:"n"`
}

// ListFragments lists a stream's archived fragments in a time range.
func (s *Service) ListFragments(ctx context.Context, st *store.Stream, in *ListFragmentsInput) (*ListFragmentsOutput, error) {
	var v api.Validator
	v.Range("MaxResults", in.MaxResults, 1, 1000)
	v.String("NextToken", in.NextToken, 1, 4096, patternNextToken)
	if sel := in.FragmentSelector; sel != nil {
		v.Required("FragmentSelector.FragmentSelectorType", sel.FragmentSelectorType != nil)
		v.Enum("FragmentSelector.FragmentSelectorType", sel.FragmentSelectorType, FragmentsByProducerTime, FragmentsByServerTime)
		v.Required("FragmentSelector.TimestampRange", sel.TimestampRange != nil)
		if r := sel.TimestampRange; r != nil {
			v.Required("FragmentSelector.TimestampRange.StartTimestamp", r.StartTimestamp != nil)
			v.Required("FragmentSelector.TimestampRange.EndTimestamp", r.EndTimestamp != nil)
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	release, err := s.admit(st, opListFragments)
	if err != nil {
		return nil, err
	}
	release()
	limit := DefaultMaxResults
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	var q store.FragmentQuery
	switch {
	case in.NextToken != nil:
		tok, err := decodeToken(*in.NextToken)
		if err != nil {
			return nil, err
		}
		q = store.FragmentQuery{Field: tok.Field, From: time.UnixMilli(tok.From), To: time.UnixMilli(tok.To),
			After: &store.FragmentCursor{Time: time.UnixMilli(tok.Time), Number: tok.Number}}
	case in.FragmentSelector != nil:
		r := in.FragmentSelector.TimestampRange
		if r.EndTimestamp.Before(r.StartTimestamp.Time) {
			return nil, api.InvalidArgument("FragmentSelector.TimestampRange.EndTimestamp must not be before StartTimestamp.")
		}
		q = store.FragmentQuery{From: r.StartTimestamp.Time, To: r.EndTimestamp.Time}
		if *in.FragmentSelector.FragmentSelectorType == FragmentsByServerTime {
			q.Field = store.ServerTime
		}
	default:
		// FragmentSelector is optional in the model: without one, every
		// fragment of the stream, in the order it arrived.
		q = store.FragmentQuery{Field: store.ServerTime, From: time.UnixMilli(0), To: farFuture}
	}
	// One extra row tells whether another page exists.
	q.Limit = limit + 1
	rows, err := s.catalog.QueryFragments(ctx, st.ID, q)
	if err != nil {
		return nil, err
	}
	out := &ListFragmentsOutput{Fragments: []Fragment{}}
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		t := last.ProducerTime
		if q.Field == store.ServerTime {
			t = last.ServerTime
		}
		out.NextToken = encodeToken(pageToken{Field: q.Field, From: q.From.UnixMilli(), To: q.To.UnixMilli(), Time: t.UnixMilli(), Number: last.Number})
	}
	for _, f := range rows {
		out.Fragments = append(out.Fragments, Fragment{
			FragmentNumber:               f.Number,
			FragmentSizeInBytes:          f.Size,
			ProducerTimestamp:            api.At(f.ProducerTime),
			ServerTimestamp:              api.At(f.ServerTime),
			FragmentLengthInMilliseconds: f.Duration.Milliseconds(),
		})
	}
	return out, nil
}

func encodeToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.StdEncoding.EncodeToString(b)
}

func decodeToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || (t.Field != store.ProducerTime && t.Field != store.ServerTime) {
		return t, api.InvalidArgument("NextToken %q is not a token ListFragments returned.", s)
	}
	return t, nil
}

// GetMediaForFragmentListInput is the GetMediaForFragmentList request.
type GetMediaForFragmentListInput struct {
	streams.Ref
	Fragments []string `json:"Fragments"`
}

// Validate checks the request against the model.
func (in *GetMediaForFragmentListInput) Validate() error {
	var v api.Validator
	v.Required("Fragments", in.Fragments != nil)
	if in.Fragments != nil {
		v.Count("Fragments", len(in.Fragments), 1, 1000)
	}
	for _, n := range in.Fragments {
		v.Text("Fragments.member", n, 1, 128, patternNumber)
	}
	return v.Err()
}

// Exception tags of GetMediaForFragmentList (kvs-protocol.md §7.2): a
// fragment it cannot return is reported in the payload and the rest follow.
const (
	tagExceptionCode    = "AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE"
	tagExceptionMessage = "AWS_KINESISVIDEO_EXCEPTION_MESSAGE"
	msgNotArchived      = "The fragment is not in the stream's archive."
)

// FragmentList is one admitted GetMediaForFragmentList call.
type FragmentList struct {
	svc     *Service
	stream  *store.Stream
	numbers []string
	release func()
	limiter *rate.Limiter
}

// GetMediaForFragmentList admits a GetMediaForFragmentList call for the
// validated input under the stream's limits (calls per second, concurrent
// connections); errors are API errors for before the response starts. The
// caller must Close the FragmentList.
func (s *Service) GetMediaForFragmentList(ctx context.Context, st *store.Stream, in *GetMediaForFragmentListInput) (*FragmentList, error) {
	release, err := s.admit(st, opFragmentList)
	if err != nil {
		return nil, err
	}
	return &FragmentList{svc: s, stream: st, numbers: in.Fragments, release: release, limiter: s.sessionLimiter()}, nil
}

// Close releases the call's connection slot.
func (l *FragmentList) Close() { l.release() }

// Run writes the listed archived fragments as chunks, in the order asked,
// within the session's byte rate. Their start tags carry the GetMedia names
// (FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP), which the KVS
// parser library needs; there are no end tags. A fragment that is not
// archived gets a chunk of error tags instead: the GetMedia ones, which
// the parser library and mkv.Chunk.Err read, and the documented exception
// ones. A number asked for several times is sent each time, as asked.
func (l *FragmentList) Run(ctx context.Context, sink Sink) error {
	s := l.svc
	found := map[string]*store.Fragment{}
	for i := 0; i < len(l.numbers); i += 100 {
		rows, err := s.catalog.Fragments(ctx, l.stream.ID, l.numbers[i:min(i+100, len(l.numbers))])
		if err != nil {
			return fmt.Errorf("look up fragments: %w", err)
		}
		for _, f := range rows {
			found[f.Number] = f
		}
	}
	var buf []byte
	for _, n := range l.numbers {
		f := found[n]
		var err error
		if f != nil {
			buf, err = l.appendArchived(ctx, buf[:0], f, sink)
			if errors.Is(err, store.ErrNotFound) {
				s.log.Error("fragment data missing from the archive", "stream", l.stream.Name, "fragment", n, "err", err)
			}
		}
		if f == nil || errors.Is(err, store.ErrNotFound) {
			buf = mkv.AppendTags(mkv.AppendDocumentStart(buf[:0], nil), mkv.SimpleTag{Name: mkv.TagFragmentNumber, Value: n},
				mkv.SimpleTag{Name: mkv.TagErrorID, Value: strconv.Itoa(errIDNotFound)},
				mkv.SimpleTag{Name: mkv.TagErrorCode, Value: errCodes[errIDNotFound]},
				mkv.SimpleTag{Name: tagExceptionCode, Value: strconv.Itoa(errIDNotFound)},
				mkv.SimpleTag{Name: tagExceptionMessage, Value: msgNotArchived})
			err = pace(ctx, l.limiter, sink, buf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// appendArchived writes an archived fragment as a chunk without end tags.
func (l *FragmentList) appendArchived(ctx context.Context, buf []byte, f *store.Fragment, sink Sink) ([]byte, error) {
	header, err := l.svc.header(ctx, f.HeaderKey)
	if err != nil {
		return buf, err
	}
	blob, err := l.svc.blobs.Open(ctx, f.BlobKey)
	if err != nil {
		return buf, err
	}
	defer blob.Close()
	buf = append(buf, header...)
	buf = mkv.AppendStartTags(buf, f.Number, f.ServerTime.UnixMilli(), f.ProducerTime.UnixMilli())
	return buf, sendBlob(ctx, l.limiter, sink, buf, blob, f.Size, nil)
}
