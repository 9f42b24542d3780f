package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/blob/s3"
	"github.com/openkvs/openkvs/clip"
	"github.com/openkvs/openkvs/cluster"
	"github.com/openkvs/openkvs/imagegen"
	"github.com/openkvs/openkvs/images"
	"github.com/openkvs/openkvs/ingest"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/media"
	"github.com/openkvs/openkvs/metrics"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streaming"
	"github.com/openkvs/openkvs/streams"
	"github.com/openkvs/openkvs/sweeper"
)

// mediaConfig holds the data-plane flags: ingest limits, live memory and
// the sweeper.
type mediaConfig struct {
	ingest        ingest.Options
	read          media.Options
	live          live.Options
	streaming     streaming.Options
	clip          clip.Options
	images        images.Options
	sweepInterval time.Duration
	blobs         string // s3:// URL; "" keeps fragments in files under --data
	storage       *metrics.Storage
	sweeper       *metrics.Sweeper
	// follow, in a cluster, makes the feed that brings streams other nodes
	// own into this node's hub for its GetMedia readers; nil on one node.
	follow func(*live.Hub) media.Feed
}

// withMetrics registers the data plane's metrics on reg.
func (m *mediaConfig) withMetrics(reg prometheus.Registerer) {
	m.storage = metrics.NewStorage(reg)
	m.sweeper = metrics.NewSweeper(reg)
	m.ingest.Metrics, m.ingest.Storage = metrics.NewIngest(reg), m.storage
	m.read.Metrics = metrics.NewMedia(reg)
}

func (m *mediaConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&m.blobs, "blobs", "", "fragment storage `URL` s3://bucket/prefix?endpoint=...&region=... (default: files under --data)")
	fs.Int64Var(&m.ingest.MaxFragmentSize, "max-fragment-size", 50_000_000, "largest fragment PutMedia accepts, in `bytes` (ERROR 4001 above)")
	fs.DurationVar(&m.ingest.MaxFragmentDuration, "max-fragment-duration", 20*time.Second, "longest fragment PutMedia accepts (ERROR 4002 above)")
	fs.IntVar(&m.ingest.MaxTracks, "max-tracks", 3, "most tracks a PutMedia stream header may declare (ERROR 4012 above)")
	fs.Float64Var(&m.ingest.CallsPerSecond, "putmedia-calls-per-second", 5, "PutMedia calls per stream per second (ClientLimitExceededException above)")
	fs.Float64Var(&m.ingest.BytesPerSecond, "putmedia-bytes-per-second", 12.5e6, "ingest rate per stream in `bytes/s` (the body is read no faster)")
	fs.Int64Var(&m.live.MaxStreamBytes, "live-stream-bytes", 64<<20, "memory for each stream's window of recent fragments, in `bytes`")
	fs.Int64Var(&m.live.MaxTotalBytes, "live-total-bytes", 1<<30, "memory for all live windows together, in `bytes`")
	fs.DurationVar(&m.live.MaxAge, "live-window", 5*time.Minute, "how long complete fragments stay in memory for live readers")
	fs.DurationVar(&m.live.ArchivedAge, "live-archived-window", live.DefaultArchivedAge, "how long fragments of streams that keep an archive stay in memory for live readers, at least until persisted; older ones are read from the archive")
	fs.Float64Var(&m.read.CallsPerSecond, "getmedia-calls-per-second", 5, "GetMedia calls per stream per second (ClientLimitExceededException above)")
	fs.IntVar(&m.read.MaxConnections, "getmedia-connections", 3, "concurrent GetMedia connections per stream (ConnectionLimitExceededException above)")
	fs.Float64Var(&m.read.BytesPerSecond, "getmedia-bytes-per-second", 25e6, "GetMedia and GetMediaForFragmentList rate per session in `bytes/s`")
	fs.Float64Var(&m.read.ListCallsPerSecond, "listfragments-calls-per-second", 5, "ListFragments calls per stream per second (ClientLimitExceededException above)")
	fs.Float64Var(&m.read.FragmentListCallsPerSec, "getmediaforfragmentlist-calls-per-second", 5, "GetMediaForFragmentList calls per stream per second (ClientLimitExceededException above)")
	fs.IntVar(&m.read.FragmentListConnections, "getmediaforfragmentlist-connections", 5, "concurrent GetMediaForFragmentList connections per stream (ConnectionLimitExceededException above)")
	fs.Float64Var(&m.streaming.PlaylistsPerSecond, "playlist-calls-per-second", 5, "HLS playlist and DASH manifest requests per streaming session per second")
	fs.Float64Var(&m.streaming.InitsPerSecond, "init-calls-per-second", 5, "init segment requests per streaming session per second")
	fs.Float64Var(&m.streaming.FragmentsPerSecond, "segment-calls-per-second", 10, "media segment requests per streaming session per second")
	fs.IntVar(&m.streaming.SessionsPerStream, "sessions-per-stream", 10, "active HLS and DASH sessions per stream; one more revokes the oldest")
	fs.Float64Var(&m.clip.RequestsPerSecond, "getclip-calls-per-second", 1, "GetClip calls per stream per second (ClientLimitExceededException above)")
	fs.IntVar(&m.clip.MaxFragments, "getclip-fragments", clip.DefaultMaxFragments, "most fragments in one GetClip answer; the range's later fragments are left out")
	fs.Int64Var(&m.clip.MaxBytes, "getclip-bytes", clip.DefaultMaxBytes, "most media `bytes` in one GetClip answer; the range's later fragments are left out")
	fs.StringVar(&m.images.FFmpeg, "ffmpeg", "ffmpeg", "ffmpeg `program` GetImages decodes video with: a path, or a name looked up on PATH")
	fs.IntVar(&m.images.Decoders, "image-decoders", images.DefaultDecoders, "ffmpeg processes GetImages runs at once, all requests together")
	fs.Int64Var(&m.images.CacheBytes, "image-cache-bytes", images.DefaultCacheBytes, "memory for GetImages' cache of decoded images, in `bytes`")
	fs.Float64Var(&m.images.CallsPerSecond, "getimages-calls-per-second", 5, "GetImages calls per stream per second (ClientLimitExceededException above)")
	fs.DurationVar(&m.sweepInterval, "sweep-interval", time.Minute, "how often fragments past their stream's retention are deleted")
}

// dataPlane is the running data plane.
type dataPlane struct {
	ingest    *ingest.Manager
	media     *media.Service
	streaming *streaming.Service
	clip      *clip.Service
	images    *images.Service
	imagegen  *imagegen.Service
	hub       *live.Hub
	sweeper   *sweeper.Sweeper
}

// openBlobs opens fragment storage: the bucket --blobs names, else files
// under data.
func openBlobs(m *mediaConfig, data string) (store.Blobs, error) {
	if m.blobs == "" {
		blobs, err := file.Open(filepath.Join(data, "blobs"))
		if err != nil {
			return nil, err
		}
		blobs.Metrics = m.storage
		return blobs, nil
	}
	// Open reaches the bucket once: a wrong endpoint fails start-up soon.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	blobs, err := s3.Open(ctx, m.blobs)
	if err != nil {
		return nil, err // it names the URL
	}
	blobs.Metrics = m.storage
	return blobs, nil
}

// openMedia opens fragment storage and wires ingest, the live hub and the
// sweeper to the control plane.
func openMedia(m *mediaConfig, data string, catalog store.Catalog, svc *streams.Service, log *slog.Logger) (*dataPlane, error) {
	blobs, err := openBlobs(m, data)
	if err != nil {
		return nil, err
	}
	if m.ingest.MaxFragmentSize <= 0 || m.ingest.MaxFragmentDuration <= 0 || m.ingest.MaxTracks <= 0 || m.ingest.CallsPerSecond <= 0 || m.ingest.BytesPerSecond <= 0 {
		return nil, fmt.Errorf("--max-fragment-size, --max-fragment-duration, --max-tracks, --putmedia-calls-per-second and --putmedia-bytes-per-second must be positive")
	}
	if m.read.ListCallsPerSecond <= 0 || m.read.FragmentListCallsPerSec <= 0 || m.read.FragmentListConnections <= 0 {
		return nil, fmt.Errorf("--listfragments-calls-per-second, --getmediaforfragmentlist-calls-per-second and --getmediaforfragmentlist-connections must be positive")
	}
	if m.streaming.PlaylistsPerSecond <= 0 || m.streaming.InitsPerSecond <= 0 || m.streaming.FragmentsPerSecond <= 0 || m.streaming.SessionsPerStream <= 0 {
		return nil, fmt.Errorf("--playlist-calls-per-second, --init-calls-per-second, --segment-calls-per-second and --sessions-per-stream must be positive")
	}
	if m.clip.RequestsPerSecond <= 0 || m.clip.MaxFragments <= 0 || m.clip.MaxBytes <= 0 {
		return nil, fmt.Errorf("--getclip-calls-per-second, --getclip-fragments and --getclip-bytes must be positive")
	}
	key, err := streaming.LoadKey(filepath.Join(data, "session.key"))
	if err != nil {
		return nil, err
	}
	if shared, ok := catalog.(store.Cluster); ok {
		// A playback URL made by one node is played through any node: they
		// sign and check session tokens with one key, the first node's.
		if key, err = shared.Secret(context.Background(), streaming.SharedKeyName, key); err != nil {
			return nil, err
		}
	}
	hub := live.NewHub(m.live)
	if m.follow != nil {
		m.read.Feed = m.follow(hub)
	}
	m.streaming.Key, m.streaming.Logger, m.streaming.Hub = key, log, hub
	sessions, err := streaming.New(catalog, blobs, m.streaming)
	if err != nil {
		return nil, err
	}
	if m.images.Decoders <= 0 || m.images.CacheBytes <= 0 || m.images.CallsPerSecond <= 0 {
		return nil, fmt.Errorf("--image-decoders, --image-cache-bytes and --getimages-calls-per-second must be positive")
	}
	m.images.MaxFragmentDuration, m.images.Logger = m.ingest.MaxFragmentDuration, log
	stills := images.New(catalog, sessions, m.images)
	if _, err := stills.FFmpeg(); err != nil {
		// The rest of the server works without it.
		log.Warn("GetImages is unavailable until ffmpeg is installed", "ffmpeg", m.images.FFmpeg)
	}
	mgr := ingest.NewManager(catalog, blobs, hub, m.ingest, log)
	sw := &sweeper.Sweeper{Catalog: catalog, Blobs: blobs, Log: log, Metrics: m.sweeper}
	m.read.MaxFragmentDuration = m.ingest.MaxFragmentDuration
	reads := media.New(catalog, blobs, hub, m.read, log)
	// In this order: a deleted stream's blobs go once its session stores
	// nothing more (ingest's StreamChanged waits for that).
	svc.OnChange(mgr.StreamChanged)
	svc.OnChange(reads.StreamChanged)
	genOpts := imagegen.Options{Logger: log}
	if m.follow != nil {
		// In a cluster it runs on one node, which learns of changes made
		// through the others from the catalog.
		genOpts.Refresh = configRefresh
	}
	gen := imagegen.New(catalog, blobs, stills, genOpts)
	svc.OnChange(gen.StreamChanged)
	svc.OnChange(func(old, new *store.Stream) {
		if new == nil {
			go func() {
				if err := sw.StreamDeleted(context.Background(), old.ID); err != nil {
					log.Error("delete stream data", "stream", old.Name, "err", err)
				}
			}()
		} else if new.RetentionHours < old.RetentionHours {
			// A shorter retention deletes older data at once.
			go func() {
				if err := sw.Expired(context.Background()); err != nil {
					log.Error("retention sweep", "err", err)
				}
			}()
		}
	})
	return &dataPlane{ingest: mgr, media: reads, streaming: sessions, clip: clip.New(catalog, blobs, m.clip), images: stills, imagegen: gen, hub: hub, sweeper: sw}, nil
}

// configRefresh is how often, in a cluster, image generation reads the
// streams' configurations again.
const configRefresh = 5 * time.Second

// run starts the background work until ctx ends. In a cluster (node not
// nil) the sweeper and image generation with notifications each run on
// one node at a time: every node runs them on the whole catalog, so two
// would delete, decode and notify twice. Image generation follows every
// stream from the catalog, whichever node ingests it; tying it to a
// stream's owner instead would start and stop it with each move of
// ownership (failover, a producer's reconnect elsewhere, a lease released
// when the producer leaves) and lose the fragments indexed around a move.
//
// A stream's deletion is still cleaned up by the node that deleted it
// (openMedia): that is safe beside the sweeper, as deletes of the same
// blobs and rows are, and a blob the stream's owner on another node writes
// after the clean-up is an orphan of a stream that no longer exists, which
// the orphan pass deletes once it is older than store.BlobGrace.
func (m *dataPlane) run(ctx context.Context, interval time.Duration, node *cluster.Node) {
	if node == nil {
		go m.sweeper.Run(ctx, interval)
		go m.imagegen.Run(ctx)
		return
	}
	go node.RunSingleton(ctx, "sweeper", func(ctx context.Context) { m.sweeper.Run(ctx, interval) })
	go node.RunSingleton(ctx, "imagegen", m.imagegen.Run)
}
