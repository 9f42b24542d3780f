package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/store"
)

// lease is the node's hold on one stream, shared by the sessions that
// claimed it.
type lease struct {
	l      store.Lease
	since  time.Time // when the acquire that created it returned
	valid  time.Time // monotonic: the node counts on the lease until then
	claims int
	gone   bool // lost or released: a new claim acquires anew
	lost   chan struct{}
	expiry *time.Timer // loses the lease at valid
	linger *time.Timer // releases it once unclaimed for a TTL
}

// Claim makes this node the owner of stream for one PutMedia session
// (ingest.Ownership): store.ErrLeaseHeld when another live node owns it.
func (n *Node) Claim(ctx context.Context, stream int64) (ingest.Claim, error) {
	n.mu.Lock()
	for n.releasing[stream] != nil {
		// A release of the same epoch would end the lease acquired now.
		ch := n.releasing[stream]
		n.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		n.mu.Lock()
	}
	n.acquiring[stream]++
	n.mu.Unlock()
	sent := time.Now()
	got, err := n.c.AcquireLease(ctx, stream, n.id, n.ttl)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.acquiring[stream]--; n.acquiring[stream] == 0 {
		delete(n.acquiring, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease of stream %d: %w", stream, err)
	}
	l := n.leases[stream]
	if l != nil && l.l.Epoch != got.Epoch {
		// The lease changed hands and came back: sessions of the old one
		// must not commit with it.
		n.lose(l, "lease acquired again with a new epoch")
		l = nil
	}
	if l == nil {
		l = &lease{l: got, since: time.Now(), lost: make(chan struct{})}
		l.expiry = time.AfterFunc(n.ttl, func() { n.expire(l) })
		n.leases[stream] = l
		n.log.Info("stream lease acquired", "stream_id", stream, "epoch", got.Epoch)
	}
	n.extend(l, sent)
	if l.linger != nil {
		l.linger.Stop()
		l.linger = nil
	}
	l.claims++
	return &claim{n: n, l: l}, nil
}

// extend makes l valid until TTL minus the margin after sent, the time
// the acquire or renew that the catalog answered was sent. Under n.mu.
func (n *Node) extend(l *lease, sent time.Time) {
	valid := sent.Add(n.ttl - n.margin)
	if valid.After(l.valid) {
		l.valid = valid
		l.expiry.Reset(time.Until(valid))
	}
}

// expire loses l if it was not renewed in time.
func (n *Node) expire(l *lease) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !l.gone && !time.Now().Before(l.valid) {
		n.lose(l, "not renewed in time")
	}
}

// lose ends l: its sessions must stop. Under n.mu.
func (n *Node) lose(l *lease, why string) {
	if l.gone {
		return
	}
	l.gone = true
	close(l.lost)
	l.expiry.Stop()
	if l.linger != nil {
		l.linger.Stop()
	}
	if n.leases[l.l.StreamID] == l {
		delete(n.leases, l.l.StreamID)
	}
	if l.claims > 0 {
		n.log.Warn("stream lease lost", "stream_id", l.l.StreamID, "epoch", l.l.Epoch, "why", why)
	}
}

// renew extends every lease the node holds; one missing from the
// catalog's answer was lost. Leases the catalog has for this node that no
// session holds (left by a lease given up locally, or by an earlier run of
// the node) are released so that other nodes may take them.
func (n *Node) renew(ctx context.Context) {
	sent := time.Now()
	got, err := n.c.RenewLeases(ctx, n.id, n.ttl)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("renew stream leases", "node", n.id, "err", err)
		}
		return // each lease is lost when its validity ends
	}
	epochs := make(map[int64]int64, len(got))
	for _, l := range got {
		epochs[l.StreamID] = l.Epoch
	}
	n.mu.Lock()
	for id, l := range n.leases {
		if l.since.After(sent) {
			continue // acquired after the renew was sent: not in its answer
		}
		if e, ok := epochs[id]; ok && e == l.l.Epoch {
			n.extend(l, sent)
		} else {
			n.lose(l, "missing from the renewal")
		}
	}
	type pending struct {
		l    store.Lease
		done chan struct{}
	}
	var stray []pending
	for _, l := range got {
		if n.leases[l.StreamID] == nil {
			if done := n.beginRelease(l.StreamID); done != nil {
				stray = append(stray, pending{l, done})
			}
		}
	}
	n.mu.Unlock()
	for _, p := range stray {
		n.release(ctx, p.l, p.done)
	}
}

// beginRelease registers a release of stream's lease, so that claims of
// the stream wait for it: a release of the epoch a claim acquires again
// would end the claim's lease. It returns nil when a claim or a release of
// the stream is in flight. Under n.mu.
func (n *Node) beginRelease(stream int64) chan struct{} {
	if n.releasing[stream] != nil || n.acquiring[stream] > 0 {
		return nil
	}
	done := make(chan struct{})
	n.releasing[stream] = done
	return done
}

// release ends lease l in the catalog, then lets the claims of its
// stream that waited go on.
func (n *Node) release(ctx context.Context, l store.Lease, done chan struct{}) {
	if err := n.c.ReleaseLease(ctx, l); err != nil && ctx.Err() == nil {
		n.log.Warn("release stream lease", "stream_id", l.StreamID, "epoch", l.Epoch, "err", err)
	}
	n.mu.Lock()
	delete(n.releasing, l.StreamID)
	n.mu.Unlock()
	close(done)
}

// claim is one session's use of a lease (ingest.Claim).
type claim struct {
	n        *Node
	l        *lease
	released bool
}

// Lease returns the lease while the node may count on it.
func (c *claim) Lease() (*store.Lease, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	if c.l.gone || !time.Now().Before(c.l.valid) {
		return nil, store.ErrLeaseLost
	}
	l := c.l.l
	return &l, nil
}

// Lost is closed when the lease is lost.
func (c *claim) Lost() <-chan struct{} { return c.l.lost }

// Release ends the session's use of the lease. The node keeps an unclaimed
// lease for one TTL before releasing it: a producer that reconnects (after
// an ERROR, or a dropped connection) is sent back here by GetDataEndpoint
// instead of to whichever node answers first, so the stream and its live
// readers do not move between nodes at each reconnect.
func (c *claim) Release() {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	l := c.l
	if l.claims--; l.claims > 0 || l.gone {
		return
	}
	l.linger = time.AfterFunc(n.ttl, func() { n.unlinger(l) })
}

// unlinger releases l if no session claimed it meanwhile.
func (n *Node) unlinger(l *lease) {
	n.mu.Lock()
	if l.gone || l.claims > 0 {
		n.mu.Unlock()
		return
	}
	n.lose(l, "released")
	done := n.beginRelease(l.l.StreamID)
	n.mu.Unlock()
	if done == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.ttl)
	defer cancel()
	n.release(ctx, l.l, done)
}
