package streaming

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
)

// hookedCatalog runs after, once, right after a FragmentsAfter query: what
// happens between a session's catalog read and its hub read.
type hookedCatalog struct {
	store.Catalog
	after func()
}

func (c *hookedCatalog) FragmentsAfter(ctx context.Context, id int64, number string, limit int) ([]*store.Fragment, error) {
	rows, err := c.Catalog.FragmentsAfter(ctx, id, number, limit)
	if after := c.after; after != nil {
		c.after = nil
		after()
	}
	return rows, err
}

// A fragment the hub lists in a LIVE low-latency playlist, persisted and
// evicted between the catalog read and the hub read of the next reload,
// stays in the playlist: the window never goes back.
func TestLowLatencyFragmentLeavesHubMidReload(t *testing.T) {
	f := newFixture(t)
	hub := live.NewHub(live.Options{ArchivedAge: time.Nanosecond}) // persisted fragments leave at once
	catalog := &hookedCatalog{Catalog: f.catalog}
	svc, err := New(catalog, f.blobs, Options{Key: bytes.Repeat([]byte{7}, 32), Now: f.clock.Now, PlaylistsPerSecond: 1e6, Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.add(0, 2*time.Second, f.header)
	f.add(2*time.Second, 2*time.Second, f.header)
	third := store.FragmentNumber(3, t0.UnixMilli()) // the number f.add gives next
	f.names[third] = "frag 03"
	inHub := hub.Begin(f.stream.ID, live.Meta{Number: third, ProducerTime: t0.Add(4 * time.Second), ServerTime: t0.Add(4 * time.Second), Header: f.header}, true)
	if err := inHub.Write(context.Background(), f.cluster[0]); err != nil {
		t.Fatal(err)
	}
	inHub.Complete(2 * time.Second)
	f.clock.advance(6 * time.Second)

	tok, err := f.hls(HLSInput{ContainerFormat: str(ContainerFMP4), DiscontinuityMode: str(DiscontinuityOnGap), MaxMediaPlaylistFragmentResults: ptr(int64(5))})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"#EXT-X-MEDIA-SEQUENCE:0", "map 0", "frag 01", "frag 02", "frag 03"}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Fatalf("the third fragment from the hub (-want +got):\n%s", d)
	}
	catalog.after = func() {
		f.add(4*time.Second, 2*time.Second, f.header)
		inHub.Persisted()
	}
	if d := cmp.Diff(want, f.tags(f.media(tok))); d != "" {
		t.Errorf("the third fragment after it moved from the hub to the catalog mid-reload (-want +got):\n%s", d)
	}
	if got := hub.Stream(f.stream.ID).Evicted(); got != third {
		t.Errorf("hub evicted %q, want the third fragment: the test did not move it", got)
	}
}
