package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// el is an EBML element with a one-byte size field.
func el(id []byte, payload ...[]byte) []byte {
	b := bytes.Join(payload, nil)
	return append(append(append([]byte{}, id...), 0x80|byte(len(b))), b...)
}

// testHeader is a chunk header as a muxer writes it: a SegmentUID and a
// TrackUID of its own choice, a TimecodeScale, one video track.
func testHeader(uid byte, scale byte, codec string) []byte {
	h := el([]byte{0x1A, 0x45, 0xDF, 0xA3}, el([]byte{0x42, 0x82}, []byte("matroska")))
	h = append(h, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	h = append(h, el([]byte{0x15, 0x49, 0xA9, 0x66}, el([]byte{0x73, 0xA4}, bytes.Repeat([]byte{uid}, 16)),
		el([]byte{0x2A, 0xD7, 0xB1}, []byte{0x0F, 0x42, scale}))...)
	return append(h, el([]byte{0x16, 0x54, 0xAE, 0x6B}, el([]byte{0xAE}, el([]byte{0xD7}, []byte{1}),
		el([]byte{0x73, 0xC5}, []byte{uid, uid}), el([]byte{0x83}, []byte{1}), el([]byte{0x86}, []byte(codec))))...)
}

// withTags is h with producer Tags before Info, as KVS replays them in a
// session's first chunk (kvs-protocol.md §5.3 note A).
func withTags(h []byte) []byte {
	i := bytes.Index(h, []byte{0x15, 0x49, 0xA9, 0x66})
	return append(append(bytes.Clone(h[:i]), synth.Tags("title", "first")...), h[i:]...)
}

func TestMKVWriter(t *testing.T) {
	avc, avc2 := testHeader(1, 0x40, "V_MPEG4/ISO/AVC"), testHeader(2, 0x40, "V_MPEG4/ISO/AVC")
	hevc := testHeader(3, 0x40, "V_MPEGH/ISO/HEVC")
	c := func(tc uint64) []byte { return synth.Cluster(tc, synth.Frames(1, 3, 33)...) }
	at := func(tc uint64, cluster []byte) []byte {
		b, err := mkv.SetClusterTimecode(cluster, tc)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var first, second bytes.Buffer
	w := NewMKVWriter(&first)
	for _, f := range []*Fragment{
		{Number: "1", Header: withTags(avc), Cluster: c(0), Trailing: synth.Tags("meta", "1")},
		{Number: "2", Header: avc, Cluster: c(2000)},
		// A new session of the same camera, its timecodes from 0 again.
		{Number: "3", Header: withTags(avc2), Cluster: c(0)},
		{Number: "4", Header: avc2, Cluster: c(2000)},
		// A session far later: still shifted as the one before.
		{Number: "5", Header: avc, Cluster: c(10000)},
	} {
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	err := w.Write(&Fragment{Number: "6", Header: hevc, Cluster: c(0)})
	if !errors.Is(err, ErrNewSetup) || err.Error() != "fragment 6: the stream's codec setup changed" {
		t.Fatalf("Write of another codec setup: %v, want ErrNewSetup", err)
	}
	w.Next(&second)
	if err := w.Write(&Fragment{Number: "6", Header: hevc, Cluster: c(0)}); err != nil {
		t.Fatal(err)
	}
	// Fragment 2 ends with a frame at 2066, 33 ms apart: fragment 3 follows at 2099.
	want := bytes.Join([][]byte{withTags(avc), c(0), synth.Tags("meta", "1"), c(2000), at(2099, c(0)), at(4099, c(2000)), at(12099, c(10000))}, nil)
	if !bytes.Equal(first.Bytes(), want) {
		t.Errorf("first file of %d bytes differs from the expected %d bytes", first.Len(), len(want))
	}
	if want := append(bytes.Clone(hevc), c(0)...); !bytes.Equal(second.Bytes(), want) {
		t.Errorf("second file of %d bytes differs from the expected %d bytes", second.Len(), len(want))
	}
}

func TestSetupKey(t *testing.T) {
	avc := setupKey(testHeader(1, 0x40, "V_MPEG4/ISO/AVC"))
	for name, h := range map[string][]byte{
		"other UIDs":       testHeader(2, 0x40, "V_MPEG4/ISO/AVC"),
		"Tags before Info": withTags(testHeader(1, 0x40, "V_MPEG4/ISO/AVC")),
	} {
		if !bytes.Equal(setupKey(h), avc) {
			t.Errorf("%s: the key differs", name)
		}
	}
	for name, h := range map[string][]byte{
		"other codec":         testHeader(1, 0x40, "V_MPEGH/ISO/HEVC"),
		"other TimecodeScale": testHeader(1, 0x41, "V_MPEG4/ISO/AVC"),
	} {
		if bytes.Equal(setupKey(h), avc) {
			t.Errorf("%s: the key is the same", name)
		}
	}
	// A header that does not parse is its own key.
	bad := testHeader(1, 0x40, "V_MPEG4/ISO/AVC")
	bad = bad[:len(bad)-3]
	if got := setupKey(bad); !bytes.Equal(got, bad) {
		t.Errorf("setupKey of a truncated header is %d bytes, want the header", len(got))
	}
}

// A fragment cut short by a broken producer connection reaches a live
// reader as far as it went; the producer then sends it again whole: the
// file gets the rest of its frames, once.
func TestMKVWriterResent(t *testing.T) {
	avc := testHeader(1, 0x40, "V_MPEG4/ISO/AVC")
	frames := synth.Frames(1, 3, 33)
	at := func(ms int64) time.Time { return time.UnixMilli(1_700_000_000_000 + ms) }
	var out bytes.Buffer
	w := NewMKVWriter(&out)
	for _, f := range []*Fragment{
		{Number: "1", Header: avc, Cluster: synth.Cluster(0, frames...), ProducerTime: at(0)},
		{Number: "2", Header: avc, Cluster: synth.Cluster(2000, frames[:2]...), ProducerTime: at(2000)},
		{Number: "3", Header: avc, Cluster: synth.Cluster(2000, frames...), ProducerTime: at(2000)},
		{Number: "4", Header: avc, Cluster: synth.Cluster(2000, frames...), ProducerTime: at(2000)},
		{Number: "5", Header: avc, Cluster: synth.Cluster(4000, frames...), ProducerTime: at(4000)},
	} {
		if err := w.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	whole := synth.Cluster(2000, frames...)
	third := whole[bytes.Index(whole, synth.Cluster(2000, frames[:2]...))+len(synth.Cluster(2000, frames[:2]...)):]
	rest, err := mkv.SetClusterTimecode(append(synth.Cluster(2000), third...), 2000)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Join([][]byte{avc, synth.Cluster(0, frames...), synth.Cluster(2000, frames[:2]...), rest, synth.Cluster(4000, frames...)}, nil)
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("file of %d bytes differs from the expected %d bytes", out.Len(), len(want))
	}
}
