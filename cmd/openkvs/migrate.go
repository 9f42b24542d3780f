package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/migrate"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
)

const migrateUsage = `Usage: openkvs migrate --data DIR --catalog postgres://... --blobs s3://...

Copies the data directory of a server that ran on its own (its SQLite catalog
and fragment files) into a PostgreSQL catalog and an S3 bucket, for nodes of a
cluster to serve: every stream with its ID, ARN, version, tags and
configurations, its fragments, byte for byte, with numbers that go on growing,
and the generated images. Each copied object is read back and checked. Stop
the server on DIR first (migrate refuses while it runs, and a server cannot
start on DIR while migrate runs) and run it before the nodes start. Running it
again finishes an interrupted copy and copies nothing twice. DIR is only read.
`

func migrateCmd(args []string) error {
	var data, catalogURL, blobsURL string
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.StringVar(&data, "data", "./openkvs-data", "data `directory` of the server to copy from (its --data)")
	fs.StringVar(&catalogURL, "catalog", "", "PostgreSQL `URL` to copy the catalog into: postgres://user:password@host/db")
	fs.StringVar(&blobsURL, "blobs", "", "`URL` of the bucket to copy fragments into: s3://bucket/prefix?endpoint=...&region=...")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate takes no arguments, got %q", fs.Args())
	}
	if catalogURL == "" || blobsURL == "" {
		return errors.New("migrate needs --catalog postgres://... and --blobs s3://...: where to copy to")
	}
	path := filepath.Join(data, "catalog.db")
	srcCatalog, err := sqlite.OpenExclusive(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no catalog in %s (%s): --data names the directory openkvs serve ran with", data, path)
	case errors.Is(err, sqlite.ErrInUse):
		return fmt.Errorf("%s is in use: stop the openkvs server running on it, then migrate", data)
	case err != nil:
		return err
	}
	defer srcCatalog.Close()
	srcBlobs, err := file.Open(filepath.Join(data, "blobs"))
	if err != nil {
		return err
	}
	catalog, err := openCatalog(catalogURL, "")
	if err != nil {
		return err
	}
	defer catalog.Close()
	target, ok := catalog.(interface {
		store.Catalog
		store.Importer
		store.Cluster
	})
	if !ok {
		return errors.New("--catalog must be a postgres:// or postgresql:// URL")
	}
	blobs, err := openBlobs(&mediaConfig{blobs: blobsURL}, "")
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	fmt.Printf("copying %s into the catalog and bucket given\n", data)
	key, err := os.ReadFile(filepath.Join(data, "session.key"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read the playback session key: %w", err)
	}
	sum, err := migrate.Run(ctx, migrate.Source{Catalog: srcCatalog, Blobs: srcBlobs, SessionKey: key},
		migrate.Target{Catalog: target, Blobs: blobs}, migrate.Options{Progress: os.Stdout})
	if err != nil {
		return err
	}
	fmt.Printf("migrated %d streams (%d new), %d fragments (%d copied), %d headers and %d images copied, %s in %.2f s\n",
		sum.Streams, sum.NewStreams, sum.Fragments, sum.Copied, sum.Headers, sum.Images,
		formatBytes(float64(sum.Bytes)), sum.Duration.Seconds())
	if key != nil && !sum.KeyKept {
		fmt.Println("the cluster already had a playback session key: HLS and DASH URLs made before the move no longer play")
	}
	return nil
}
