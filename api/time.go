package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Timestamp is a time that travels as a JSON number of epoch seconds.
// Clients send integers (botocore) or millisecond fractions (aws-sdk-go-v2);
// responses carry millisecond precision as real KVS does
// (kvs-protocol.md §2.1-2.2).
type Timestamp struct{ time.Time }

// At returns the Timestamp for t truncated to the millisecond.
func At(t time.Time) Timestamp { return Timestamp{t.Truncate(time.Millisecond)} }

// MarshalJSON writes epoch seconds with up to three decimals; the shortest
// representation of ms/1000 is exactly the millisecond decimal.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(t.UnixMilli())/1000, 'f', -1, 64), nil
}

// UnmarshalJSON accepts an integer or fractional number of epoch seconds.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("expected a timestamp as a JSON number of epoch seconds, got %s", b)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e12 {
		return fmt.Errorf("timestamp %s is out of range", b)
	}
	t.Time = time.UnixMilli(int64(math.Round(f * 1000)))
	return nil
}
