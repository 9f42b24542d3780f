package e2e

import (
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideomedia/types"

	"github.com/openkvs/openkvs/mkv"
	"github.com/openkvs/openkvs/synth"
)

// TestPutMediaSilentSession sends one fragment and then nothing, with the
// body left open, to a server with its default flags: the response carries
// an IDLE ACK for every 2 s of silence, and after 30 s of silence the
// session ends as if the body had ended: the open fragment is RECEIVED,
// then PERSISTED, and the response ends. It takes the 30 s it tests.
//
// The fragment is then 30 s old, which makes it the test of GetMedia's
// AWS_KINESISVIDEO_MILLIS_BEHIND_NOW: how long ago the server received
// the fragment, within the time the read took.
func TestPutMediaSilentSession(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	createStream(t, srv, "quiet", 24)
	p := gmStartProducer(t, srv, "quiet")
	frag := gmFrags(synth.Video{Bitrate: 40_000}, 0, 1)[0]
	p.write(synth.Header(1), frag.data)
	silent := time.Now() // the pipe took the last byte: the silence begins
	p.waitEndWithin(40 * time.Second)

	p.mu.Lock()
	lines, acks, times, endErr, endedAt := p.lines, p.acks, p.times, p.endErr, p.endedAt
	p.mu.Unlock()
	if endErr != io.EOF {
		t.Errorf("the response did not end cleanly: %v", endErr)
	}
	// When each ACK came, in seconds of silence.
	at := func(i int) float64 { return times[i].Sub(silent).Seconds() }
	var events, fragment []string // every ACK; those but IDLE
	idle := 0
	for i, a := range acks {
		events = append(events, a.EventType)
		if a.EventType != "IDLE" {
			fragment = append(fragment, a.EventType)
		}
		switch a.EventType {
		case "IDLE":
			idle++
			if lines[i] != `{"EventType":"IDLE"}`+"\n" {
				t.Errorf("IDLE ACK %q, want {\"EventType\":\"IDLE\"}", lines[i])
			}
			// The k-th IDLE after 2k s of silence (late by up to 1 s on a
			// loaded machine, still far from the next one); the one due at
			// 30 s may race the end of the session.
			if want := float64(2 * idle); at(i) < want-0.1 || at(i) > want+1 {
				t.Errorf("IDLE %d after %.2f s of silence, want %.0f s", idle, at(i), want)
			}
		case "BUFFERING":
			if at(i) > 1 {
				t.Errorf("BUFFERING after %.2f s", at(i))
			}
		case "RECEIVED", "PERSISTED":
			if a.FragmentTimecode != frag.timecode {
				t.Errorf("%s of timecode %d, want %d", a.EventType, a.FragmentTimecode, frag.timecode)
			}
			if at(i) < 29.5 || at(i) > 32 {
				t.Errorf("%s after %.2f s of silence, want 30 s: the silence ends the session", a.EventType, at(i))
			}
		default:
			t.Errorf("unexpected ACK %q", lines[i])
		}
	}
	if idle < 14 || idle > 15 {
		t.Errorf("%d IDLE ACKs in 30 s of silence, want one every 2 s: %v", idle, events)
	}
	// BUFFERING, then RECEIVED and PERSISTED at the end: the end of the
	// session completed the open fragment and stored it. (The IDLE due at
	// 30 s may come between them: the body is silent still.)
	if !slices.Equal(fragment, []string{"BUFFERING", "RECEIVED", "PERSISTED"}) {
		t.Errorf("ACKs %v, want BUFFERING, RECEIVED, PERSISTED amid the IDLEs", events)
	}
	if d := endedAt.Sub(silent).Seconds(); d < 29.5 || d > 32 {
		t.Errorf("the response ended after %.2f s of silence, want 30 s", d)
	}

	listed := gmListAll(t, srv, "quiet")
	if len(listed) != 1 {
		t.Fatalf("%d fragments listed, want 1", len(listed))
	}
	var number string
	for n := range listed {
		number = n
	}
	server := aws.ToTime(listed[number].ServerTimestamp)
	before := time.Now()
	g := gmOpen(t, srv, "quiet", gmSelector(types.StartSelectorTypeEarliest, nil))
	c := g.next(t)
	after := time.Now()
	gmCheckChunk(t, c, synth.Header(1), frag.data, number, listed[number])
	behind, err := strconv.ParseInt(c.Tags[mkv.TagMillisBehindNow], 10, 64)
	gmFatalIf(t, err, "%s", mkv.TagMillisBehindNow)
	// The server timestamp has whole milliseconds: allow one either side.
	lo, hi := before.Sub(server).Milliseconds()-1, after.Sub(server).Milliseconds()+1
	if behind < lo || behind > hi {
		t.Errorf("%s = %d for a fragment received at %v, read between %v and %v: want %d to %d",
			mkv.TagMillisBehindNow, behind, server, before, after, lo, hi)
	}
	if lo < 29_000 {
		t.Errorf("the fragment was %d ms old when read, want about 30 s: not a test of %s", lo, mkv.TagMillisBehindNow)
	}
}
