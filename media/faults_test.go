package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/synth"
)

// A retention cut that deletes every fragment left ahead of a reader on
// the archive, and the one it sent, ends its payload with 4000 instead of
// going on with the next new fragment as if nothing were missing.
func TestRetentionCutDeletesAllAhead(t *testing.T) {
	h := newHarness(t, 1)
	numbers := h.archive(1, 2, 3, 4, 5)
	s := &sink{}
	s.onFlush = func(p []byte) {
		if chunks(p) == 1 {
			h.deleteBefore(5) // every archived fragment
			f := h.hub.Begin(h.stream.ID, live.Meta{Number: store.FragmentNumber(100, 0), Header: synth.Header(1)}, true)
			f.Write(context.Background(), cluster(9))
			f.Complete(time.Second)
			s.onFlush = nil
		}
	}
	err := h.reader(SelectEarliest).Run(deadline(t), s)
	var ib *inBand
	if !errors.As(err, &ib) || ib.id != errIDNotFound || ib.number != numbers[0] {
		t.Fatalf("Run: %v, want 4000 for %s", err, numbers[0])
	}
	if got := parse(t, s.buf.Bytes()); len(got) != 2 || got[1].Err() == nil {
		t.Fatalf("payload of %d chunks, want fragment 0 and the error chunk", len(got))
	}
}

// A reader that reached the end of the archive and waits at the live edge
// loses nothing when retention then deletes what it sent: the next new
// fragment follows with no error.
func TestRetentionCutAtLiveEdge(t *testing.T) {
	h := newHarness(t, 1)
	h.archive(1, 2)
	ctx, cancel := context.WithCancel(deadline(t))
	defer cancel()
	s := &sink{}
	s.onFlush = func(p []byte) {
		if chunks(p) == 3 {
			cancel()
		}
	}
	r := h.reader(SelectEarliest)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, s) }()
	// The reader sent both archived fragments and waits for the next one.
	wait.For(t, "the reader waits at the live edge", func() bool { return h.hub.Stream(h.stream.ID).Waiting() })
	h.deleteBefore(2)
	f := h.hub.Begin(h.stream.ID, live.Meta{Number: store.FragmentNumber(100, 0), Header: synth.Header(1)}, true)
	f.Write(context.Background(), cluster(9))
	f.Complete(time.Second)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want the new fragment delivered and the reader waiting again", err)
	}
	got := parse(t, s.buf.Bytes())
	if len(got) != 3 || got[2].Err() != nil || !bytes.Equal(got[2].Cluster, cluster(9)) {
		t.Fatalf("payload of %d chunks, want both archived fragments and the new one", len(got))
	}
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A row whose blob is missing is logged as an error naming the stream and
// the fragment, by GetMedia and by GetMediaForFragmentList.
func TestArchiveBreakageLogged(t *testing.T) {
	h := newHarness(t, 1)
	var logs logBuffer
	h.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
	numbers := h.archive(1, 2)
	if err := h.blobs.Delete(context.Background(), "f0"); err != nil {
		t.Fatal(err)
	}
	h.reader(SelectEarliest).Run(deadline(t), &sink{})
	list, err := h.svc.GetMediaForFragmentList(context.Background(), h.stream, &GetMediaForFragmentListInput{Fragments: numbers[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer list.Close()
	if err := list.Run(deadline(t), &sink{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log:\n%s\nwant two lines", logs.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "stream=s") || !strings.Contains(l, "fragment="+numbers[0]) {
			t.Errorf("log line %q: want an ERROR naming stream s and fragment %s", l, numbers[0])
		}
	}
}

// GetMediaForFragmentList and ListFragments are limited per stream as on
// AWS: calls per second (both) and concurrent connections.
func TestArchiveReadLimits(t *testing.T) {
	h := newHarness(t, 1)
	h.svc = New(h.catalog, h.blobs, h.hub, Options{ListCallsPerSecond: 2, FragmentListCallsPerSec: 100, FragmentListConnections: 2}, nil)
	numbers := h.archive(1)
	ctx := context.Background()
	var open []*FragmentList
	for range 2 {
		l, err := h.svc.GetMediaForFragmentList(ctx, h.stream, &GetMediaForFragmentListInput{Fragments: numbers})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, l)
	}
	_, err := h.svc.GetMediaForFragmentList(ctx, h.stream, &GetMediaForFragmentListInput{Fragments: numbers})
	if e := api.As(err); e.Type != "ConnectionLimitExceededException" || e.Status != 400 {
		t.Fatalf("third concurrent GetMediaForFragmentList: %v, want ConnectionLimitExceededException", err)
	}
	open[0].Close()
	l, err := h.svc.GetMediaForFragmentList(ctx, h.stream, &GetMediaForFragmentListInput{Fragments: numbers})
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	l.Close()
	open[1].Close()

	h.svc = New(h.catalog, h.blobs, h.hub, Options{FragmentListCallsPerSec: 1}, nil)
	l, err = h.svc.GetMediaForFragmentList(ctx, h.stream, &GetMediaForFragmentListInput{Fragments: numbers})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err = h.svc.GetMediaForFragmentList(ctx, h.stream, &GetMediaForFragmentListInput{Fragments: numbers})
	if e := api.As(err); e.Type != "ClientLimitExceededException" || !strings.Contains(e.Message, "GetMediaForFragmentList") {
		t.Fatalf("second call within a second: %v, want ClientLimitExceededException", err)
	}

	sel := FragmentsByServerTime
	in := &ListFragmentsInput{FragmentSelector: &api.FragmentSelector{FragmentSelectorType: &sel,
		TimestampRange: &api.TimestampRange{StartTimestamp: &api.Timestamp{}, EndTimestamp: &api.Timestamp{Time: time.Now()}}}}
	h.svc = New(h.catalog, h.blobs, h.hub, Options{ListCallsPerSecond: 2}, nil)
	for i := range 3 {
		_, err := h.svc.ListFragments(ctx, h.stream, in)
		if i < 2 && err != nil {
			t.Fatalf("ListFragments %d: %v", i, err)
		}
		if e := api.As(err); i == 2 && e.Type != "ClientLimitExceededException" {
			t.Fatalf("third ListFragments within a second: %v, want ClientLimitExceededException", err)
		}
	}
	// A deleted stream's limits are forgotten.
	h.svc.StreamChanged(h.stream, nil)
	if len(h.svc.limits) != 0 {
		t.Errorf("%d limit entries left after the stream was deleted", len(h.svc.limits))
	}
}
