package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	kvtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// TestGetMediaSelectors checks that every start selector returns exactly
// the expected fragments, with the producer's bytes and exact tags.
func TestGetMediaSelectors(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--getmedia-calls-per-second", "1000", "--getmedia-connections", "100")
	createStream(t, srv, "sel", 24)
	v := synth.Video{Bitrate: 400_000} // 100 KB fragments of 2 s, 60 frames 33 ms apart
	frags := gmFrags(v, 0, 12)
	header := synth.Header(1)
	numbers := gmIngest(t, srv, "sel", "PERSISTED", frags[:6])
	listed := gmListAll(t, srv, "sel")

	// expect reads one chunk per fragment index and checks it.
	expect := func(t *testing.T, g *gmReader, idx ...int) {
		t.Helper()
		for _, i := range idx {
			gmCheckChunk(t, g.next(t), header, frags[i].data, numbers[i], listed[numbers[i]])
		}
	}
	producerAt := func(i int, offset time.Duration) time.Time {
		return time.UnixMilli(int64(frags[i].timecode)).Add(offset)
	}
	serverAt := func(i int) time.Time { return aws.ToTime(listed[numbers[i]].ServerTimestamp) }
	// holding is the documented SERVER_TIMESTAMP rule, for server times
	// that overlap because the upload ran faster than real time: the first
	// fragment in time order whose [start, start+duration) holds t, else
	// the first that starts after it.
	holding := func(tm time.Time) int {
		best := -1
		for i := range 6 {
			f := listed[numbers[i]]
			end := aws.ToTime(f.ServerTimestamp).Add(time.Duration(f.FragmentLengthInMilliseconds) * time.Millisecond)
			if end.After(tm) && (best < 0 || aws.ToTime(f.ServerTimestamp).Before(serverAt(best))) {
				best = i
			}
		}
		return best
	}
	from := func(i int) []int {
		var out []int
		for ; i < 6; i++ {
			out = append(out, i)
		}
		return out
	}
	var token string

	for _, tc := range []struct {
		name string
		sel  types.StartSelector
		want []int
	}{
		{"EARLIEST", gmSelector(types.StartSelectorTypeEarliest, nil), from(0)},
		{"FRAGMENT_NUMBER after the third", gmSelector(types.StartSelectorTypeFragmentNumber, numbers[2]), from(3)},
		{"FRAGMENT_NUMBER 0", gmSelector(types.StartSelectorTypeFragmentNumber, "0"), from(0)},
		{"PRODUCER_TIMESTAMP inside a fragment", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(2, 500*time.Millisecond)), from(2)},
		{"PRODUCER_TIMESTAMP at a fragment start", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(3, 0)), from(3)},
		{"PRODUCER_TIMESTAMP at a fragment's last millisecond", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(3, 1979*time.Millisecond)), from(3)},
		{"PRODUCER_TIMESTAMP between fragments", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(3, 1990*time.Millisecond)), from(4)},
		{"PRODUCER_TIMESTAMP before all", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(0, -time.Hour)), from(0)},
		{"SERVER_TIMESTAMP before all", gmSelector(types.StartSelectorTypeServerTimestamp, serverAt(0).Add(-time.Second)), from(0)},
		{"SERVER_TIMESTAMP at the first start", gmSelector(types.StartSelectorTypeServerTimestamp, serverAt(0)), from(0)},
		{"SERVER_TIMESTAMP inside the last", gmSelector(types.StartSelectorTypeServerTimestamp, serverAt(5).Add(time.Second)), from(holding(serverAt(5).Add(time.Second)))},
		{"SERVER_TIMESTAMP at the last start", gmSelector(types.StartSelectorTypeServerTimestamp, serverAt(5)), from(holding(serverAt(5)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gmOpen(t, srv, "sel", tc.sel)
			expect(t, g, tc.want...)
			if tc.name == "EARLIEST" {
				token = numbers[1] // the CONTINUATION_TOKEN of the second chunk, checked above
			}
			g.close()
		})
	}
	t.Run("CONTINUATION_TOKEN", func(t *testing.T) {
		g := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeContinuationToken, token))
		expect(t, g, from(2)...)
	})

	// Selectors that point past every fragment wait for new ones.
	idleNow := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeNow, nil))
	afterLast := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeFragmentNumber, numbers[5]))
	// Fragment 6 ends 20 ms before fragment 7 starts: one millisecond into 7
	// the reader passes 6 over once it knows its duration.
	producerLater := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeProducerTimestamp, producerAt(7, time.Millisecond)))
	lastEnd := serverAt(5).Add(time.Duration(listed[numbers[5]].FragmentLengthInMilliseconds) * time.Millisecond)
	serverLater := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeServerTimestamp, lastEnd))
	more := gmIngest(t, srv, "sel", "PERSISTED", frags[6:8])
	numbers = append(numbers, more...)
	listed = gmListAll(t, srv, "sel")
	t.Run("NOW on an idle stream", func(t *testing.T) { expect(t, idleNow, 6, 7) })
	t.Run("FRAGMENT_NUMBER after the last", func(t *testing.T) { expect(t, afterLast, 6, 7) })
	t.Run("PRODUCER_TIMESTAMP after all", func(t *testing.T) { expect(t, producerLater, 7) })
	t.Run("SERVER_TIMESTAMP after all", func(t *testing.T) { expect(t, serverLater, 6, 7) })

	t.Run("NOW mid-fragment", func(t *testing.T) {
		p := gmStartProducer(t, srv, "sel")
		p.write(header, frags[8].data)
		half := len(frags[9].pieces) / 2
		p.write(frags[9].pieces[:half]...)
		p.waitAcks("BUFFERING", 2) // fragment 9 has begun
		g := gmOpen(t, srv, "sel", gmSelector(types.StartSelectorTypeNow, nil))
		p.write(frags[9].pieces[half:]...)
		p.write(frags[10].data)
		p.close()
		p.waitAcks("PERSISTED", 2)
		n := p.numbers("PERSISTED")
		numbers = append(numbers, n[frags[8].timecode], n[frags[9].timecode], n[frags[10].timecode])
		listed = gmListAll(t, srv, "sel")
		expect(t, g, 9, 10)
	})
}

// TestGetMediaChunkStructure ingests the producer streams rebuilt from the
// real AWS captures and compares openkvs's GetMedia chunks with AWS's:
// header bytes exactly, cluster and trailing bytes exactly, and the element
// trees with the layout of the AWS Tags.
func TestGetMediaChunkStructure(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--getmedia-calls-per-second", "1000")
	for _, capture := range []string{"output_get_media.mkv", "kinesis_video_renderer_example_output.mkv", "test_mixed_tags.mkv"} {
		t.Run(capture, func(t *testing.T) {
			aws := gmCaptureChunks(t, capture)
			stream := "cap-" + capture[:4]
			createStream(t, srv, stream, 1)
			// The producer's start timestamp: the first chunk's producer
			// timestamp less its cluster timecode (RELATIVE timecodes).
			start := gmTagMillis(t, aws[0].Tags[mkv.TagProducerTimestamp]) - gmClusterTimecode(t, aws[0].Cluster)
			p := gmStartProducer(t, srv, stream, "x-amzn-fragment-timecode-type", "RELATIVE",
				"x-amzn-producer-start-timestamp", mkv.FormatTimestampMillis(start))
			p.write(aws[0].Header)
			for _, c := range aws {
				p.write(c.Cluster, c.Trailing)
			}
			p.close()
			p.waitAcks("PERSISTED", len(aws))

			g := gmOpen(t, srv, stream, gmSelector(types.StartSelectorTypeEarliest, nil))
			for k, want := range aws {
				got := g.next(t)
				if !bytes.Equal(got.Header, want.Header) {
					t.Errorf("chunk %d: header of %d bytes differs from the capture's %d bytes", k, len(got.Header), len(want.Header))
				}
				if !bytes.Equal(got.Cluster, want.Cluster) || !bytes.Equal(got.Trailing, want.Trailing) {
					t.Errorf("chunk %d: cluster or trailing elements differ from the capture's", k)
				}
				if g, w := got.Tags[mkv.TagProducerTimestamp], want.Tags[mkv.TagProducerTimestamp]; g != w {
					t.Errorf("chunk %d: producer timestamp %s, the capture says %s", k, g, w)
				}
				gt, wt := gmTree(t, got.Data), gmTree(t, want.Data)
				if !slices.Equal(gt, wt) {
					t.Errorf("chunk %d: element tree differs from the capture's\n got: %q\nwant: %q", k, gt, wt)
				}
			}
		})
	}
}

// gmCaptureChunks reads the chunks of a capture in testdata/kvs-samples.
func gmCaptureChunks(t *testing.T, name string) []*mkv.Chunk {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "kvs-samples", name))
	gmFatalIf(t, err, "read %s", name)
	return gmChunks(t, b)
}

// gmTree walks one chunk as an element tree: level-1 elements, and inside
// Tags every Tag, SimpleTag, TagName and TagString with the width of its
// size field; the names of the AWS tags are kept, their values are not
// (they differ between AWS and openkvs), producer tag values are kept.
func gmTree(t *testing.T, chunk []byte) []string {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(chunk))
	var out []string
	aws := false
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		gmFatalIf(t, err, "walk chunk")
		line := fmtElement(e)
		switch e.ID {
		case mkv.IDSegment, mkv.IDTags, mkv.IDTag, mkv.IDSimpleTag:
			gmFatalIf(t, r.Enter(), "enter %v", e.ID)
		case mkv.IDTagName, mkv.IDTagString:
			v, err := io.ReadAll(r)
			gmFatalIf(t, err, "read %v", e.ID)
			if e.ID == mkv.IDTagName {
				aws = bytes.HasPrefix(v, []byte("AWS_KINESISVIDEO_"))
			}
			if e.ID == mkv.IDTagName || !aws {
				line += " " + string(v)
			}
		}
		out = append(out, line)
	}
}

func fmtElement(e mkv.Element) string {
	idLen := 1
	for id := uint32(e.ID); id > 0xFF; id >>= 8 {
		idLen++
	}
	size := "unknown"
	if !e.Unknown() && (e.ID == mkv.IDTags || e.ID == mkv.IDTag || e.ID == mkv.IDSimpleTag || e.ID == mkv.IDTagName || e.ID == mkv.IDTagString) {
		size = "size"
	} else if !e.Unknown() {
		size = "n"
	}
	return strings.Repeat("  ", e.Level) + e.ID.String() + "/" + strconv.Itoa(e.HeaderLen-idLen) + "-byte " + size
}

// gmTagMillis parses a "%d.%03d" timestamp tag.
func gmTagMillis(t *testing.T, s string) int64 {
	t.Helper()
	var sec, ms int64
	if _, err := fmt.Sscanf(s, "%d.%03d", &sec, &ms); err != nil {
		t.Fatalf("timestamp tag %q: %v", s, err)
	}
	return sec*1000 + ms
}

// gmClusterTimecode reads a Cluster's Timecode.
func gmClusterTimecode(t *testing.T, cluster []byte) int64 {
	t.Helper()
	r := mkv.NewReader(bytes.NewReader(cluster))
	_, err := r.Next()
	gmFatalIf(t, err, "cluster")
	gmFatalIf(t, r.Enter(), "enter cluster")
	for {
		e, err := r.Next()
		gmFatalIf(t, err, "no Timecode in the cluster")
		if e.ID == mkv.IDTimecode {
			b, err := io.ReadAll(r)
			gmFatalIf(t, err, "read Timecode")
			var v int64
			for _, x := range b {
				v = v<<8 | int64(x)
			}
			return v
		}
	}
}

// TestGetMediaArchiveToLive starts readers in the past while a producer
// streams: each gets every fragment exactly once, in order, goes on from
// the archive to the live hub without a seam, and receives a new
// fragment's first frame while the producer still holds that fragment open.
func TestGetMediaArchiveToLive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default window", nil},
		// A window of about two fragments: the first ones are read from
		// the archive, not from the hub.
		{"small window", []string{"--live-stream-bytes", "250000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, tc.args...)
			createStream(t, srv, "cam", 24)
			v := synth.Video{Bitrate: 400_000}
			frags := gmFrags(v, 0, 8)
			p := gmStartProducer(t, srv, "cam")
			p.write(synth.Header(1))
			for _, f := range frags[:5] {
				p.write(f.data)
			}
			half := len(frags[5].pieces) / 2
			p.write(frags[5].pieces[:half]...)
			p.waitAcks("PERSISTED", 5)
			p.waitAcks("BUFFERING", 6) // fragment 5 is in progress

			g := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
			// The first five come whole; the sixth has begun.
			g.rec.waitFor(t, "five chunks and half of the sixth", func(b []byte, _ error) bool {
				return bytes.Contains(b, bytes.Join(frags[5].pieces[:half], nil))
			})
			p.write(frags[5].pieces[half:]...)
			// Fragment 6 begins: its first frame must reach the reader while
			// the producer holds the fragment open.
			p.write(frags[6].pieces[:2]...)
			g.rec.waitFor(t, "the first frame of fragment 6", func(b []byte, _ error) bool {
				return bytes.Contains(b, bytes.Join(frags[6].pieces[:2], nil))
			})
			p.write(frags[6].pieces[2:]...)
			p.write(frags[7].data)
			p.close()
			p.waitAcks("PERSISTED", 8)
			n := p.numbers("PERSISTED")
			listed := gmListAll(t, srv, "cam")
			for i, f := range frags {
				gmCheckChunk(t, g.next(t), synth.Header(1), f.data, n[f.timecode], listed[n[f.timecode]])
				if t.Failed() {
					t.Fatalf("chunk %d is wrong", i)
				}
			}
		})
	}
	t.Run("concurrent", func(t *testing.T) {
		t.Parallel()
		// Readers start while a producer streams 30 fragments as fast as it
		// can through a window of about two, so fragments move from the
		// hub to the archive while readers hand over between them.
		srv := startServer(t, "--live-stream-bytes", "250000")
		createStream(t, srv, "cam", 24)
		frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 30)
		p := gmStartProducer(t, srv, "cam")
		p.write(synth.Header(1), frags[0].data, frags[1].data)
		p.waitAcks("PERSISTED", 1)
		readers := []*gmReader{
			gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil)),
			gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil)),
		}
		for _, f := range frags[2:] {
			p.write(f.data)
		}
		p.close()
		p.waitAcks("PERSISTED", len(frags))
		n := p.numbers("PERSISTED")
		listed := gmListAll(t, srv, "cam")
		for k, g := range readers {
			for i, f := range frags {
				gmCheckChunk(t, g.next(t), synth.Header(1), f.data, n[f.timecode], listed[n[f.timecode]])
				if t.Failed() {
					t.Fatalf("reader %d, chunk %d is wrong", k, i)
				}
			}
		}
	})
}

// TestGetMediaRetention: a reader that falls behind goes on from the
// archive, and gets the in-band error 4000 once its next fragment is gone.
func TestGetMediaRetention(t *testing.T) {
	t.Parallel()
	t.Run("archive deleted", func(t *testing.T) {
		t.Parallel()
		// The hub keeps nothing once persisted, and the reader is slowed to
		// about two fragments a second, so it reads from the archive and
		// is still on its way when retention deletes it.
		srv := startServer(t, "--live-stream-bytes", "1", "--getmedia-bytes-per-second", "200000")
		createStream(t, srv, "cam", 1)
		frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 10)
		numbers := gmIngest(t, srv, "cam", "PERSISTED", frags)
		g := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
		first := g.next(t)
		if first.Tags[mkv.TagFragmentNumber] != numbers[0] {
			t.Fatalf("first chunk is fragment %s, want %s", first.Tags[mkv.TagFragmentNumber], numbers[0])
		}
		_, err := srv.control().UpdateDataRetention(ctx(t), &kinesisvideo.UpdateDataRetentionInput{StreamName: aws.String("cam"),
			CurrentVersion: describe(t, srv.control(), "cam").Version, Operation: kvtypes.UpdateDataRetentionOperationDecreaseDataRetention,
			DataRetentionChangeInHours: aws.Int32(1)})
		gmFatalIf(t, err, "UpdateDataRetention")
		last := numbers[0]
		for k := 1; ; k++ {
			c := g.next(t)
			if err := c.Err(); err != nil {
				want := &mkv.MediaError{FragmentNumber: last, ID: 4000, Code: "FRAGMENT_NOT_FOUND"}
				if diff := cmp.Diff(want, err); diff != "" {
					t.Errorf("in-band error (-want +got):\n%s", diff)
				}
				break
			}
			if k >= len(numbers) || c.Tags[mkv.TagFragmentNumber] != numbers[k] {
				t.Fatalf("chunk %d is fragment %s, want %s before the archive is gone", k, c.Tags[mkv.TagFragmentNumber], numbers[min(k, len(numbers)-1)])
			}
			last = numbers[k]
		}
		if _, err := g.nextErr(t); !errors.Is(err, io.EOF) {
			t.Errorf("after the error chunk: %v, want the end of the payload", err)
		}
	})
	t.Run("live window passed", func(t *testing.T) {
		t.Parallel()
		// No archive, a window of about two fragments, and a reader slowed
		// to one fragment a second while ten arrive at once.
		srv := startServer(t, "--live-stream-bytes", "250000", "--getmedia-bytes-per-second", "100000")
		createStream(t, srv, "mem", 0)
		g := gmOpen(t, srv, "mem", gmSelector(types.StartSelectorTypeNow, nil))
		frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 10)
		p := gmStartProducer(t, srv, "mem")
		p.write(synth.Header(1), frags[0].pieces[0], frags[0].pieces[1])
		g.rec.waitFor(t, "the reader on the first fragment", func(b []byte, _ error) bool {
			return bytes.Contains(b, frags[0].pieces[1])
		})
		p.write(bytes.Join(frags[0].pieces[2:], nil))
		for _, f := range frags[1:] {
			p.write(f.data)
		}
		p.close()
		p.waitAcks("RECEIVED", len(frags))
		numbers := p.numbers("RECEIVED")
		if c := g.next(t); c.Tags[mkv.TagFragmentNumber] != numbers[frags[0].timecode] {
			t.Fatalf("first chunk is fragment %s, want %s", c.Tags[mkv.TagFragmentNumber], numbers[frags[0].timecode])
		}
		c := g.next(t)
		want := &mkv.MediaError{FragmentNumber: numbers[frags[0].timecode], ID: 4000, Code: "FRAGMENT_NOT_FOUND"}
		if diff := cmp.Diff(want, c.Err()); diff != "" {
			t.Errorf("in-band error (-want +got):\n%s", diff)
		}
		if _, err := g.nextErr(t); !errors.Is(err, io.EOF) {
			t.Errorf("after the error chunk: %v, want the end of the payload", err)
		}
	})
}

// TestGetMediaRequestErrors checks the errors GetMedia answers before its
// payload starts, as the SDK's typed exceptions.
func TestGetMediaRequestErrors(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 1)
	for _, tc := range []struct {
		name   string
		stream string
		sel    types.StartSelector
		status int
		want   error
	}{
		{"unknown stream", "nope", gmSelector(types.StartSelectorTypeNow, nil), 404,
			&types.ResourceNotFoundException{Message: aws.String("The requested stream is not found or not active.")}},
		{"FRAGMENT_NUMBER without a number", "cam", gmSelector(types.StartSelectorTypeFragmentNumber, nil), 400,
			&types.InvalidArgumentException{Message: aws.String("StartSelector.AfterFragmentNumber is required with StartSelectorType FRAGMENT_NUMBER.")}},
		{"timestamp without a time", "cam", gmSelector(types.StartSelectorTypeServerTimestamp, nil), 400,
			&types.InvalidArgumentException{Message: aws.String("StartSelector.StartTimestamp is required with StartSelectorType SERVER_TIMESTAMP.")}},
		{"bad type", "cam", gmSelector("LATEST", nil), 400,
			&types.InvalidArgumentException{Message: aws.String("1 validation error detected: Value 'LATEST' at 'startSelector.startSelectorType' failed to satisfy constraint: Member must satisfy enum value set: [FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, EARLIEST, CONTINUATION_TOKEN]")}},
		{"bad token", "cam", gmSelector(types.StartSelectorTypeContinuationToken, "no token!"), 400,
			&types.InvalidArgumentException{Message: aws.String("1 validation error detected: Value 'no token!' at 'startSelector.continuationToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\.\\-]+$")}},
		{"token not from GetMedia", "cam", gmSelector(types.StartSelectorTypeContinuationToken, "abc"), 400,
			&types.InvalidArgumentException{Message: aws.String(`StartSelector.ContinuationToken "abc" is not a token GetMedia returned.`)}},
		{"bad fragment number", "cam", gmSelector(types.StartSelectorTypeFragmentNumber, "12a"), 400,
			&types.InvalidArgumentException{Message: aws.String("1 validation error detected: Value '12a' at 'startSelector.afterFragmentNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gmGetMedia(t, srv, tc.stream, tc.sel)
			gmCheckAPIError(t, err, tc.status, tc.want)
		})
	}
}

// gmCheckAPIError checks that err is the modeled exception want, sent with
// the HTTP status.
func gmCheckAPIError(t *testing.T, err error, status int, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %T", want)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Errorf("error %v: want HTTP status %d", err, status)
	}
	got := reflect.New(reflect.TypeOf(want)) // a **Exception for errors.As
	if !errors.As(err, got.Interface()) {
		t.Fatalf("error %v (%T), want %T", err, errors.Unwrap(err), want)
	}
	if diff := cmp.Diff(want, got.Elem().Interface(), cmpopts.IgnoreUnexported(reflect.New(reflect.TypeOf(want).Elem()).Elem().Interface())); diff != "" {
		t.Errorf("exception (-want +got):\n%s", diff)
	}
}

// TestGetMediaLimits checks the per-stream connection and call-rate limits.
func TestGetMediaLimits(t *testing.T) {
	t.Parallel()
	t.Run("connections", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t) // AWS defaults: 3 connections, 5 calls a second
		createStream(t, srv, "cam", 1)
		createStream(t, srv, "other", 1)
		now := gmSelector(types.StartSelectorTypeNow, nil)
		var open []*gmReader
		for range 3 {
			open = append(open, gmOpen(t, srv, "cam", now))
		}
		_, err := gmGetMedia(t, srv, "cam", now)
		gmCheckAPIError(t, err, 400, &types.ConnectionLimitExceededException{
			Message: aws.String("The stream already has 3 GetMedia connections, the most allowed.")})
		gmOpen(t, srv, "other", now) // the limit is per stream
		// A connection that ends frees its slot.
		open[0].close()
		deadline := time.Now().Add(gmWait)
		for {
			_, err := gmGetMedia(t, srv, "cam", now)
			if err == nil {
				break
			}
			var limit *types.ConnectionLimitExceededException
			if !errors.As(err, &limit) || time.Now().After(deadline) {
				t.Fatalf("GetMedia after a reader left: %v", err)
			}
		}
	})
	t.Run("calls per second", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, "--getmedia-connections", "100")
		createStream(t, srv, "cam", 1)
		const calls = 8
		errs := make(chan error, calls)
		start := time.Now()
		for range calls {
			go func() {
				_, err := gmGetMedia(t, srv, "cam", gmSelector(types.StartSelectorTypeNow, nil))
				errs <- err
			}()
		}
		ok := 0
		for range calls {
			err := <-errs
			if err == nil {
				ok++
				continue
			}
			gmCheckAPIError(t, err, 400, &types.ClientLimitExceededException{
				Message: aws.String("GetMedia is limited to 5 calls per second per stream.")})
		}
		// A burst of 5, then 5 more each second.
		if most := 5 + int(time.Since(start).Seconds()*5); ok < 5 || ok > most {
			t.Errorf("%d of %d calls admitted, want 5 to %d", ok, calls, most)
		}
	})
}

// TestGetMediaStreamDeleted: deleting the stream ends the responses of
// readers waiting at its live edge cleanly.
func TestGetMediaStreamDeleted(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "idle", 1)
	createStream(t, srv, "cam", 1)
	frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 2)
	numbers := gmIngest(t, srv, "cam", "PERSISTED", frags)
	listed := gmListAll(t, srv, "cam")
	// One reader at the live edge after reading the archive, one waiting on
	// a stream nothing was ever sent to.
	g := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
	for i, f := range frags {
		gmCheckChunk(t, g.next(t), synth.Header(1), f.data, numbers[i], listed[numbers[i]])
	}
	idle := gmOpen(t, srv, "idle", gmSelector(types.StartSelectorTypeNow, nil))
	for _, name := range []string{"cam", "idle"} {
		info := describe(t, srv.control(), name)
		_, err := srv.control().DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: info.StreamARN})
		gmFatalIf(t, err, "DeleteStream %s", name)
	}
	for name, r := range map[string]*gmReader{"cam": g, "idle": idle} {
		if c, err := r.nextErr(t); !errors.Is(err, io.EOF) {
			t.Errorf("%s reader after DeleteStream: chunk %v, error %v; want the end of the payload", name, c != nil, err)
		}
	}
}

// TestGetMediaAbortedFragment: a fragment the producer aborts reaches its
// readers as far as it got. One with a Cluster of unknown size ends with
// the end Tags and the reader goes on; one with a Cluster of known size
// ends the payload after its last whole element.
func TestGetMediaAbortedFragment(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--getmedia-calls-per-second", "100")
	for _, retention := range []int32{0, 24} {
		t.Run(fmt.Sprintf("unknown size, retention %d", retention), func(t *testing.T) {
			stream := fmt.Sprintf("u%d", retention)
			createStream(t, srv, stream, retention)
			frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 4)
			now := gmOpen(t, srv, stream, gmSelector(types.StartSelectorTypeNow, nil))
			p := gmStartProducer(t, srv, stream)
			p.write(synth.Header(1), frags[0].data)
			p.write(frags[1].pieces[:10]...)
			p.waitAcks("BUFFERING", 2)
			now.rec.waitFor(t, "the aborted fragment's first frames", func(b []byte, _ error) bool {
				return bytes.Contains(b, bytes.Join(frags[1].pieces[:10], nil))
			})
			p.abort()
			aborted := p.numbers("BUFFERING")[frags[1].timecode]
			first := p.numbers("RECEIVED")[frags[0].timecode]
			got := now.next(t)
			if got.Tags[mkv.TagFragmentNumber] != first {
				t.Fatalf("first chunk %s, want %s", got.Tags[mkv.TagFragmentNumber], first)
			}
			// The aborted fragment's chunk ends where the producer stopped.
			got = now.next(t)
			if got.Tags[mkv.TagFragmentNumber] != aborted || got.Tags[mkv.TagContinuationToken] != aborted ||
				!bytes.Equal(got.Cluster, bytes.Join(frags[1].pieces[:10], nil)) {
				t.Errorf("aborted fragment: chunk %s (token %s) with %d cluster bytes, want %s with the %d bytes sent",
					got.Tags[mkv.TagFragmentNumber], got.Tags[mkv.TagContinuationToken], len(got.Cluster), aborted, len(bytes.Join(frags[1].pieces[:10], nil)))
			}
			// A reader that starts after the abort never sees fragment 1.
			late := gmOpen(t, srv, stream, gmSelector(types.StartSelectorTypeEarliest, nil))
			if c := late.next(t); c.Tags[mkv.TagFragmentNumber] != first {
				t.Fatalf("late reader: first chunk %s, want %s", c.Tags[mkv.TagFragmentNumber], first)
			}
			// The next producer session goes on with fragments 2 and 3.
			numbers := gmIngest(t, srv, stream, "RECEIVED", frags[2:])
			for _, r := range []*gmReader{now, late} {
				for i, n := range numbers {
					c := r.next(t)
					if c.Err() != nil || c.Tags[mkv.TagFragmentNumber] != n || !bytes.Equal(c.Cluster, frags[2+i].data) {
						t.Fatalf("after the aborted fragment: chunk %s (error %v), want fragment %s", c.Tags[mkv.TagFragmentNumber], c.Err(), n)
					}
				}
			}
		})
	}
	t.Run("known size", func(t *testing.T) {
		createStream(t, srv, "known", 24)
		frames := synth.Frames(1, 10, 33)
		whole := gmKnownSize(synth.Cluster(gmBase, frames...))
		frameLen := len(synth.Cluster(0, frames[9])) - len(synth.Cluster(0))
		cut := gmKnownSize(synth.Cluster(gmBase+2000, frames...))
		cut = cut[:len(cut)-5*frameLen] // five frames short of its size
		g := gmOpen(t, srv, "known", gmSelector(types.StartSelectorTypeNow, nil))
		p := gmStartProducer(t, srv, "known")
		p.write(synth.Header(1), whole, cut)
		g.rec.waitFor(t, "the cut fragment", func(b []byte, _ error) bool { return bytes.HasSuffix(b, cut) })
		p.abort()
		if c := g.next(t); !bytes.Equal(c.Cluster, whole) {
			t.Errorf("first chunk: %d cluster bytes, want the %d sent", len(c.Cluster), len(whole))
		}
		// The payload ends cleanly right after the cut fragment's bytes.
		var end error
		b := g.rec.waitFor(t, "the end of the payload", func(_ []byte, err error) bool { end = err; return err != nil })
		if !bytes.HasSuffix(b, cut) || !errors.Is(end, io.EOF) {
			t.Errorf("payload ends with %x (%v), want the cut fragment's bytes and a clean end", b[max(0, len(b)-16):], end)
		}
		if _, err := g.nextErr(t); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("after the cut fragment: %v, want a payload that ends inside the chunk", err)
		}
	})
}

// TestGetMediaKeptAliveConnection: GetMedia works on a kept-alive
// connection whose previous answer's write deadline has passed.
func TestGetMediaKeptAliveConnection(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--request-timeout", "200ms")
	createStream(t, srv, "cam", 1)
	frags := gmFrags(synth.Video{Bitrate: 400_000}, 0, 1)
	gmIngest(t, srv, "cam", "PERSISTED", frags)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	post := func(path, body string) (resp *http.Response, reused bool) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx(t), "POST", srv.URL+path, strings.NewReader(body))
		gmFatalIf(t, err, "POST %s", path)
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}))
		resp, err = hc.Do(req)
		gmFatalIf(t, err, "POST %s", path)
		return resp, reused
	}
	for _, call := range []struct {
		path, body string
		status     int
	}{
		{"/getMedia", `{"StreamName":"nope","StartSelector":{"StartSelectorType":"NOW"}}`, 404},
		{"/getMedia", `{"StreamName":"cam","StartSelector":{"StartSelectorType":"EARLIEST"}}`, 200},
		{"/getMediaForFragmentList", `{"StreamName":"cam","Fragments":["1"]}`, 200},
	} {
		// A control-plane answer leaves a 200 ms write deadline on the
		// connection; the condition under test is that it has passed.
		resp, _ := post("/listStreams", `{}`)
		_, err := io.Copy(io.Discard, resp.Body)
		gmFatalIf(t, err, "ListStreams response")
		resp.Body.Close()
		time.Sleep(300 * time.Millisecond)
		resp, reused := post(call.path, call.body)
		if !reused {
			t.Errorf("%s: the connection was not reused", call.path)
		}
		if resp.StatusCode != call.status {
			t.Errorf("%s: status %d, want %d", call.path, resp.StatusCode, call.status)
		}
		if call.status != 200 {
			_, err := io.Copy(io.Discard, resp.Body)
			gmFatalIf(t, err, "%s response", call.path)
			resp.Body.Close()
			continue
		}
		g := &gmReader{body: resp.Body, rec: gmRecord(resp.Body), cancel: func() {}}
		c, err := g.nextErr(t)
		if err != nil || c.Cluster == nil && c.Err() == nil {
			t.Errorf("%s: chunk %v, error %v; want a chunk", call.path, c != nil, err)
		}
		resp.Body.Close()
	}
}

// TestGetMediaTimestampShortFragments starts at a time held by a fragment
// that more than a page of short fragments precede within the longest
// fragment duration, with nothing left in the live hub to fall back on.
func TestGetMediaTimestampShortFragments(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--live-stream-bytes", "1")
	createStream(t, srv, "short", 24)
	v := synth.Video{Bitrate: 400_000, FragmentDuration: 100 * time.Millisecond} // 3 frames, 99 ms
	frags := gmFrags(v, 0, 150)
	numbers := gmIngest(t, srv, "short", "PERSISTED", frags)
	listed := gmListAll(t, srv, "short")
	g := gmOpen(t, srv, "short", gmSelector(types.StartSelectorTypeProducerTimestamp, time.UnixMilli(int64(frags[140].timecode)+50)))
	for i := 140; i < 150; i++ {
		gmCheckChunk(t, g.next(t), synth.Header(1), frags[i].data, numbers[i], listed[numbers[i]])
	}
}
