package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
)

const fragmentsUsage = `Usage: openkvs fragments --stream NAME [--from TIME] [--to TIME] [--server-time] [--page-size N]

Lists the stream's archived fragments with ListFragments, every page, as a
table sorted by fragment number: number, producer timestamp, server
timestamp (RFC 3339, UTC), duration in milliseconds and size in bytes.
--from and --to select fragments by producer timestamp (by server timestamp
with --server-time); TIME is RFC 3339 (2024-05-01T12:00:00.5Z), epoch seconds
(1714564800.5), now, or a time before now (-1m, -1h30m). The default range is
from the Unix epoch to an hour from now.
`

// timeLayout prints fragment times in UTC with milliseconds, the precision
// of KVS timestamps.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func fragments(args []string) error {
	var c clientConfig
	var stream, from, to string
	var serverTime bool
	var pageSize int64
	fs := flag.NewFlagSet("fragments", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&stream, "stream", "", "stream `name` (required)")
	fs.StringVar(&from, "from", "", "earliest fragment start `TIME` (default: the Unix epoch)")
	fs.StringVar(&to, "to", "", "latest fragment start `TIME` (default: an hour from now)")
	fs.BoolVar(&serverTime, "server-time", false, "select by server timestamp instead of producer timestamp")
	fs.Int64Var(&pageSize, "page-size", 1000, "`N` fragments per ListFragments call, 1 to 1000")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if stream == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("fragments needs --stream and no arguments")
	}
	if pageSize < 1 || pageSize > 1000 {
		return fmt.Errorf("--page-size must be 1 to 1000")
	}
	start, end, err := timeRange(from, to, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		return err
	}
	sel := &types.FragmentSelector{FragmentSelectorType: types.FragmentSelectorTypeProducerTimestamp,
		TimestampRange: &types.TimestampRange{StartTimestamp: &start, EndTimestamp: &end}}
	if serverTime {
		sel.FragmentSelectorType = types.FragmentSelectorTypeServerTimestamp
	}

	ctx, stop := signalContext()
	defer stop()
	cfg, _, err := c.aws(ctx)
	if err != nil {
		return err
	}
	ep, err := dataEndpoint(ctx, cfg, stream, kvtypes.APINameListFragments)
	if err != nil {
		return err
	}
	archive := kinesisvideoarchivedmedia.NewFromConfig(cfg, func(o *kinesisvideoarchivedmedia.Options) {
		o.BaseEndpoint = &ep
	})
	list, err := listFragments(ctx, archive, stream, sel, pageSize)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "FRAGMENT_NUMBER\tPRODUCER_TIME\tSERVER_TIME\tDURATION_MS\tSIZE_BYTES")
	var bytes, millis int64
	for _, f := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", aws.ToString(f.FragmentNumber), formatTime(f.ProducerTimestamp),
			formatTime(f.ServerTimestamp), f.FragmentLengthInMilliseconds, f.FragmentSizeInBytes)
		bytes += f.FragmentSizeInBytes
		millis += f.FragmentLengthInMilliseconds
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d fragments, %d bytes (%s), %.3f s\n", len(list), bytes, formatBytes(float64(bytes)), float64(millis)/1000)
	return nil
}

// listFragments reads every page of ListFragments and sorts the fragments
// by number.
func listFragments(ctx context.Context, archive *kinesisvideoarchivedmedia.Client, stream string, sel *types.FragmentSelector, pageSize int64) ([]types.Fragment, error) {
	var list []types.Fragment
	pages := kinesisvideoarchivedmedia.NewListFragmentsPaginator(archive, &kinesisvideoarchivedmedia.ListFragmentsInput{
		StreamName: &stream, FragmentSelector: sel, MaxResults: &pageSize})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list fragments: %w", err)
		}
		list = append(list, page.Fragments...)
	}
	// ListFragments returns fragments in no particular order (kvs-protocol.md
	// §7.1). Numbers are fixed-width decimals; comparing lengths first keeps
	// numeric order for any others.
	slices.SortFunc(list, func(a, b types.Fragment) int {
		x, y := aws.ToString(a.FragmentNumber), aws.ToString(b.FragmentNumber)
		return cmp.Or(cmp.Compare(len(x), len(y)), cmp.Compare(x, y))
	})
	return list, nil
}

// formatTime prints a fragment timestamp; the SDK reads it from float
// seconds, so it is rounded back to whole milliseconds.
func formatTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Round(time.Millisecond).UTC().Format(timeLayout)
}
