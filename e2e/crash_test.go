package e2e

import (
	"bytes"
	"testing"
	"time"

	"github.com/openkvs/openkvs/synth"
)

// TestCrashDuringIngest kills the server with SIGKILL while a producer is
// in the middle of a fragment, restarts it, and checks the durability
// promise: every fragment acknowledged PERSISTED is listed with exactly
// the bytes sent, and no partial fragment is visible.
func TestCrashDuringIngest(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 24)

	const base = 1_700_000_000_000
	v := synth.Video{Bitrate: 2_000_000} // 500 KB fragments
	sent := map[uint64][]byte{}          // cluster timecode -> fragment bytes
	p := gmStartProducer(t, srv, "cam")
	p.write(synth.Header(1))
	// Fragments 0..5 whole: the start of 6 completes 5.
	for i := range 6 {
		pieces := v.Fragment(base, i)
		sent[base+uint64(i)*2000] = bytes.Join(pieces, nil)
		p.write(pieces...)
	}
	p.waitAcks("PERSISTED", 5)
	// Half of fragment 6, and the server has begun it: the crash is mid-fragment.
	pieces := v.Fragment(base, 6)
	sent[base+6*2000] = bytes.Join(pieces, nil)
	p.write(pieces[:len(pieces)/2]...)
	p.waitAcks("BUFFERING", 7)
	srv.Kill()
	p.waitEnd()
	persisted := p.numbers("PERSISTED") // timecode -> fragment number

	srv.start() // restart on the same data directory after the crash
	srv.Stop()
	frags, data := stored(t, srv, "cam")
	byNumber := map[string][]byte{}
	for k, f := range frags {
		byNumber[f.Number] = data[k]
		// No partial fragment: every stored fragment is one that was sent whole.
		tc := uint64(f.ProducerTime.UnixMilli())
		if tc == base+6*2000 || !bytes.Equal(data[k], sent[tc]) {
			t.Errorf("stored fragment %s at %d (%d bytes) is not one of the whole fragments sent", f.Number, tc, len(data[k]))
		}
		// 60 frames 33 ms apart: the last ends at 59×33+33 ms.
		if f.Duration != 1980*time.Millisecond {
			t.Errorf("fragment %s duration %v, want 1.98s", f.Number, f.Duration)
		}
	}
	for tc, number := range persisted {
		got, ok := byNumber[number]
		if !ok {
			t.Errorf("fragment %s was acknowledged PERSISTED but is not listed after the crash", number)
			continue
		}
		if !bytes.Equal(got, sent[tc]) {
			t.Errorf("fragment %s differs from what was sent", number)
		}
	}
	if len(persisted) < 5 || len(frags) < len(persisted) {
		t.Errorf("%d PERSISTED, %d listed", len(persisted), len(frags))
	}
}
