package api

// TimestampRange is the inclusive range of fragment start times of a
// FragmentSelector, ClipFragmentSelector, HLSFragmentSelector or
// DASHFragmentSelector: they share this shape in the
// kinesis-video-archived-media model (kvs-protocol.md §7).
type TimestampRange struct {
	StartTimestamp *Timestamp `json:"StartTimestamp"`
	EndTimestamp   *Timestamp `json:"EndTimestamp"`
}

// FragmentSelector chooses fragments by one of their timestamps
// (FragmentSelectorType PRODUCER_TIMESTAMP or SERVER_TIMESTAMP).
type FragmentSelector struct {
	FragmentSelectorType *string         `json:"FragmentSelectorType"`
	TimestampRange       *TimestampRange `json:"TimestampRange"`
}
