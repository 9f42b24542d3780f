package ingest

import (
	"testing"
	"time"
)

func TestParseProducerStartTimestamp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // epoch ms
	}{
		{"1732012345.678", 1732012345678},
		{"1732012345.5", 1732012345005},  // C producer: 5 ms, printed unpadded
		{"1732012345.50", 1732012345050}, // 50 ms
		{"1732012345", 1732012345000},
		{"1732012345.1234", 1732012345123}, // a longer fraction is decimal
		{"2018-06-18T14:21:38.123Z", 1529331698123},
		{"2018-06-18T16:21:38+02:00", 1529331698000},
		{" 1511852108.513 ", 1511852108513},
		{"0.000", 0},
	} {
		got, err := ParseProducerStartTimestamp(tc.in)
		if err != nil || !got.Equal(time.UnixMilli(tc.want)) {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got.UnixMilli(), err, tc.want)
		}
	}
	for _, bad := range []string{"", "abc", "1.2.3", "-5", "1732012345.", "1732012345.x", "2018-06-18", "99999999999999999999"} {
		if _, err := ParseProducerStartTimestamp(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestAckJSON(t *testing.T) {
	for _, tc := range []struct {
		ack  Ack
		want string
	}{
		{Ack{EventType: AckBuffering, FragmentTimecode: 1615717079876, FragmentNumber: "91343852333181704754345985890710005834298701132"},
			`{"EventType":"BUFFERING","FragmentTimecode":1615717079876,"FragmentNumber":"91343852333181704754345985890710005834298701132"}` + "\n"},
		{Ack{EventType: AckError, FragmentNumber: "91343852333181571046918222741096071001568090649", ErrorID: 4004, ErrorCode: "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS"},
			`{"EventType":"ERROR","FragmentTimecode":0,"FragmentNumber":"91343852333181571046918222741096071001568090649","ErrorCode":"FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS","ErrorId":4004}` + "\n"},
		{Ack{EventType: AckIdle}, `{"EventType":"IDLE"}` + "\n"},
	} {
		if got := string(tc.ack.AppendJSON(nil)); got != tc.want {
			t.Errorf("AppendJSON = %s want %s", got, tc.want)
		}
	}
}
