package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one bench run: what was measured, on what
// machine, and against which baselines. The table and the JSON file carry
// the same content.
type Report struct {
	Mode      string      `json:"mode"`             // "full" or "quick"
	Target    string      `json:"target,omitempty"` // URL of a running server, "" for a child server
	Machine   Machine     `json:"machine"`
	Started   time.Time   `json:"started"`
	Seconds   float64     `json:"seconds"` // wall time of the whole run
	Scenarios []*Scenario `json:"scenarios"`
}

// Machine describes where the run happened; figures from different machines
// do not compare.
type Machine struct {
	Cores       int     `json:"cores"`
	CPU         string  `json:"cpu,omitempty"`
	MemoryBytes int64   `json:"memoryBytes,omitempty"`
	GoVersion   string  `json:"goVersion"`
	OS          string  `json:"os"`
	LoadStart   float64 `json:"loadStart"` // 1-minute load average when the run started
	LoadEnd     float64 `json:"loadEnd"`   // and when it ended
}

// Scenario is one measured situation with its figures.
type Scenario struct {
	ID      string    `json:"id"`    // stable name: one of ScenarioIDs
	Title   string    `json:"title"` // what it measures, for the table
	Figures []*Figure `json:"figures"`
	Notes   []string  `json:"notes,omitempty"`
	Error   string    `json:"error,omitempty"` // why it produced no (or not every) figure
	Seconds float64   `json:"seconds"`
}

// Figure is one measured number, with the baseline measured beside it in the
// same run where there is one.
type Figure struct {
	Name         string   `json:"name"`
	Value        float64  `json:"value"`
	Unit         string   `json:"unit"`
	Baseline     *float64 `json:"baseline,omitempty"`
	BaselineName string   `json:"baselineName,omitempty"`
	// Ratio is Value / Baseline: above 1 is better for rates, worse for
	// latencies and costs.
	Ratio  *float64 `json:"ratio,omitempty"`
	Target string   `json:"target,omitempty"` // the goal, in words
	Met    *bool    `json:"met,omitempty"`    // whether the goal was met
	// NotTried says why the run did not try to reach the goal (then Met
	// is nil): the figure says nothing about it either way.
	NotTried string `json:"notTried,omitempty"`
}

// figure returns a Figure without a baseline.
func figure(name string, value float64, unit string) *Figure {
	return &Figure{Name: name, Value: value, Unit: unit}
}

// against sets the baseline and the ratio.
func (f *Figure) against(name string, baseline float64) *Figure {
	f.Baseline, f.BaselineName = &baseline, name
	if baseline != 0 {
		r := f.Value / baseline
		f.Ratio = &r
	}
	return f
}

// goal records a target and whether it was met.
func (f *Figure) goal(text string, met bool) *Figure {
	f.Target, f.Met = text, &met
	return f
}

// atLeast records the goal "at least goal" of a search for the largest N
// that passes, which found n without trying past ceiling. A search whose
// ceiling is below the goal (quick mode's small sizes, or too few open
// files) did not try to reach it: that is not a miss.
func (f *Figure) atLeast(goal, n, ceiling int) *Figure {
	text := fmt.Sprintf(">= %d", goal)
	if ceiling < goal {
		f.Target, f.NotTried = text, fmt.Sprintf("this run searched up to %d", ceiling)
		return f
	}
	return f.goal(text, n >= goal)
}

// add appends figures to the scenario.
func (s *Scenario) add(f ...*Figure) { s.Figures = append(s.Figures, f...) }

// note appends a note to the scenario.
func (s *Scenario) note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// machine describes this machine now.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimLeft(name, "\t :"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				m.MemoryBytes = kb << 10
			}
		}
	}
	return m
}

// loadAverage is the 1-minute load average, 0 where /proc is missing.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteTable prints the report as a table: one line per figure with its
// baseline, their ratio and the target, then each scenario's notes.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "openkvs bench (%s) on %d cores", r.Mode, m.Cores)
	if m.CPU != "" {
		fmt.Fprintf(w, " (%s)", m.CPU)
	}
	fmt.Fprintf(w, ", %.1f GiB, %s %s, load %.2f at start, %.2f at end, %.0f s\n",
		float64(m.MemoryBytes)/(1<<30), m.GoVersion, m.OS, m.LoadStart, m.LoadEnd, r.Seconds)
	if r.Target != "" {
		fmt.Fprintf(w, "server: %s\n", r.Target)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\topenkvs\tbaseline\tratio\ttarget\t")
	for _, s := range r.Scenarios {
		if len(s.Figures) == 0 {
			fmt.Fprintf(tw, "%s\t(no figure)\t\t\t\t\t\n", s.Title)
		}
		for i, f := range s.Figures {
			title := s.Title
			if i > 0 {
				title = ""
			}
			base, ratio := "-", "-"
			if f.Baseline != nil {
				base = formatValue(*f.Baseline, f.Unit) + " (" + f.BaselineName + ")"
			}
			if f.Ratio != nil {
				ratio = strconv.FormatFloat(*f.Ratio, 'f', 2, 64)
			}
			target := f.Target
			if f.Met != nil {
				target += map[bool]string{true: " (met)", false: " (missed)"}[*f.Met]
			}
			if f.NotTried != "" {
				target += " (not tried: " + f.NotTried + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", title, f.Name, formatValue(f.Value, f.Unit), base, ratio, target)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Scenarios {
		if len(s.Notes) == 0 && s.Error == "" {
			continue
		}
		fmt.Fprintf(w, "\n%s (%.1f s):\n", s.Title, s.Seconds)
		if s.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", s.Error)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	return nil
}

// formatValue prints a number with a precision that suits its size.
func formatValue(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e7:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}
