package cluster

import (
	"context"
	"time"
)

// RunSingleton runs job while this node holds the named cluster-wide
// singleton, until ctx ends: it tries to acquire or renew it every TTL/3,
// starts job when it gets it and cancels job's context when it loses it,
// or when it could not renew it for TTL minus the margin (the node-side
// guard leases have too), waiting for job to return before trying again.
// At most one node runs job at a time, as far as the nodes' clocks run at
// the same rate.
func (n *Node) RunSingleton(ctx context.Context, name string, job func(context.Context)) {
	var (
		valid   time.Time
		cancel  context.CancelFunc
		stopped chan struct{}
	)
	stop := func() {
		if cancel != nil {
			cancel()
			<-stopped
			cancel = nil
			n.log.Info("cluster job stopped here", "job", name, "node", n.id)
		}
	}
	defer stop()
	t := time.NewTicker(n.ttl / 3)
	defer t.Stop()
	expired := time.NewTimer(0) // fires at valid while job runs
	expired.Stop()
	for {
		sent := time.Now()
		actx, acancel := context.WithTimeout(ctx, n.ttl/3)
		if cancel != nil {
			// A renew that hangs must not outlive the singleton.
			actx, acancel = context.WithDeadline(ctx, valid)
		}
		held, err := n.c.AcquireSingleton(actx, name, n.id, n.ttl)
		acancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			n.log.Warn("acquire cluster job", "job", name, "err", err)
			if cancel != nil && !time.Now().Before(valid) {
				stop()
			}
		case held:
			valid = sent.Add(n.ttl - n.margin)
			if cancel == nil {
				var jctx context.Context
				jctx, cancel = context.WithCancel(ctx)
				stopped = make(chan struct{})
				n.log.Info("cluster job runs here", "job", name, "node", n.id)
				go func() {
					defer close(stopped)
					job(jctx)
				}()
			}
		default:
			stop()
		}
		var expiry <-chan time.Time
		if cancel != nil {
			expired.Reset(time.Until(valid))
			expiry = expired.C
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-expiry:
			stop()
		}
		expired.Stop()
	}
}
