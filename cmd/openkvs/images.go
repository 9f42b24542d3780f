package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
)

const imagesUsage = `Usage: openkvs images --stream NAME --from TIME --to TIME [--every DURATION] [--format jpeg|png] [--width N] [--height N] [--quality N] [--server-time] -o DIR

Saves the stream's images with GetImages, one every --every from --from up to
(not including) --to, in DIR, each named by its time in UTC:
DIR/20240501T120000.500Z.jpg. --from and --to are producer timestamps (server
timestamps with --server-time); TIME is RFC 3339 (2024-05-01T12:00:00.5Z),
epoch seconds (1714564800.5), now, or a time before now (-1m, -1h30m). Ranges
over 300 s take several calls, and every page is read. Times without media
(NO_MEDIA) or whose frame does not decode (MEDIA_ERROR) are counted on stderr,
with the progress, and get no file.
`

// imagesRange is the longest range one GetImages call takes.
const imagesRange = 300 * time.Second

// fileTimeLayout names image files: sortable, and without the colons some
// file systems refuse.
const fileTimeLayout = "20060102T150405.000Z"

// throttleWait is how long images waits before retrying a call the server
// refused for its rate limit.
const throttleWait = time.Second

func imagesCmd(args []string) error {
	var c clientConfig
	var stream, from, to, format, dir string
	var every time.Duration
	var width, height, quality int
	var serverTime bool
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&stream, "stream", "", "stream `name` (required)")
	fs.StringVar(&from, "from", "", "`TIME` of the first image (required)")
	fs.StringVar(&to, "to", "", "`TIME` the images end before (required)")
	fs.DurationVar(&every, "every", time.Second, "time between images, at least 200ms")
	fs.StringVar(&format, "format", "jpeg", "image `format`: jpeg or png")
	fs.IntVar(&width, "width", 0, "image width in `pixels`, 1 to 3840 (default: the video's; with only --height, kept in proportion)")
	fs.IntVar(&height, "height", 0, "image height in `pixels`, 1 to 2160 (default: the video's; with only --width, kept in proportion)")
	fs.IntVar(&quality, "quality", 80, "JPEG quality, 1 to 100")
	fs.BoolVar(&serverTime, "server-time", false, "select by server timestamp instead of producer timestamp")
	fs.StringVar(&dir, "o", "", "`directory` to write the images to (required; created if missing)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if stream == "" || from == "" || to == "" || dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("images needs --stream, --from, --to and -o, and no arguments")
	}
	start, end, err := timeRange(from, to, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	in := kinesisvideoarchivedmedia.GetImagesInput{StreamName: &stream, ImageSelectorType: types.ImageSelectorTypeProducerTimestamp,
		SamplingInterval: aws.Int32(int32(every.Milliseconds()))}
	if serverTime {
		in.ImageSelectorType = types.ImageSelectorTypeServerTimestamp
	}
	var ext string
	switch strings.ToLower(format) {
	case "jpeg", "jpg":
		in.Format, ext = types.FormatJpeg, ".jpg"
		in.FormatConfig = map[string]string{"JPEGQuality": fmt.Sprint(quality)}
	case "png":
		in.Format, ext = types.FormatPng, ".png"
	default:
		return fmt.Errorf("--format %q must be jpeg or png", format)
	}
	switch {
	case every < 200*time.Millisecond || every%time.Millisecond != 0:
		return fmt.Errorf("--every %v must be whole milliseconds, at least 200ms", every)
	case !end.After(start):
		return fmt.Errorf("--to must be after --from")
	case quality < 1 || quality > 100:
		return fmt.Errorf("--quality must be 1 to 100")
	case width < 0 || width > 3840 || height < 0 || height > 2160:
		return fmt.Errorf("--width must be 1 to 3840 and --height 1 to 2160")
	}
	if width > 0 {
		in.WidthPixels = aws.Int32(int32(width))
	}
	if height > 0 {
		in.HeightPixels = aws.Int32(int32(height))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	ctx, stop := signalContext()
	defer stop()
	cfg, _, err := c.aws(ctx)
	if err != nil {
		return err
	}
	ep, err := dataEndpoint(ctx, cfg, stream, kvtypes.APINameGetImages)
	if err != nil {
		return err
	}
	archive := kinesisvideoarchivedmedia.NewFromConfig(cfg, func(o *kinesisvideoarchivedmedia.Options) { o.BaseEndpoint = &ep })
	// Calls cover whole intervals, so the samples of one follow those of
	// the one before evenly.
	span := imagesRange / every * every
	total := int((end.Sub(start) + every - 1) / every)
	var written, noMedia, failed int
	for at := start; at.Before(end); at = at.Add(span) {
		call := in
		stop := at.Add(span)
		if stop.After(end) {
			stop = end
		}
		call.StartTimestamp, call.EndTimestamp = aws.Time(at), aws.Time(stop)
		pages := kinesisvideoarchivedmedia.NewGetImagesPaginator(archive, &call)
		for pages.HasMorePages() {
			page, err := nextImages(ctx, pages)
			if err != nil {
				return fmt.Errorf("get images: %w", err)
			}
			for _, im := range page.Images {
				switch {
				case im.Error == types.ImageErrorNoMedia:
					noMedia++
				case im.Error != "" || im.ImageContent == nil:
					failed++
				default:
					img, err := base64.StdEncoding.DecodeString(aws.ToString(im.ImageContent))
					if err != nil {
						return fmt.Errorf("image at %s: %w", formatTime(im.TimeStamp), err)
					}
					name := filepath.Join(dir, aws.ToTime(im.TimeStamp).Round(time.Millisecond).UTC().Format(fileTimeLayout)+ext)
					if err := os.WriteFile(name, img, 0o644); err != nil {
						return err
					}
					written++
				}
			}
			fmt.Fprintf(os.Stderr, "%d/%d images: %d written, %d without media, %d not decodable\n", written+noMedia+failed, total, written, noMedia, failed)
		}
	}
	return nil
}

// nextImages reads the next page, waiting out the server's rate limit.
func nextImages(ctx context.Context, pages *kinesisvideoarchivedmedia.GetImagesPaginator) (*kinesisvideoarchivedmedia.GetImagesOutput, error) {
	for {
		page, err := pages.NextPage(ctx)
		var throttled *types.ClientLimitExceededException
		if !errors.As(err, &throttled) {
			return page, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(throttleWait):
		}
	}
}
