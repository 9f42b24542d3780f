package media

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/mkv"
)

// A GetMedia reader whose selector does not name a fragment (NOW,
// EARLIEST, a timestamp) starts at a fragment whose first video frame is a
// key frame: a decoder given a fragment that starts mid-GOP shows garbage
// until the next key frame. AWS's producers cut every fragment at a key
// frame, but a muxer that cuts on time (ffmpeg's Matroska muxer, by
// default every second on a pipe) does not, and openkvs stores such
// fragments rather than refuse a producer's data. The reader passes over
// them, for at most MaxFragmentDuration of producer time, the longest a
// fragment, and so the longest a GOP that starts with one, may last: a
// stream that has no key frame at a fragment start for longer than that
// is read from where it is. FRAGMENT_NUMBER and CONTINUATION_TOKEN name
// where to go on, and are taken as they are.

// keySeek is the state of a reader looking for its first fragment.
type keySeek struct {
	on    bool
	since time.Time // producer time of the first fragment passed over
}

// startsWithKey reports whether the reader, seeking a key frame, starts
// with n; when it does not, n is passed over.
func (r *Reader) startsWithKey(ctx context.Context, n *next) (bool, error) {
	var producer time.Time
	var header []byte
	var body io.Reader
	if n.live != nil {
		m := n.live.Meta()
		producer, header, body = m.ProducerTime, m.Header, &liveReader{ctx: ctx, f: n.live}
	} else {
		f := n.archive
		producer = f.ProducerTime
		h, err := r.svc.header(ctx, f.HeaderKey)
		if err != nil {
			return true, nil // sending it reports the failure
		}
		blob, err := r.svc.blobs.Open(ctx, f.BlobKey)
		if err != nil {
			return true, nil
		}
		defer blob.Close()
		header, body = h, blob
	}
	if r.keys.since.IsZero() {
		r.keys.since = producer
	} else if producer.Sub(r.keys.since) >= r.svc.opts.MaxFragmentDuration {
		return true, nil
	}
	ok, err := mkv.StartsWithKeyframe(io.MultiReader(bytes.NewReader(header), body))
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	// Bytes that do not parse are the producer's: send them as they are.
	return ok || err != nil, nil
}

// liveReader reads a live fragment from its start as its bytes arrive.
type liveReader struct {
	ctx context.Context
	f   *live.Fragment
	off int
}

func (lr *liveReader) Read(p []byte) (int, error) {
	view, done, err := lr.f.Next(lr.ctx, lr.off)
	if err != nil {
		return 0, err
	}
	if len(view) == 0 && done {
		return 0, io.EOF
	}
	k := copy(p, view)
	lr.off += k
	return k, nil
}
