package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/smithy-go"

	"github.com/openkvs/openkvs/client"
)

// clientConfig is what every client command needs to reach a server.
type clientConfig struct {
	endpoint, region string
}

func (c *clientConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "", endpointHelp)
	fs.StringVar(&c.region, "region", "us-east-1", "AWS `region` to sign requests for")
}

// aws loads credentials the way the AWS CLI does (environment, shared
// files); without any, requests go unsigned, which a server with
// authentication off accepts.
func (c *clientConfig) aws(ctx context.Context) (aws.Config, bool, error) {
	// No instance-metadata lookup: openkvs users are rarely on EC2, and
	// the probe costs a timeout and a warning.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.region), config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	if err != nil {
		return aws.Config{}, false, fmt.Errorf("load AWS configuration: %w", err)
	}
	c.setEndpoint(&cfg)
	// KVS limits calls per stream (ListFragments, GetMedia: 5 per second)
	// with ClientLimitExceededException: back off and retry it as the SDK
	// does throttling, so that paging a long archive does not fail.
	cfg.Retryer = func() aws.Retryer {
		return retry.AddWithErrorCodes(retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 10 }),
			"ClientLimitExceededException")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = aws.AnonymousCredentials{}
		return cfg, false, nil
	}
	return cfg, true, nil
}

// signer signs data-plane requests whose bodies stream (SigV4 with an
// unsigned payload, kvs-protocol.md §1.3).
func signer(cfg aws.Config, region string) func(*http.Request) error {
	s := v4.NewSigner()
	return func(r *http.Request) error {
		creds, err := cfg.Credentials.Retrieve(r.Context())
		if err != nil {
			return err
		}
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		return s.SignHTTP(r.Context(), creds, r, "UNSIGNED-PAYLOAD", "kinesisvideo", region, time.Now())
	}
}

func put(args []string) error {
	var c clientConfig
	var stream string
	var create, realtime bool
	var retention int
	var retryFor time.Duration
	var buffer int64
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	c.flags(fs)
	fs.StringVar(&stream, "stream", "", "stream `name` (required)")
	fs.BoolVar(&create, "create", false, "create the stream if it does not exist")
	fs.IntVar(&retention, "retention", 24, "data retention in `hours` of a stream made by --create")
	fs.BoolVar(&realtime, "realtime", false, "send frames at the pace of their timecodes, as a camera would")
	fs.DurationVar(&retryFor, "retry-for", 0, "give up after the server has been unreachable this long (0: retry for as long as the input lasts)")
	fs.Int64Var(&buffer, "buffer", client.DefaultMaxBuffer, "memory for fragments not yet persisted, in `bytes`; when full, the input is not read until the server catches up")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if stream == "" || fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("put needs --stream and one FILE (or - for stdin)")
	}
	in := io.Reader(os.Stdin)
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	ctx, stop := signalContext()
	defer stop()
	cfg, signed, err := c.aws(ctx)
	if err != nil {
		return err
	}
	kv := kinesisvideo.NewFromConfig(cfg)
	info, err := describeOrCreate(ctx, kv, stream, create, retention)
	if err != nil {
		return err
	}
	if buffer <= 0 {
		return fmt.Errorf("--buffer must be positive")
	}
	// Restamp: producer wall-clock timecodes, as the official producer
	// sends them, so that two uploads of one file do not both start at 0.
	opts := client.PutOptions{Resolve: resolver(cfg, stream, types.APINamePutMedia), Stream: stream, Restamp: true,
		Realtime: realtime, AckOn: "PERSISTED", RetryFor: retryFor, MaxBuffer: buffer, Logf: logStderr}
	if aws.ToInt32(info.DataRetentionInHours) == 0 {
		opts.AckOn = "RECEIVED" // a stream that keeps no data sends no PERSISTED
	}
	opts.HTTPClient = &http.Client{Transport: dataTransport(cfg)}
	if signed {
		opts.Sign = signer(cfg, c.region)
	}
	prog := newProgress(opts.AckOn)
	opts.OnAck = prog.ack
	stats, err := client.Put(ctx, opts, in)
	prog.done(stats)
	return err
}

// dataEndpoint asks the control plane where stream's api calls go, as
// the AWS clients and producers do before every data-plane call.
func dataEndpoint(ctx context.Context, cfg aws.Config, stream string, api types.APIName, opts ...func(*kinesisvideo.Options)) (string, error) {
	ep, err := kinesisvideo.NewFromConfig(cfg).GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: &stream, APIName: api}, opts...)
	if err != nil {
		return "", fmt.Errorf("get data endpoint: %w", err)
	}
	return aws.ToString(ep.DataEndpoint), nil
}

// resolver is the client's Resolve hook: GetDataEndpoint before every
// connection, as the official producer does after a failure. It tries
// once, leaving the pacing of retries to the client, and returns an error
// answer as a *client.APIError, so that the client ends on one that
// retrying cannot cure (an unknown stream, a denied key).
func resolver(cfg aws.Config, stream string, api types.APIName) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		ep, err := dataEndpoint(ctx, cfg, stream, api, func(o *kinesisvideo.Options) { o.RetryMaxAttempts = 1 })
		var re *awshttp.ResponseError
		var ae smithy.APIError
		if errors.As(err, &re) && errors.As(err, &ae) {
			return "", &client.APIError{Op: "GetDataEndpoint", StatusCode: re.HTTPStatusCode(), Type: ae.ErrorCode(), Message: ae.ErrorMessage()}
		}
		return ep, err
	}
}

// logStderr is the client's Logf: one line on stderr.
func logStderr(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// describeOrCreate returns the stream, creating it first if asked to.
func describeOrCreate(ctx context.Context, kv *kinesisvideo.Client, name string, create bool, retention int) (*types.StreamInfo, error) {
	out, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: &name})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) && create {
		if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: &name, DataRetentionInHours: aws.Int32(int32(retention))}); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", name, err)
		}
		out, err = kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: &name})
	}
	if err != nil {
		return nil, fmt.Errorf("describe stream %s: %w", name, err)
	}
	return out.StreamInfo, nil
}

// progress prints one status line per second while an upload runs.
type progress struct {
	mu          sync.Mutex
	start, last time.Time
	ackOn       string
	buffering   int
	acked       int
}

func newProgress(ackOn string) *progress {
	now := time.Now()
	return &progress{start: now, last: now, ackOn: ackOn}
}

func (p *progress) ack(a client.Ack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch a.EventType {
	case "BUFFERING":
		p.buffering++
	case p.ackOn:
		p.acked++
	case "ERROR":
		fmt.Fprintf(os.Stderr, "ERROR %d %s for fragment %s\n", a.ErrorID, a.ErrorCode, a.FragmentNumber)
	}
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		fmt.Fprintf(os.Stderr, "%s: %d fragments sent, %d %s\n", time.Since(p.start).Round(time.Second), p.buffering, p.acked, p.ackOn)
	}
}

func (p *progress) done(s client.PutStats) {
	secs := time.Since(p.start).Seconds()
	fmt.Fprintf(os.Stderr, "done: %d fragments, %d %s, %.1f MB in %.1fs (%.2f MB/s), %d reconnects\n",
		s.Fragments, s.Acked, p.ackOn, float64(s.Bytes)/1e6, secs, float64(s.Bytes)/1e6/secs, s.Reconnects)
}
