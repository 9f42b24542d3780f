package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/openkvs/openkvs/cluster"
	"github.com/openkvs/openkvs/store"
)

// clusterConfig holds the flags of a node among several sharing one
// catalog.
type clusterConfig struct {
	nodeID   string
	leaseTTL time.Duration
}

func (c *clusterConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.nodeID, "node-id", "", "this node's `ID` among the nodes sharing a PostgreSQL --catalog (default: host name and listen port)")
	fs.DurationVar(&c.leaseTTL, "lease-ttl", cluster.DefaultTTL, "how long a node sharing a PostgreSQL --catalog keeps its streams once it stops answering (a crashed process loses them at once); renewed every third of it")
}

// minLeaseTTL keeps renewals (every third of the TTL) far apart from the
// catalog's commit times.
const minLeaseTTL = time.Second

// newNode returns this node's membership in a cluster when the catalog is
// shared by several nodes (it implements store.Cluster), else nil: with one
// node there is nothing to coordinate.
func (c *clusterConfig) newNode(catalog store.Catalog, log *slog.Logger) (*cluster.Node, error) {
	shared, ok := catalog.(store.Cluster)
	if !ok {
		return nil, nil
	}
	if c.leaseTTL < minLeaseTTL {
		return nil, fmt.Errorf("--lease-ttl %v is too short; give at least %v", c.leaseTTL, minLeaseTTL)
	}
	return cluster.New(shared, cluster.Options{TTL: c.leaseTTL, Logger: log}), nil
}

// join makes the node a member reachable at publicURL, which other nodes
// send producers and readers to: it must be a URL that reaches this node,
// so a node listening on all addresses needs --public-url.
func (c *clusterConfig) join(ctx context.Context, node *cluster.Node, addr *net.TCPAddr, publicURL string) error {
	if publicURL == "" {
		return fmt.Errorf("a node sharing a PostgreSQL --catalog needs --public-url when it listens on all addresses: other nodes send clients to it")
	}
	id := c.nodeID
	if id == "" {
		// Stable across restarts of the node, distinct between the nodes
		// of one host.
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-id not given and no host name to derive it from: %w", err)
		}
		id = net.JoinHostPort(host, strconv.Itoa(addr.Port))
	}
	return node.Start(ctx, id, publicURL)
}
