package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// timeHelp says what a TIME argument may be.
const timeHelp = "RFC 3339 (2024-05-01T12:00:00.5Z), epoch seconds (1714564800.5), now, or a time before now (-1m, -1h30m)"

// timeRange reads the --from and --to TIMEs of a command; an empty one
// keeps the default given.
func timeRange(from, to string, start, end time.Time) (time.Time, time.Time, error) {
	var err error
	if from != "" {
		if start, err = parseTime(from); err != nil {
			return start, end, fmt.Errorf("--from: %w", err)
		}
	}
	if to != "" {
		if end, err = parseTime(to); err != nil {
			return start, end, fmt.Errorf("--to: %w", err)
		}
	}
	return start, end, nil
}

// parseTime reads a TIME argument: RFC 3339, epoch seconds with an
// optional fraction, "now", or a negative Go duration before now.
func parseTime(s string) (time.Time, error) {
	return parseTimeAt(s, time.Now())
}

// parseTimeAt is parseTime with now given.
func parseTimeAt(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if s == "now" {
		return now, nil
	}
	if d, ok := relativeTime(s); ok {
		return now.Add(d), nil
	}
	secs, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" || strings.HasPrefix(secs, "+") {
		return time.Time{}, fmt.Errorf("time %q: want %s", s, timeHelp)
	}
	ns, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if strings.HasPrefix(secs, "-") {
		ns = -ns
	}
	return time.Unix(sec, ns), nil
}

// relativeTime reads a time before now as a negative duration with units
// ("-1m", "-1h30m"); epoch seconds, which have none, are not one.
func relativeTime(s string) (time.Duration, bool) {
	if !strings.HasPrefix(s, "-") {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d < 0
}
