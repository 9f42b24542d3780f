package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/synth"
)

// TestListFragmentsPagingOrder pages with a small MaxResults through
// fragments whose order by server timestamp differs from their order by
// producer timestamp: three producer sessions, one after the other, whose
// producer timestamps go late, early, middle. Each selector must list every
// fragment exactly once, in its own timestamp's order. A NextToken whose
// cursor holds the other timestamp points back or past the rest, so the
// pages repeat or stop short (gmPages bounds the repeat).
func TestListFragmentsPagingOrder(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--listfragments-calls-per-second", "1000")
	createStream(t, srv, "cam", 24)
	v := synth.Video{Bitrate: 8_000} // 2 KB fragments of 2 s
	// Fragment indexes of each session: producer time gmBase + 2 s × index.
	sessions := [][]int{{10, 11, 12, 13}, {0, 1, 2, 3}, {5, 6, 7}}
	var numbers []string // in ingest order, which is server-time order
	for _, s := range sessions {
		numbers = append(numbers, gmIngest(t, srv, "cam", "PERSISTED", gmFrags(v, s[0], len(s)))...)
	}
	listed := gmListAll(t, srv, "cam")
	for i := 1; i < len(numbers); i++ {
		if aws.ToTime(listed[numbers[i]].ServerTimestamp).Before(aws.ToTime(listed[numbers[i-1]].ServerTimestamp)) {
			t.Fatalf("fragment %s was received after %s but has an earlier server timestamp", numbers[i], numbers[i-1])
		}
	}
	// The producer-time order of the same fragments.
	wantProducer := slices.Clone(numbers)
	slices.SortFunc(wantProducer, func(a, b string) int {
		return aws.ToTime(listed[a].ProducerTimestamp).Compare(aws.ToTime(listed[b].ProducerTimestamp))
	})
	if slices.Equal(wantProducer, numbers) {
		t.Fatal("producer-time order equals server-time order: not a test of the cursor")
	}
	all := func(typ types.FragmentSelectorType) *types.FragmentSelector {
		return gmRange(typ, time.Unix(0, 0), time.Now().Add(time.Hour))
	}
	for _, tc := range []struct {
		typ  types.FragmentSelectorType
		want []string
	}{
		{types.FragmentSelectorTypeServerTimestamp, numbers},
		{types.FragmentSelectorTypeProducerTimestamp, wantProducer},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			frags, pages := gmPages(t, srv, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"),
				MaxResults: aws.Int64(2), FragmentSelector: all(tc.typ)})
			var got []string
			for _, f := range frags {
				got = append(got, aws.ToString(f.FragmentNumber))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pages of 2 list\n%v\nwant each fragment once in %s order:\n%v", got, tc.typ, tc.want)
			}
			if want := (len(tc.want) + 1) / 2; pages != want {
				t.Errorf("%d pages, want %d", pages, want)
			}
		})
	}
}

// TestListFragmentsDefaultMaxResults lists more than 100 fragments without
// MaxResults: pages of 100, the documented default.
func TestListFragmentsDefaultMaxResults(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	faultBulk(t, srv, "cam", 150)
	frags, pages := gmPages(t, srv, &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"),
		FragmentSelector: gmRange(types.FragmentSelectorTypeServerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour))})
	if len(frags) != 150 || pages != 2 {
		t.Fatalf("%d fragments in %d pages, want 150 in 2", len(frags), pages)
	}
	first, err := gmArchived(srv).ListFragments(ctx(t), &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"),
		FragmentSelector: gmRange(types.FragmentSelectorTypeProducerTimestamp, time.Unix(0, 0), time.Now().Add(time.Hour))})
	gmFatalIf(t, err, "ListFragments")
	if len(first.Fragments) != 100 || first.NextToken == nil {
		t.Errorf("first page without MaxResults: %d fragments, NextToken %v; want 100 and a token", len(first.Fragments), first.NextToken)
	}
}
