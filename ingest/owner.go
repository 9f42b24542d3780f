package ingest

import (
	"context"

	"github.com/openkvs/openkvs/store"
)

// Ownership is a cluster's hold on streams, through which the nodes sharing
// one catalog agree on which of them runs a stream's PutMedia (the owner).
// With one node there is none (Options.Owner is nil) and every session
// commits unfenced.
type Ownership interface {
	// Claim makes this node the owner of stream for one session:
	// store.ErrLeaseHeld when another live node owns it.
	Claim(ctx context.Context, stream int64) (Claim, error)
}

// Claim is one session's use of its node's lease on a stream.
type Claim interface {
	// Lease returns the lease to fence a fragment-row commit with, or
	// store.ErrLeaseLost once the node can no longer count on holding it.
	Lease() (*store.Lease, error)
	// Lost is closed when the lease is lost: the session must end.
	Lost() <-chan struct{}
	// Release ends the session's use of the lease.
	Release()
}
