package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openkvs/openkvs/bench"
)

func benchCmd(args []string) error {
	var opts bench.Options
	var jsonFile, scenarios, baselineDir string
	var baseline bool
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&opts.Quick, "quick", false, "small sizes, under a minute: the CI smoke run (figures are not comparable with a full run)")
	fs.StringVar(&jsonFile, "json", "", "also write the report as JSON to `file`")
	fs.StringVar(&opts.Target, "target", "", "measure the running server at `URL` instead of starting one (no CPU, RSS or preloaded ListFragments figures)")
	fs.IntVar(&opts.Bitrate, "bitrate", 4_000_000, "camera `bits/s` of the ingest, catch-up and latency scenarios (the N-stream and fan-out scenarios are defined at 4 Mbit/s)")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated `list` of scenarios to run (default all: "+strings.Join(bench.ScenarioIDs, ",")+")")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the openkvs executable: %w", err)
	}
	opts.Executable, opts.Progress = exe, os.Stderr
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if jsonFile != "" {
		if err := rep.WriteJSON(jsonFile); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	if rep.Failed() {
		return fmt.Errorf("a scenario failed (see the report)")
	}
	return nil
}
