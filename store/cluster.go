package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the cluster operations.
var (
	// ErrLeaseHeld: another live node owns the stream.
	ErrLeaseHeld = errors.New("lease held by another node")
	// ErrLeaseLost: the lease a commit was fenced with is no longer the
	// stream's current one (expired and taken, or released); nothing of
	// that commit was written.
	ErrLeaseLost = errors.New("lease lost")
)

// Node is one `openkvs serve` process sharing a catalog with others.
type Node struct {
	ID        string
	URL       string    // public base URL producers and readers are sent to
	Heartbeat time.Time // last heartbeat, on the catalog's clock
	Alive     bool      // its liveness token is held, or its heartbeat is fresh
}

// Lease is a node's ownership of one stream: the node runs the stream's
// PutMedia and live hub. Epoch grows each time the lease changes hands and
// fences the owner's fragment-row commits (AddFragments).
type Lease struct {
	StreamID int64
	Owner    string // node ID
	Epoch    int64
}

// Cluster is what nodes sharing one catalog coordinate through: a registry
// of nodes and stream leases with fencing epochs. Times are on the
// catalog's clock, never a node's. Only shared catalogs implement it; with
// one node (the embedded catalog) there is nothing to coordinate.
type Cluster interface {
	// Join registers the node (or updates its URL) and holds a liveness
	// token for it (a session lock) until Leave or until the process dies,
	// so that others see a dead node at once rather than at lease expiry.
	Join(ctx context.Context, id, url string) error
	// Heartbeat refreshes the node's heartbeat time.
	Heartbeat(ctx context.Context, id string) error
	// Leave releases the node's leases and liveness token and removes it.
	Leave(ctx context.Context, id string) error
	// Nodes returns every registered node.
	Nodes(ctx context.Context) ([]Node, error)

	// AcquireLease gives stream the lease of node owner for ttl: a new
	// lease with a higher epoch when the stream had none, when it expired,
	// or when its owner is no longer alive; the same epoch, renewed, when
	// owner already holds it. ErrLeaseHeld when another live node holds an
	// unexpired lease; ErrNotFound when the stream is gone.
	AcquireLease(ctx context.Context, stream int64, owner string, ttl time.Duration) (Lease, error)
	// RenewLeases extends every lease node owner holds by ttl and returns
	// them; a lease missing from the result was lost.
	RenewLeases(ctx context.Context, owner string, ttl time.Duration) ([]Lease, error)
	// ReleaseLease ends the lease if it is still the current one.
	ReleaseLease(ctx context.Context, l Lease) error
	// LeaseOwner returns the node holding stream's lease if that lease is
	// unexpired and its node alive; ErrNotFound otherwise.
	LeaseOwner(ctx context.Context, stream int64) (Node, error)

	// AcquireSingleton makes node owner the holder of the named
	// cluster-wide job for ttl, or renews it; false when another live
	// node holds it.
	AcquireSingleton(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)

	// Secret returns the named cluster-wide secret, which the first caller
	// creates as a copy of value and every later caller gets unchanged:
	// keys that every node must share, such as the one that signs playback
	// session tokens.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}
