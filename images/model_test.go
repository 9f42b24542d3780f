package images

import (
	"slices"
	"testing"
	"time"

	"github.com/openkvs/openkvs/api"
)

// TestPages checks the samples of a range and how they page.
func TestPages(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	base := func(span time.Duration, every int64, maxResults int64) *Input {
		sel, format := SelectProducerTimestamp, FormatJPEG
		in := &Input{ImageSelectorType: &sel, Format: &format, StartTimestamp: &api.Timestamp{Time: start},
			EndTimestamp: &api.Timestamp{Time: start.Add(span)}, SamplingInterval: &every}
		if maxResults > 0 {
			in.MaxResults = &maxResults
		}
		return in
	}
	for _, tc := range []struct {
		name      string
		in        *Input
		wantPages []int
	}{
		{"range shorter than the interval", base(100*time.Millisecond, 5000, 0), []int{1}},
		{"empty range", base(0, 1000, 0), []int{1}},
		{"end excluded", base(6*time.Second, 1000, 0), []int{6}},
		{"partial interval", base(6*time.Second, 700, 0), []int{9}},
		{"300 s at 1 s, pages of 25", base(300*time.Second, 1000, 100), []int{25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25}},
		{"MaxResults", base(10*time.Second, 1000, 4), []int{4, 4, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			in := *tc.in
			for {
				r, err := parse(&in)
				if err != nil {
					t.Fatal(err)
				}
				if r.count > 0 && !r.at(r.first).Equal(start.Add(time.Duration(sum(got))*r.interval)) {
					t.Fatalf("page %d starts at %v", len(got), r.at(r.first))
				}
				got = append(got, r.count)
				tok := r.nextToken()
				if tok == "" {
					break
				}
				in.NextToken = &tok
			}
			if !slices.Equal(got, tc.wantPages) {
				t.Fatalf("pages %v, want %v", got, tc.wantPages)
			}
		})
	}
}

func sum(ns []int) (s int) {
	for _, n := range ns {
		s += n
	}
	return s
}

// TestQScale checks the JPEGQuality to -q:v mapping at its ends.
func TestQScale(t *testing.T) {
	for quality, want := range map[int]int{1: 31, 50: 17, 80: 8, 100: 2} {
		if got := QScale(quality); got != want {
			t.Errorf("QScale(%d) = %d, want %d", quality, got, want)
		}
	}
}
