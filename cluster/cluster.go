// Package cluster runs one openkvs node among several that share a catalog
// implementing store.Cluster (PostgreSQL) and one bucket: it registers the
// node and keeps its heartbeat, holds the leases of the streams whose
// PutMedia it runs (ingest.Ownership), answers GetDataEndpoint with a
// stream's owner, and runs cluster-wide jobs (the retention sweeper) on one
// node at a time.
//
// A lease is held on the catalog's clock, but a node counts on it only
// until the monotonic time its last successful renew was sent plus the TTL
// minus a margin: the catalog's expiry can only be later than that, so a
// node that stops hearing from the catalog (a pause, a partition) gives
// its streams up before another node can take them. Fencing in the
// catalog (store.Catalog.AddFragments) is what makes a late commit
// harmless; the node-side guard ends the session that would make it.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/openkvs/openkvs/store"
)

// DefaultTTL is a lease's and a singleton's time to live: how long a node
// that vanished without its liveness token going (a host lost, a network
// partition) keeps its streams. A crashed process loses them at once.
const DefaultTTL = 10 * time.Second

// Options configure a Node.
type Options struct {
	// TTL is the lease time to live; leases are renewed every TTL/3.
	// Zero means DefaultTTL.
	TTL    time.Duration
	Logger *slog.Logger
}

// Node is this process's membership in the cluster.
type Node struct {
	c      store.Cluster
	ttl    time.Duration
	margin time.Duration // of a lease's TTL the node does not count on
	log    *slog.Logger

	id, url string // set by Start

	mu        sync.Mutex
	leases    map[int64]*lease
	acquiring map[int64]int           // claims in flight, by stream
	releasing map[int64]chan struct{} // releases in flight, closed when done

	stop context.CancelFunc
	done chan struct{}
}

// New returns a Node coordinating through c; Start joins the cluster.
func New(c store.Cluster, opts Options) *Node {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Node{c: c, ttl: opts.TTL, margin: opts.TTL / 10, log: opts.Logger,
		leases: map[int64]*lease{}, acquiring: map[int64]int{}, releasing: map[int64]chan struct{}{}}
}

// ID returns the node's ID (after Start).
func (n *Node) ID() string { return n.id }

// URL returns the node's public URL (after Start).
func (n *Node) URL() string { return n.url }

// TTL returns the lease time to live.
func (n *Node) TTL() time.Duration { return n.ttl }

// Start joins the cluster as node id reachable at url and keeps the
// node's heartbeat and leases until Stop.
func (n *Node) Start(ctx context.Context, id, url string) error {
	if id == "" || url == "" {
		return errors.New("cluster: a node needs an ID and a public URL")
	}
	n.id, n.url = id, url
	if err := n.c.Join(ctx, id, url); err != nil {
		return fmt.Errorf("join cluster as %s: %w", id, err)
	}
	ctx, n.stop = context.WithCancel(context.WithoutCancel(ctx))
	n.done = make(chan struct{})
	go n.keep(ctx)
	return nil
}

// Stop ends the heartbeat and lease renewal and leaves the cluster,
// releasing every lease the node holds: other nodes may take its streams
// at once. Call it once the node's sessions have ended.
func (n *Node) Stop(ctx context.Context) error {
	if n.stop == nil {
		return nil
	}
	n.stop()
	<-n.done
	n.mu.Lock()
	for _, l := range n.leases {
		n.lose(l, "node leaving")
	}
	n.mu.Unlock()
	if err := n.c.Leave(ctx, n.id); err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	return nil
}

// keep sends the heartbeat and renews the leases every TTL/3.
func (n *Node) keep(ctx context.Context) {
	defer close(n.done)
	t := time.NewTicker(n.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.renew(ctx)
		if err := n.c.Heartbeat(ctx, n.id); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster heartbeat", "node", n.id, "err", err)
		}
	}
}

// DataEndpoint is the base URL that serves apiName for st, for
// GetDataEndpoint: a live owner's URL for PUT_MEDIA and GET_MEDIA, whose
// live edge only the owner has, else self (this node, as the request
// reached it). It takes no lease: GetDataEndpoint is a read, which any
// client may call at any time, and the PutMedia that follows takes it.
// Nodes answering self at once for the same stream is harmless: the first
// PutMedia wins the lease and the other producer is refused and resolves
// again, to the owner.
func (n *Node) DataEndpoint(ctx context.Context, st *store.Stream, apiName, self string) (string, error) {
	if apiName != "PUT_MEDIA" && apiName != "GET_MEDIA" {
		return self, nil
	}
	url, me, err := n.Owner(ctx, st)
	if err != nil || me {
		return self, err
	}
	return url, nil
}

// Owner says which node owns st now, for follow.Options.Owner: the live
// owner's URL, or self when it is this node or no live node owns st.
func (n *Node) Owner(ctx context.Context, st *store.Stream) (url string, self bool, err error) {
	owner, err := n.c.LeaseOwner(ctx, st.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", true, nil
	case err != nil:
		return "", false, fmt.Errorf("owner of stream %s: %w", st.Name, err)
	case owner.ID == n.id:
		return "", true, nil
	}
	return owner.URL, false, nil
}
