package e2e

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/openkvs/openkvs/internal/testenv"
)

// TestPostgresCatalog runs two servers, each with its own data directory,
// on one PostgreSQL catalog, named by --catalog and by OPENKVS_CATALOG: a
// stream created through one is the other's too.
func TestPostgresCatalog(t *testing.T) {
	t.Parallel()
	dsn := testenv.Postgres(t)
	a := startServer(t, "--catalog", dsn)
	b := startServerEnv(t, []string{"OPENKVS_CATALOG=" + dsn})
	created, err := a.control().CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(2)})
	gmFatalIf(t, err, "CreateStream")
	got, err := b.control().DescribeStream(ctx(t), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	gmFatalIf(t, err, "DescribeStream on the other server")
	if info := got.StreamInfo; aws.ToString(info.StreamARN) != aws.ToString(created.StreamARN) || aws.ToInt32(info.DataRetentionInHours) != 2 {
		t.Fatalf("the other server describes %s with retention %d; want %s with 2", aws.ToString(info.StreamARN),
			aws.ToInt32(info.DataRetentionInHours), aws.ToString(created.StreamARN))
	}
}

// TestCatalogStartupErrors checks the start-up error of a --catalog that
// is not PostgreSQL and of one that cannot be reached: one line, exit 1,
// and never the password.
func TestCatalogStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"mysql://u:s3cret@db/kvs", "openkvs: --catalog must be a postgres:// or postgresql:// URL, or empty for SQLite in --data\n"},
		{"postgres://u:s3cret@127.0.0.1:1/kvs?connect_timeout=5", "openkvs: --catalog: open catalog: "},
	} {
		stderr, code := runOpenkvs(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--catalog", tc.url)
		if code != 1 || !strings.HasPrefix(stderr, tc.want) || strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "s3cret") {
			t.Errorf("--catalog %s: exit %d, stderr %q; want 1 and one line starting %q without the password", tc.url, code, stderr, tc.want)
		}
	}
}
