package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
)

// MetricsAB runs the scenarios of opts twice in one run: with the child
// servers' Prometheus metrics on (the default), then off (--metrics=false),
// so that the cost of metrics shows as the ratio of each figure. It needs
// child servers: a target's flags cannot be changed.
func MetricsAB(ctx context.Context, opts Options) (on, off *Report, err error) {
	if opts.Target != "" {
		return nil, nil, fmt.Errorf("comparing metrics on and off needs child servers, not --target")
	}
	base := slices.Clone(opts.ServeFlags)
	opts.ServeFlags = append(base, "--metrics=true")
	if on, err = Run(ctx, opts); err != nil {
		return nil, nil, err
	}
	opts.ServeFlags = append(slices.Clone(base), "--metrics=false")
	if off, err = Run(ctx, opts); err != nil {
		return nil, nil, err
	}
	return on, off, nil
}

// WriteComparison prints each figure measured in both reports, with
// metrics on and off and their ratio (on / off: above 1 is better for
// rates, worse for latencies and costs).
func WriteComparison(w io.Writer, on, off *Report) error {
	fmt.Fprintln(w, "\nmetrics on vs off, same run:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tmetrics on\tmetrics off\ton/off\t")
	for _, s := range on.Scenarios {
		other := findScenario(off, s.ID)
		for _, f := range s.Figures {
			g := findFigure(other, f.Name)
			if g == nil {
				continue
			}
			ratio := "-"
			if g.Value != 0 {
				ratio = strconv.FormatFloat(f.Value/g.Value, 'f', 2, 64)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", s.Title, f.Name, formatValue(f.Value, f.Unit), formatValue(g.Value, g.Unit), ratio)
		}
	}
	return tw.Flush()
}

func findScenario(r *Report, id string) *Scenario {
	for _, s := range r.Scenarios {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func findFigure(s *Scenario, name string) *Figure {
	if s == nil {
		return nil
	}
	for _, f := range s.Figures {
		if f.Name == name {
			return f
		}
	}
	return nil
}
