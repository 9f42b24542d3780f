package e2e

// Tests of the operational endpoints: /metrics, the stream status API,
// /healthz, /readyz, and the producer connect and disconnect log lines.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/synth"
)

// scrape fetches and parses url's /metrics with the Prometheus text-format
// parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	gmFatalIf(t, err, "GET /metrics")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	gmFatalIf(t, err, "parse /metrics")
	return fams
}

// sample returns the value of the sample of family name whose labels
// include labels (name, value pairs): a counter's or gauge's value, a
// histogram's count. ok is false when there is none.
func metricSample(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			if !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == labels[i] && l.GetValue() == labels[i+1] }) {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// metricIs reports whether the sample named is there with value want.
func metricIs(fams map[string]*dto.MetricFamily, want float64, name string, labels ...string) bool {
	v, ok := metricSample(fams, name, labels...)
	return ok && v == want
}

// TestMetrics scrapes /metrics during a PutMedia and GetMedia run and
// checks that the counters moved by exactly what the run did.
func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--live-total-bytes", "67108864")
	createStream(t, srv, "cam", 24)
	frags := gmFrags(synth.Video{}, 0, 3)
	wantBytes := len(synth.Header(1))
	for _, f := range frags {
		wantBytes += len(f.data)
	}
	reader := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeNow, nil))
	wait.For(t, "one active reader", func() bool { return metricIs(scrape(t, srv.URL), 1, "openkvs_getmedia_active_readers") })
	p := gmSession(t, srv, "cam", "PERSISTED", frags)
	p.waitEnd()
	for range frags {
		reader.next(t)
	}
	var m map[string]*dto.MetricFamily
	wait.For(t, "the session's end in the metrics", func() bool {
		m = scrape(t, srv.URL)
		return metricIs(m, 0, "openkvs_putmedia_active_sessions") && metricIs(m, 1, "openkvs_api_requests_total", "operation", "PutMedia", "code", "200")
	})
	exact := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"openkvs_putmedia_fragments_received_total", nil, 3},
		{"openkvs_putmedia_fragments_persisted_total", nil, 3},
		{"openkvs_putmedia_received_bytes_total", nil, float64(wantBytes)},
		{"openkvs_putmedia_ack_latency_seconds", nil, 3},
		{"openkvs_blob_write_seconds", nil, 4}, // 3 fragments and the header
		{"openkvs_blob_fsync_seconds", nil, 4},
		{"openkvs_live_memory_limit_bytes", nil, 67108864},
		{"openkvs_getmedia_active_readers", nil, 1},
		{"openkvs_getmedia_readers_behind_live", nil, 0},
		{"openkvs_api_requests_total", []string{"operation", "CreateStream", "code", "200"}, 1},
		{"openkvs_api_request_duration_seconds", []string{"operation", "PutMedia", "code", "200"}, 1},
		{"openkvs_sweeper_deleted_blobs_total", []string{"reason", "retention"}, 0},
	}
	for _, e := range exact {
		if v, ok := metricSample(m, e.name, e.labels...); !ok || v != e.want {
			t.Errorf("%s%v = %v (present %v), want %v", e.name, e.labels, v, ok, e.want)
		}
	}
	if v, _ := metricSample(m, "openkvs_catalog_commit_seconds"); v < 1 || v > 3 {
		t.Errorf("openkvs_catalog_commit_seconds count %v, want 1 to 3 (a commit per group of fragments)", v)
	}
	for _, name := range []string{"openkvs_live_memory_used_bytes", "openkvs_data_dir_free_bytes", "process_resident_memory_bytes"} {
		if v, ok := metricSample(m, name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	if _, ok := m["openkvs_putmedia_errors_total"]; ok {
		t.Errorf("openkvs_putmedia_errors_total present after a run without errors")
	}
	// Every byte the reader received was counted, and nothing more: at the
	// live edge the server writes nothing further.
	got := reader.rec.waitFor(t, "the payload so far", func([]byte, error) bool { return true })
	wait.For(t, "GetMedia bytes counted", func() bool {
		return metricIs(scrape(t, srv.URL), float64(len(got)), "openkvs_getmedia_sent_bytes_total")
	})
	reader.close()
	wait.For(t, "the reader's end in the metrics", func() bool {
		m := scrape(t, srv.URL)
		return metricIs(m, 0, "openkvs_getmedia_active_readers") && metricIs(m, 1, "openkvs_api_requests_total", "operation", "GetMedia", "code", "200")
	})

	// An ERROR ACK is counted by its ErrorId.
	bad := gmStartProducer(t, srv, "cam")
	bad.write(bytes.Repeat([]byte("not matroska "), 10))
	bad.close()
	if a, _ := bad.waitError(func(client.Ack) bool { return false }); a.ErrorID != 4006 {
		t.Fatalf("garbage body: ERROR %d, want 4006", a.ErrorID)
	}
	wait.For(t, "the 4006 counted", func() bool {
		return metricIs(scrape(t, srv.URL), 1, "openkvs_putmedia_errors_total", "error_id", "4006")
	})
}

// TestMetricsReaderBehind checks the gauge of readers behind the live
// window: a reader held back in an archived fragment (by a tiny
// --getmedia-bytes-per-second) counts, until it goes. Such a reader also
// holds a shutdown for --shutdown-timeout, during which /readyz on the
// --metrics-addr listener says the server is shutting down.
func TestMetricsReaderBehind(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--live-window", "1s", "--getmedia-bytes-per-second", "20000",
		"--metrics-addr", "127.0.0.1:0", "--shutdown-timeout", "5s")
	ops := "http://" + listeningField(t, srv, "metrics_addr")
	wait.For(t, "ready", func() bool {
		code, body := getStatus(t, ops+"/readyz")
		return code == 200 && body == "{\"ready\":true}\n"
	})
	createStream(t, srv, "cam", 24)
	gmSession(t, srv, "cam", "PERSISTED", gmFrags(synth.Video{}, 0, 2)).waitEnd()
	// Each scrape reads the hub's statistics, which evicts fragments past
	// the live window: then only the archive has them.
	wait.For(t, "the live window emptied", func() bool { return metricIs(scrape(t, srv.URL), 0, "openkvs_live_memory_used_bytes") })
	behind := func(n float64) func() bool {
		return func() bool {
			m := scrape(t, ops)
			return metricIs(m, n, "openkvs_getmedia_readers_behind_live") && metricIs(m, n, "openkvs_getmedia_active_readers")
		}
	}
	reader := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
	wait.For(t, "one reader behind the live window", behind(1))
	reader.close()
	wait.For(t, "no reader behind", behind(0))

	gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
	wait.For(t, "a reader behind again", behind(1))
	srv.cmd.Process.Signal(os.Interrupt)
	wait.For(t, "not ready while shutting down", func() bool {
		code, body := getStatus(t, ops+"/readyz")
		return code == 503 && body == "{\"ready\":false,\"reason\":\"shutting down\"}\n"
	})
}

// listeningField returns a field of the server's "listening" log line.
func listeningField(t *testing.T, srv *serverProc, field string) string {
	t.Helper()
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "listening" {
			s, _ := rec[field].(string)
			return s
		}
	}
	t.Fatalf("no listening line with %s", field)
	return ""
}

// getStatus sends GET url and returns the status code and body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	gmFatalIf(t, err, "GET %s", url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	gmFatalIf(t, err, "GET %s body", url)
	return resp.StatusCode, string(b)
}

// TestMetricsPlacement checks where /metrics is served: on the API port
// while authentication is off, never there with --credentials, always on
// --metrics-addr, and nowhere with --metrics=false.
func TestMetricsPlacement(t *testing.T) {
	t.Parallel()
	notServed := `{"Message":"No operation is served at GET /metrics.","__type":"UnknownOperationException"}`
	open := startServer(t, "--metrics-addr", "127.0.0.1:0")
	ops := "http://" + listeningField(t, open, "metrics_addr")
	for _, u := range []string{open.URL, ops} {
		if code, body := getStatus(t, u+"/metrics"); code != 200 || !strings.Contains(body, "openkvs_putmedia_active_sessions 0\n") {
			t.Errorf("GET %s/metrics without authentication: %d %.200q", u, code, body)
		}
	}
	if code, body := getStatus(t, ops+"/readyz"); code != 200 || body != "{\"ready\":true}\n" {
		t.Errorf("GET /readyz on --metrics-addr: %d %q", code, body)
	}

	authed := startAuthServer(t, "--metrics-addr", "127.0.0.1:0")
	if code, body := getStatus(t, authed.URL+"/metrics"); code != 404 || body != notServed {
		t.Errorf("GET /metrics on the API port with --credentials: %d %q, want 404 %q", code, body, notServed)
	}
	if code, body := getStatus(t, "http://"+listeningField(t, authed, "metrics_addr")+"/metrics"); code != 200 || !strings.Contains(body, "openkvs_api_requests_total{code=\"404\",operation=\"metrics\"} 1\n") {
		t.Errorf("GET /metrics on --metrics-addr with --credentials: %d %.300q", code, body)
	}

	off := startServer(t, "--metrics=false")
	if code, body := getStatus(t, off.URL+"/metrics"); code != 404 || body != notServed {
		t.Errorf("GET /metrics with --metrics=false: %d %q, want 404 %q", code, body, notServed)
	}
}

// logRecords returns the server's JSON log records whose msg is msg.
func logRecords(srv *serverProc, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestStreamStatus follows a stream in the status API while a producer
// connects, sends, and goes, and a reader attaches and goes; and checks
// the producer's connect and disconnect log lines.
func TestStreamStatus(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	opts := client.StatusOptions{Endpoint: srv.URL}
	c := ctx(t)
	list := func() []client.StreamStatus {
		l, err := client.ListStreamStatus(c, opts)
		gmFatalIf(t, err, "ListStreamStatus")
		return l
	}
	if l := list(); len(l) != 0 {
		t.Fatalf("status of an idle server: %+v, want no stream", l)
	}

	before := time.Now().Truncate(time.Millisecond)
	p := gmStartProducer(t, srv, "cam", "User-Agent", "test-camera/1.0")
	// The second fragment is received whole when the third begins.
	frags := gmFrags(synth.Video{}, 0, 3)
	p.write(synth.Header(1))
	wantBytes := int64(len(synth.Header(1)))
	for _, f := range frags {
		p.write(f.data)
		wantBytes += int64(len(f.data))
	}
	numbers := p.waitAcks("RECEIVED", 2)
	after := time.Now()
	var st *client.StreamStatus
	wait.For(t, "the producer's bytes and fragments in the status", func() bool {
		var err error
		st, err = client.DescribeStreamStatus(c, opts, "cam")
		gmFatalIf(t, err, "DescribeStreamStatus")
		return st.Producer != nil && st.Producer.BytesReceived == wantBytes && st.Producer.FragmentsPersisted == 2
	})
	pr := st.Producer
	newest := frags[1]
	durationMs := gmListAll(t, srv, "cam")[numbers[1].FragmentNumber].FragmentLengthInMilliseconds
	if st.StreamName != "cam" || !strings.HasPrefix(st.StreamARN, "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/") ||
		pr.ConnectedSince.Before(before) || pr.ConnectedSince.After(after) ||
		!strings.HasPrefix(pr.RemoteAddress, "127.0.0.1:") || pr.UserAgent != "test-camera/1.0" || pr.FragmentsReceived != 2 ||
		pr.NewestFragment == nil || pr.NewestFragment.FragmentNumber != numbers[1].FragmentNumber ||
		pr.NewestFragment.ProducerTimestamp.UnixMilli() != int64(newest.timecode) || pr.NewestFragment.DurationMs != durationMs ||
		pr.NewestFragment.SizeBytes != int64(len(newest.data)) || pr.BitrateBps != int64(float64(len(newest.data)*8)/(float64(durationMs)/1000)) ||
		st.Readers != 0 {
		t.Errorf("status with a producer connected: %+v, producer %+v, newest %+v", st, pr, pr.NewestFragment)
	}
	if l := list(); len(l) != 1 || l[0].StreamName != "cam" || l[0].Producer == nil {
		t.Errorf("list with a producer connected: %+v", l)
	}

	reader := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeNow, nil))
	p.close()
	p.waitEnd()
	wait.For(t, "the producer gone and the reader there", func() bool {
		l := list()
		return len(l) == 1 && l[0].StreamName == "cam" && l[0].Producer == nil && l[0].Readers == 1
	})
	reader.close()
	wait.For(t, "no stream active", func() bool { return len(list()) == 0 })
	if st, err := client.DescribeStreamStatus(c, opts, "cam"); err != nil || st.Producer != nil || st.Readers != 0 || st.StreamName != "cam" {
		t.Errorf("status of the idle stream: %+v, %v", st, err)
	}
	_, err := client.DescribeStreamStatus(c, opts, "nope")
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type != "ResourceNotFoundException" {
		t.Errorf("status of an unknown stream: %v, want a 404 ResourceNotFoundException", err)
	}

	// One connect and one disconnect line, with what the session did.
	var connected, disconnected []map[string]any
	wait.For(t, "the disconnect log line", func() bool {
		connected, disconnected = logRecords(srv, "producer connected"), logRecords(srv, "producer disconnected")
		return len(disconnected) == 1
	})
	if len(connected) != 1 || connected[0]["stream"] != "cam" || connected[0]["user_agent"] != "test-camera/1.0" ||
		connected[0]["remote_addr"] != pr.RemoteAddress || connected[0]["level"] != "INFO" {
		t.Errorf("connect log lines %v", connected)
	}
	d := disconnected[0]
	dur, err := time.ParseDuration(fmt.Sprint(d["duration"]))
	if d["stream"] != "cam" || d["user_agent"] != "test-camera/1.0" || d["remote_addr"] != pr.RemoteAddress ||
		d["fragments_received"] != 3.0 || d["fragments_persisted"] != 3.0 || d["bytes"] != float64(wantBytes) ||
		err != nil || dur <= 0 || d["level"] != "INFO" {
		t.Errorf("disconnect log line %v (duration: %v)", d, err)
	}
}

// emptySHA256 is the SHA-256 of an empty body, which a GET's signature covers.
var emptySHA256 = func() string { h := sha256.Sum256(nil); return hex.EncodeToString(h[:]) }()

// statusSigner signs status API requests with key and secret.
func statusSigner(key, secret string) func(*http.Request) error {
	return func(r *http.Request) error {
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		return v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
			r, emptySHA256, "kinesisvideo", "us-east-1", time.Now())
	}
}

// TestStreamStatusAuth checks that the status API is authenticated and
// authorized as ListStreams (the list) and DescribeStream (one stream).
func TestStreamStatusAuth(t *testing.T) {
	t.Parallel()
	srv := startAuthServer(t)
	admin := srv.controlAs(adminKey, adminSecret)
	c := ctx(t)
	cfg := srv.awsConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(adminKey, adminSecret, "")
	for _, name := range []string{"cam-1", "other"} {
		_, err := admin.CreateStream(c, &kinesisvideo.CreateStreamInput{StreamName: aws.String(name), DataRetentionInHours: aws.Int32(1)})
		gmFatalIf(t, err, "CreateStream %s", name)
		// A reader at the live edge of each stream makes it active.
		out, err := kinesisvideomedia.NewFromConfig(cfg).GetMedia(c, &kinesisvideomedia.GetMediaInput{StreamName: aws.String(name),
			StartSelector: &types.StartSelector{StartSelectorType: types.StartSelectorTypeNow}})
		gmFatalIf(t, err, "GetMedia %s", name)
		t.Cleanup(func() { out.Payload.Close() })
	}
	as := func(key, secret string) client.StatusOptions {
		return client.StatusOptions{Endpoint: srv.URL, Sign: statusSigner(key, secret)}
	}
	var l []client.StreamStatus
	wait.For(t, "both streams in the admin's list", func() bool {
		var err error
		l, err = client.ListStreamStatus(c, as(adminKey, adminSecret))
		gmFatalIf(t, err, "admin ListStreamStatus")
		return len(l) == 2
	})
	if l, err := client.ListStreamStatus(c, as(listerKey, listerSecret)); err != nil || len(l) != 1 || l[0].StreamName != "cam-1" {
		t.Errorf("lister (cam-* only) ListStreamStatus: %+v, %v; want cam-1 alone", l, err)
	}
	if st, err := client.DescribeStreamStatus(c, as(readerKey, readerSecret), "cam-1"); err != nil || st.Readers != 1 {
		t.Errorf("reader (DescribeStream on cam-*) status of cam-1: %+v, %v", st, err)
	}
	var apiErr *client.APIError
	_, err := client.DescribeStreamStatus(c, as(readerKey, readerSecret), "other")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Type != "NotAuthorizedException" ||
		apiErr.Message != "User: AKIDREADER is not authorized to perform: kinesisvideo:DescribeStream on resource: other" {
		t.Errorf("reader status of other: %v, want 401 NotAuthorizedException", err)
	}
	_, err = client.ListStreamStatus(c, as(readerKey, readerSecret))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("reader (no ListStreams) ListStreamStatus: %v, want 401", err)
	}
	_, err = client.ListStreamStatus(c, client.StatusOptions{Endpoint: srv.URL})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || apiErr.Type != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned ListStreamStatus: %v, want 403 MissingAuthenticationTokenException", err)
	}
}

// healthReport is the JSON of /healthz.
type healthReport struct {
	Healthy bool
	Checks  []struct {
		Name  string
		OK    bool
		Error string
	}
}

// healthz returns /healthz's status and report, and which checks failed.
func healthz(t *testing.T, srv *serverProc) (int, healthReport, []string) {
	t.Helper()
	code, body := getStatus(t, srv.URL+"/healthz")
	var rep healthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("/healthz body %q: %v", body, err)
	}
	var failed []string
	for _, c := range rep.Checks {
		if !c.OK {
			failed = append(failed, c.Name)
		}
	}
	return code, rep, failed
}

// TestHealthzDataDir makes the data directory unwritable under a running
// server: /healthz answers 503 naming the write check, then 200 again once
// it is writable. As root, who may write anywhere, the server runs as
// nobody.
func TestHealthzDataDir(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	srv := &serverProc{t: t, Data: data, setup: func(cmd *exec.Cmd) {
		if asNobody(t, cmd, filepath.Dir(data), data) {
			if err := os.Chown(data, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
	}}
	launch(srv)
	if code, rep, failed := healthz(t, srv); code != 200 || !rep.Healthy || len(rep.Checks) != 3 || failed != nil {
		t.Fatalf("/healthz of a healthy server: %d %+v", code, rep)
	}
	if err := os.Chmod(data, 0o555); err != nil {
		t.Fatal(err)
	}
	var rep healthReport
	wait.For(t, "/healthz to fail the write check", func() bool {
		code, r, failed := healthz(t, srv)
		rep = r
		return code == 503 && slices.Equal(failed, []string{"data_dir_writable"})
	})
	if e := rep.Checks[1].Error; !strings.Contains(e, "data directory "+data+" is not writable") || !strings.Contains(e, "permission denied") {
		t.Errorf("write check error %q", e)
	}
	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "/healthz to pass again", func() bool { code, _, _ := healthz(t, srv); return code == 200 })
}

// TestHealthzDiskFull fills the file system of the data directory (a small
// tmpfs, which needs root) past --min-free-bytes: /healthz answers 503
// naming the free-space check, then 200 once space returns.
func TestHealthzDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, "16m")
	srv := startServerAt(t, filepath.Join(mnt, "data"), "--min-free-bytes", "4194304")
	if code, _, failed := healthz(t, srv); code != 200 || failed != nil {
		t.Fatalf("/healthz with room: %d, failed %v", code, failed)
	}
	filler := fill(t, mnt, 1<<20)
	code, rep, failed := healthz(t, srv)
	if code != 503 || rep.Healthy || !slices.Equal(failed, []string{"disk_free"}) ||
		!strings.Contains(rep.Checks[2].Error, "below the 4194304 required") {
		t.Errorf("/healthz on a nearly full disk: %d %+v", code, rep)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if code, _, failed := healthz(t, srv); code != 200 || failed != nil {
		t.Errorf("/healthz with room again: %d, failed %v", code, failed)
	}
}

// TestMemoryLimit checks where the Go runtime's memory limit comes from, as
// the start-up line reports it: --memory-limit wins, then GOMEMLIMIT, then
// 1.5 times --live-total-bytes plus 256 MiB.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env   []string
		args  []string
		limit float64
		from  string
	}{
		{nil, []string{"--live-total-bytes", "134217728"}, 201326592 + 268435456, "--live-total-bytes"},
		{[]string{"GOMEMLIMIT=512MiB"}, nil, 536870912, "GOMEMLIMIT"},
		{[]string{"GOMEMLIMIT=512MiB"}, []string{"--memory-limit", "1073741824"}, 1073741824, "--memory-limit"},
		{[]string{"OPENKVS_MEMORY_LIMIT=805306368"}, nil, 805306368, "--memory-limit"},
	}
	for _, tc := range cases {
		srv := startServerEnv(t, tc.env, tc.args...)
		rec := logRecords(srv, "listening")
		if len(rec) != 1 || rec[0]["memory_limit"] != tc.limit || rec[0]["memory_limit_from"] != tc.from {
			t.Errorf("env %v, flags %v: listening line %v, want memory_limit %v from %s", tc.env, tc.args, rec, tc.limit, tc.from)
		}
	}
}
