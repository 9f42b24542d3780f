package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/synth"
)

// startCluster starts n nodes sharing one throwaway PostgreSQL catalog and
// one blob directory, named node-0, node-1...
func startCluster(t *testing.T, n int, args ...string) []*serverProc {
	t.Helper()
	dsn := testenv.Postgres(t)
	data := t.TempDir()
	nodes := make([]*serverProc, n)
	for i := range nodes {
		nodes[i] = startServerAt(t, data, append([]string{"--catalog", dsn, "--node-id", fmt.Sprintf("node-%d", i)}, args...)...)
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

	// The owner dies: the stream is another node's at once.
	b.Kill()
	for _, n := range []*serverProc{a, c} {
		if got := dataEndpoint(t, n, "cam", kvtypes.APINamePutMedia); got != n.URL {
			t.Errorf("PUT_MEDIA endpoint from %s after the owner died = %s, want the node itself", n.URL, got)
		}
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
}
