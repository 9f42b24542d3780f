package mkv

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAppendTagsCapture reproduces the KVS tags of output_get_media.mkv chunk 1 byte for
// byte (spec 5.3: start tags at 916..1158, end tags at 547754..547924).
func TestAppendTagsCapture(t *testing.T) {
	data := readSample(t, "output_get_media.mkv")
	const fragment = "91343852333181432392682062607743920146159169392"
	start := AppendStartTags(nil, fragment, 1511852109126, 1511852108513)
	if want := data[916:1159]; !bytes.Equal(start, want) {
		t.Errorf("start tags:\n%x\nwant\n%x", start, want)
	}
	end := AppendEndTags(nil, 15858, fragment)
	if want := data[547754:547925]; !bytes.Equal(end, want) {
		t.Errorf("end tags:\n%x\nwant\n%x", end, want)
	}
	// AppendTags is the general form of both.
	generic := AppendTags([]byte("prefix"), SimpleTag{TagMillisBehindNow, "15858"}, SimpleTag{TagContinuationToken, fragment})
	if !bytes.Equal(generic[6:], end) || string(generic[:6]) != "prefix" {
		t.Errorf("AppendTags does not append to dst")
	}
	// And the tags read back.
	got, err := appendSimpleTags(nil, start[8:], 8)
	if err != nil {
		t.Fatal(err)
	}
	want := []SimpleTag{{TagFragmentNumber, fragment}, {TagServerTimestamp, "1511852109.126"}, {TagProducerTimestamp, "1511852108.513"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags read back (-want +got):\n%s", diff)
	}
}

func TestAppendTagsLargeValue(t *testing.T) {
	// Sizes beyond what 4 bytes hold fall back to 8-byte size fields.
	b := appendSize4(nil, 1<<28)
	if !bytes.Equal(b, []byte{0x01, 0, 0, 0, 0x10, 0, 0, 0}) {
		t.Errorf("size 2^28: %x", b)
	}
	if b := appendSize4(nil, 235); !bytes.Equal(b, []byte{0x10, 0, 0, 0xEB}) {
		t.Errorf("size 235: %x", b)
	}
}

func TestFormatTimestampMillis(t *testing.T) {
	for ms, want := range map[int64]string{
		0:             "0.000",
		5:             "0.005",
		45000:         "45.000",
		1511852109126: "1511852109.126",
		1519423069070: "1519423069.070",
		-1500:         "-1.500",
	} {
		if got := FormatTimestampMillis(ms); got != want {
			t.Errorf("FormatTimestampMillis(%d) = %q, want %q", ms, got, want)
		}
	}
}
