package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// api speaks the few KVS operations the bench needs as plain HTTP, with no
// signing: the bench runs against servers with authentication off.
type api struct {
	url    string
	client *http.Client
}

// newAPI returns a client of the server at url. Every connection is its
// own: streaming calls hold theirs for as long as they run.
func newAPI(url string) *api {
	return &api{url: url, client: &http.Client{Transport: newTransport()}}
}

// newTransport is an HTTP/1.1 transport for loopback benchmarking: no proxy,
// no compression, idle connections kept for reuse, and buffers large enough
// that a fast stream is not read 4 KB at a time.
func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ReadBufferSize:      64 << 10,
		WriteBufferSize:     64 << 10,
	}
}

// close releases idle connections.
func (a *api) close() { a.client.CloseIdleConnections() }

// call posts a JSON request to path and decodes a 200 answer into out
// (unless out is nil); any other status is an error with the body.
func (a *api) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", path, err)
	}
	return nil
}

// createStream creates a stream that keeps its data for retentionHours.
func (a *api) createStream(ctx context.Context, name string, retentionHours int) error {
	return a.call(ctx, "/createStream", map[string]any{"StreamName": name, "DataRetentionInHours": retentionHours}, nil)
}

// deleteStream deletes a stream the bench created on a server it does not
// own (--target).
func (a *api) deleteStream(ctx context.Context, name string) error {
	var d struct {
		StreamInfo struct{ StreamARN, Version string }
	}
	if err := a.call(ctx, "/describeStream", map[string]any{"StreamName": name}, &d); err != nil {
		return err
	}
	return a.call(ctx, "/deleteStream", map[string]any{"StreamARN": d.StreamInfo.StreamARN, "CurrentVersion": d.StreamInfo.Version}, nil)
}

// ack is one PutMedia acknowledgement (kvs-protocol.md §4.3).
type ack struct {
	EventType        string
	FragmentTimecode uint64
	FragmentNumber   string
	ErrorID          int `json:"ErrorId"`
	ErrorCode        string
}

// putMedia sends body to stream with RELATIVE timecodes from now and calls
// onAck (from the caller's goroutine) for each ACK until the response ends.
// An ERROR ACK ends it with an error.
func (a *api) putMedia(ctx context.Context, stream string, body io.Reader, onAck func(ack)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/putMedia", body)
	if err != nil {
		return err
	}
	ms := time.Now().UnixMilli()
	req.Header.Set("x-amzn-stream-name", stream)
	req.Header.Set("x-amzn-fragment-timecode-type", "RELATIVE")
	req.Header.Set("x-amzn-producer-start-timestamp", fmt.Sprintf("%d.%03d", ms/1000, ms%1000))
	req.Header.Set("x-amzn-fragment-acknowledgment-required", "1")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("putMedia %s: %w", stream, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("putMedia %s: %s: %s", stream, resp.Status, bytes.TrimSpace(b))
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var k ack
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return fmt.Errorf("putMedia %s: ACK %q: %w", stream, sc.Bytes(), err)
		}
		if k.EventType == "ERROR" {
			return fmt.Errorf("putMedia %s: ERROR ACK %d %s for fragment %s", stream, k.ErrorID, k.ErrorCode, k.FragmentNumber)
		}
		onAck(k)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("putMedia %s: read ACKs: %w", stream, err)
	}
	return nil
}

// dataEndpoint returns the endpoint GetDataEndpoint names for apiName of
// stream.
func (a *api) dataEndpoint(ctx context.Context, stream, apiName string) (string, error) {
	var out struct{ DataEndpoint string }
	err := a.call(ctx, "/getDataEndpoint", map[string]any{"StreamName": stream, "APIName": apiName}, &out)
	return out.DataEndpoint, err
}

// getMedia starts a GetMedia call with the given start selector type and
// returns the payload once the server answered 200.
func (a *api) getMedia(ctx context.Context, stream, selector string) (io.ReadCloser, error) {
	return a.post(ctx, "/getMedia", map[string]any{"StreamName": stream, "StartSelector": map[string]string{"StartSelectorType": selector}})
}

// post sends a JSON request to path and returns the body of a 200 answer,
// a media payload.
func (a *api) post(ctx context.Context, path string, in any) (io.ReadCloser, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return resp.Body, nil
}

// get fetches url and returns the body once the server answered 200.
func (a *api) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// upload posts body to the baseline server's /upload with an fsync every
// cadence bytes and waits for its answer.
func (a *api) upload(ctx context.Context, body io.Reader, cadence int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url+"/upload?fsync="+strconv.Itoa(cadence), body)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upload: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}
