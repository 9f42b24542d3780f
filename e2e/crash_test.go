package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
)

// TestCrashDuringIngest kills the server with SIGKILL while a producer is
// in the middle of a fragment, restarts it, and checks the durability
// promise: every fragment acknowledged PERSISTED is listed with exactly
// the bytes sent, and no partial fragment is visible.
func TestCrashDuringIngest(t *testing.T) {
	srv := startServer(t)
	createStream(t, srv, "cam", 24)

	v := synth.Video{Bitrate: 2_000_000} // 500 KB fragments
	sent := map[uint64][]byte{}          // cluster timecode -> fragment bytes
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/putMedia", pr)
	req.Header.Set("x-amzn-stream-name", "cam")
	req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")

	var mu sync.Mutex
	persisted := map[string]uint64{} // fragment number -> timecode
	enough := make(chan struct{})
	acksDone := make(chan struct{})
	go func() {
		defer close(acksDone)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		acks := client.NewAckReader(resp.Body)
		for {
			a, err := acks.Next()
			if err != nil {
				return // the server died
			}
			if a.EventType == "PERSISTED" {
				mu.Lock()
				persisted[a.FragmentNumber] = a.FragmentTimecode
				if len(persisted) == 5 {
					close(enough)
				}
				mu.Unlock()
			}
		}
	}()

	const base = 1_700_000_000_000
	pw.Write(synth.Header(1))
	killed := false
	for i := 0; !killed && i < 200; i++ {
		pieces := v.Fragment(base, i)
		sent[base+uint64(i)*2000] = bytes.Join(pieces, nil)
		for k, p := range pieces {
			if _, err := pw.Write(p); err != nil {
				t.Fatalf("write fragment %d: %v", i, err)
			}
			// Once five fragments are durable, kill the server half way
			// through the current fragment.
			select {
			case <-enough:
				if k == len(pieces)/2 {
					srv.Kill()
					killed = true
				}
			default:
			}
			if killed {
				break
			}
		}
	}
	if !killed {
		t.Fatal("the server never acknowledged five fragments")
	}
	pw.CloseWithError(io.ErrClosedPipe)
	<-acksDone

	srv.start() // restart on the same data directory after the crash
	srv.Stop()
	frags, data := stored(t, srv, "cam")
	mu.Lock()
	defer mu.Unlock()
	byNumber := map[string][]byte{}
	for k, f := range frags {
		byNumber[f.Number] = data[k]
		// No partial fragment: every stored fragment is one that was sent whole.
		tc := uint64(f.ProducerTime.UnixMilli())
		if !bytes.Equal(data[k], sent[tc]) {
			t.Errorf("stored fragment %s at %d (%d bytes) is not the %d bytes sent", f.Number, tc, len(data[k]), len(sent[tc]))
		}
		// 60 frames 33 ms apart: the last ends at 59×33+33 ms.
		if f.Duration != 1980*time.Millisecond {
			t.Errorf("fragment %s duration %v, want 1.98s", f.Number, f.Duration)
		}
	}
	for number, tc := range persisted {
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
