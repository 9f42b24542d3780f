package migrate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/blob/s3"
	"github.com/openkvs/openkvs/internal/testenv"
	"github.com/openkvs/openkvs/migrate"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/postgres"
	"github.com/openkvs/openkvs/store/sqlite"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// failingBlobs fails every Put after the first n, as an interrupted copy.
type failingBlobs struct {
	store.Blobs
	left atomic.Int64
}

func (b *failingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if b.left.Add(-1) < 0 {
		return errors.New("interrupted")
	}
	return b.Blobs.Put(ctx, key, r, size)
}

// TestResume: a copy cut short after some blobs is finished by the next
// run, which adds each missing row once and copies only what is missing.
func TestResume(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srcBlobs, err := file.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	s := &store.Stream{Name: "cam", ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/cam/1", Version: "v1",
		Status: store.StatusActive, CreationTime: time.UnixMilli(1_700_000_000_000), RetentionHours: 24, Tags: map[string]string{"a": "b"}}
	if err := src.CreateStream(ctx, s); err != nil {
		t.Fatal(err)
	}
	const n = 700 // more than one batch
	first, err := src.ReserveSequence(ctx, s.ID, n+5)
	if err != nil {
		t.Fatal(err)
	}
	header := fmt.Sprintf("s%d/h/1", s.ID)
	if err := srcBlobs.Put(ctx, header, bytes.NewReader([]byte("header")), 6); err != nil {
		t.Fatal(err)
	}
	var rows []*store.Fragment
	for i := range uint64(n) {
		num := store.FragmentNumber(first+i, 1_700_000_000_000+int64(i))
		body := []byte("fragment " + num)
		f := &store.Fragment{StreamID: s.ID, Number: num, ProducerTime: time.UnixMilli(1_700_000_000_000 + int64(i)),
			ServerTime: time.UnixMilli(1_700_000_000_000 + int64(i)), Duration: time.Second, Size: int64(len(body)),
			BlobKey: fmt.Sprintf("s%d/f/%s", s.ID, num), HeaderKey: header}
		if err := srcBlobs.Put(ctx, f.BlobKey, bytes.NewReader(body), f.Size); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, f)
	}
	if err := src.AddFragments(ctx, nil, rows); err != nil {
		t.Fatal(err)
	}

	dst, err := postgres.Open(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	bucket, err := s3.Open(ctx, testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := &failingBlobs{Blobs: bucket}
	cut.left.Store(400)
	source := migrate.Source{Catalog: src, Blobs: srcBlobs}
	if _, err := migrate.Run(ctx, source, migrate.Target{Catalog: dst, Blobs: cut}, migrate.Options{}); err == nil {
		t.Fatal("the interrupted copy succeeded")
	}
	partial, err := dst.FragmentsAfter(ctx, s.ID, "", 2*n)
	if err != nil || len(partial) == 0 || len(partial) >= n {
		t.Fatalf("rows after the interruption: %d, %v; want some of the %d", len(partial), err, n)
	}
	sum, err := migrate.Run(ctx, source, migrate.Target{Catalog: dst, Blobs: bucket}, migrate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Streams != 1 || sum.NewStreams != 0 || sum.Fragments != n || sum.Copied != n-len(partial) {
		t.Errorf("the second run: %+v; want 1 stream there already, %d fragments of which %d copied", sum, n, n-len(partial))
	}
	got, err := dst.FragmentsAfter(ctx, s.ID, "", 2*n)
	if err != nil || len(got) != n {
		t.Fatalf("rows after the second run: %d, %v; want %d", len(got), err, n)
	}
	for i, f := range got {
		if f.Number != rows[i].Number || f.Size != rows[i].Size {
			t.Fatalf("row %d = %s (%d bytes), want %s (%d bytes)", i, f.Number, f.Size, rows[i].Number, rows[i].Size)
		}
		rc, err := bucket.Open(ctx, f.BlobKey)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "fragment "+f.Number {
			t.Fatalf("blob %s = %q, %v", f.BlobKey, b, err)
		}
	}
	if next, err := dst.ReserveSequence(ctx, s.ID, 1); err != nil || next != first+n+5 {
		t.Errorf("the target's next sequence = %d, %v; want %d", next, err, first+n+5)
	}
}
