// Package imagegen does in the background what a stream's image generation
// and notification configurations ask for. Where AWS writes images to S3,
// it writes them into openkvs's blob store under "images/"; where AWS
// publishes to SNS, it POSTs the SNS message to the configuration's HTTP(S)
// URL.
//
// One worker per stream with either configuration ENABLED polls the
// catalog for fragments indexed since it started (FragmentsAfter), so it
// never holds up ingest. For each fragment it stores one image per
// SamplingInterval of media, made by the images package (GetImages' own
// decoder pool and cache), and then, if notifications are on, queues a
// PERSISTED notification of the fragment. Fragments indexed while no worker
// ran (the server was down, the configuration was off) get neither.
package imagegen

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/images"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/streams"
)

// Prefix is where generated images are kept in the blob store.
const Prefix = "images/"

// Options configure the Service; zero fields take the defaults.
type Options struct {
	// Poll is how often a worker looks for new fragments (1 s).
	Poll time.Duration
	// NotifyTimeout bounds one notification POST (5 s).
	NotifyTimeout time.Duration
	// NotifyAttempts is how many times a notification is tried (3), one
	// second apart, then two, and so on.
	NotifyAttempts int
	// NotifyQueue is how many notifications of a stream may wait to be
	// sent (64); more are dropped and logged.
	NotifyQueue int
	// Refresh, when positive, is how often Run reads every stream's
	// configurations again: in a cluster a change made through another
	// node reaches this one only through the catalog. Zero relies on
	// StreamChanged alone.
	Refresh time.Duration
	Client  *http.Client
	Logger  *slog.Logger
}

// Service runs the workers.
type Service struct {
	catalog store.Catalog
	blobs   store.Blobs
	images  *images.Service
	opts    Options

	mu      sync.Mutex
	ctx     context.Context // set while Run runs; nil otherwise
	workers map[int64]context.CancelFunc
	known   map[int64]*store.Stream // each stream as last seen, while Run runs
	wg      sync.WaitGroup
}

// New returns a Service that makes images with imgs and keeps them in blobs.
func New(catalog store.Catalog, blobs store.Blobs, imgs *images.Service, opts Options) *Service {
	opts.Poll = cmp.Or(opts.Poll, time.Second)
	opts.NotifyTimeout = cmp.Or(opts.NotifyTimeout, 5*time.Second)
	opts.NotifyAttempts = cmp.Or(opts.NotifyAttempts, 3)
	opts.NotifyQueue = cmp.Or(opts.NotifyQueue, 64)
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{catalog: catalog, blobs: blobs, images: imgs, opts: opts}
}

// Run starts a worker for every configured stream and keeps the workers
// going until ctx ends; it returns once they have stopped. It may be run
// again after it returned (a cluster runs it on one node at a time).
func (s *Service) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx, s.workers, s.known = ctx, map[int64]context.CancelFunc{}, map[int64]*store.Stream{}
	err := s.reconcile()
	s.mu.Unlock()
	if err != nil {
		s.opts.Logger.Error("image generation and notifications are off until the streams can be read", "err", err)
	}
	var refresh <-chan time.Time
	if s.opts.Refresh > 0 {
		t := time.NewTicker(s.opts.Refresh)
		defer t.Stop()
		refresh = t.C
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-refresh:
			s.mu.Lock()
			err := s.reconcile()
			s.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				s.opts.Logger.Error("image generation: read stream configurations", "err", err)
			}
		}
	}
	s.mu.Lock()
	s.ctx = nil // StreamChanged starts no more workers
	s.mu.Unlock()
	s.wg.Wait()
}

// reconcile brings the workers in line with every stream's configuration
// in the catalog; s.mu is held.
func (s *Service) reconcile() error {
	seen := map[int64]bool{}
	after := ""
	for {
		page, err := s.catalog.ListStreams(s.ctx, "", after, 1000)
		if err != nil {
			return err
		}
		for _, st := range page {
			seen[st.ID] = true
			if old := s.known[st.ID]; old != nil {
				s.changed(old, st)
			} else {
				s.known[st.ID] = st
				s.start(st)
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Name
	}
	for id, old := range s.known {
		if !seen[id] {
			s.changed(old, nil)
		}
	}
	return nil
}

// StreamChanged starts, restarts or stops the stream's worker as its
// configurations change (streams.Service.OnChange).
func (s *Service) StreamChanged(old, new *store.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return // Run will read the stream as it is
	}
	s.changed(old, new)
}

// changed is StreamChanged with s.mu held while Run runs.
func (s *Service) changed(old, new *store.Stream) {
	if new == nil {
		delete(s.known, old.ID)
	} else {
		s.known[new.ID] = new
	}
	if new != nil && new.ImageGeneration == old.ImageGeneration && new.Notification == old.Notification &&
		new.RetentionHours == old.RetentionHours {
		return
	}
	if stop := s.workers[old.ID]; stop != nil {
		stop()
		delete(s.workers, old.ID)
	}
	if new != nil {
		s.start(new)
	}
}

// start runs a worker for st if it has something to do; s.mu is held.
func (s *Service) start(st *store.Stream) {
	gen, err := streams.ImageGeneration(st)
	if err != nil {
		s.opts.Logger.Error("image generation", "stream", st.Name, "err", err)
		return
	}
	note, err := streams.Notification(st)
	if err != nil {
		s.opts.Logger.Error("notification", "stream", st.Name, "err", err)
		return
	}
	if !gen.Enabled() && !note.Enabled() || st.RetentionHours == 0 {
		return
	}
	// The worker starts after the newest fragment now, before the call that
	// enabled it returns, so that media sent after that call is all seen.
	w := &worker{s: s, st: st}
	latest, err := s.catalog.LatestFragments(s.ctx, st.ID, 1)
	if err != nil {
		s.opts.Logger.Error("image generation: read fragments", "stream", st.Name, "err", err)
		return
	}
	if len(latest) == 1 {
		w.last = latest[0].Number
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.workers[st.ID] = cancel
	if gen.Enabled() {
		w.gen = gen
	}
	if note.Enabled() {
		w.webhook = webhook(*note.DestinationConfig.Uri)
		if w.webhook == "" {
			s.opts.Logger.Warn("notification destination is not an http(s) URL: no notification is sent", "stream", st.Name, "uri", *note.DestinationConfig.Uri)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		w.run(ctx)
	}()
}

// webhook is uri if openkvs can POST to it, else "".
func webhook(uri string) string {
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		return uri
	}
	return ""
}

// worker serves one stream.
type worker struct {
	s       *Service
	st      *store.Stream
	gen     *streams.ImageGenerationConfiguration // nil: no images
	webhook string                                // "": no notifications
	last    string                                // number of the last fragment done
	next    time.Time                             // time of the next image
}

func (w *worker) run(ctx context.Context) {
	log := w.s.opts.Logger.With("stream", w.st.Name)
	last := w.last
	var queue chan []byte
	if w.webhook != "" {
		queue = make(chan []byte, w.s.opts.NotifyQueue)
		go w.notifier(ctx, queue, log)
	}
	tick := time.NewTicker(w.s.opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for {
			frags, err := w.s.catalog.FragmentsAfter(ctx, w.st.ID, last, 100)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("image generation: read fragments", "err", err)
				}
				break
			}
			for _, f := range frags {
				if w.gen != nil {
					if err := w.images(ctx, f); err != nil && ctx.Err() == nil {
						log.Warn("image generation failed", "fragment", f.Number, "err", err)
					}
				}
				if queue != nil {
					select {
					case queue <- w.message(f):
					default:
						log.Warn("notification dropped: the webhook is behind", "fragment", f.Number)
					}
				}
				last = f.Number
			}
			if len(frags) < 100 {
				break
			}
		}
	}
}

// images stores the images of fragment f: one per SamplingInterval, the
// first at the fragment's start or one interval after the previous image.
func (w *worker) images(ctx context.Context, f *store.Fragment) error {
	g := w.gen
	start := f.ServerTime
	if *g.ImageSelectorType == images.SelectProducerTimestamp {
		start = f.ProducerTime
	}
	end := start.Add(f.Duration)
	if w.next.Before(start) {
		w.next = start
	}
	if !w.next.Before(end) {
		return nil
	}
	interval := time.Duration(*g.SamplingInterval) * time.Millisecond
	from, to := api.At(w.next), api.At(end)
	n := (end.Sub(w.next) + interval - 1) / interval
	w.next = w.next.Add(n * interval)
	in := &images.Input{Ref: streams.Ref{StreamName: &w.st.Name}, ImageSelectorType: g.ImageSelectorType,
		StartTimestamp: &from, EndTimestamp: &to, SamplingInterval: g.SamplingInterval, Format: g.Format,
		FormatConfig: g.FormatConfig, WidthPixels: g.WidthPixels, HeightPixels: g.HeightPixels, MaxResults: ptr(int64(100))}
	for {
		out, err := w.s.images.Generate(ctx, w.st, in)
		if err != nil {
			return err
		}
		for _, im := range out.Images {
			if im.ImageContent == "" {
				continue // NO_MEDIA or MEDIA_ERROR: nothing to deliver
			}
			b, err := base64.StdEncoding.DecodeString(im.ImageContent)
			if err != nil {
				return err
			}
			key := Key(*g.DestinationConfig.Uri, w.st.Name, im.TimeStamp.Time, f.Number, *g.Format)
			if err := w.s.blobs.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
				return fmt.Errorf("store image %s: %w", key, err)
			}
		}
		if out.NextToken == "" {
			return nil
		}
		in.NextToken = &out.NextToken
	}
}

func ptr[T any](v T) *T { return &v }

// Key is the blob key of the image of stream at t from the fragment: the
// destination's bucket and prefix, then the stream name, the image's UTC
// hour and "<epoch ms>-<fragment number>.<jpg|png>". The same image gets
// the same key, so a fragment done twice is not stored twice.
func Key(uri, stream string, t time.Time, fragment, format string) string {
	rest := uri[strings.Index(uri, ":")+1:]
	var parts []string
	for _, p := range strings.Split(strings.TrimPrefix(rest, "//"), "/") {
		if p != "" && p != "." && p != ".." {
			parts = append(parts, p)
		}
	}
	ext := "jpg"
	if format == images.FormatPNG {
		ext = "png"
	}
	t = t.UTC()
	return fmt.Sprintf("%s%s/%s/%s/%d-%s.%s", Prefix, strings.Join(parts, "/"), stream,
		t.Format("2006/01/02/15"), t.UnixMilli(), fragment, ext)
}

// Message is the notification of a persisted fragment, the Message of
// Kinesis Video Streams' SNS notifications.
type Message struct {
	StreamArn                      string            `json:"StreamArn"`
	FragmentNumber                 string            `json:"FragmentNumber"`
	FragmentStartProducerTimestamp int64             `json:"FragmentStartProducerTimestamp"`
	FragmentStartServerTimestamp   int64             `json:"FragmentStartServerTimestamp"`
	NotificationType               string            `json:"NotificationType"`
	NotificationPayload            map[string]string `json:"NotificationPayload"`
}

// Envelope is the body POSTed to the webhook: an SNS HTTP notification
// without the signature fields (there is no SNS certificate to sign with).
type Envelope struct {
	Type      string `json:"Type"`
	MessageId string `json:"MessageId"`
	TopicArn  string `json:"TopicArn"`
	Subject   string `json:"Subject"`
	Message   string `json:"Message"`
	Timestamp string `json:"Timestamp"`
}

func (w *worker) message(f *store.Fragment) []byte {
	m, _ := json.Marshal(Message{StreamArn: w.st.ARN, FragmentNumber: f.Number,
		FragmentStartProducerTimestamp: f.ProducerTime.UnixMilli(), FragmentStartServerTimestamp: f.ServerTime.UnixMilli(),
		NotificationType: "PERSISTED", NotificationPayload: map[string]string{}})
	id := make([]byte, 16)
	rand.Read(id)
	b, _ := json.Marshal(Envelope{Type: "Notification", MessageId: hex.EncodeToString(id), TopicArn: w.webhook,
		Subject: "Kinesis Video Streams Notification", Message: string(m),
		Timestamp: time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	return b
}

// notifier POSTs the queued notifications in order, each with a timeout
// and a bounded number of attempts.
func (w *worker) notifier(ctx context.Context, queue chan []byte, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case body := <-queue:
			var err error
			for i := range w.s.opts.NotifyAttempts {
				if i > 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Duration(i) * time.Second):
					}
				}
				if err = w.post(ctx, body); err == nil {
					break
				}
			}
			if err != nil {
				log.Warn("notification not delivered", "url", w.webhook, "err", err)
			}
		}
	}
}

func (w *worker) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.s.opts.NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-amz-sns-message-type", "Notification")
	resp, err := w.s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", w.webhook, resp.Status)
	}
	return nil
}
