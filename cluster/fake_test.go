package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/openkvs/openkvs/store"
)

// memCluster is store.Cluster in memory, with the contract's semantics,
// for the node's timing rules; the catalogs' own conformance suite tests
// the real backends.
type memCluster struct {
	mu         sync.Mutex
	nodes      map[string]*store.Node
	leases     map[int64]*memLease
	singletons map[string]*memLease
	epochs     map[int64]int64 // last epoch of each stream: never reused
	failRenew  error           // RenewLeases and AcquireSingleton fail with it
	renewCalls int
}

type memLease struct {
	owner   string
	epoch   int64
	expires time.Time
}

func newMemCluster() *memCluster {
	return &memCluster{nodes: map[string]*store.Node{}, leases: map[int64]*memLease{},
		singletons: map[string]*memLease{}, epochs: map[int64]int64{}}
}

func (c *memCluster) Join(_ context.Context, id, url string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[id] = &store.Node{ID: id, URL: url, Heartbeat: time.Now(), Alive: true}
	return nil
}

func (c *memCluster) Heartbeat(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.nodes[id]; n != nil {
		n.Heartbeat = time.Now()
	}
	return nil
}

func (c *memCluster) Leave(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, l := range c.leases {
		if l.owner == id {
			delete(c.leases, s)
		}
	}
	for s, l := range c.singletons {
		if l.owner == id {
			delete(c.singletons, s)
		}
	}
	delete(c.nodes, id)
	return nil
}

// kill makes node id dead, as its process dying would.
func (c *memCluster) kill(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nodes[id].Alive = false
}

func (c *memCluster) Nodes(context.Context) ([]store.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []store.Node
	for _, n := range c.nodes {
		out = append(out, *n)
	}
	return out, nil
}

func (c *memCluster) alive(id string) bool { return c.nodes[id] != nil && c.nodes[id].Alive }

// takeable reports whether owner may take or renew l. Under c.mu.
func (c *memCluster) takeable(l *memLease, owner string) bool {
	return l == nil || l.owner == owner || time.Now().After(l.expires) || !c.alive(l.owner)
}

func (c *memCluster) AcquireLease(_ context.Context, stream int64, owner string, ttl time.Duration) (store.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.leases[stream]
	if !c.takeable(l, owner) {
		return store.Lease{}, store.ErrLeaseHeld
	}
	if l == nil || l.owner != owner {
		c.epochs[stream]++
		l = &memLease{owner: owner, epoch: c.epochs[stream]}
		c.leases[stream] = l
	}
	l.expires = time.Now().Add(ttl)
	return store.Lease{StreamID: stream, Owner: owner, Epoch: l.epoch}, nil
}

// take gives stream's lease to owner whatever holds it, as another node
// would once it expired.
func (c *memCluster) take(stream int64, owner string, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epochs[stream]++
	c.leases[stream] = &memLease{owner: owner, epoch: c.epochs[stream], expires: time.Now().Add(ttl)}
}

func (c *memCluster) RenewLeases(_ context.Context, owner string, ttl time.Duration) ([]store.Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.renewCalls++
	if c.failRenew != nil {
		return nil, c.failRenew
	}
	var out []store.Lease
	for s, l := range c.leases {
		if l.owner == owner {
			l.expires = time.Now().Add(ttl)
			out = append(out, store.Lease{StreamID: s, Owner: owner, Epoch: l.epoch})
		}
	}
	return out, nil
}

func (c *memCluster) ReleaseLease(_ context.Context, l store.Lease) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.leases[l.StreamID]; cur != nil && cur.owner == l.Owner && cur.epoch == l.Epoch {
		delete(c.leases, l.StreamID)
	}
	return nil
}

func (c *memCluster) LeaseOwner(_ context.Context, stream int64) (store.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.leases[stream]
	if l == nil || time.Now().After(l.expires) || !c.alive(l.owner) {
		return store.Node{}, store.ErrNotFound
	}
	return *c.nodes[l.owner], nil
}

func (c *memCluster) AcquireSingleton(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failRenew != nil {
		return false, c.failRenew
	}
	l := c.singletons[name]
	if !c.takeable(l, owner) {
		return false, nil
	}
	c.singletons[name] = &memLease{owner: owner, expires: time.Now().Add(ttl)}
	return true, nil
}

// lease returns stream's lease as the catalog has it.
func (c *memCluster) lease(stream int64) (memLease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.leases[stream]
	if l == nil {
		return memLease{}, false
	}
	return *l, true
}

func (c *memCluster) setFailRenew(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failRenew = err
}

func (c *memCluster) renews() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewCalls
}

var errDown = errors.New("catalog unreachable")
