package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/testenv"
)

// `openkvs bench --quick` is the CI smoke test of the benchmark: it must
// finish within a minute and every scenario must produce its figures. The
// figures themselves are not checked: CI machines are noisy.
func TestBenchQuick(t *testing.T) {
	benchQuick(t, time.Minute, []string{"ingest", "ingest-concurrent", "catch-up", "live-latency", "fan-out", "list-fragments", "remux", "segment-ttfb", "clip", "images"})
}

// `openkvs bench --cluster --quick` runs the cluster scenarios on nodes
// sharing a real PostgreSQL and S3 server.
func TestBenchCluster(t *testing.T) {
	benchQuick(t, 150*time.Second, []string{"cluster-ingest", "failover", "cluster-fan-out"},
		"--cluster", "--catalog", testenv.Postgres(t), "--blobs", testenv.S3(t))
}

// benchQuick runs `openkvs bench --quick` with args and checks that it
// finishes within limit and that each scenario of want produced its
// figures.
func benchQuick(t *testing.T, limit time.Duration, want []string, args ...string) {
	out := filepath.Join(t.TempDir(), "bench.json")
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"bench", "--quick", "--json", out}, args...)...)
	start := time.Now()
	output, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("openkvs bench --quick %v did not finish within %v:\n%s", args, limit, output)
	}
	if err != nil {
		t.Fatalf("openkvs bench --quick %v: %v\n%s", args, err, output)
	}
	t.Logf("openkvs bench --quick %v took %s", args, time.Since(start).Round(time.Second))

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode    string
		Machine struct {
			Cores     int
			GoVersion string
		}
		Scenarios []struct {
			ID      string
			Error   string
			Notes   []string
			Figures []struct {
				Name     string
				Value    *float64
				Met      *bool
				NotTried string
			}
		}
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	if rep.Mode != "quick" || rep.Machine.Cores == 0 || rep.Machine.GoVersion == "" {
		t.Errorf("report header: mode %q, %d cores, Go %q", rep.Mode, rep.Machine.Cores, rep.Machine.GoVersion)
	}
	got := map[string]bool{}
	for _, s := range rep.Scenarios {
		got[s.ID] = true
		if s.Error != "" {
			t.Errorf("scenario %s failed: %s", s.ID, s.Error)
		}
		if len(s.Figures) == 0 {
			t.Errorf("scenario %s produced no figure", s.ID)
		}
		// Without --peer the bench leaves MediaMTX out, and says so.
		if s.ID == "ingest-concurrent" && !slices.Contains(s.Notes, "MediaMTX not measured: give its binary with --peer mediamtx=PATH (bench/peers/build-mediamtx.sh builds it)") {
			t.Errorf("scenario %s: no note that MediaMTX was not measured in %q", s.ID, s.Notes)
		}
		for i, f := range s.Figures {
			if f.Value == nil || math.IsNaN(*f.Value) || math.IsInf(*f.Value, 0) {
				t.Errorf("scenario %s: figure %q has no value", s.ID, f.Name)
			}
			// Quick mode's searches stop far below the goals of the
			// largest N: those goals were not tried, so not missed.
			if i == 0 && (s.ID == "ingest-concurrent" || s.ID == "fan-out") && (f.Met != nil || f.NotTried == "") {
				t.Errorf("scenario %s: figure %q met %v, not tried %q; want not tried", s.ID, f.Name, f.Met, f.NotTried)
			}
		}
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("scenario %s missing from the report", id)
		}
	}
}
