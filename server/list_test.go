package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/google/go-cmp/cmp"

	"github.com/openkvs/openkvs/streams"
)

// sdkClient is a kinesisvideo client of srv signing as key, without retries.
func sdkClient(srv *httptest.Server, key string) *kinesisvideo.Client {
	return kinesisvideo.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(key, testSecrets[key], ""),
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 1,
	})
}

// createStreams creates the named streams directly in svc.
func createStreams(t *testing.T, svc *streams.Service, names []string) {
	t.Helper()
	for _, name := range names {
		if _, err := svc.CreateStream(context.Background(), &streams.CreateStreamInput{StreamName: aws.String(name)}); err != nil {
			t.Fatalf("CreateStream %s: %v", name, err)
		}
	}
}

// run returns n names prefix-0000, prefix-0001, ...
func run(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return names
}

// TestListStreamsHidesNames lists, as a key that sees the b-*, d-* and f-*
// streams, a catalog where runs of hidden streams longer than one catalog
// scan (1000 rows) lie before, between and after the visible ones. Every
// page is full, the list is exact whatever the page size, no NextToken
// names a hidden stream, and a crafted token lists only visible names.
func TestListStreamsHidesNames(t *testing.T) {
	srv, s := newTestServerWith(t, nil)
	visible := []string{"b-1", "b-2", "d-1", "f-1", "f-2", "f-3"}
	var hidden []string
	for _, prefix := range []string{"a", "c", "e", "g"} {
		hidden = append(hidden, run(prefix, 1100)...)
	}
	hidden = append(hidden, "b", "d", "e-", "cam-1") // near misses of the patterns
	createStreams(t, s.streams, append(slices.Clone(visible), hidden...))
	c := sdkClient(srv, "PREFIXES")
	ctx := context.Background()

	// checkToken fails the test when a NextToken names a hidden stream.
	checkToken := func(token *string) {
		t.Helper()
		if token == nil {
			return
		}
		name, err := base64.StdEncoding.DecodeString(*token)
		if err != nil || !slices.Contains(visible, string(name)) {
			t.Errorf("NextToken %q decodes to %q (%v): not a visible stream", *token, name, err)
		}
	}
	names := func(out *kinesisvideo.ListStreamsOutput) []string {
		page := []string{}
		for _, s := range out.StreamInfoList {
			page = append(page, aws.ToString(s.StreamName))
		}
		return page
	}

	for _, size := range []int32{1, 2, 3, 10000} {
		t.Run(fmt.Sprintf("MaxResults %d", size), func(t *testing.T) {
			var got [][]string
			p := kinesisvideo.NewListStreamsPaginator(c, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(size)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				checkToken(out.NextToken)
				got = append(got, names(out))
			}
			var want [][]string
			for page := range slices.Chunk(visible, int(size)) {
				want = append(want, page)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pages (-want +got):\n%s", diff)
			}
		})
	}

	// Tokens the client makes up: each positioned just before a hidden
	// name, or on one, lists the visible streams after it and nothing else.
	crafted := []struct {
		after string
		want  []string
	}{
		{"a-0500", []string{"b-1", "b-2"}},
		{"c-0999", []string{"d-1", "f-1"}},
		{"e-1000", []string{"f-1", "f-2"}},
		{"f-3", []string{}},
		{"g-0000", []string{}},
	}
	for _, tc := range crafted {
		token := base64.StdEncoding.EncodeToString([]byte(tc.after))
		out, err := c.ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(2), NextToken: &token})
		if err != nil {
			t.Fatalf("token after %s: %v", tc.after, err)
		}
		checkToken(out.NextToken)
		if diff := cmp.Diff(tc.want, names(out)); diff != "" {
			t.Errorf("token after %s (-want +got):\n%s", tc.after, diff)
		}
	}

	// The admin, whose listing is not filtered, still pages through all.
	out, err := sdkClient(srv, "ADMIN").ListStreams(ctx, &kinesisvideo.ListStreamsInput{MaxResults: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(out), []string{"a-0000", "a-0001", "a-0002"}; !cmp.Equal(want, got) ||
		aws.ToString(out.NextToken) != base64.StdEncoding.EncodeToString([]byte("a-0002")) {
		t.Errorf("admin page = %v, token %q; want %v and the token of a-0002", got, aws.ToString(out.NextToken), want)
	}
}
