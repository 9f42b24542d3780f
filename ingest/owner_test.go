package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/storetest"
	"github.com/openkvs/openkvs/synth"
)

// owner is an Ownership with one lease per stream that the test can take
// away, and a catalog fenced by it: rows commit only with the current
// epoch, as a shared catalog's AddFragments checks in its transaction.
type owner struct {
	store.Catalog
	mu      sync.Mutex
	held    error // what Claim returns; nil grants the claim
	epoch   int64
	lost    chan struct{}
	claims  int // claims not yet released
	commits []int64
}

func (o *owner) Claim(_ context.Context, stream int64) (Claim, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.held != nil {
		return nil, o.held
	}
	if o.lost == nil {
		o.epoch++
		o.lost = make(chan struct{})
	}
	o.claims++
	return &ownerClaim{o: o, lease: store.Lease{StreamID: stream, Owner: "me", Epoch: o.epoch}, lost: o.lost}, nil
}

// lose takes the lease away, as another node taking the stream would.
func (o *owner) lose(signal bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.epoch++
	if signal {
		close(o.lost)
	}
	o.lost = nil
}

func (o *owner) AddFragments(ctx context.Context, l *store.Lease, fs []*store.Fragment) error {
	o.mu.Lock()
	if l == nil || l.Epoch != o.epoch {
		o.mu.Unlock()
		return store.ErrLeaseLost
	}
	o.commits = append(o.commits, l.Epoch)
	o.mu.Unlock()
	return o.Catalog.AddFragments(ctx, nil, fs)
}

func (o *owner) unreleased() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.claims
}

type ownerClaim struct {
	o     *owner
	lease store.Lease
	lost  chan struct{}
	once  sync.Once
}

func (c *ownerClaim) Lease() (*store.Lease, error) { l := c.lease; return &l, nil }
func (c *ownerClaim) Lost() <-chan struct{}        { return c.lost }
func (c *ownerClaim) Release() {
	c.once.Do(func() {
		c.o.mu.Lock()
		c.o.claims--
		c.o.mu.Unlock()
	})
}

func newOwnedHarness(t *testing.T) (*harness, *owner) {
	t.Helper()
	c, b := storetest.Embedded(t)
	o := &owner{Catalog: c}
	hub := live.NewHub(live.Options{})
	return &harness{t: t, m: NewManager(o, b, hub, Options{Owner: o}, nil), catalog: c, blobs: b, hub: hub}, o
}

// TestOwnedRefused: a stream another node owns is refused before the
// response starts, with the error that makes producers resolve the
// endpoint again.
func TestOwnedRefused(t *testing.T) {
	h, o := newOwnedHarness(t)
	st := h.stream("s", 24)
	o.held = store.ErrLeaseHeld
	_, err := h.m.Open(context.Background(), st)
	if ae := api.As(err); ae == nil || ae.Type != "ConnectionLimitExceededException" || ae.Status != 400 {
		t.Fatalf("Open of a stream another node owns: %v, want ConnectionLimitExceededException (400)", err)
	}
}

// TestOwnedCommitsFenced: every commit carries the session's lease, and
// the claim is released when the session ends.
func TestOwnedCommitsFenced(t *testing.T) {
	h, o := newOwnedHarness(t)
	st := h.stream("s", 24)
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(0), goodFragment(1000), goodFragment(2000)))
	if err != nil {
		t.Fatal(err)
	}
	numbers, _ := checkAckOrder(t, acks, true)
	if len(numbers) != 3 {
		t.Fatalf("%d fragments acknowledged, want 3", len(numbers))
	}
	for _, e := range o.commits {
		if e != 1 {
			t.Errorf("commit fenced with epoch %d, want 1", e)
		}
	}
	if n := o.unreleased(); n != 0 {
		t.Errorf("%d claims left after the session, want 0", n)
	}
}

// TestOwnedLeaseLost: once the lease is lost, the session ends with ERROR
// 5001 for the fragment that was being stored, and nothing after it is
// PERSISTED, whether the loss is found at a commit or signalled first.
func TestOwnedLeaseLost(t *testing.T) {
	for _, signal := range []bool{false, true} {
		h, o := newOwnedHarness(t)
		st := h.stream("s", 24)
		body, log, done := h.startPiped(st)
		body.w.Write(concat(synth.Header(1), goodFragment(0), goodFragment(1000)))
		wait.For(t, "first PERSISTED", func() bool { return log.count(AckPersisted) == 1 })
		o.lose(signal)
		if !signal {
			// The loss is found when the next fragment's row is committed.
			body.w.Write(goodFragment(2000))
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(wait.Deadline):
			t.Fatalf("signal %v: the session goes on after its lease was lost", signal)
		}
		if !errors.Is(err, errLeaseLost) && !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("signal %v: session error = %v, want the lease lost", signal, err)
		}
		persisted, errs := tally(log.acks(t))
		if persisted != 1 {
			t.Errorf("signal %v: %d PERSISTED, want 1 (before the loss)", signal, persisted)
		}
		if len(errs) != 1 || errs[0].ErrorID != 5001 || errs[0].ErrorCode != "ARCHIVAL_ERROR" || errs[0].FragmentTimecode != 1000 {
			t.Errorf("signal %v: ERROR ACKs %+v, want one 5001 ARCHIVAL_ERROR for the fragment at 1000", signal, errs)
		}
		if frags, _ := h.storedFragments(st); len(frags) != 1 {
			t.Errorf("signal %v: %d fragments stored, want 1", signal, len(frags))
		}
		if n := o.unreleased(); n != 0 {
			t.Errorf("signal %v: %d claims left after the session, want 0", signal, n)
		}
	}
}
