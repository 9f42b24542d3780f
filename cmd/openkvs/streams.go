package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/openkvs/openkvs/client"
)

const streamsUsage = `Usage: openkvs streams list|create|describe|delete|update-retention [flags]

  list [--prefix P]                 the streams, as a table
  create NAME [--retention HOURS]   create a stream
  describe NAME                     a stream's settings
  delete NAME                       delete a stream and its fragments
  update-retention NAME HOURS       keep the stream's fragments for HOURS

"openkvs streams COMMAND --help" lists a command's flags.
`

const streamsListUsage = `Usage: openkvs streams list [--prefix P]

Lists the streams (ListStreams, every page) as a table, in name order:
name, status, media type, data retention and creation time (UTC).
`

const streamsCreateUsage = `Usage: openkvs streams create NAME [--retention HOURS] [--media-type TYPE]

Creates a stream (CreateStream) and prints its ARN. A stream with retention
0 keeps no fragments: readers get them live only.
`

const streamsDescribeUsage = `Usage: openkvs streams describe NAME

Prints a stream's settings (DescribeStream).
`

const streamsDeleteUsage = `Usage: openkvs streams delete NAME

Deletes a stream (DeleteStream): its producer and readers are disconnected
and its fragments deleted. A stream created again under the name is a new,
empty stream.
`

const streamsRetentionUsage = `Usage: openkvs streams update-retention NAME HOURS

Sets how long the stream keeps its fragments, in hours (UpdateDataRetention,
which increases or decreases by the difference). Fragments older than a
shorter retention are deleted at once.
`

// streamsCmd runs `openkvs streams SUBCOMMAND`.
func streamsCmd(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, streamsUsage)
		return fmt.Errorf("streams needs a command: list, create, describe, delete or update-retention")
	}
	cmds := map[string]func(args []string) error{
		"list": streamsList, "create": streamsCreate, "describe": streamsDescribe,
		"delete": streamsDelete, "update-retention": streamsUpdateRetention,
	}
	cmd, ok := cmds[args[0]]
	switch {
	case ok:
		return cmd(args[1:])
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Print(streamsUsage)
		return nil
	}
	fmt.Fprint(os.Stderr, streamsUsage)
	return fmt.Errorf("unknown streams command %q", args[0])
}

// streamsClient parses a streams subcommand's flags and positional
// arguments (flags may follow them) and returns its control-plane client
// and the configuration it was made from.
func streamsClient(ctx context.Context, fs *flag.FlagSet, c *clientConfig, args []string, names ...string) (*kinesisvideo.Client, aws.Config, []string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, aws.Config{}, nil, err
	}
	if len(pos) != len(names) {
		fs.Usage()
		if len(names) == 0 {
			return nil, aws.Config{}, nil, fmt.Errorf("%s takes no arguments, got %q", fs.Name(), pos)
		}
		return nil, aws.Config{}, nil, fmt.Errorf("%s needs %s, got %q", fs.Name(), strings.Join(names, " and "), pos)
	}
	cfg, _, err := c.aws(ctx)
	if err != nil {
		return nil, aws.Config{}, nil, err
	}
	return kinesisvideo.NewFromConfig(cfg), cfg, pos, nil
}

// parseArgs parses args with fs's flags anywhere among the positional
// arguments, which it returns; after "--" everything is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	if err := prepareFlags(fs); err != nil {
		return nil, err
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// streamRow is one line of `openkvs streams list`.
type streamRow struct {
	info types.StreamInfo
	// status is the server's live status of the stream: nil when nothing
	// is connected, or when the server has no status API (AWS itself).
	status *client.StreamStatus
}

// listColumns are the columns of `openkvs streams list`, in order. A column
// of data from elsewhere (such as the server's live status of a stream)
// joins by adding its field to streamRow and its column here.
var listColumns = []struct {
	header string
	value  func(streamRow) string
}{
	{"NAME", func(r streamRow) string { return aws.ToString(r.info.StreamName) }},
	{"STATUS", func(r streamRow) string { return string(r.info.Status) }},
	{"MEDIA_TYPE", func(r streamRow) string { return orDash(aws.ToString(r.info.MediaType)) }},
	{"RETENTION", func(r streamRow) string { return formatRetention(aws.ToInt32(r.info.DataRetentionInHours)) }},
	{"CREATED", func(r streamRow) string { return formatCreated(r.info.CreationTime) }},
	{"PRODUCER", func(r streamRow) string {
		if r.status == nil || r.status.Producer == nil {
			return "-"
		}
		return "since " + formatCreated(&r.status.Producer.ConnectedSince)
	}},
	{"BITRATE", func(r streamRow) string {
		if r.status == nil || r.status.Producer == nil || r.status.Producer.BitrateBps == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f Mbit/s", float64(r.status.Producer.BitrateBps)/1e6)
	}},
	{"LAG", func(r streamRow) string {
		if r.status == nil || r.status.Producer == nil || r.status.Producer.NewestFragment == nil {
			return "-"
		}
		return (time.Duration(r.status.Producer.LagMs) * time.Millisecond).String()
	}},
	{"READERS", func(r streamRow) string {
		if r.status == nil {
			return "0"
		}
		return strconv.Itoa(r.status.Readers)
	}},
}

func streamsList(args []string) error {
	var c clientConfig
	var prefix string
	fs := flag.NewFlagSet("streams list", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&prefix, "prefix", "", "list only the streams whose names begin with `P`")
	ctx, stop := signalContext()
	defer stop()
	kv, cfg, _, err := streamsClient(ctx, fs, &c, args)
	if err != nil {
		return err
	}
	in := &kinesisvideo.ListStreamsInput{}
	if prefix != "" {
		in.StreamNameCondition = &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: &prefix}
	}
	var rows []streamRow
	pages := kinesisvideo.NewListStreamsPaginator(kv, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list streams: %w", err)
		}
		for _, info := range page.StreamInfoList {
			rows = append(rows, streamRow{info: info})
		}
	}
	// The live columns come from openkvs's own status API; a server
	// without it (AWS) leaves them empty.
	if active, err := client.ListStreamStatus(ctx, statusOptions(cfg)); err == nil {
		byName := map[string]*client.StreamStatus{}
		for i := range active {
			byName[active[i].StreamName] = &active[i]
		}
		for i := range rows {
			rows[i].status = byName[aws.ToString(rows[i].info.StreamName)]
		}
	}
	return writeStreams(os.Stdout, rows)
}

// statusOptions calls the status API as the other commands call the
// server: same endpoint, TLS settings and credentials.
func statusOptions(cfg aws.Config) client.StatusOptions {
	opts := client.StatusOptions{Endpoint: aws.ToString(cfg.BaseEndpoint), HTTPClient: &http.Client{Transport: dataTransport(cfg)}}
	if _, anonymous := cfg.Credentials.(aws.AnonymousCredentials); !anonymous {
		s := v4.NewSigner()
		opts.Sign = func(r *http.Request) error {
			creds, err := cfg.Credentials.Retrieve(r.Context())
			if err != nil {
				return err
			}
			r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			return s.SignHTTP(r.Context(), creds, r, emptySHA256, "kinesisvideo", cfg.Region, time.Now())
		}
	}
	return opts
}

// emptySHA256 is the SHA-256 of an empty body, which a GET's signature covers.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// writeStreams prints rows as the table of `openkvs streams list`.
func writeStreams(w io.Writer, rows []streamRow) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for i, col := range listColumns {
		fmt.Fprint(tw, col.header, sep(i))
	}
	for _, r := range rows {
		for i, col := range listColumns {
			fmt.Fprint(tw, col.value(r), sep(i))
		}
	}
	return tw.Flush()
}

// sep ends column i of listColumns.
func sep(i int) string {
	if i == len(listColumns)-1 {
		return "\n"
	}
	return "\t"
}

func streamsCreate(args []string) error {
	var c clientConfig
	var retention int
	var mediaType, device, kmsKey string
	fs := flag.NewFlagSet("streams create", flag.ContinueOnError)
	c.flags(fs)
	fs.IntVar(&retention, "retention", 24, "data retention in `hours`; 0 keeps no fragments")
	fs.StringVar(&mediaType, "media-type", "", "the stream's media `type`, such as video/h264")
	fs.StringVar(&device, "device-name", "", "`name` of the device that writes to the stream")
	fs.StringVar(&kmsKey, "kms-key-id", "", "KMS `key` id the stream's data is encrypted with (default: the account's KVS key)")
	ctx, stop := signalContext()
	defer stop()
	kv, _, pos, err := streamsClient(ctx, fs, &c, args, "NAME")
	if err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("--retention %d: want 0 or more hours", retention)
	}
	in := &kinesisvideo.CreateStreamInput{StreamName: &pos[0], DataRetentionInHours: aws.Int32(int32(retention))}
	for _, opt := range []struct {
		value string
		field **string
	}{{mediaType, &in.MediaType}, {device, &in.DeviceName}, {kmsKey, &in.KmsKeyId}} {
		if opt.value != "" {
			*opt.field = aws.String(opt.value)
		}
	}
	out, err := kv.CreateStream(ctx, in)
	if err != nil {
		return fmt.Errorf("create stream %s: %w", pos[0], err)
	}
	fmt.Println(aws.ToString(out.StreamARN))
	return nil
}

func streamsDescribe(args []string) error {
	var c clientConfig
	fs := flag.NewFlagSet("streams describe", flag.ContinueOnError)
	c.flags(fs)
	ctx, stop := signalContext()
	defer stop()
	kv, _, pos, err := streamsClient(ctx, fs, &c, args, "NAME")
	if err != nil {
		return err
	}
	info, err := describeStream(ctx, kv, pos[0])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	for _, f := range []struct{ name, value string }{
		{"name", aws.ToString(info.StreamName)},
		{"arn", aws.ToString(info.StreamARN)},
		{"status", string(info.Status)},
		{"media type", orDash(aws.ToString(info.MediaType))},
		{"retention", formatRetention(aws.ToInt32(info.DataRetentionInHours))},
		{"created", formatCreated(info.CreationTime)},
		{"device", orDash(aws.ToString(info.DeviceName))},
		{"kms key", orDash(aws.ToString(info.KmsKeyId))},
		{"version", aws.ToString(info.Version)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, f.value)
	}
	return tw.Flush()
}

func streamsDelete(args []string) error {
	var c clientConfig
	fs := flag.NewFlagSet("streams delete", flag.ContinueOnError)
	c.flags(fs)
	ctx, stop := signalContext()
	defer stop()
	kv, _, pos, err := streamsClient(ctx, fs, &c, args, "NAME")
	if err != nil {
		return err
	}
	// DeleteStream takes the ARN, and the version makes sure it is the
	// stream just described, not one created again since.
	info, err := describeStream(ctx, kv, pos[0])
	if err != nil {
		return err
	}
	if _, err := kv.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: info.StreamARN, CurrentVersion: info.Version}); err != nil {
		return inStream(pos[0], fmt.Errorf("delete stream %s: %w", pos[0], err))
	}
	fmt.Fprintf(os.Stderr, "deleted stream %s\n", pos[0])
	return nil
}

func streamsUpdateRetention(args []string) error {
	var c clientConfig
	fs := flag.NewFlagSet("streams update-retention", flag.ContinueOnError)
	c.flags(fs)
	ctx, stop := signalContext()
	defer stop()
	kv, _, pos, err := streamsClient(ctx, fs, &c, args, "NAME", "HOURS")
	if err != nil {
		return err
	}
	hours, err := strconv.ParseInt(pos[1], 10, 32)
	if err != nil || hours < 0 {
		return fmt.Errorf("retention %q: want 0 or more hours", pos[1])
	}
	info, err := describeStream(ctx, kv, pos[0])
	if err != nil {
		return err
	}
	in := &kinesisvideo.UpdateDataRetentionInput{StreamName: &pos[0], CurrentVersion: info.Version}
	old := int64(aws.ToInt32(info.DataRetentionInHours))
	switch {
	case hours > old:
		in.Operation, in.DataRetentionChangeInHours = types.UpdateDataRetentionOperationIncreaseDataRetention, aws.Int32(int32(hours-old))
	case hours < old:
		in.Operation, in.DataRetentionChangeInHours = types.UpdateDataRetentionOperationDecreaseDataRetention, aws.Int32(int32(old-hours))
	default:
		fmt.Fprintf(os.Stderr, "stream %s already keeps %s\n", pos[0], formatRetention(int32(hours)))
		return nil
	}
	if _, err := kv.UpdateDataRetention(ctx, in); err != nil {
		return inStream(pos[0], fmt.Errorf("update retention of stream %s: %w", pos[0], err))
	}
	fmt.Fprintf(os.Stderr, "stream %s: retention %s, was %s\n", pos[0], formatRetention(int32(hours)), formatRetention(int32(old)))
	return nil
}

// describeStream describes the stream called name.
func describeStream(ctx context.Context, kv *kinesisvideo.Client, name string) (*types.StreamInfo, error) {
	out, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: &name})
	if err != nil {
		return nil, inStream(name, fmt.Errorf("describe stream %s: %w", name, err))
	}
	return out.StreamInfo, nil
}

// formatRetention prints a data retention in hours.
func formatRetention(hours int32) string {
	if hours == 0 {
		return "0 (live only)"
	}
	return fmt.Sprintf("%d h", hours)
}

// formatCreated prints a creation time in UTC to the second.
func formatCreated(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash is s, or "-" for a table cell without a value.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
