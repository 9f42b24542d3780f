package e2e

import (
	"bytes"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideoarchivedmedia/types"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/synth"
)

// gmRange is a ListFragments selector over [from, to].
func gmRange(typ types.FragmentSelectorType, from, to time.Time) *types.FragmentSelector {
	return &types.FragmentSelector{FragmentSelectorType: typ,
		TimestampRange: &types.TimestampRange{StartTimestamp: aws.Time(from), EndTimestamp: aws.Time(to)}}
}

// TestListFragments checks both selectors, the inclusive range on the
// fragment start, every field, MaxResults and pagination that stays
// stable while fragments arrive.
func TestListFragments(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--listfragments-calls-per-second", "1000")
	createStream(t, srv, "cam", 24)
	v := synth.Video{Bitrate: 40_000} // 10 KB fragments of 2 s
	frags := gmFrags(v, 0, 15)
	before := time.Now().Truncate(time.Millisecond)
	numbers := gmIngest(t, srv, "cam", "PERSISTED", frags[:12])
	after := time.Now()
	am := gmArchived(srv)
	list := func(t *testing.T, in *kinesisvideoarchivedmedia.ListFragmentsInput) *kinesisvideoarchivedmedia.ListFragmentsOutput {
		t.Helper()
		in.StreamName = aws.String("cam")
		out, err := am.ListFragments(ctx(t), in)
		gmFatalIf(t, err, "ListFragments")
		return out
	}
	producer := func(i int) time.Time { return time.UnixMilli(int64(frags[i].timecode)) }
	indexes := func(fs []types.Fragment) []int {
		var out []int
		for _, f := range fs {
			out = append(out, slices.Index(numbers, aws.ToString(f.FragmentNumber)))
		}
		slices.Sort(out)
		return out
	}
	span := func(from, to int) []int {
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}

	t.Run("fields", func(t *testing.T) {
		out := list(t, &kinesisvideoarchivedmedia.ListFragmentsInput{MaxResults: aws.Int64(1000),
			FragmentSelector: gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(0), producer(11))})
		if out.NextToken != nil || len(out.Fragments) != 12 {
			t.Fatalf("%d fragments, NextToken %v; want 12 and none", len(out.Fragments), out.NextToken)
		}
		var lastServer time.Time
		for _, f := range out.Fragments {
			i := slices.Index(numbers, aws.ToString(f.FragmentNumber))
			if i < 0 {
				t.Fatalf("fragment %s was not ingested", aws.ToString(f.FragmentNumber))
			}
			server := aws.ToTime(f.ServerTimestamp)
			// 60 frames 33 ms apart: the last ends 1980 ms after the first.
			if f.FragmentSizeInBytes != int64(len(frags[i].data)) || f.FragmentLengthInMilliseconds != 1980 ||
				!aws.ToTime(f.ProducerTimestamp).Equal(producer(i)) || server.Before(before) || server.After(after) {
				t.Errorf("fragment %d: %d bytes, %d ms, producer %v, server %v; want %d bytes, 1980 ms, producer %v, server in [%v, %v]",
					i, f.FragmentSizeInBytes, f.FragmentLengthInMilliseconds, aws.ToTime(f.ProducerTimestamp), server,
					len(frags[i].data), producer(i), before, after)
			}
			// Server timestamps grow with fragment numbers within a session.
			if i > 0 && server.Before(lastServer) {
				t.Errorf("fragment %d starts on the server before fragment %d", i, i-1)
			}
			lastServer = server
		}
	})
	listed := gmListAll(t, srv, "cam")
	server := func(i int) time.Time { return aws.ToTime(listed[numbers[i]].ServerTimestamp) }

	for _, tc := range []struct {
		name     string
		sel      *types.FragmentSelector
		from, to int
	}{
		{"producer range inclusive", gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(3), producer(7)), 3, 7},
		{"producer range inside", gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(3).Add(time.Millisecond), producer(7).Add(-time.Millisecond)), 4, 6},
		{"producer range of one instant", gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(3), producer(3)), 3, 3},
		{"producer range inside a fragment", gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(3).Add(time.Millisecond), producer(3).Add(time.Second)), 0, -1},
		{"producer range before all", gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(0).Add(-time.Hour), producer(0).Add(-time.Millisecond)), 0, -1},
		{"server range", gmRange(types.FragmentSelectorTypeServerTimestamp, server(0).Add(-time.Second), server(11).Add(time.Second)), 0, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := indexes(list(t, &kinesisvideoarchivedmedia.ListFragmentsInput{FragmentSelector: tc.sel}).Fragments)
			if want := span(tc.from, tc.to); !slices.Equal(got, want) {
				t.Errorf("fragments %v, want %v", got, want)
			}
		})
	}
	t.Run("server range exact", func(t *testing.T) {
		// Server timestamps of a fast upload may repeat: work out what
		// [server(3), server(7)] holds from the listed values.
		var want []int
		for i := range 12 {
			if s := server(i); !s.Before(server(3)) && !s.After(server(7)) {
				want = append(want, i)
			}
		}
		got := indexes(list(t, &kinesisvideoarchivedmedia.ListFragmentsInput{
			FragmentSelector: gmRange(types.FragmentSelectorTypeServerTimestamp, server(3), server(7))}).Fragments)
		if !slices.Equal(got, want) {
			t.Errorf("fragments %v, want %v", got, want)
		}
	})

	t.Run("pages while fragments arrive", func(t *testing.T) {
		// The range covers fragments 0..14; 12..14 arrive between pages.
		in := &kinesisvideoarchivedmedia.ListFragmentsInput{MaxResults: aws.Int64(5),
			FragmentSelector: gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(0), producer(14))}
		first := list(t, in)
		if len(first.Fragments) != 5 || first.NextToken == nil {
			t.Fatalf("first page: %d fragments, NextToken %v; want 5 and a token", len(first.Fragments), first.NextToken)
		}
		more := gmIngest(t, srv, "cam", "PERSISTED", frags[12:])
		numbers = append(numbers, more...)
		got := first.Fragments
		bound := newPageBound(t, "ListFragments pages while fragments arrive")
		for token := first.NextToken; token != nil; {
			bound.next()
			page := list(t, &kinesisvideoarchivedmedia.ListFragmentsInput{MaxResults: aws.Int64(5), NextToken: token})
			if len(page.Fragments) > 5 {
				t.Errorf("page of %d fragments, MaxResults 5", len(page.Fragments))
			}
			got = append(got, page.Fragments...)
			token = page.NextToken
		}
		if idx := indexes(got); !slices.Equal(idx, span(0, 14)) {
			t.Errorf("pages hold fragments %v, want each of 0..14 once", idx)
		}
	})

	t.Run("paginator", func(t *testing.T) {
		p := kinesisvideoarchivedmedia.NewListFragmentsPaginator(am, &kinesisvideoarchivedmedia.ListFragmentsInput{
			StreamName: aws.String("cam"), MaxResults: aws.Int64(4),
			FragmentSelector: gmRange(types.FragmentSelectorTypeProducerTimestamp, producer(0), producer(14))})
		var got []types.Fragment
		pages := 0
		bound := newPageBound(t, "ListFragments paginator")
		for p.HasMorePages() {
			bound.next()
			page, err := p.NextPage(ctx(t))
			gmFatalIf(t, err, "page %d", pages)
			got = append(got, page.Fragments...)
			pages++
		}
		if idx := indexes(got); pages != 4 || !slices.Equal(idx, span(0, 14)) {
			t.Errorf("%d pages holding %v, want 4 pages holding 0..14", pages, idx)
		}
	})

	// FragmentSelector is optional in the model: without it, every
	// fragment of the stream, here in the order they arrived.
	t.Run("no selector", func(t *testing.T) {
		p := kinesisvideoarchivedmedia.NewListFragmentsPaginator(am, &kinesisvideoarchivedmedia.ListFragmentsInput{
			StreamName: aws.String("cam"), MaxResults: aws.Int64(4)})
		var got []string
		pages := 0
		bound := newPageBound(t, "ListFragments paginator without a selector")
		for p.HasMorePages() {
			bound.next()
			page, err := p.NextPage(ctx(t))
			gmFatalIf(t, err, "page %d", pages)
			for _, f := range page.Fragments {
				got = append(got, aws.ToString(f.FragmentNumber))
			}
			pages++
		}
		if pages != 4 || !slices.Equal(got, numbers) {
			t.Errorf("%d pages holding %v, want 4 pages holding %v", pages, got, numbers)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			in     *kinesisvideoarchivedmedia.ListFragmentsInput
			status int
			want   error
		}{
			{"unknown stream", &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("nope"),
				FragmentSelector: gmRange(types.FragmentSelectorTypeServerTimestamp, producer(0), producer(1))}, 404,
				&types.ResourceNotFoundException{Message: aws.String("The requested stream is not found or not active.")}},
			{"MaxResults 1001", &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"), MaxResults: aws.Int64(1001),
				FragmentSelector: gmRange(types.FragmentSelectorTypeServerTimestamp, producer(0), producer(1))}, 400,
				&types.InvalidArgumentException{Message: aws.String("1 validation error detected: Value 1001 at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000")}},
			{"end before start", &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"),
				FragmentSelector: gmRange(types.FragmentSelectorTypeServerTimestamp, producer(1), producer(0))}, 400,
				&types.InvalidArgumentException{Message: aws.String("FragmentSelector.TimestampRange.EndTimestamp must not be before StartTimestamp.")}},
			{"foreign token", &kinesisvideoarchivedmedia.ListFragmentsInput{StreamName: aws.String("cam"), NextToken: aws.String("bm90IG91cnM=")}, 400,
				&types.InvalidArgumentException{Message: aws.String(`NextToken "bm90IG91cnM=" is not a token ListFragments returned.`)}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := am.ListFragments(ctx(t), tc.in)
				gmCheckAPIError(t, err, tc.status, tc.want)
			})
		}
	})
}

// TestGetMediaForFragmentList checks order, tags and bytes of the chunks,
// in-band reports of missing fragments and the 1000-fragment limit.
func TestGetMediaForFragmentList(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "cam", 24)
	frags := gmFrags(synth.Video{Bitrate: 8_000}, 0, 12) // 2 KB fragments
	numbers := gmIngest(t, srv, "cam", "PERSISTED", frags)
	listed := gmListAll(t, srv, "cam")
	am := gmArchived(srv)
	missing := store.FragmentNumber(1<<40, time.Now().UnixMilli())
	get := func(t *testing.T, list []string) []*mkv.Chunk {
		t.Helper()
		out, err := am.GetMediaForFragmentList(ctx(t), &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
			StreamName: aws.String("cam"), Fragments: list})
		gmFatalIf(t, err, "GetMediaForFragmentList")
		defer out.Payload.Close()
		if aws.ToString(out.ContentType) != "video/webm" {
			t.Errorf("Content-Type %q, want video/webm", aws.ToString(out.ContentType))
		}
		payload, err := io.ReadAll(out.Payload)
		gmFatalIf(t, err, "read payload")
		return gmChunks(t, payload)
	}
	check := func(t *testing.T, c *mkv.Chunk, number string) {
		t.Helper()
		i := slices.Index(numbers, number)
		if i < 0 {
			want := map[string]string{mkv.TagFragmentNumber: number, mkv.TagErrorID: "4000", mkv.TagErrorCode: "FRAGMENT_NOT_FOUND",
				"AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE": "4000", "AWS_KINESISVIDEO_EXCEPTION_MESSAGE": "The fragment is not in the stream's archive."}
			if !maps.Equal(c.Tags, want) || c.Cluster != nil {
				t.Errorf("missing fragment %s: chunk tags %v (cluster %d bytes), want %v", number, c.Tags, len(c.Cluster), want)
			}
			return
		}
		f := listed[number]
		want := map[string]string{mkv.TagFragmentNumber: number, mkv.TagServerTimestamp: gmTimestamp(f.ServerTimestamp),
			mkv.TagProducerTimestamp: gmTimestamp(f.ProducerTimestamp)}
		if !maps.Equal(c.Tags, want) {
			t.Errorf("fragment %d: tags %v, want %v", i, c.Tags, want)
		}
		if !bytes.Equal(c.Header, synth.Header(1)) || !bytes.Equal(c.Cluster, frags[i].data) {
			t.Errorf("fragment %d: header or cluster bytes differ from the producer's", i)
		}
	}

	t.Run("shuffled with a missing one", func(t *testing.T) {
		list := slices.Clone(numbers)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		list = slices.Insert(list, 4, missing)
		list = append(list, numbers[0]) // asked twice, sent twice
		chunks := get(t, list)
		if len(chunks) != len(list) {
			t.Fatalf("%d chunks for %d fragments", len(chunks), len(list))
		}
		for k, n := range list {
			check(t, chunks[k], n)
		}
	})
	t.Run("1000 fragments", func(t *testing.T) {
		var list []string
		for k := range 1000 {
			if k%100 == 99 {
				list = append(list, missing)
			} else {
				list = append(list, numbers[k%len(numbers)])
			}
		}
		chunks := get(t, list)
		if len(chunks) != len(list) {
			t.Fatalf("%d chunks for %d fragments", len(chunks), len(list))
		}
		for k, n := range list {
			check(t, chunks[k], n)
		}
	})
	t.Run("errors", func(t *testing.T) {
		many := make([]string, 1001)
		for k := range many {
			many[k] = numbers[0]
		}
		for _, tc := range []struct {
			name   string
			stream string
			list   []string
			status int
			want   error
		}{
			{"1001 fragments", "cam", many, 400, &types.InvalidArgumentException{Message: aws.String(
				"1 validation error detected: Value [1001 entries] at 'fragments' failed to satisfy constraint: Member must have length less than or equal to 1000")}},
			{"no fragments", "cam", []string{}, 400, &types.InvalidArgumentException{Message: aws.String(
				"1 validation error detected: Value [0 entries] at 'fragments' failed to satisfy constraint: Member must have length greater than or equal to 1")}},
			{"not a number", "cam", []string{"12a"}, 400, &types.InvalidArgumentException{Message: aws.String(
				"1 validation error detected: Value '12a' at 'fragments.member' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$")}},
			{"unknown stream", "nope", numbers[:1], 404, &types.ResourceNotFoundException{Message: aws.String(
				"The requested stream is not found or not active.")}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := am.GetMediaForFragmentList(ctx(t), &kinesisvideoarchivedmedia.GetMediaForFragmentListInput{
					StreamName: aws.String(tc.stream), Fragments: tc.list})
				gmCheckAPIError(t, err, tc.status, tc.want)
			})
		}
	})
}
