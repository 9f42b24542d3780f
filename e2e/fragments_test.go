package e2e

import (
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	amtypes "github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/mkv"
)

func TestFragmentsCLI(t *testing.T) {
	srv := startServer(t)
	getIngest(t, srv, "mixed", "h264.mkv", "unknown_size.mkv")
	all := getList(t, srv, "mixed", amtypes.FragmentSelectorTypeProducerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour), 1000)
	if len(all) != 6 {
		t.Fatalf("ListFragments: %d fragments, want 6", len(all))
	}
	first, second, third := all[0], all[1], all[2]
	cases := []struct {
		name string
		args []string
		want []amtypes.Fragment
	}{
		// Three pages of two.
		{"all", []string{"--page-size", "2"}, all},
		// A range of producer times from the first session's second
		// fragment to its third: a strict subset of both sessions.
		{"producer range", []string{
			"--from", mkv.FormatTimestampMillis(second.ProducerTimestamp.UnixMilli()),
			"--to", third.ProducerTimestamp.UTC().Format(time.RFC3339Nano),
		}, getList(t, srv, "mixed", amtypes.FragmentSelectorTypeProducerTimestamp, *second.ProducerTimestamp, *third.ProducerTimestamp, 1000)},
		{"server range", []string{
			"--server-time", "--from", first.ServerTimestamp.Format(time.RFC3339Nano), "--to", mkv.FormatTimestampMillis(first.ServerTimestamp.UnixMilli()),
		}, getList(t, srv, "mixed", amtypes.FragmentSelectorTypeServerTimestamp, *first.ServerTimestamp, *first.ServerTimestamp, 1000)},
	}
	for _, tc := range cases[1:] {
		if n := len(tc.want); n == 0 || n == len(all) {
			t.Fatalf("%s: ListFragments returned %d of %d fragments: not a test of the range", tc.name, n, len(all))
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(ctx(t), binary, append([]string{"fragments", "--endpoint", srv.URL, "--stream", "mixed"}, tc.args...)...)
			// The listing pages past the server's 5 ListFragments calls per
			// second: the command retries ClientLimitExceededException
			// with backoff, given the attempts to.
			cmd.Env = append(awsEnv(t), "AWS_MAX_ATTEMPTS=10")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("openkvs fragments: %v\n%s", err, stderr.String())
			}
			var got [][]string
			for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
				got = append(got, strings.Fields(line))
			}
			want := [][]string{{"FRAGMENT_NUMBER", "PRODUCER_TIME", "SERVER_TIME", "DURATION_MS", "SIZE_BYTES"}}
			var size int64
			for _, f := range tc.want {
				want = append(want, []string{aws.ToString(f.FragmentNumber),
					f.ProducerTimestamp.UTC().Format("2006-01-02T15:04:05.000Z"), f.ServerTimestamp.UTC().Format("2006-01-02T15:04:05.000Z"),
					strconv.FormatInt(f.FragmentLengthInMilliseconds, 10), strconv.FormatInt(f.FragmentSizeInBytes, 10)})
				size += f.FragmentSizeInBytes
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("table (-ListFragments +openkvs fragments):\n%s", diff)
			}
			if summary := strconv.Itoa(len(tc.want)) + " fragments, " + strconv.FormatInt(size, 10) + " bytes"; !strings.HasPrefix(stderr.String(), summary) {
				t.Errorf("stderr %q, want it to start with %q", stderr.String(), summary)
			}
		})
	}
}
