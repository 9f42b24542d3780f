package images

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/playback"
	"github.com/openkvs/openkvs/store"
)

// Fragments reads stored fragments; streaming.Service is one.
type Fragments interface {
	// Fragment reads and parses a stored fragment. Its errors are API errors
	// where the fragment is gone (ResourceNotFoundException) or cannot be
	// remuxed.
	Fragment(ctx context.Context, f *store.Fragment) (*playback.Fragment, error)
}

// Options configure GetImages; zero fields take the defaults.
type Options struct {
	// FFmpeg is the ffmpeg program: a path, or a name looked up on PATH at
	// each request ("ffmpeg"), so that installing it later needs no restart.
	FFmpeg string
	// Decoders is how many ffmpeg processes run at once, every request
	// together (2).
	Decoders int
	// CacheBytes is the memory for decoded images (64 MiB).
	CacheBytes int64
	// Timeout bounds the decoding of one request (30 s).
	Timeout time.Duration
	// CallsPerSecond is the GetImages calls a stream takes per second (5);
	// more are ClientLimitExceededException.
	CallsPerSecond float64
	// MaxFragmentDuration is the longest fragment ingest accepts: a frame
	// shown at t lies in a fragment that starts at most that long before
	// (20 s).
	MaxFragmentDuration time.Duration
	Logger              *slog.Logger
}

// Defaults of Options.
const (
	DefaultDecoders   = 2
	DefaultCacheBytes = 64 << 20
	DefaultTimeout    = 30 * time.Second
)

// maxRows bounds the fragments one page reads from the catalog: 25 samples
// fall in at most 25 fragments plus those between them.
const maxRows = 10000

// joinGap is how far apart a fragment may end before the next one starts
// and still be the video the next continues: producers' fragments meet
// (to the millisecond ingest keeps), a reconnecting producer's within a
// second.
const joinGap = time.Second

// Service answers GetImages.
type Service struct {
	catalog store.Catalog
	frags   Fragments
	opts    Options
	pool    chan struct{} // a slot per running ffmpeg process
	cache   *cache

	mu     sync.Mutex
	limits map[int64]*rate.Limiter // by stream ID
}

// New returns a Service reading fragments through frags.
func New(catalog store.Catalog, frags Fragments, opts Options) *Service {
	opts.FFmpeg = cmp.Or(opts.FFmpeg, "ffmpeg")
	opts.Decoders = cmp.Or(max(opts.Decoders, 0), DefaultDecoders)
	opts.CacheBytes = cmp.Or(max(opts.CacheBytes, 0), DefaultCacheBytes)
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	opts.CallsPerSecond = cmp.Or(opts.CallsPerSecond, 5)
	opts.MaxFragmentDuration = cmp.Or(opts.MaxFragmentDuration, 20*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{catalog: catalog, frags: frags, opts: opts, pool: make(chan struct{}, opts.Decoders),
		cache: newCache(opts.CacheBytes), limits: map[int64]*rate.Limiter{}}
}

// FFmpeg returns the path of the ffmpeg program, or the error GetImages
// answers while it is missing.
func (s *Service) FFmpeg() (string, error) {
	path, err := exec.LookPath(s.opts.FFmpeg)
	if err != nil {
		return "", &api.Error{Type: "NotImplemented", Status: 501, Message: fmt.Sprintf(
			"GetImages needs ffmpeg to decode video, and %q is not an executable program: install ffmpeg (Debian and Ubuntu: apt-get install ffmpeg) or start openkvs serve with --ffmpeg PATH.", s.opts.FFmpeg)}
	}
	return path, nil
}

// Get answers one GetImages call on stream st.
func (s *Service) Get(ctx context.Context, st *store.Stream, in *Input) (*Output, error) {
	return s.get(ctx, st, in, true)
}

// Generate is Get for openkvs's own image generation, which the per-stream
// call limit does not apply to: its worker makes one call at a time.
func (s *Service) Generate(ctx context.Context, st *store.Stream, in *Input) (*Output, error) {
	return s.get(ctx, st, in, false)
}

func (s *Service) get(ctx context.Context, st *store.Stream, in *Input, limit bool) (*Output, error) {
	r, err := parse(in)
	if err != nil {
		return nil, err
	}
	if st.RetentionHours == 0 {
		return nil, api.NoDataRetention("The stream %s keeps no data: GetImages needs data retention.", st.Name)
	}
	if limit && !s.limiter(st.ID).Allow() {
		return nil, api.ClientLimitExceeded("GetImages is limited to %g calls per second per stream.", s.opts.CallsPerSecond)
	}
	ffmpeg, err := s.FFmpeg()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	out := &Output{Images: make([]Image, r.count), NextToken: r.nextToken()}
	for i := range out.Images {
		out.Images[i].TimeStamp = api.At(r.at(r.first + i))
	}
	rows, jobs, err := s.find(ctx, st, r, out.Images)
	if err != nil {
		return nil, err
	}
	if err := s.make(ctx, ffmpeg, st, r, rows, jobs, out.Images); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) limiter(id int64) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limits[id]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.opts.CallsPerSecond), max(1, int(s.opts.CallsPerSecond)))
		s.limits[id] = l
	}
	return l
}

// job is one fragment and the samples (indexes into the page) it shows.
type job struct {
	f       *store.Fragment
	row     int       // f's place in the rows find read, to reach the fragments before it
	start   time.Time // the fragment's time in the request's timestamps
	samples []int
}

// find assigns each sample the fragment that holds its time; samples in no
// fragment are NO_MEDIA. It returns the catalog rows it read, in time
// order, and the jobs.
func (s *Service) find(ctx context.Context, st *store.Stream, r *request, images []Image) ([]*store.Fragment, []*job, error) {
	first, last := r.at(r.first), r.at(r.first+r.count-1)
	// Twice the longest fragment back: the fragment holding the first
	// sample, and the one before it, whose frames a sample may need too.
	rows, err := s.catalog.QueryFragments(ctx, st.ID, store.FragmentQuery{Field: r.field(),
		From: first.Add(-2 * s.opts.MaxFragmentDuration), To: last, Limit: maxRows})
	if err != nil {
		return nil, nil, fmt.Errorf("fragments of %s: %w", st.Name, err)
	}
	var jobs []*job
	byNumber := map[string]*job{}
	for i := range images {
		t := images[i].TimeStamp.Time
		hit := -1
		// Rows come in time order: the last that starts at or before t.
		for k, f := range rows {
			if r.time(f).After(t) {
				break
			}
			hit = k
		}
		if hit < 0 || !t.Before(r.time(rows[hit]).Add(rows[hit].Duration)) {
			images[i].Error = ErrorNoMedia
			continue
		}
		f := rows[hit]
		j := byNumber[f.Number]
		if j == nil {
			j = &job{f: f, row: hit, start: r.time(f)}
			byNumber[f.Number] = j
			jobs = append(jobs, j)
		}
		j.samples = append(j.samples, i)
	}
	return rows, jobs, nil
}

// wanted is a frame to make an image of, and the samples that show it.
type wanted struct {
	key     string
	track   *playback.Track
	frame   int
	samples []int
}

// make fills in the images of the jobs' samples: from the cache, else
// decoded in batches of consecutive fragments, one ffmpeg process each.
func (s *Service) make(ctx context.Context, ffmpeg string, st *store.Stream, r *request, rows []*store.Fragment, jobs []*job, images []Image) error {
	loaded := map[string]*playback.Fragment{}
	load := func(f *store.Fragment) (*playback.Fragment, error) {
		if frag, ok := loaded[f.Number]; ok {
			return frag, nil
		}
		frag, err := s.frags.Fragment(ctx, f)
		if err == nil {
			loaded[f.Number] = frag
		}
		return frag, err
	}
	var pieces [][]*wanted // per fragment, frames in decode order
	for _, j := range jobs {
		frag, err := load(j.f)
		if err != nil {
			if api.IsType(err, "ResourceNotFoundException") {
				markAll(images, j.samples, ErrorNoMedia)
				continue
			}
			var apiErr *api.Error
			if errors.As(err, &apiErr) {
				s.opts.Logger.Warn("GetImages: fragment not decodable", "stream", st.Name, "fragment", j.f.Number, "err", err)
				markAll(images, j.samples, ErrorMediaError)
				continue
			}
			return err
		}
		track := videoTrack(frag)
		if track == nil {
			markAll(images, j.samples, ErrorNoMedia)
			continue
		}
		v := &video{track: &playback.Track{Number: track.Number, Type: track.Type, CodecID: track.CodecID,
			CodecPrivate: track.CodecPrivate, Samples: track.Samples}, parts: []part{{number: j.f.Number}}}
		times := make([]time.Duration, len(j.samples))
		for k, i := range j.samples {
			times[k] = images[i].TimeStamp.Sub(j.start)
		}
		// A fragment may open with audio before its first picture, or with
		// frames that depend on the key frame of the fragment before: its
		// video then continues that of the fragments just before it.
		for k := j.row - 1; k >= 0 && v.needsEarlier(times); k-- {
			p := rows[k]
			if r.time(p).Add(p.Duration + joinGap).Before(r.time(rows[k+1])) {
				break
			}
			pf, err := load(p)
			if err != nil {
				break // the samples show what their own fragment has
			}
			pt := videoTrack(pf)
			if pt == nil || pt.CodecID != track.CodecID || !bytes.Equal(pt.CodecPrivate, track.CodecPrivate) {
				break
			}
			v.prepend(p.Number, pt, r.time(p).Sub(j.start))
		}
		byFrame := map[int]*wanted{}
		for k, i := range j.samples {
			frame := frameAt(v.track, times[k])
			if frame < 0 {
				images[i].Error = ErrorNoMedia
				continue
			}
			w := byFrame[frame]
			if w == nil {
				number, n := v.owner(frame)
				w = &wanted{track: v.track, frame: frame, key: fmt.Sprintf("%d/%s/%d/%d/%v/%d/%d/%d", st.ID, number, r.field(),
					n, r.spec.png, r.spec.quality, r.spec.width, r.spec.height)}
				byFrame[frame] = w
			}
			w.samples = append(w.samples, i)
		}
		frames := slices.Sorted(maps.Keys(byFrame))
		var missing []*wanted
		for _, f := range frames {
			w := byFrame[f]
			if img, ok := s.cache.get(w.key); ok {
				fill(images, w.samples, img)
			} else {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			pieces = append(pieces, missing)
		}
	}
	s.decodeAll(ctx, ffmpeg, st, r.spec, pieces, images)
	return nil
}

// decodeAll decodes the pieces' frames with at most as many processes as
// the pool has slots, each taking a run of consecutive fragments; images
// that fail, or are not done by the request's deadline, are MEDIA_ERROR.
func (s *Service) decodeAll(ctx context.Context, ffmpeg string, st *store.Stream, sp spec, pieces [][]*wanted, images []Image) {
	batches := min(cap(s.pool), len(pieces))
	var wg sync.WaitGroup
	for b := range batches {
		run := pieces[b*len(pieces)/batches : (b+1)*len(pieces)/batches]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ws []*wanted
			var in []piece
			for _, p := range run {
				pc := piece{track: p[0].track}
				for _, w := range p {
					pc.frames = append(pc.frames, w.frame)
					ws = append(ws, w)
				}
				in = append(in, pc)
			}
			imgs, err := s.decode(ctx, ffmpeg, sp, in)
			if err != nil {
				s.opts.Logger.Warn("GetImages: decoding failed", "stream", st.Name, "err", err)
				for _, w := range ws {
					markAll(images, w.samples, ErrorMediaError)
				}
				return
			}
			for i, w := range ws {
				s.cache.put(w.key, imgs[i])
				fill(images, w.samples, imgs[i])
			}
		}()
	}
	wg.Wait()
}

// decode runs one decoder process once the pool has room for it.
func (s *Service) decode(ctx context.Context, ffmpeg string, sp spec, in []piece) ([][]byte, error) {
	select {
	case s.pool <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.pool }()
	return decode(ctx, ffmpeg, sp, in)
}

// field is the timestamp the request selects by.
func (r *request) field() store.TimeField {
	if r.producer {
		return store.ProducerTime
	}
	return store.ServerTime
}

// time is f's start by the request's timestamps.
func (r *request) time(f *store.Fragment) time.Time {
	if r.producer {
		return f.ProducerTime
	}
	return f.ServerTime
}

// video is the video track of a job's fragment, preceded where needed by
// that of the fragments just before it, all timed from the job's start.
type video struct {
	track *playback.Track
	parts []part // oldest first
}

// part is a fragment's first frame in video.track.
type part struct {
	number string
	from   int
}

// needsEarlier reports whether a sample at one of times (from the job's
// start) lies before every frame, or needs a frame with no key frame
// before it in decode order.
func (v *video) needsEarlier(times []time.Duration) bool {
	key := slices.IndexFunc(v.track.Samples, func(s playback.Sample) bool { return s.Keyframe })
	for _, d := range times {
		if f := frameAt(v.track, d); f < 0 || key < 0 || f < key {
			return true
		}
	}
	return false
}

// prepend puts the video track t of the fragment number, which starts at
// offset from the job's start, before the frames video has.
func (v *video) prepend(number string, t *playback.Track, offset time.Duration) {
	samples := make([]playback.Sample, 0, len(t.Samples)+len(v.track.Samples))
	for _, s := range t.Samples {
		s.PTS += offset
		samples = append(samples, s)
	}
	for i := range v.parts {
		v.parts[i].from += len(t.Samples)
	}
	v.track.Samples = append(samples, v.track.Samples...)
	v.parts = append([]part{{number: number}}, v.parts...)
}

// owner returns the fragment frame i of video.track comes from and its
// index there, which name it in the cache whichever job decodes it.
func (v *video) owner(i int) (string, int) {
	k := len(v.parts) - 1
	for v.parts[k].from > i {
		k--
	}
	return v.parts[k].number, i - v.parts[k].from
}

// videoTrack is the fragment's first video track, or nil.
func videoTrack(f *playback.Fragment) *playback.Track {
	for _, t := range f.Tracks {
		if t.Type == 1 && len(t.Samples) > 0 {
			return t
		}
	}
	return nil
}

// frameAt is the index of the frame shown at d after the Cluster's time:
// the last to be presented at or before it; -1 if none is.
func frameAt(t *playback.Track, d time.Duration) int {
	best := -1
	for i, s := range t.Samples {
		if s.PTS <= d && (best < 0 || s.PTS > t.Samples[best].PTS) {
			best = i
		}
	}
	return best
}

func markAll(images []Image, samples []int, why string) {
	for _, i := range samples {
		images[i].Error = why
	}
}

// fill gives the samples their image, or MEDIA_ERROR for one larger than
// the model allows.
func fill(images []Image, samples []int, img []byte) {
	content := base64.StdEncoding.EncodeToString(img)
	for _, i := range samples {
		if len(content) > maxImageContents {
			images[i].Error = ErrorMediaError
		} else {
			images[i].ImageContent = content
		}
	}
}
