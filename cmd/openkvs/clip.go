package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

const clipUsage = `Usage: openkvs clip --stream NAME --from TIME --to TIME [--server-time] [--part-fragments N] -o FILE

Writes the fragments that start between --from and --to (by producer
timestamp, by server timestamp with --server-time) as one regular MP4 file
with GetClip, which copies the frames without re-encoding. One GetClip call
returns at most 200 fragments or 100 MB: clip lists the range's fragments
(ListFragments), asks for them in parts of at most --part-fragments and 100 MB
and joins the parts into one file. A part that comes back shorter than its
fragments means the codec setup changes inside it (a new producer session
with other codec data) or the server's GetClip limit is lower: clip then stops
and says where. TIME is RFC 3339 (2024-05-01T12:00:00.5Z), epoch seconds
(1714564800.5), now, or a time before now (-1m, -1h30m). Progress goes to
stderr; FILE appears only once it is complete.
`

// clipMaxBytes is the media one GetClip call returns at most (kvs-protocol.md §7.3).
const clipMaxBytes = 100 << 20

func clipCmd(args []string) error {
	var c clientConfig
	var stream, from, to, output string
	var serverTime bool
	var partFragments int
	fs := flag.NewFlagSet("clip", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&stream, "stream", "", "stream `name` (required)")
	fs.StringVar(&from, "from", "", "earliest fragment start `TIME` (required)")
	fs.StringVar(&to, "to", "", "latest fragment start `TIME` (required)")
	fs.BoolVar(&serverTime, "server-time", false, "select by server timestamp instead of producer timestamp")
	fs.IntVar(&partFragments, "part-fragments", 200, "most fragments `N` asked of one GetClip call, 1 to 200")
	fs.StringVar(&output, "o", "", "output MP4 `file` (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if stream == "" || from == "" || to == "" || output == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("clip needs --stream, --from, --to, -o and no arguments")
	}
	if partFragments < 1 || partFragments > 200 {
		return fmt.Errorf("--part-fragments must be 1 to 200")
	}
	start, end, err := timeRange(from, to, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	if !end.After(start) {
		return fmt.Errorf("--to must be after --from")
	}
	ctx, stop := signalContext()
	defer stop()
	cfg, _, err := c.aws(ctx)
	if err != nil {
		return err
	}
	archive := func(api kvtypes.APIName) (*kinesisvideoarchivedmedia.Client, error) {
		ep, err := dataEndpoint(ctx, cfg, stream, api)
		if err != nil {
			return nil, err
		}
		return kinesisvideoarchivedmedia.NewFromConfig(cfg, func(o *kinesisvideoarchivedmedia.Options) { o.BaseEndpoint = &ep }), nil
	}
	lister, err := archive(kvtypes.APINameListFragments)
	if err != nil {
		return err
	}
	sel := &types.FragmentSelector{FragmentSelectorType: types.FragmentSelectorTypeProducerTimestamp,
		TimestampRange: &types.TimestampRange{StartTimestamp: &start, EndTimestamp: &end}}
	if serverTime {
		sel.FragmentSelectorType = types.FragmentSelectorTypeServerTimestamp
	}
	list, err := listFragments(ctx, lister, stream, sel, 1000)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return fmt.Errorf("no fragments of stream %s start between %s and %s", stream, start.UTC().Format(timeLayout), end.UTC().Format(timeLayout))
	}
	stamp := func(f types.Fragment) time.Time {
		if serverTime {
			return aws.ToTime(f.ServerTimestamp)
		}
		return aws.ToTime(f.ProducerTimestamp)
	}
	parts := planClip(list, partFragments, clipMaxBytes)
	logStderr("clip: %d fragments in %d GetClip calls", len(list), len(parts))
	clipper, err := archive(kvtypes.APINameGetClip)
	if err != nil {
		return err
	}
	dir := filepath.Dir(output)
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	for i, p := range parts {
		last := end
		if i+1 < len(parts) {
			// The next part's first fragment is outside: End is inclusive.
			last = stamp(list[parts[i+1].first]).Add(-time.Millisecond)
		}
		f, err := os.CreateTemp(dir, ".openkvs-clip-*.mp4")
		if err != nil {
			return err
		}
		files = append(files, f)
		in := &kinesisvideoarchivedmedia.GetClipInput{StreamName: &stream, ClipFragmentSelector: &types.ClipFragmentSelector{
			FragmentSelectorType: types.ClipFragmentSelectorType(sel.FragmentSelectorType),
			TimestampRange:       &types.ClipTimestampRange{StartTimestamp: aws.Time(stamp(list[p.first])), EndTimestamp: &last}}}
		n, err := getClipPart(ctx, clipper, in, f)
		if err != nil {
			return fmt.Errorf("clip part %d of %d: %w", i+1, len(parts), err)
		}
		logStderr("clip: part %d of %d: %d fragments, %s", i+1, len(parts), p.count, formatBytes(float64(n)))
		if err := p.check(f, list); err != nil {
			return fmt.Errorf("clip part %d of %d: %w", i+1, len(parts), err)
		}
	}
	tmp, err := os.CreateTemp(dir, ".openkvs-clip-*.mp4")
	if err != nil {
		return err
	}
	files = append(files, tmp)
	if len(parts) == 1 {
		if _, err := files[0].Seek(0, io.SeekStart); err != nil {
			return err
		}
		_, err = io.Copy(tmp, files[0])
	} else {
		starts := make([]time.Duration, len(parts))
		for i, p := range parts {
			starts[i] = aws.ToTime(list[p.first].ProducerTimestamp).Sub(aws.ToTime(list[0].ProducerTimestamp))
		}
		err = joinClips(tmp, files[:len(parts)], starts)
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", output, err)
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return err
	}
	logStderr("clip: wrote %s: %d fragments", output, len(list))
	return nil
}

// clipPart is one GetClip call's share of the fragments: list[first:first+count].
type clipPart struct {
	first, count int
}

// planClip splits the fragments, in time order, into parts of at most
// maxFragments fragments and maxBytes (their stored size, which is more than
// the MP4's media).
func planClip(list []types.Fragment, maxFragments int, maxBytes int64) []clipPart {
	var parts []clipPart
	var size int64
	for i, f := range list {
		if n := len(parts); n == 0 || parts[n-1].count == maxFragments || size+f.FragmentSizeInBytes > maxBytes {
			parts = append(parts, clipPart{first: i})
			size = 0
		}
		parts[len(parts)-1].count++
		size += f.FragmentSizeInBytes
	}
	return parts
}

// getClipPart writes one GetClip payload to f, waiting out the stream's
// GetClip rate (1 call a second on AWS), and returns its size.
func getClipPart(ctx context.Context, c *kinesisvideoarchivedmedia.Client, in *kinesisvideoarchivedmedia.GetClipInput, f *os.File) (int64, error) {
	for attempt := 1; ; attempt++ {
		out, err := c.GetClip(ctx, in)
		if _, code, _ := apiError(err); code == "ClientLimitExceededException" && attempt < 10 {
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		defer out.Payload.Close()
		return io.Copy(f, out.Payload)
	}
}

// check compares the part's video length with its fragments' span: a
// shorter clip left fragments out.
func (p clipPart) check(f *os.File, list []types.Fragment) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var pres pmp4.Presentation
	if err := pres.Unmarshal(f); err != nil {
		return fmt.Errorf("read the MP4: %w", err)
	}
	if len(pres.Tracks) == 0 {
		return errors.New("the MP4 has no tracks")
	}
	first, last := list[p.first], list[p.first+p.count-1]
	span := aws.ToTime(last.ProducerTimestamp).Sub(aws.ToTime(first.ProducerTimestamp)) + time.Duration(last.FragmentLengthInMilliseconds)*time.Millisecond
	t := pres.Tracks[0]
	var ticks int64
	for _, s := range t.Samples {
		ticks += int64(s.Duration)
	}
	got := time.Duration(ticks) * time.Second / time.Duration(t.TimeScale)
	if got < span-time.Duration(last.FragmentLengthInMilliseconds)*time.Millisecond/2 {
		return fmt.Errorf("the clip of fragments %s to %s lasts %v, they span %v: the codec setup changes in between "+
			"(a new producer session; clip from there into another file) or the server's GetClip limit is below --part-fragments %d",
			aws.ToString(first.FragmentNumber), aws.ToString(last.FragmentNumber), got, span, p.count)
	}
	return nil
}

// joinClips writes the parts, regular MP4 files of consecutive fragments
// with one codec setup, as one: part i starts at starts[i] (its first
// fragment's producer timestamp from the first part's), each track's samples
// follow on, the last of a part lasting until the next part's first, and the
// payloads are copied from the parts as the file is written.
func joinClips(w io.Writer, parts []*os.File, starts []time.Duration) error {
	var joined *pmp4.Presentation
	var size int64
	for i, f := range parts {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		var p pmp4.Presentation
		if err := p.Unmarshal(f); err != nil {
			return fmt.Errorf("part %d: %w", i+1, err)
		}
		for _, t := range p.Tracks {
			for _, s := range t.Samples {
				size += int64(s.PayloadSize)
			}
		}
		if joined == nil {
			joined = &p
			continue
		}
		if len(p.Tracks) != len(joined.Tracks) {
			return fmt.Errorf("part %d has %d tracks, part 1 %d: the codec setup changes; clip from there into another file", i+1, len(p.Tracks), len(joined.Tracks))
		}
		for j, t := range p.Tracks {
			jt := joined.Tracks[j]
			if t.ID != jt.ID || t.TimeScale != jt.TimeScale || !reflect.DeepEqual(t.Codec, jt.Codec) {
				return fmt.Errorf("track %d of part %d has another codec setup than part 1's; clip from there into another file", t.ID, i+1)
			}
			// Media time 0 is where the first part's first sample decodes:
			// TimeOffset (the edit list) before or after the presentation's start.
			var end int64
			for _, s := range jt.Samples {
				end += int64(s.Duration)
			}
			scale := int64(t.TimeScale) // in two steps, so that days of nanoseconds do not overflow
			at := int64(starts[i]/time.Second)*scale + int64(starts[i]%time.Second)*scale/int64(time.Second) + int64(t.TimeOffset) - int64(jt.TimeOffset)
			last := jt.Samples[len(jt.Samples)-1]
			if d := at - (end - int64(last.Duration)); d > 0 && d <= math.MaxUint32 {
				last.Duration = uint32(d)
			}
			jt.Samples = append(jt.Samples, t.Samples...)
		}
	}
	if size > 1<<32-1<<20 {
		// The sample tables' chunk offsets are 32 bits.
		return fmt.Errorf("%s of media: one MP4 file of clip holds at most 4 GiB; clip shorter ranges", formatBytes(float64(size)))
	}
	return joined.Marshal(w)
}
