package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// statusPath is openkvs's own stream status API (not part of AWS's KVS).
const statusPath = "/openkvs/v1/streams"

// StatusOptions configure a call of the stream status API.
type StatusOptions struct {
	Endpoint   string // the server's base URL
	HTTPClient *http.Client
	// Sign, when set, signs each request (SigV4). The request is a GET
	// whose req.GetBody returns the empty body to hash.
	Sign func(*http.Request) error
}

// StreamStatus is what a server knows about a stream's live activity.
type StreamStatus struct {
	StreamName string
	StreamARN  string
	// Producer is the PutMedia session connected now; nil when none is.
	Producer *ProducerStatus
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
	// BitrateBps is the newest fragment's size over its media duration, in
	// bits per second; 0 before the first fragment.
	BitrateBps int64
	// NewestFragment is the last fragment received whole; nil before the
	// first.
	NewestFragment *FragmentStatus
	// LagMs is how long ago, by the server's clock, the newest fragment's
	// media ended by the producer's clock.
	LagMs int64
}

// FragmentStatus describes the newest fragment of a producer.
type FragmentStatus struct {
	FragmentNumber    string
	ProducerTimestamp time.Time
	ServerTimestamp   time.Time
	DurationMs        int64
	SizeBytes         int64
}

// ListStreamStatus returns the streams that have a producer connected or a
// reader attached now, by name (only those the caller may list, with
// authentication on).
func ListStreamStatus(ctx context.Context, opts StatusOptions) ([]StreamStatus, error) {
	var out struct{ Streams []StreamStatus }
	if err := getStatus(ctx, opts, statusPath, &out); err != nil {
		return nil, err
	}
	return out.Streams, nil
}

// DescribeStreamStatus returns the status of one stream, active or not; an
// unknown stream is an *APIError of type ResourceNotFoundException.
func DescribeStreamStatus(ctx context.Context, opts StatusOptions, stream string) (*StreamStatus, error) {
	var out StreamStatus
	if err := getStatus(ctx, opts, statusPath+"/"+url.PathEscape(stream), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func getStatus(ctx context.Context, opts StatusOptions, path string, out any) error {
	const op = "StreamStatus"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(opts.Endpoint, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
	if opts.Sign != nil {
		if err := opts.Sign(req); err != nil {
			return fmt.Errorf("%s: sign: %w", op, err)
		}
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(op, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}
