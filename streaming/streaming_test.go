package streaming

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
)

// clock is a test clock that moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a streaming service over a real catalog and blob store holding
// one stream whose fragments the test adds.
type fixture struct {
	t       *testing.T
	svc     *Service
	catalog store.Catalog
	blobs   store.Blobs
	stream  *store.Stream
	clock   *clock
	header  []byte   // stream header of the fixture file
	cluster [][]byte // its three Clusters
	seq     uint64
	names   map[string]string // fragment number: "frag <seq>"
}

var t0 = time.UnixMilli(1_796_000_000_000)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	catalog, err := sqlite.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { catalog.Close() })
	blobs, err := file.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	st := &store.Stream{Name: "cam", ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1", Status: store.StatusActive,
		Version: "v", RetentionHours: 1, CreationTime: t0}
	if err := catalog.CreateStream(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	c := &clock{now: t0}
	svc, err := New(catalog, blobs, Options{Key: bytes.Repeat([]byte{7}, 32), Now: c.Now, PlaylistsPerSecond: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, svc: svc, catalog: catalog, blobs: blobs, stream: st, clock: c, names: map[string]string{}}
	f.header, f.cluster = splitFile(t, "../testdata/media/h264.mkv")
	return f
}

// splitFile returns a file's stream header and its Clusters.
func splitFile(t *testing.T, path string) ([]byte, [][]byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sp := mkv.NewSplitter(bytes.NewReader(data), mkv.SplitterOptions{})
	var header []byte
	var clusters [][]byte
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return header, clusters
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e := ev.(type) {
		case *mkv.Header:
			header = e.FirstChunkHeader
		case *mkv.FragmentStart:
			clusters = append(clusters, bytes.Clone(e.Data))
		case *mkv.Frame, *mkv.FragmentData:
			clusters[len(clusters)-1] = append(clusters[len(clusters)-1], e.Bytes()...)
		}
	}
}

// add stores a fragment (the fixture's Clusters in turn) that starts at
// offset after t0 by both clocks, with the given header.
func (f *fixture) add(offset, duration time.Duration, header []byte) *store.Fragment {
	f.t.Helper()
	ctx := context.Background()
	f.seq++
	hkey := fmt.Sprintf("h/%x", sha256.Sum256(header))
	if _, err := f.blobs.Open(ctx, hkey); err != nil {
		if err := f.blobs.Put(ctx, hkey, bytes.NewReader(header), int64(len(header))); err != nil {
			f.t.Fatal(err)
		}
	}
	fr := &store.Fragment{StreamID: f.stream.ID, Number: store.FragmentNumber(f.seq, t0.UnixMilli()),
		ProducerTime: t0.Add(offset), ServerTime: t0.Add(offset), Duration: duration,
		Size: int64(len(f.cluster[f.seq%3])), BlobKey: "f/" + string(rune('a'+f.seq)), HeaderKey: hkey}
	if err := f.blobs.Put(ctx, fr.BlobKey, bytes.NewReader(f.cluster[f.seq%3]), int64(len(f.cluster[f.seq%3]))); err != nil {
		f.t.Fatal(err)
	}
	if err := f.catalog.AddFragments(ctx, nil, []*store.Fragment{fr}); err != nil {
		f.t.Fatal(err)
	}
	f.names[fr.Number] = fmt.Sprintf("frag %02d", f.seq)
	return fr
}

func (f *fixture) hls(in HLSInput) (string, error) {
	in.StreamName = &f.stream.Name
	out, err := f.svc.HLS(context.Background(), f.stream, &in, "http://kvs")
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(out.HLSStreamingSessionURL, "http://kvs/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken="), nil
}

func (f *fixture) media(token string) string {
	f.t.Helper()
	pl, err := f.svc.HLSMedia(context.Background(), token, 1, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(pl.Body)
}

func str(s string) *string { return &s }

// tags returns what a sliding window changes in a playlist: the sequence
// lines, discontinuities, init segments and fragments, by name.
func (f *fixture) tags(pl string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(pl), "\n") {
		switch {
		case strings.HasPrefix(l, "getMP4MediaFragment"):
			num, _, _ := strings.Cut(strings.TrimPrefix(l, "getMP4MediaFragment.mp4?FragmentNumber="), "&")
			out = append(out, f.names[num])
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE"), strings.HasPrefix(l, "#EXT-X-DISCONTINUITY"):
			out = append(out, l)
		case strings.HasPrefix(l, "#EXT-X-MAP"):
			_, seq, _ := strings.Cut(l, "&SequenceNumber=")
			out = append(out, "map "+strings.TrimSuffix(seq, `"`))
		}
	}
	return out
}

// TestLiveWindowDiscontinuities slides a LIVE window of 2 over fragments with
// a gap and a change of codec setup: media sequence numbers stay with their
// fragments, discontinuities mark the gap and the new init segment, and
// EXT-X-DISCONTINUITY-SEQUENCE counts those that slid out.
func TestLiveWindowDiscontinuities(t *testing.T) {
	f := newFixture(t)
	changed := bytes.Replace(f.header, []byte("matroska"), []byte("matroskb"), 1) // same tracks, other bytes
	f.add(0, 2*time.Second, f.header)
	f.add(2*time.Second, 2*time.Second, f.header)
	f.clock.advance(5 * time.Second)
	tok, err := f.hls(HLSInput{DiscontinuityMode: str(DiscontinuityOnGap), MaxMediaPlaylistFragmentResults: ptr(int64(2))})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"#EXT-X-MEDIA-SEQUENCE:0", "map 0", "frag 01", "frag 02"}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("first window (-want +got):\n%s", d)
	}
	f.add(5*time.Second, 2*time.Second, f.header) // a 1 s gap
	f.add(7*time.Second, 2*time.Second, changed)  // a new codec setup
	want = []string{"#EXT-X-MEDIA-SEQUENCE:2", "#EXT-X-DISCONTINUITY", "map 0", "frag 03", "#EXT-X-DISCONTINUITY", "map 1", "frag 04"}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("window after a gap and a new header (-want +got):\n%s", d)
	}
	f.add(9*time.Second, 2*time.Second, changed)
	want = []string{"#EXT-X-MEDIA-SEQUENCE:3", "#EXT-X-DISCONTINUITY-SEQUENCE:1", "#EXT-X-DISCONTINUITY", "map 1", "frag 04", "frag 05"}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("window after the gap slid out (-want +got):\n%s", d)
	}
	// A fragment older than the newest listed is never added.
	f.add(8*time.Second, 2*time.Second, changed)
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("window after an older fragment (-want +got):\n%s", d)
	}
}

func ptr[T any](v T) *T { return &v }

// TestTokenLifetime checks expiry on the session's own clock, a token signed
// with another key, and that a valid token is served by a new process that
// never saw the session (same key).
func TestTokenLifetime(t *testing.T) {
	f := newFixture(t)
	f.add(0, 2*time.Second, f.header)
	tok, err := f.hls(HLSInput{Expires: ptr(int64(300))})
	if err != nil {
		t.Fatal(err)
	}
	other, err := New(f.catalog, f.blobs, Options{Key: bytes.Repeat([]byte{8}, 32), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.HLSMedia(context.Background(), tok, 1, nil); !api.IsType(err, "NotAuthorizedException") || api.As(err).Status != 403 {
		t.Errorf("token under another key: %v, want a 403", err)
	}
	restarted, err := New(f.catalog, f.blobs, Options{Key: bytes.Repeat([]byte{7}, 32), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.HLSMedia(context.Background(), tok, 1, nil); err != nil {
		t.Errorf("token after a restart: %v", err)
	}
	f.clock.advance(299 * time.Second)
	f.media(tok)
	f.clock.advance(time.Second)
	_, err = f.svc.HLSMedia(context.Background(), tok, 1, nil)
	if e := api.As(err); e.Status != 403 || e.Message != "Streaming session token is expired." {
		t.Errorf("after 300 s: %v, want 403 expired", err)
	}
}

// TestProducerTimestampTies lists only the larger number of fragments that
// share a producer timestamp.
func TestProducerTimestampTies(t *testing.T) {
	f := newFixture(t)
	f.add(0, 2*time.Second, f.header)
	f.add(2*time.Second, 2*time.Second, f.header)
	f.add(2*time.Second, 2*time.Second, f.header) // the producer re-sent it
	f.add(4*time.Second, 2*time.Second, f.header)
	r := &api.FragmentSelector{FragmentSelectorType: str(SelectProducerTimestamp),
		TimestampRange: &api.TimestampRange{StartTimestamp: &api.Timestamp{Time: t0}, EndTimestamp: &api.Timestamp{Time: t0.Add(time.Minute)}}}
	tok, err := f.hls(HLSInput{PlaybackMode: str(ModeOnDemand), HLSFragmentSelector: r})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"#EXT-X-MEDIA-SEQUENCE:0", "map ", "frag 01", "frag 03", "frag 04"}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
