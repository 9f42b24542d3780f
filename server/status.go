package server

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streams"
)

// StreamStatusPath is the openkvs-specific API, not in the AWS models, that
// says which streams have a producer connected and readers attached:
// GET StreamStatusPath lists the streams that have either, GET
// StreamStatusPath/NAME describes one stream, active or not. It is
// authenticated as every API is, and authorized as ListStreams (the list
// holds only the streams the caller may list) and DescribeStream (one
// stream).
const StreamStatusPath = "/openkvs/v1/streams"

// StreamStatus is the JSON of one stream in the status API.
type StreamStatus struct {
	StreamName string
	StreamARN  string
	// Producer is the PutMedia session connected now; nil when none is.
	Producer *ProducerStatus `json:",omitempty"`
	// Readers is the number of GetMedia connections open now.
	Readers int
}

// ProducerStatus is a connected PutMedia session.
type ProducerStatus struct {
	ConnectedSince     time.Time
	RemoteAddress      string
	UserAgent          string
	BytesReceived      int64
	FragmentsReceived  int
	FragmentsPersisted int
	// BitrateBps is the newest fragment's bits per second of media time:
	// the stream's bitrate as the producer encodes it.
	BitrateBps int64 `json:",omitempty"`
	// NewestFragment is the last fragment received whole.
	NewestFragment *FragmentStatus `json:",omitempty"`
	// LagMs is how long ago, by the server's clock, the newest fragment's
	// media ended by the producer's: near 0 (up to a fragment's duration
	// between fragments) for a live producer with a synchronised clock,
	// large for one that sends old media or has stalled.
	LagMs int64 `json:",omitempty"`
}

// FragmentStatus describes a fragment in the status API.
type FragmentStatus struct {
	FragmentNumber    string
	ProducerTimestamp time.Time
	ServerTimestamp   time.Time
	DurationMs        int64
	SizeBytes         int64
}

// StreamStatusList is the JSON answer of GET StreamStatusPath.
type StreamStatusList struct {
	Streams []StreamStatus
}

func (s *Server) statusRoutes() {
	s.routes[StreamStatusPath] = route{action: "ListStreams", operation: "ListStreamStatus", method: http.MethodGet, handler: s.listStreamStatus}
	s.routes[StreamStatusPath+"/"] = route{action: "DescribeStream", operation: "DescribeStreamStatus", method: http.MethodGet, handler: s.describeStreamStatus}
}

// listStreamStatus serves GET StreamStatusPath: the streams with a producer
// connected or a reader attached, by name, that the caller may list.
func (s *Server) listStreamStatus(w http.ResponseWriter, r *http.Request) {
	if err := s.authorize(r, "ListStreams", ""); err != nil {
		writeError(w, r, err)
		return
	}
	visible := s.visible(r, "ListStreams")
	out := StreamStatusList{Streams: []StreamStatus{}}
	readers := s.readers()
	now := time.Now()
	seen := map[int64]bool{}
	for _, p := range s.producers() {
		if visible != nil && !visible(p.Stream.Name) {
			continue
		}
		seen[p.Stream.ID] = true
		out.Streams = append(out.Streams, streamStatus(p.Stream, &p, readers[p.Stream.ID], now))
	}
	for id, rd := range readers {
		if seen[id] || (visible != nil && !visible(rd.Stream.Name)) {
			continue
		}
		out.Streams = append(out.Streams, streamStatus(rd.Stream, nil, rd, now))
	}
	sortStatus(out.Streams)
	writeJSON(w, r, out)
}

// describeStreamStatus serves GET StreamStatusPath/NAME.
func (s *Server) describeStreamStatus(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, StreamStatusPath+"/")
	ri := info(r.Context())
	ri.stream = name
	if err := s.authorize(r, "DescribeStream", name); err != nil {
		writeError(w, r, err)
		return
	}
	st, err := s.streams.Resolve(r.Context(), streams.Ref{StreamName: &name})
	if err != nil {
		writeError(w, r, err)
		return
	}
	var prod *ingest.Producer
	for _, p := range s.producers() {
		if p.Stream.ID == st.ID {
			prod = &p
		}
	}
	writeJSON(w, r, streamStatus(st, prod, s.readers()[st.ID], time.Now()))
}

func (s *Server) producers() []ingest.Producer {
	if s.cfg.Ingest == nil {
		return nil
	}
	return s.cfg.Ingest.Producers()
}

func (s *Server) readers() map[int64]media.StreamReaders {
	if s.cfg.Media == nil {
		return nil
	}
	return s.cfg.Media.Readers()
}

func streamStatus(st *store.Stream, p *ingest.Producer, readers media.StreamReaders, now time.Time) StreamStatus {
	out := StreamStatus{StreamName: st.Name, StreamARN: st.ARN, Readers: readers.Readers}
	if p == nil {
		return out
	}
	ps := &ProducerStatus{ConnectedSince: p.Since.UTC().Truncate(time.Millisecond), RemoteAddress: p.RemoteAddr, UserAgent: p.UserAgent,
		BytesReceived: p.Bytes, FragmentsReceived: p.Received, FragmentsPersisted: p.Persisted}
	if f := p.Newest; f.Number != "" {
		ps.NewestFragment = &FragmentStatus{FragmentNumber: f.Number, ProducerTimestamp: f.ProducerTime.UTC(),
			ServerTimestamp: f.ServerTime.UTC(), DurationMs: f.Duration.Milliseconds(), SizeBytes: f.Size}
		if f.Duration > 0 {
			ps.BitrateBps = int64(float64(f.Size*8) / f.Duration.Seconds())
		}
		ps.LagMs = now.Sub(f.ProducerTime.Add(f.Duration)).Milliseconds()
	}
	out.Producer = ps
	return out
}

func sortStatus(list []StreamStatus) {
	slices.SortFunc(list, func(a, b StreamStatus) int { return strings.Compare(a.StreamName, b.StreamName) })
}
