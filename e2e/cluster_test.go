package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/synth"
)

// startCluster starts n nodes sharing one throwaway PostgreSQL catalog and
// one S3 bucket location, each with a data directory of its own, named
// node-0, node-1...
func startCluster(t *testing.T, n int, args ...string) []*serverProc {
	t.Helper()
	dsn, blobs := testenv.Postgres(t), testenv.S3(t)
	nodes := make([]*serverProc, n)
	for i := range nodes {
		nodes[i] = startServerAt(t, t.TempDir(), append([]string{"--catalog", dsn, "--blobs", blobs,
			"--node-id", fmt.Sprintf("node-%d", i)}, args...)...)
	}
	return nodes
}

// dataEndpoint is GetDataEndpoint's answer from srv.
func dataEndpoint(t *testing.T, srv *serverProc, stream string, api kvtypes.APIName) string {
	t.Helper()
	out, err := srv.control().GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String(stream), APIName: api})
	gmFatalIf(t, err, "GetDataEndpoint %s from %s", api, srv.URL)
	return aws.ToString(out.DataEndpoint)
}

// owner waits until every node names the same PUT_MEDIA endpoint for
// stream (a node answers itself while no live node owns it) and returns
// that node.
func owner(t *testing.T, nodes []*serverProc, stream string) *serverProc {
	t.Helper()
	var found *serverProc
	wait.For(t, "one owner of "+stream, func() bool {
		found = nil
		var first string
		for i, n := range nodes {
			got := dataEndpoint(t, n, stream, kvtypes.APINamePutMedia)
			if i > 0 && got != first {
				return false
			}
			first = got
		}
		for _, n := range nodes {
			if n.URL == first {
				found = n
			}
		}
		return found != nil
	})
	return found
}

// TestClusterOwnership: the node a stream's PutMedia reaches owns it;
// every node sends PutMedia and GetMedia to the owner and serves the
// archive APIs itself; another node refuses the stream's PutMedia so that
// the producer resolves the endpoint again; when the owner is killed,
// another node takes the stream at once, and every PERSISTED fragment of
// both owners is listed once by every node.
func TestClusterOwnership(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	createStream(t, a, "cam", 24)
	for _, n := range nodes {
		if got := dataEndpoint(t, n, "cam", kvtypes.APINamePutMedia); got != n.URL {
			t.Errorf("PUT_MEDIA endpoint of an unowned stream from %s = %s, want the node itself", n.URL, got)
		}
	}
	frags := gmFrags(synth.Video{}, 0, 4)
	first := gmSession(t, b, "cam", "PERSISTED", frags[:2])
	for _, n := range []*serverProc{a, c} {
		for api, want := range map[kvtypes.APIName]string{kvtypes.APINamePutMedia: b.URL, kvtypes.APINameGetMedia: b.URL,
			kvtypes.APINameListFragments: n.URL, kvtypes.APINameGetHlsStreamingSessionUrl: n.URL} {
			if got := dataEndpoint(t, n, "cam", api); got != want {
				t.Errorf("%s endpoint from %s while %s owns the stream = %s, want %s", api, n.URL, b.URL, got, want)
			}
		}
	}

	// A producer that reaches a node that does not own the stream is
	// refused before the response starts.
	req, err := http.NewRequestWithContext(ctx(t), "POST", a.URL+"/putMedia", strings.NewReader(""))
	gmFatalIf(t, err, "request")
	req.Header.Set("x-amzn-stream-name", "cam")
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
	resp, err := http.DefaultClient.Do(req)
	gmFatalIf(t, err, "PutMedia to a non-owner")
	resp.Body.Close()
	if typ := resp.Header.Get("x-amzn-ErrorType"); resp.StatusCode != 400 || !strings.HasPrefix(typ, "ConnectionLimitExceededException") {
		t.Errorf("PutMedia to a non-owner: HTTP %d %s, want 400 ConnectionLimitExceededException", resp.StatusCode, typ)
	}

	// The owner dies: the stream is another node's as soon as the
	// database has seen its connections close (milliseconds).
	b.Kill()
	for _, n := range []*serverProc{a, c} {
		wait.For(t, "the PUT_MEDIA endpoint from "+n.URL+" to be itself", func() bool {
			return dataEndpoint(t, n, "cam", kvtypes.APINamePutMedia) == n.URL
		})
	}
	second := gmSession(t, a, "cam", "PERSISTED", frags[2:])
	if got := dataEndpoint(t, c, "cam", kvtypes.APINamePutMedia); got != a.URL {
		t.Errorf("PUT_MEDIA endpoint from %s after the takeover = %s, want %s", c.URL, got, a.URL)
	}
	want := map[string]bool{}
	for _, p := range []*gmProducer{first, second} {
		for _, n := range p.numbers("PERSISTED") {
			want[n] = true
		}
	}
	for _, n := range []*serverProc{a, c} {
		got := gmListAll(t, n, "cam")
		if len(got) != len(want) {
			t.Errorf("%s lists %d fragments, want the %d PERSISTED", n.URL, len(got), len(want))
		}
		for num := range want {
			if _, ok := got[num]; !ok {
				t.Errorf("%s does not list PERSISTED fragment %s", n.URL, num)
			}
		}
	}
	// A playback URL one node made plays through any other: the nodes
	// share the session key.
	putFile(t, a, "vid", "h264.mkv")
	playlist := hlsURL(t, a, &kinesisvideoarchivedmedia.GetHLSStreamingSessionURLInput{StreamName: aws.String("vid"),
		PlaybackMode: amtypes.HLSPlaybackModeOnDemand, HLSFragmentSelector: &amtypes.HLSFragmentSelector{
			FragmentSelectorType: amtypes.HLSFragmentSelectorTypeServerTimestamp,
			TimestampRange:       &amtypes.HLSTimestampRange{StartTimestamp: aws.Time(time.Now().Add(-time.Hour)), EndTimestamp: aws.Time(time.Now())}}})
	if status, _, body := httpGet(t, c.URL+playlist[strings.Index(playlist, "/hls/"):]); status != http.StatusOK || !bytes.HasPrefix(body, []byte("#EXTM3U")) {
		t.Errorf("a playlist URL of %s, through %s: %d %q; want 200 and a playlist", a.URL, c.URL, status, body)
	}
}

// rrProxy is the control plane's one address, as a load balancer or DNS
// name in front of the nodes is: it forwards each TCP connection to the
// next node in turn, passing over nodes that refuse it (a dead one).
type rrProxy struct {
	ln       net.Listener
	backends []string // host:port
	mu       sync.Mutex
	next     int
}

func newRRProxy(t *testing.T, nodes []*serverProc) *rrProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rrProxy{ln: ln}
	for _, n := range nodes {
		p.backends = append(p.backends, strings.TrimPrefix(n.URL, "http://"))
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

// proc is the proxy as a serverProc, for the helpers that call the APIs.
func (p *rrProxy) proc(t *testing.T) *serverProc {
	return &serverProc{t: t, URL: "http://" + p.ln.Addr().String()}
}

func (p *rrProxy) serve(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	first := p.next
	p.next = (p.next + 1) % len(p.backends)
	p.mu.Unlock()
	for i := range p.backends {
		up, err := net.DialTimeout("tcp", p.backends[(first+i)%len(p.backends)], time.Second)
		if err != nil {
			continue
		}
		defer up.Close()
		go func() {
			io.Copy(up, c)
			up.Close()
		}()
		io.Copy(c, up)
		return
	}
}

// clusterReader is a GetMedia reader of the project's client, which
// resumes a dropped read with its continuation token at the endpoint
// GetDataEndpoint names, as `openkvs get` does.
type clusterReader struct {
	name    string
	mu      sync.Mutex
	numbers []string
	resumes int
	err     error
	done    chan struct{}
}

// startReader reads stream from NOW on, first from node, then wherever
// the control plane behind proxy sends it.
func startReader(t *testing.T, node *serverProc, proxy *serverProc, stream string) *clusterReader {
	r := &clusterReader{name: stream + " via " + node.URL, done: make(chan struct{})}
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); <-r.done })
	connects := 0
	resolve := func(ctx context.Context) (string, error) {
		if connects++; connects == 1 {
			return node.URL, nil
		}
		r.mu.Lock()
		r.resumes++
		r.mu.Unlock()
		out, err := proxy.control().GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String(stream), APIName: kvtypes.APINameGetMedia})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.DataEndpoint), nil
	}
	go func() {
		defer close(r.done)
		_, err := client.Get(c, client.GetOptions{Resolve: resolve, Stream: stream, Follow: true}, func(f *client.Fragment) error {
			r.mu.Lock()
			r.numbers = append(r.numbers, f.Number)
			r.mu.Unlock()
			return nil
		})
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
	return r
}

func (r *clusterReader) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.numbers)
}

// check says whether the reader saw every listed fragment from its first
// one on, in order: no gap, no duplicate. A live reader may also have seen
// fragments that are not listed, as on one node: the one the killed owner
// was receiving, ended where it stopped, and ones it had received but not
// yet persisted, which the producer sends again under new numbers.
func (r *clusterReader) check(listed []string) error {
	got := r.got()
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		return fmt.Errorf("%s read %v: out of order or twice", r.name, got)
	}
	var seen []string
	for _, n := range got {
		if slices.Contains(listed, n) {
			seen = append(seen, n)
		}
	}
	if len(seen) == 0 {
		return fmt.Errorf("%s read %v, none of it listed", r.name, got)
	}
	if want := listed[slices.Index(listed, seen[0]):]; !slices.Equal(seen, want) {
		return fmt.Errorf("%s read %v; want the listed %v", r.name, got, want)
	}
	return nil
}

// listedNumbers is the stream's fragments as srv lists them, in order.
func listedNumbers(t *testing.T, srv *serverProc, stream string) []amtypes.Fragment {
	t.Helper()
	var out []amtypes.Fragment
	for _, f := range gmListAll(t, srv, stream) {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b amtypes.Fragment) int {
		return strings.Compare(aws.ToString(a.FragmentNumber), aws.ToString(b.FragmentNumber))
	})
	return out
}

// fragmentListPayload is GetMediaForFragmentList's whole payload from srv.
func fragmentListPayload(t *testing.T, srv *serverProc, stream string, numbers []string) []byte {
	t.Helper()
	out, err := gmArchived(srv).GetMediaForFragmentList(ctx(t), &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
		StreamName: aws.String(stream), Fragments: numbers})
	gmFatalIf(t, err, "GetMediaForFragmentList from %s", srv.URL)
	defer out.Payload.Close()
	b, err := io.ReadAll(out.Payload)
	gmFatalIf(t, err, "read GetMediaForFragmentList from %s", srv.URL)
	return b
}

// TestClusterFailover: three nodes on PostgreSQL and S3, `openkvs put` and
// a raw chunked producer sending to one node, GetMedia readers on every
// node (those on the others follow the owner). The owner is killed in the
// middle of a fragment: both producers resolve the endpoint again through
// the control plane's one address and go on on another node; every
// PERSISTED fragment is listed once by every node and read byte for byte
// the same from each; every reader, the one whose node died too, saw every
// listed fragment once, in order.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, "--lease-ttl", "3s", "--getmedia-connections", "10")
	proxy := newRRProxy(t, nodes).proc(t)
	createStream(t, proxy, "cam-put", 24)
	createStream(t, proxy, "cam-raw", 24)

	// `openkvs put` of 16 one-second fragments at the camera's pace.
	v := synth.Video{FPS: 10, FragmentDuration: time.Second, Bitrate: 200_000}
	var file bytes.Buffer
	file.Write(synth.Header(1))
	for _, f := range gmFrags(v, 0, 16) {
		file.Write(f.data)
	}
	input := filepath.Join(t.TempDir(), "cam.mkv")
	gmFatalIf(t, os.WriteFile(input, file.Bytes(), 0o644), "write input")
	// Readers start before the producers, before any node owns the streams:
	// those on the others must still read from the first fragment on,
	// however late their node's internal connection reaches the owner.
	readers := []*clusterReader{startReader(t, nodes[0], proxy, "cam-put")}
	for _, n := range nodes {
		readers = append(readers, startReader(t, n, proxy, "cam-raw"))
	}
	put := exec.Command(binary, "put", "--endpoint", proxy.URL, "--stream", "cam-put", "--realtime", input)
	put.Env = awsEnv(t)
	var putOut bytes.Buffer
	put.Stdout, put.Stderr = &putOut, &putOut
	gmFatalIf(t, put.Start(), "start openkvs put")
	// Closed when put has exited, so that the cleanup does not wait for a
	// value the test already took.
	putDone := make(chan struct{})
	var putErr error
	go func() {
		putErr = put.Wait()
		close(putDone)
	}()
	t.Cleanup(func() {
		put.Process.Kill()
		<-putDone
	})
	victim := owner(t, nodes, "cam-put")
	var others []*serverProc
	for _, n := range nodes {
		if n != victim {
			others = append(others, n)
		}
	}

	// The raw producer starts on the same node: it owns both streams.
	raw := gmFrags(v, 100, 8)
	p1 := gmStartProducerAt(t, dataEndpoint(t, victim, "cam-raw", kvtypes.APINamePutMedia), "cam-raw")
	// A fragment is complete, and PERSISTED, once the next one begins.
	p1.write(synth.Header(1), raw[0].data, raw[1].data)
	p1.waitAcks("PERSISTED", 1)
	p1.write(raw[2].data, raw[3].data)
	p1.waitAcks("PERSISTED", 3)
	wait.For(t, "every reader to read", func() bool {
		for _, r := range readers {
			if len(r.got()) == 0 {
				return false
			}
		}
		return true
	})
	p1.write(raw[4].pieces[:len(raw[4].pieces)/2]...)
	p1.waitAcks("PERSISTED", 4)

	killed := time.Now()
	victim.Kill()
	p1.waitEnd()
	var url string
	// For a few milliseconds after the kill, nodes may still name the dead
	// owner, as the raw producer, which does not retry, must not.
	wait.For(t, "GetDataEndpoint through the control plane to name a live node", func() bool {
		out, err := proxy.control().GetDataEndpoint(ctx(t), &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-raw"), APIName: kvtypes.APINamePutMedia})
		url = aws.ToString(out.DataEndpoint)
		return err == nil && url != victim.URL
	})
	p2 := gmStartProducerAt(t, url, "cam-raw")
	p2.write(synth.Header(1))
	for _, f := range raw[4:] {
		p2.write(f.data)
	}
	p2.waitAcks("PERSISTED", 1)
	p2.mu.Lock()
	failover := p2.times[slices.IndexFunc(p2.acks, func(a client.Ack) bool { return a.EventType == "PERSISTED" })].Sub(killed)
	p2.mu.Unlock()
	t.Logf("failover: kill -9 of the owner to the first PERSISTED on %s: %v", url, failover.Round(time.Millisecond))
	p2.close()
	p2.waitAcks("PERSISTED", 4)

	select {
	case <-putDone:
		if err := putErr; err != nil || !strings.Contains(putOut.String(), "done: 16 fragments, 16 PERSISTED") {
			t.Errorf("openkvs put: %v\n%s", err, putOut.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("openkvs put still running a minute after the kill\n%s", putOut.String())
	}
	if !strings.Contains(putOut.String(), "reconnected") {
		t.Errorf("openkvs put did not reconnect after its node died:\n%s", putOut.String())
	}

	persisted := map[string]bool{}
	for _, p := range []*gmProducer{p1, p2} {
		for _, n := range p.numbers("PERSISTED") {
			persisted[n] = true
		}
	}
	for _, stream := range []string{"cam-raw", "cam-put"} {
		listed := listedNumbers(t, others[0], stream)
		var numbers []string
		for _, f := range listed {
			numbers = append(numbers, aws.ToString(f.FragmentNumber))
		}
		if stream == "cam-raw" {
			for n := range persisted {
				if !slices.Contains(numbers, n) {
					t.Errorf("PERSISTED fragment %s of cam-raw is not listed", n)
				}
			}
			if len(numbers) != len(persisted) {
				t.Errorf("cam-raw lists %d fragments, want the %d PERSISTED", len(numbers), len(persisted))
			}
		} else if len(numbers) < 16 {
			t.Errorf("cam-put lists %d fragments, want at least the 16 PERSISTED", len(numbers))
		}
		if got := listedNumbers(t, others[1], stream); !slices.EqualFunc(got, listed, func(a, b amtypes.Fragment) bool {
			return aws.ToString(a.FragmentNumber) == aws.ToString(b.FragmentNumber)
		}) {
			t.Errorf("%s lists %d fragments of %s, %s lists %d", others[1].URL, len(got), stream, others[0].URL, len(listed))
		}
		a, b := fragmentListPayload(t, others[0], stream, numbers), fragmentListPayload(t, others[1], stream, numbers)
		if len(gmChunks(t, a)) != len(numbers) || !bytes.Equal(a, b) {
			t.Errorf("GetMediaForFragmentList of %s: %d chunks from %s, equal from %s: %v; want %d, equal",
				stream, len(gmChunks(t, a)), others[0].URL, others[1].URL, bytes.Equal(a, b), len(numbers))
		}
		for _, r := range readers {
			if !strings.HasPrefix(r.name, stream+" ") {
				continue
			}
			wait.For(t, r.name+" to read the last fragment", func() bool {
				got := r.got()
				return len(got) > 0 && got[len(got)-1] == numbers[len(numbers)-1]
			})
			if err := r.check(numbers); err != nil {
				t.Error(err)
			}
		}
	}
	if r := readers[1+slices.Index(nodes, victim)]; r.resumes == 0 {
		t.Errorf("%s never resumed", r.name)
	}
}

// logged reports whether srv logged a record with msg and the attributes
// (key, value pairs).
func logged(srv *serverProc, msg string, attrs ...string) int {
	n := 0
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != msg {
			continue
		}
		match := true
		for i := 0; i+1 < len(attrs); i += 2 {
			match = match && fmt.Sprint(rec[attrs[i]]) == attrs[i+1]
		}
		if match {
			n++
		}
	}
	return n
}

// TestClusterFencing: an owner paused past its lease's TTL loses the
// stream to another node; when it runs again the commits of the fragments
// it received meanwhile are refused, it ends the session with an ERROR,
// and only the new owner's fragments are listed. The sweeper runs on one
// node, and a retention cut deletes each fragment once across the nodes.
func TestClusterFencing(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, "--lease-ttl", "2s", "--sweep-interval", "1s")
	a, b := nodes[0], nodes[1]
	createStream(t, a, "cam", 24)
	wait.For(t, "one node to run the sweeper", func() bool {
		return logged(a, "cluster job runs here", "job", "sweeper")+logged(b, "cluster job runs here", "job", "sweeper") == 1
	})
	frags := gmFrags(synth.Video{FPS: 10, FragmentDuration: time.Second, Bitrate: 200_000}, 0, 6)
	old := gmStartProducer(t, a, "cam")
	old.write(synth.Header(1))
	old.write(frags[0].data, frags[1].data, frags[2].data) // the last one is complete once the next begins
	old.waitAcks("PERSISTED", 2)

	gmFatalIf(t, a.cmd.Process.Signal(syscall.SIGSTOP), "SIGSTOP")
	t.Cleanup(func() {
		if a.cmd != nil {
			a.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	// The paused owner's connections stay open: only the lease's expiry
	// lets b take the stream.
	wait.For(t, "b to take the stream", func() bool { return dataEndpoint(t, b, "cam", kvtypes.APINamePutMedia) == b.URL })
	taken := gmStartProducer(t, b, "cam")
	taken.write(synth.Header(1))
	taken.write(frags[4].data, frags[5].data)
	taken.close()
	taken.waitAcks("PERSISTED", 2)
	old.write(frags[3].data) // into the paused node's socket
	gmFatalIf(t, a.cmd.Process.Signal(syscall.SIGCONT), "SIGCONT")
	ack, _ := old.waitError(func(a client.Ack) bool {
		return a.EventType == "PERSISTED" && (a.FragmentTimecode == frags[2].timecode || a.FragmentTimecode == frags[3].timecode)
	})
	if ack.ErrorID != 5001 {
		t.Errorf("the old owner's ERROR %+v, want 5001", ack)
	}
	old.waitEnd()
	var want []string
	for _, p := range []*gmProducer{old, taken} {
		for _, n := range p.numbers("PERSISTED") {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	for _, n := range nodes {
		got := slices.Sorted(func(yield func(string) bool) {
			for k := range gmListAll(t, n, "cam") {
				if !yield(k) {
					return
				}
			}
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s lists %v; want the PERSISTED %v", n.URL, got, want)
		}
	}
	if logged(a, "stream lease lost") == 0 {
		t.Errorf("the paused owner did not log its lost lease")
	}

	// A cut of the retention to 0 deletes every fragment, each once,
	// though the node answering the call sweeps at once and the sweeper's
	// node every second.
	info := describe(t, b.control(), "cam")
	_, err := b.control().UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam"),
		CurrentVersion: info.Version, Operation: kvtypes.UpdateDataRetentionOperationDecreaseDataRetention, DataRetentionChangeInHours: aws.Int32(24)})
	gmFatalIf(t, err, "UpdateDataRetention")
	deleted := func() float64 {
		sum := 0.0
		for _, n := range nodes {
			v, _ := metricSample(scrape(t, n.URL), "openkvs_sweeper_deleted_blobs_total", "reason", "retention")
			sum += v
		}
		return sum
	}
	wait.For(t, "every fragment to be deleted", func() bool { return len(gmListAll(t, b, "cam")) == 0 && deleted() >= float64(len(want)) })
	if got := deleted(); got != float64(len(want)) {
		t.Errorf("%v fragment blobs deleted for retention across the nodes; want each of the %d once", got, len(want))
	}
	running := 0
	for _, n := range nodes {
		if logged(n, "cluster job runs here", "job", "sweeper") > logged(n, "cluster job stopped here", "job", "sweeper") {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d nodes run the sweeper, want 1", running)
	}
}
