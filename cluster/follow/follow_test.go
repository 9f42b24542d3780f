package follow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/cluster/follow"
	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/server"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
	"github.com/openkvs/openkvs/streams"
	"github.com/openkvs/openkvs/synth"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is one openkvs node over the shared catalog and blobs: the same
// store, its own hub.
type node struct {
	srv   *httptest.Server
	hub   *live.Hub
	media *media.Service
}

// startNode serves on ln; feed, when set, follows streams other nodes own.
func startNode(t *testing.T, catalog store.Catalog, blobs store.Blobs, ln net.Listener, feed func(*live.Hub) media.Feed) *node {
	hub := live.NewHub(live.Options{})
	opts := media.Options{CallsPerSecond: 1000, MaxConnections: 100}
	if feed != nil {
		opts.Feed = feed(hub)
	}
	n := &node{hub: hub, media: media.New(catalog, blobs, hub, opts, quiet)}
	mgr := ingest.NewManager(catalog, blobs, hub, ingest.Options{}, quiet)
	svc := streams.New(catalog, "us-east-1", "000000000000")
	n.srv = httptest.NewUnstartedServer(server.New(server.Config{Logger: quiet, Ingest: mgr, Media: n.media}, svc).Handler())
	n.srv.Listener.Close()
	n.srv.Listener = ln
	n.srv.Start()
	t.Cleanup(n.stop)
	return n
}

// stop kills the node: every connection drops.
func (n *node) stop() {
	n.media.Shutdown()
	n.srv.CloseClientConnections()
	n.srv.Close()
}

func listen(t *testing.T, addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// cluster is an owner node with a producer and a follower node.
type cluster struct {
	t        *testing.T
	catalog  store.Catalog
	blobs    store.Blobs
	stream   *store.Stream
	owner    *node
	ownerURL string
	follower *node
	fol      *follow.Follower
	conns    *connTracker
	// unowned makes the follower's OwnerFunc say that no node owns the
	// stream (self), as before a producer's first PutMedia.
	unowned atomic.Bool
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, conns: &connTracker{}}
	c.catalog, c.blobs = storetest.Embedded(t)
	c.stream = &store.Stream{Name: "cam", ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1",
		Status: store.StatusActive, RetentionHours: 24, Version: "v", StorageTier: "HOT", CreationTime: time.Now(), MediaType: "video/h264"}
	if err := c.catalog.CreateStream(context.Background(), c.stream); err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "127.0.0.1:0")
	c.ownerURL = "http://" + ln.Addr().String()
	c.owner = startNode(t, c.catalog, c.blobs, ln, nil)
	c.follower = startNode(t, c.catalog, c.blobs, listen(t, "127.0.0.1:0"), func(hub *live.Hub) media.Feed {
		c.fol = follow.New(follow.Options{
			Owner: func(context.Context, *store.Stream) (string, bool, error) {
				if c.unowned.Load() {
					return "", true, nil
				}
				return c.ownerURL, false, nil
			},
			Catalog: c.catalog, Hub: hub, Log: quiet,
			HTTPClient: &http.Client{Transport: &http.Transport{DialContext: c.conns.dial}},
		})
		return c.fol
	})
	return c
}

// restartOwner kills the owner and starts a new one at the same address.
func (c *cluster) restartOwner() {
	addr := c.owner.srv.Listener.Addr().String()
	c.owner.stop()
	c.owner = startNode(c.t, c.catalog, c.blobs, listen(c.t, addr), nil)
}

// internal is the number of GetMedia connections open on the owner.
func (c *cluster) ownerReaders() int {
	return c.owner.media.Readers()[c.stream.ID].Readers
}

// connTracker lets a test cut the follower's internal connections.
type connTracker struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
}

func (ct *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		ct.mu.Lock()
		ct.conns = append(ct.conns, conn)
		ct.dials++
		ct.mu.Unlock()
	}
	return conn, err
}

func (ct *connTracker) cut() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, c := range ct.conns {
		c.Close()
	}
	ct.conns = nil
}

// producer sends synthetic video to a node's PutMedia frame by frame, in
// real time, as a camera does.
type producer struct {
	pw   *io.PipeWriter
	done chan struct{}
}

// video is 30 frames per second in 500 ms fragments.
var video = synth.Video{FPS: 30, FragmentDuration: 500 * time.Millisecond, Bitrate: 1_000_000}

func startProducer(t *testing.T, url string, from int) *producer {
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", url+"/putMedia", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-amzn-stream-name", "cam")
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	p := &producer{pw: pw, done: make(chan struct{})}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		pr.CloseWithError(fmt.Errorf("PutMedia ended: %v", err))
	}()
	go func() {
		defer close(p.done)
		if _, err := pw.Write(synth.Header(1)); err != nil {
			return
		}
		tick := time.NewTicker(time.Second / time.Duration(video.FPS))
		defer tick.Stop()
		base := uint64(time.Now().UnixMilli())
		for i := from; ; i++ {
			for _, piece := range video.Fragment(base, i) {
				if _, err := pw.Write(piece); err != nil {
					return
				}
				<-tick.C
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *producer) stop() {
	p.pw.CloseWithError(io.ErrClosedPipe)
	<-p.done
}

// reader is a raw GetMedia reader that records when each element of each
// chunk arrived.
type reader struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	chunks   []*mkv.Chunk
	arrivals map[string]time.Time // fragment number + body offset -> arrival
	err      error
}

func startReader(t *testing.T, url string, selector string) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{cancel: cancel, done: make(chan struct{}), arrivals: map[string]time.Time{}}
	body, _ := json.Marshal(map[string]any{"StreamName": "cam", "StartSelector": map[string]string{"StartSelectorType": selector}})
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/getMedia", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("GetMedia: %s %s", resp.Status, msg)
	}
	go func() {
		defer close(r.done)
		defer resp.Body.Close()
		cr := mkv.NewChunkReader(resp.Body)
		number, off := "", 0
		cr.OnPart(func(p mkv.ChunkPart) error {
			now := time.Now()
			switch p.Kind {
			case mkv.PartStartTags:
				number, off = p.Tags[mkv.TagFragmentNumber], 0
			case mkv.PartBody:
				r.mu.Lock()
				r.arrivals[fmt.Sprint(number, "/", off)] = now
				r.mu.Unlock()
				off += len(p.Data)
			}
			return nil
		})
		for {
			ch, err := cr.Next()
			r.mu.Lock()
			if err != nil {
				r.err = err
				r.mu.Unlock()
				return
			}
			r.chunks = append(r.chunks, ch)
			r.mu.Unlock()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *reader) stop() {
	r.cancel()
	<-r.done
}

// waitChunks waits until the reader has n whole chunks and returns them.
func (r *reader) waitChunks(t *testing.T, n int) []*mkv.Chunk {
	t.Helper()
	var out []*mkv.Chunk
	wait.For(t, fmt.Sprintf("%d chunks", n), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		out = slices.Clone(r.chunks)
		return len(out) >= n || r.err != nil
	})
	if len(out) < n {
		t.Fatalf("reader has %d chunks of %d: %v", len(out), n, r.err)
	}
	return out
}

// fragment is a chunk as compared between nodes: everything but the end
// tags' MILLIS_BEHIND_NOW, which is a time.
type fragment struct {
	number, token string
	header, body  string
}

func fragments(chunks []*mkv.Chunk) []fragment {
	var out []fragment
	for _, ch := range chunks {
		end := bytes.LastIndex(ch.Data, ch.Cluster) + len(ch.Cluster) + len(ch.Trailing)
		start := bytes.Index(ch.Data, ch.Cluster)
		out = append(out, fragment{number: ch.Tags[mkv.TagFragmentNumber], token: ch.Tags[mkv.TagContinuationToken],
			header: string(ch.Data[:start]), body: string(ch.Data[start:end])})
	}
	return out
}

// from returns the fragments from the one numbered number on.
func from(fs []fragment, number string) []fragment {
	i := slices.IndexFunc(fs, func(f fragment) bool { return f.number == number })
	if i < 0 {
		return nil
	}
	return fs[i:]
}

func TestFollowerServesTheOwnersLiveEdge(t *testing.T) {
	c := newCluster(t)
	startProducer(t, c.ownerURL, 0)
	ownerReader := startReader(t, c.ownerURL, "NOW")
	var readers []*reader
	for range 3 {
		readers = append(readers, startReader(t, c.follower.srv.URL, "NOW"))
	}
	// One internal connection for three local readers.
	wait.For(t, "2 GetMedia connections on the owner: its own reader and one internal", func() bool { return c.ownerReaders() == 2 })

	// NOW on the follower starts at the live edge: within a fragment of
	// where NOW on the owner started, and then the same fragments, byte for
	// byte, under the owner's numbers and tokens.
	own := fragments(ownerReader.waitChunks(t, 6))
	for i, r := range readers {
		got := fragments(r.waitChunks(t, 4))
		at := slices.IndexFunc(own, func(f fragment) bool { return f.number == got[0].number })
		if at < 0 || at > 1 {
			t.Fatalf("follower reader %d starts with fragment %s, owner reader's are %v", i, got[0].number, numbers(own))
		}
		if want := from(own, got[0].number)[:4]; !slices.Equal(got[:4], want) {
			t.Errorf("follower reader %d: fragments %v differ from the owner's %v", i, numbers(got), numbers(want))
		}
	}
	if d := c.conns.dials; d != 1 {
		t.Errorf("internal connections dialled: %d, want 1", d)
	}

	latency := c.latency(ownerReader, readers)

	// The internal connection drops mid-fragment: the follower resumes,
	// the fragment goes on where it stopped, readers see nothing of it.
	cutAt := len(ownerReader.waitChunks(t, 6))
	c.conns.cut()
	own = fragments(ownerReader.waitChunks(t, cutAt+4))
	for i, r := range readers {
		got := fragments(r.waitChunks(t, cutAt+2))
		want := from(own, got[0].number)
		if n := min(len(got), len(want)); !slices.Equal(got[:n], want[:n]) {
			t.Errorf("after the cut, follower reader %d: %v, owner's %v", i, numbers(got), numbers(want))
		}
	}
	wait.For(t, "2 GetMedia connections on the owner after the cut", func() bool { return c.ownerReaders() == 2 })

	t.Log(latency)

	// The last local reader leaving closes the internal connection.
	for _, r := range readers {
		r.stop()
	}
	wait.For(t, "the internal connection to close with the last local reader", func() bool {
		return c.ownerReaders() == 1 && c.fol.Following() == 0
	})
}

// latency is what the follower adds: each element at a follower reader
// against the same element at the owner's reader.
func (c *cluster) latency(owner *reader, readers []*reader) string {
	var lat []time.Duration
	owner.mu.Lock()
	for _, r := range readers {
		r.mu.Lock()
		for k, at := range r.arrivals {
			if o, ok := owner.arrivals[k]; ok {
				lat = append(lat, at.Sub(o))
			}
		}
		r.mu.Unlock()
	}
	owner.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return fmt.Sprintf("follower latency over the owner's reader: %d elements, p50 %v, p99 %v, max %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

func TestFollowerResumesAfterOwnerRestart(t *testing.T) {
	c := newCluster(t)
	p := startProducer(t, c.ownerURL, 0)
	r := startReader(t, c.follower.srv.URL, "NOW")
	before := fragments(r.waitChunks(t, 3))

	p.stop()
	c.restartOwner()
	startProducer(t, c.ownerURL, 100)
	got := fragments(r.waitChunks(t, len(before)+4))

	// Every fragment the owners persisted from the reader's first on came
	// once, in order; the only others are fragments the dying owner never
	// finished, which its readers would have seen end early too. The last
	// one read is in progress, and the one before it may still be on its
	// way to the catalog: the reader sees a fragment end before its owner
	// has stored it.
	got = got[:len(got)-1]
	read := numbers(got)
	if !slices.IsSorted(read) || len(slices.Compact(slices.Clone(read))) != len(read) {
		t.Fatalf("fragments read out of order or twice: %v", read)
	}
	var persisted []string
	stored := func() bool {
		rows, err := c.catalog.FragmentsAfter(context.Background(), c.stream.ID, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		persisted = persisted[:0]
		for _, f := range rows {
			if f.Number >= read[0] && f.Number <= read[len(read)-1] {
				persisted = append(persisted, f.Number)
			}
		}
		return len(read)-len(persisted) <= 1
	}
	defer func() {
		if t.Failed() {
			t.Logf("read %v, persisted %v", read, persisted)
		}
	}()
	wait.For(t, "all fragments read but the dying owner's unfinished one to be persisted", stored)
	for _, n := range persisted {
		if !slices.Contains(read, n) {
			t.Fatalf("persisted fragment %s missing from the follower reader's %v", n, read)
		}
	}
}

// TestFollowerStartsWhenItsReaderAsked: a reader that asks a node for NOW
// before any node owns the stream gets the fragments that begin after it
// asked, from the first, even though the internal connection reaches the
// owner only after the owner's producer has sent several (it backs off while
// nobody owns the stream). The owner's NOW at that moment would start at
// the fragment then in progress, and the reader would miss the ones before.
func TestFollowerStartsWhenItsReaderAsked(t *testing.T) {
	c := newCluster(t)
	c.unowned.Store(true)
	r := startReader(t, c.follower.srv.URL, "NOW")
	wait.For(t, "the follow to start", func() bool { return c.fol.Following() == 1 })
	startProducer(t, c.ownerURL, 0)
	var rows []*store.Fragment
	wait.For(t, "3 fragments persisted on the owner", func() bool {
		var err error
		rows, err = c.catalog.FragmentsAfter(context.Background(), c.stream.ID, "", 3)
		return err == nil && len(rows) == 3
	})
	c.unowned.Store(false)
	got := fragments(r.waitChunks(t, 3))
	for i, row := range rows {
		if got[i].number != row.Number {
			t.Fatalf("follower reader read %v; want the owner's first fragments %s, %s, %s", numbers(got), rows[0].Number, rows[1].Number, rows[2].Number)
		}
	}
}

func numbers(fs []fragment) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.number)
	}
	return out
}
