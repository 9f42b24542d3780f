package e2e

import (
	"bytes"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// midGOP is a synthetic camera stream of 1 s fragments whose first frame
// is a key frame only where keys says so, as a muxer that cuts fragments
// on time rather than at key frames sends them.
func midGOP(keys ...bool) []byte {
	b := synth.Header(1)
	for i, key := range keys {
		frames := synth.Frames(1, 30, 33)
		frames[0].Key = key
		b = append(b, synth.Cluster(uint64(i)*1000, frames...)...)
	}
	return b
}

// putMidGOP sends midGOP(keys...) with `openkvs put` and returns what put
// printed on stderr and the stream's fragment numbers in order.
func putMidGOP(t *testing.T, srv *serverProc, stream string, keys ...bool) (string, []string) {
	t.Helper()
	cmd := exec.CommandContext(ctx(t), binary, "put", "--endpoint", srv.URL, "--stream", stream, "--create", "-")
	cmd.Env = awsEnv(t)
	cmd.Stdin = bytes.NewReader(midGOP(keys...))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openkvs put: %v\n%s", err, stderr.String())
	}
	var numbers []string
	for n := range gmListAll(t, srv, stream) {
		numbers = append(numbers, n)
	}
	sort.Strings(numbers)
	if len(numbers) != len(keys) {
		t.Fatalf("%d fragments listed, want all %d put: the server stores fragments that start mid-GOP", len(numbers), len(keys))
	}
	return stderr.String(), numbers
}

// `openkvs put` warns once about fragments that do not start with a key
// frame; the server stores them (refusing would lose the producer's
// data), and GetMedia readers that name no fragment to start at (EARLIEST,
// timestamps, NOW) start at the first fragment that starts with a key
// frame and read on from there. FRAGMENT_NUMBER starts where it says.
func TestMidGOPFragments(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	log, numbers := putMidGOP(t, srv, "cam", false, false, true, false, true)
	if n := strings.Count(log, "does not start with a key frame"); n != 1 {
		t.Errorf("openkvs put warned %d times, want once:\n%s", n, log)
	}
	if !strings.Contains(log, "warning: the fragment at timecode ") || !strings.Contains(log, "ffmpeg -g 60 -cluster_time_limit 2100") {
		t.Errorf("openkvs put printed %q, want a warning naming the fragment and the ffmpeg options", log)
	}
	frags := gmListAll(t, srv, "cam")
	at := func(k int) time.Time { return aws.ToTime(frags[numbers[k]].ProducerTimestamp) }
	for _, tc := range []struct {
		sel  types.StartSelector
		want []int // fragments read, in order
	}{
		{gmSelector(types.StartSelectorTypeEarliest, nil), []int{2, 3, 4}},
		{gmSelector(types.StartSelectorTypeProducerTimestamp, at(0).Add(500*time.Millisecond)), []int{2, 3, 4}},
		{gmSelector(types.StartSelectorTypeProducerTimestamp, at(3)), []int{4}},
		{gmSelector(types.StartSelectorTypeServerTimestamp, aws.ToTime(frags[numbers[0]].ServerTimestamp)), []int{2, 3, 4}},
		{gmSelector(types.StartSelectorTypeFragmentNumber, numbers[0]), []int{1, 2, 3, 4}},
	} {
		r := gmOpen(t, srv, "cam", tc.sel)
		var got []int
		for range tc.want {
			got = append(got, slices.Index(numbers, r.next(t).Tags[mkv.TagFragmentNumber]))
		}
		r.close()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: read fragments %v, want %v", tc.sel.StartSelectorType, got, tc.want)
		}
	}

	// NOW, waiting for a producer whose first fragments start mid-GOP.
	createStream(t, srv, "live", 24)
	now := gmOpen(t, srv, "live", gmSelector(types.StartSelectorTypeNow, nil))
	p := gmStartProducer(t, srv, "live", "x-amzn-fragment-timecode-type", "RELATIVE", "x-amzn-producer-start-timestamp", "1700000000")
	p.write(midGOP(false, true, false))
	p.close()
	p.waitAcks("PERSISTED", 3)
	if c := now.next(t); c.Tags[mkv.TagFragmentNumber] != p.numbers("PERSISTED")[1000] {
		t.Errorf("NOW read fragment %s first, want the second one, which starts with a key frame: %v",
			c.Tags[mkv.TagFragmentNumber], p.numbers("PERSISTED"))
	}
}

// A stream without a key frame at any fragment start for longer than
// --max-fragment-duration (the longest a GOP that starts a fragment may
// last) is read from where the reader's search for one gave up.
func TestMidGOPOnly(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--max-fragment-duration", "2s")
	_, numbers := putMidGOP(t, srv, "cam", false, false, false, false)
	r := gmOpen(t, srv, "cam", gmSelector(types.StartSelectorTypeEarliest, nil))
	if got := r.next(t).Tags[mkv.TagFragmentNumber]; got != numbers[2] {
		t.Errorf("EARLIEST read %s first, want %s, 2 s after the first fragment (%v)", got, numbers[2], numbers)
	}
}
