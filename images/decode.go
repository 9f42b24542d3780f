package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openkvs/openkvs/playback"
)

// piece is what one fragment gives a decoder: its video track and the
// frames (decode-order indexes, ascending, distinct) to make images of.
type piece struct {
	track  *playback.Track
	frames []int
}

// pieceGap separates the pieces on the decoder's timeline: more than any
// reordering delay, so their decode times never overlap.
const pieceGap = time.Second

// stderrLimit bounds what is kept of ffmpeg's complaints for the log.
const stderrLimit = 4 << 10

// decode runs one ffmpeg process that makes the images of every frame the
// pieces want, in order. Each piece is cut to the frames from the key frame
// before its first wanted frame to its last one, written as a
// self-contained MPEG-TS piece, and the pieces are fed one after the other
// over stdin; the select filter keeps the wanted frames by their index in
// presentation order.
func decode(ctx context.Context, ffmpeg string, sp spec, pieces []piece) ([][]byte, error) {
	var (
		ts     bytes.Buffer
		wanted []string
		want   int
		offset int           // frames of the earlier pieces, in presentation order
		base   time.Duration // where the next piece may start on the timeline
	)
	for _, p := range pieces {
		t := p.track
		first, last := p.frames[0], p.frames[len(p.frames)-1]
		k := first
		for k > 0 && !t.Samples[k].Keyframe {
			k--
		}
		kept := t.Samples[k : last+1]
		lo, hi := kept[0].PTS, kept[0].PTS
		for _, s := range kept {
			lo, hi = min(lo, s.PTS), max(hi, s.PTS)
		}
		start := base - lo
		cut := &playback.Fragment{Tracks: []*playback.Track{{Number: t.Number, Type: t.Type, CodecID: t.CodecID,
			CodecPrivate: t.CodecPrivate, Samples: kept}}}
		b, err := cut.TS(start, 0)
		if err != nil {
			return nil, err
		}
		ts.Write(b)
		for _, i := range p.frames {
			n := offset
			for _, s := range kept {
				if s.PTS < t.Samples[i].PTS {
					n++
				}
			}
			wanted = append(wanted, `eq(n\,`+strconv.Itoa(n)+`)`)
			want++
		}
		offset += len(kept)
		base = start + hi + pieceGap
	}
	dir, err := os.MkdirTemp("", "openkvs-images-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory for images: %w", err)
	}
	defer os.RemoveAll(dir)
	filter := "select=" + strings.Join(wanted, "+")
	switch {
	case sp.width > 0 && sp.height > 0:
		filter += fmt.Sprintf(",scale=%d:%d", sp.width, sp.height)
	case sp.width > 0:
		filter += fmt.Sprintf(",scale=%d:-1", sp.width)
	case sp.height > 0:
		filter += fmt.Sprintf(",scale=-1:%d", sp.height)
	}
	args := []string{"-nostdin", "-hide_banner", "-loglevel", "error", "-f", "mpegts", "-i", "pipe:0",
		"-map", "0:v:0", "-vf", filter, "-fps_mode", "passthrough"}
	ext := ".jpg"
	if sp.png {
		ext = ".png"
		args = append(args, "-c:v", "png")
	} else {
		args = append(args, "-c:v", "mjpeg", "-q:v", strconv.Itoa(QScale(sp.quality)))
	}
	args = append(args, "-f", "image2", filepath.Join(dir, "%04d"+ext))
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	cmd.Stdin = &ts
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	// ffmpeg killed on cancellation may leave its pipes to a child: do not
	// wait for them.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	images := make([][]byte, want)
	for i := range images {
		if images[i], err = os.ReadFile(filepath.Join(dir, fmt.Sprintf("%04d%s", i+1, ext))); err != nil {
			return nil, fmt.Errorf("ffmpeg made fewer images than the %d asked: %w: %s", want, err, bytes.TrimSpace(stderr.Bytes()))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%04d%s", want+1, ext))); !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("ffmpeg made more images than the %d asked", want)
	}
	return images, nil
}

// QScale maps JPEGQuality 1..100 linearly onto ffmpeg's MJPEG -q:v 31..2
// (2 is its best).
func QScale(quality int) int {
	return 31 - ((quality-1)*29+49)/99
}

// limitedBuffer keeps the first stderrLimit bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := stderrLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
