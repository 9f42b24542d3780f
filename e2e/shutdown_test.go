package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
)

// SIGTERM ends a server with a PutMedia producer and a GetMedia reader
// waiting at the live edge promptly and cleanly: their streams would
// otherwise hold the shutdown until --shutdown-timeout and exit 1.
func TestShutdownEndsMediaSessions(t *testing.T) {
	srv := startServer(t, "--shutdown-timeout", "25s")
	createStream(t, srv, "cam", 1)

	// A producer that sent one fragment and keeps its body open.
	pr, pw := io.Pipe()
	defer pw.Close()
	persisted := make(chan struct{}, 1)
	go client.Put(context.Background(), client.PutOptions{Endpoint: srv.URL, Stream: "cam",
		OnAck: func(a client.Ack) {
			if a.EventType == "PERSISTED" {
				persisted <- struct{}{}
			}
		}}, pr)
	pw.Write(synth.Header(1))
	pw.Write(synth.Cluster(0, synth.Frames(1, 3, 33)...))
	pw.Write(synth.Cluster(1000, synth.Frames(1, 3, 33)...))
	select {
	case <-persisted:
	case <-time.After(20 * time.Second):
		t.Fatal("no PERSISTED")
	}

	// A reader at the live edge, waiting for the next fragment.
	req, _ := http.NewRequestWithContext(ctx(t), "POST", srv.URL+"/getMedia",
		bytes.NewBufferString(`{"StreamName":"cam","StartSelector":{"StartSelectorType":"NOW"}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err) // the in-progress fragment's chunk has begun
	}

	start := time.Now()
	srv.Stop() // fails the test unless the server exits 0
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("shutdown took %v with live sessions open", d)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Logf("GetMedia body after shutdown: %v", err)
	}
}
