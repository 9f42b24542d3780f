package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/openkvs/openkvs/access"
	"github.com/openkvs/openkvs/cluster"
	"github.com/openkvs/openkvs/cluster/follow"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/store"
)

// clusterConfig holds the flags of a node among several sharing one
// catalog.
type clusterConfig struct {
	nodeID      string
	leaseTTL    time.Duration
	accessKeyID string
}

func (c *clusterConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.nodeID, "node-id", "", "this node's `ID` among the nodes sharing a PostgreSQL --catalog (default: host name and listen port)")
	fs.StringVar(&c.accessKeyID, "cluster-access-key-id", "", "access key `ID` of --credentials that a node signs its GetMedia to other nodes with, to follow the streams they own (default: the first key, in byte order, allowed GetMedia on every stream)")
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

// feed returns what makes the follower of a node's hub (mediaConfig.follow):
// GetMedia readers on this node of a stream another node owns get its
// live edge through one internal GetMedia per stream to the owner, signed,
// when the nodes check signatures, with --cluster-access-key-id.
func (c *clusterConfig) feed(node *cluster.Node, catalog store.Catalog, creds *access.Reloader, region string, log *slog.Logger) (func(*live.Hub) media.Feed, error) {
	var sign func(*http.Request) error
	if creds != nil {
		id := c.accessKeyID
		if id == "" {
			for _, k := range creds.Store().IDs() {
				if creds.Allowed(k, "GetMedia", "") {
					id = k
					break
				}
			}
			if id == "" {
				return nil, fmt.Errorf("no key of --credentials may GetMedia every stream, which a node needs to follow the streams other nodes own: add one, or name one with --cluster-access-key-id")
			}
		} else if _, ok := creds.Secret(id); !ok {
			return nil, fmt.Errorf("--cluster-access-key-id %s is not a key of --credentials", id)
		}
		// The secret is looked up at each request: SIGHUP may rotate it.
		provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			secret, ok := creds.Secret(id)
			if !ok {
				return aws.Credentials{}, fmt.Errorf("--cluster-access-key-id %s is no longer in --credentials", id)
			}
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		})
		sign = jsonSigner(aws.Config{Credentials: provider}, region)
	}
	return func(hub *live.Hub) media.Feed {
		return follow.New(follow.Options{Owner: node.Owner, Catalog: catalog, Hub: hub, Sign: sign, Log: log})
	}, nil
}
