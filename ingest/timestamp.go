package ingest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseProducerStartTimestamp parses the x-amzn-producer-start-timestamp
// header in every form clients send (kvs-protocol.md §4.1):
//
//   - "1732012345.678" from the C/C++ producers, who print seconds, a dot
//     and the millisecond remainder without zero padding, so "1732012345.5"
//     means 5 ms, not 500 ms. A fraction of one to three digits is
//     therefore read as an integer number of milliseconds;
//   - decimal epoch seconds with a longer fraction, or none;
//   - ISO-8601 / RFC 3339 from the Java SDK ("2018-06-18T14:21:38.123Z").
func ParseProducerStartTimestamp(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, fmt.Errorf("empty producer start timestamp")
	}
	if strings.ContainsAny(v, "T-:") {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("producer start timestamp %q: not epoch seconds or ISO-8601", v)
		}
		return t.Truncate(time.Millisecond), nil
	}
	secPart, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secPart, 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 || (hasFrac && frac == "") {
		return time.Time{}, fmt.Errorf("producer start timestamp %q: not epoch seconds", v)
	}
	var ms int64
	if hasFrac {
		for _, c := range frac {
			if c < '0' || c > '9' {
				return time.Time{}, fmt.Errorf("producer start timestamp %q: not epoch seconds", v)
			}
		}
		if len(frac) <= 3 {
			ms, _ = strconv.ParseInt(frac, 10, 64)
		} else {
			ms, _ = strconv.ParseInt(frac[:3], 10, 64)
		}
	}
	return time.UnixMilli(sec*1000 + ms), nil
}
