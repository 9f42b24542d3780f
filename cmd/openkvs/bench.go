package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/openkvs/openkvs/bench"
)

func benchCmd(args []string) error {
	var opts bench.Options
	var jsonFile, scenarios, baselineDir, serveArgs, peer string
	var baseline, metricsAB bool
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&opts.Quick, "quick", false, "small sizes, under a minute: the CI smoke run (figures are not comparable with a full run)")
	fs.StringVar(&jsonFile, "json", "", "also write the report as JSON to `file`")
	fs.StringVar(&opts.Target, "target", "", "measure the running server at `URL` instead of starting one (no CPU, RSS or preloaded ListFragments figures)")
	fs.IntVar(&opts.Bitrate, "bitrate", 4_000_000, "camera `bits/s` of the ingest, catch-up and latency scenarios (the N-stream and fan-out scenarios are defined at 4 Mbit/s)")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated `list` of scenarios to run (default all: "+strings.Join(bench.ScenarioIDs, ",")+")")
	fs.StringVar(&serveArgs, "serve-args", "", "extra `flags` for every openkvs serve child, space-separated (e.g. \"--live-total-bytes 268435456\")")
	fs.BoolVar(&opts.Cluster, "cluster", false, "run the cluster scenarios ("+strings.Join(bench.ClusterScenarioIDs, ",")+") instead: nodes sharing --catalog and --blobs")
	fs.StringVar(&opts.Catalog, "catalog", "", "PostgreSQL `URL` the cluster scenarios' nodes share (the bench creates streams there and deletes them at the end)")
	fs.StringVar(&opts.Blobs, "blobs", "", "s3:// `URL` of the bucket the cluster scenarios' nodes share")
	fs.StringVar(&peer, "peer", "", "`mediamtx=PATH`: also measure the MediaMTX binary at PATH in ingest-concurrent (RTSP publishers, fMP4 recording; bench/peers/build-mediamtx.sh builds it)")
	fs.BoolVar(&metricsAB, "metrics-ab", false, "run the scenarios twice, the server's metrics on (--metrics=true) then off, and print each figure's ratio")
	// The baseline server runs as a child of the bench, so that its CPU time
	// is measured the way the openkvs server's is.
	fs.BoolVar(&baseline, "baseline-server", false, "internal: serve the bench's baselines (started by the bench itself)")
	fs.StringVar(&baselineDir, "baseline-data", "", "internal: the baseline server's `directory`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	ctx, stop := signalContext()
	defer stop()
	if baseline {
		if baselineDir == "" {
			return fmt.Errorf("--baseline-server needs --baseline-data")
		}
		return bench.ServeBaseline(ctx, baselineDir, os.Stderr)
	}
	if scenarios != "" {
		opts.Scenarios = strings.Split(scenarios, ",")
	}
	if opts.Cluster && (opts.Catalog == "" || opts.Blobs == "") {
		return fmt.Errorf("--cluster needs --catalog postgres://... and --blobs s3://...: the nodes it starts share them")
	}
	if peer != "" {
		name, path, _ := strings.Cut(peer, "=")
		if name != "mediamtx" || path == "" {
			return fmt.Errorf("--peer %q: want mediamtx=PATH (the only peer the bench knows)", peer)
		}
		if _, err := exec.LookPath(path); err != nil {
			return fmt.Errorf("--peer: %w", err)
		}
		opts.MediaMTX = path
	}
	opts.ServeFlags = strings.Fields(serveArgs)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the openkvs executable: %w", err)
	}
	opts.Executable, opts.Progress = exe, os.Stderr
	var reports []*bench.Report // the one report; with --metrics-ab, metrics on, then off
	if metricsAB {
		on, off, err := bench.MetricsAB(ctx, opts)
		if err != nil {
			return err
		}
		reports = []*bench.Report{on, off}
	} else {
		rep, err := bench.Run(ctx, opts)
		if err != nil {
			return err
		}
		reports = []*bench.Report{rep}
	}
	failed := false
	for _, r := range reports {
		if err := r.WriteTable(os.Stdout); err != nil {
			return err
		}
		failed = failed || r.Failed()
	}
	if len(reports) == 2 {
		if err := bench.WriteComparison(os.Stdout, reports[0], reports[1]); err != nil {
			return err
		}
	}
	// With --metrics-ab, the JSON report is the run with metrics on.
	if jsonFile != "" {
		if err := reports[0].WriteJSON(jsonFile); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	if failed {
		return fmt.Errorf("a scenario failed (see the report)")
	}
	return nil
}
