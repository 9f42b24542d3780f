// Package metrics defines openkvs's Prometheus metrics: one struct per part
// of the server (HTTP, ingest, media reads, storage, the sweeper), each
// registered on a registry its caller owns, never on a global one, so that
// several servers can run in one process (tests) and a server can run with
// metrics off.
//
// The packages that count take these structs in their options and call
// their methods, which do nothing on a nil receiver: metrics off costs a nil
// check. Hot paths count per fragment, not per frame, and allocate nothing.
//
// Names follow the Prometheus conventions (openkvs_ prefix, _total for
// counters, base units _seconds and _bytes). No label carries a stream name
// or a fragment number: both are unbounded. Labels are bounded sets: API
// operation, HTTP status code, ErrorId, sweep reason.
package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// latencyBuckets spans 250 µs to about 15 s: catalog commits and fsyncs
// (sub-millisecond to seconds on a loaded disk) as well as API calls.
var latencyBuckets = prometheus.ExponentialBuckets(0.00025, 2.5, 12)

// NewRegistry returns a registry with the Go runtime and process
// collectors (heap, GC, RSS, open files), which an operator of a Go server
// expects beside its own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// HTTP counts API requests.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers the API request metrics on reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openkvs_api_requests_total",
			Help: "API requests answered, by operation (the IAM action name, a playback resource such as getHLSMediaPlaylist.m3u8, or healthz, readyz, metrics, unknown) and HTTP status code.",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openkvs_api_request_duration_seconds",
			Help:    "Time from a request's arrival to its handler's return, by operation and HTTP status code; PutMedia and GetMedia last their whole session.",
			Buckets: latencyBuckets,
		}, []string{"operation", "code"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Request records one answered request.
func (m *HTTP) Request(operation string, code int, d time.Duration) {
	if m == nil {
		return
	}
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(operation, c).Inc()
	m.duration.WithLabelValues(operation, c).Observe(d.Seconds())
}

// Ingest counts PutMedia sessions.
type Ingest struct {
	sessions   prometheus.Gauge
	received   prometheus.Counter
	persisted  prometheus.Counter
	bytes      prometheus.Counter
	ackLatency prometheus.Histogram
	errors     *prometheus.CounterVec
}

// NewIngest registers the PutMedia metrics on reg.
func NewIngest(reg prometheus.Registerer) *Ingest {
	m := &Ingest{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openkvs_putmedia_active_sessions",
			Help: "PutMedia sessions (producers) connected now.",
		}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openkvs_putmedia_fragments_received_total",
			Help: "Fragments received whole (RECEIVED ACKs).",
		}),
		persisted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openkvs_putmedia_fragments_persisted_total",
			Help: "Fragments stored durably (PERSISTED ACKs).",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openkvs_putmedia_received_bytes_total",
			Help: "PutMedia body bytes read.",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openkvs_putmedia_ack_latency_seconds",
			Help:    "Time from a fragment's end (RECEIVED) to its PERSISTED ACK.",
			Buckets: latencyBuckets,
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openkvs_putmedia_errors_total",
			Help: "ERROR ACKs sent, by ErrorId (kvs-protocol.md §4.5).",
		}, []string{"error_id"}),
	}
	reg.MustRegister(m.sessions, m.received, m.persisted, m.bytes, m.ackLatency, m.errors)
	return m
}

// SessionStarted and SessionEnded bracket a PutMedia session.
func (m *Ingest) SessionStarted() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionEnded: see SessionStarted.
func (m *Ingest) SessionEnded() {
	if m != nil {
		m.sessions.Dec()
	}
}

// Bytes adds n body bytes read.
func (m *Ingest) Bytes(n int64) {
	if m != nil && n > 0 {
		m.bytes.Add(float64(n))
	}
}

// Received counts a fragment received whole.
func (m *Ingest) Received() {
	if m != nil {
		m.received.Inc()
	}
}

// Persisted counts a fragment stored, d after it was received.
func (m *Ingest) Persisted(d time.Duration) {
	if m != nil {
		m.persisted.Inc()
		m.ackLatency.Observe(d.Seconds())
	}
}

// Error counts an ERROR ACK.
func (m *Ingest) Error(errorID int) {
	if m != nil {
		m.errors.WithLabelValues(strconv.Itoa(errorID)).Inc()
	}
}

// Media counts GetMedia readers.
type Media struct {
	readers prometheus.Gauge
	behind  prometheus.Gauge
	bytes   prometheus.Counter
	errors  *prometheus.CounterVec
}

// NewMedia registers the GetMedia metrics on reg.
func NewMedia(reg prometheus.Registerer) *Media {
	m := &Media{
		readers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openkvs_getmedia_active_readers",
			Help: "GetMedia sessions sending now.",
		}),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "openkvs_getmedia_readers_behind_live",
			Help: "GetMedia sessions reading from the archive: behind the live window.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "openkvs_getmedia_sent_bytes_total",
			Help: "GetMedia payload bytes written to readers.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openkvs_getmedia_inband_errors_total",
			Help: "GetMedia payloads ended by an in-band error chunk, by AWS_KINESISVIDEO_ERROR_ID.",
		}, []string{"error_id"}),
	}
	reg.MustRegister(m.readers, m.behind, m.bytes, m.errors)
	return m
}

// Reader adds delta (+1 or -1) to the active readers.
func (m *Media) Reader(delta int) {
	if m != nil {
		m.readers.Add(float64(delta))
	}
}

// Behind adds delta (+1 or -1) to the readers behind the live window.
func (m *Media) Behind(delta int) {
	if m != nil {
		m.behind.Add(float64(delta))
	}
}

// Sent adds n payload bytes written.
func (m *Media) Sent(n int64) {
	if m != nil && n > 0 {
		m.bytes.Add(float64(n))
	}
}

// InBandError counts a payload ended by an in-band error.
func (m *Media) InBandError(errorID int64) {
	if m != nil {
		m.errors.WithLabelValues(strconv.FormatInt(errorID, 10)).Inc()
	}
}

// Storage times the durable writes behind a PERSISTED ACK.
type Storage struct {
	blobWrite     prometheus.Histogram
	blobSync      prometheus.Histogram
	catalogCommit prometheus.Histogram
}

// NewStorage registers the storage metrics on reg.
func NewStorage(reg prometheus.Registerer) *Storage {
	m := &Storage{
		blobWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openkvs_blob_write_seconds",
			Help:    "Time to store one blob durably: in files write, fsync, rename and directory fsync; in S3 one PUT.",
			Buckets: latencyBuckets,
		}),
		blobSync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openkvs_blob_fsync_seconds",
			Help:    "Time of the fsync of one blob's file.",
			Buckets: latencyBuckets,
		}),
		catalogCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "openkvs_catalog_commit_seconds",
			Help:    "Time to commit a group of fragment rows to the catalog.",
			Buckets: latencyBuckets,
		}),
	}
	reg.MustRegister(m.blobWrite, m.blobSync, m.catalogCommit)
	return m
}

// BlobWrite records a blob stored in d.
func (m *Storage) BlobWrite(d time.Duration) {
	if m != nil {
		m.blobWrite.Observe(d.Seconds())
	}
}

// BlobSync records a blob fsync that took d.
func (m *Storage) BlobSync(d time.Duration) {
	if m != nil {
		m.blobSync.Observe(d.Seconds())
	}
}

// CatalogCommit records a catalog commit of fragment rows that took d.
func (m *Storage) CatalogCommit(d time.Duration) {
	if m != nil {
		m.catalogCommit.Observe(d.Seconds())
	}
}

// Sweep reasons: why the sweeper deleted a blob.
const (
	SweepRetention     = "retention"      // a fragment past its stream's retention
	SweepOrphan        = "orphan"         // a blob no catalog row references
	SweepDeletedStream = "deleted_stream" // a blob of a deleted stream
)

// Sweeper counts what the sweeper deletes.
type Sweeper struct {
	deleted *prometheus.CounterVec
}

// NewSweeper registers the sweeper metrics on reg.
func NewSweeper(reg prometheus.Registerer) *Sweeper {
	m := &Sweeper{deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "openkvs_sweeper_deleted_blobs_total",
		Help: "Blobs the sweeper deleted, by reason: retention, orphan, deleted_stream.",
	}, []string{"reason"})}
	for _, r := range []string{SweepRetention, SweepOrphan, SweepDeletedStream} {
		m.deleted.WithLabelValues(r) // every reason shows, at 0, from the start
	}
	reg.MustRegister(m.deleted)
	return m
}

// Deleted counts n blobs deleted for reason.
func (m *Sweeper) Deleted(reason string, n int) {
	if m != nil && n > 0 {
		m.deleted.WithLabelValues(reason).Add(float64(n))
	}
}

// RegisterLiveMemory registers gauges of the live hub's memory, read from
// used and limit at each scrape.
func RegisterLiveMemory(reg prometheus.Registerer, used, limit func() int64) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openkvs_live_memory_used_bytes",
			Help: "Media memory held now, counted against --live-total-bytes: live windows, fragments being received, parse buffers, stream headers.",
		}, func() float64 { return float64(used()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "openkvs_live_memory_limit_bytes",
			Help: "The media memory limit, --live-total-bytes.",
		}, func() float64 { return float64(limit()) }),
	)
}

// RegisterDiskFree registers a gauge of the bytes available to the server
// on the data directory's file system, read from free at each scrape (-1
// when it fails).
func RegisterDiskFree(reg prometheus.Registerer, free func() (uint64, error)) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "openkvs_data_dir_free_bytes",
		Help: "Bytes available to the server on the data directory's file system.",
	}, func() float64 {
		n, err := free()
		if err != nil {
			return -1
		}
		return float64(n)
	}))
}
