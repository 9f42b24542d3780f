package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampJSON(t *testing.T) {
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{1705489836421, "1705489836.421"},
		{1705489836400, "1705489836.4"},
		{1705489836000, "1705489836"},
		{1705489836001, "1705489836.001"},
		{0, "0"},
	} {
		b, err := json.Marshal(At(time.UnixMilli(tc.ms)))
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal(%d ms) = %s, %v; want %s", tc.ms, b, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1704164645", 1704164645000},       // botocore: whole seconds
		{"1515531081.123", 1515531081123},   // aws-sdk-go-v2: milliseconds
		{"1.551924009774E9", 1551924009774}, // Java-style double
		{"1515531081.1239", 1515531081124},  // rounded to the millisecond
	} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(tc.in), &ts); err != nil || ts.UnixMilli() != tc.want {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d", tc.in, ts.UnixMilli(), err, tc.want)
		}
	}
	for _, bad := range []string{`"2024-01-01"`, `true`, `1e300`, `{}`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}

func TestValidatorMessages(t *testing.T) {
	var v Validator
	if v.Err() != nil {
		t.Fatal("empty validator reported an error")
	}
	name := "a b"
	n := int64(0)
	v.String("StreamName", &name, 1, 256, Match(`[a-z]+`))
	v.Range("Nested.MaxResults", &n, 1, 10)
	err := v.Err()
	want := "InvalidArgumentException: 2 validation errors detected: " +
		"Value 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z]+; " +
		"Value 0 at 'nested.maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
	if err == nil || err.Error() != want {
		t.Errorf("Err() = %v\nwant %s", err, want)
	}
	if e := As(err); e.Status != 400 || e.Type != "InvalidArgumentException" {
		t.Errorf("As(err) = %+v", e)
	}
	if e := As(json.Unmarshal([]byte("x"), &n)); e.Status != 500 || e.Type != "InternalFailure" {
		t.Errorf("As(non-API error) = %+v, want InternalFailure 500", e)
	}
}
