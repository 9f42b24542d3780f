package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/synth"
)

// ackLine is the layout of every ACK but ERROR and IDLE, keys in the order
// real KVS sends them (kvs-protocol.md §4.3).
var ackLine = regexp.MustCompile(`^\{"EventType":"(BUFFERING|RECEIVED|PERSISTED)","FragmentTimecode":[0-9]+,"FragmentNumber":"[0-9]{47}"\}\n$`)

// fragmentNumber is the form of a fragment number: 47 decimal digits.
var fragmentNumber = regexp.MustCompile(`^[0-9]{47}$`)

// eofr ends a fragment at once: a bad fragment that is not refused is
// RECEIVED, which fails the test without waiting.
var eofr = synth.Tags("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")

// ackErrorCase is a PutMedia body that a server with its default limits
// must end with one ERROR ACK.
type ackErrorCase struct {
	name string
	body [][]byte // written in order; the body stays open after them
	// before runs once the body is written, before the ERROR is awaited.
	before func(t *testing.T, srv *serverProc, p *gmProducer, stream string)
	id     int
	code   string
	// timecode is the FragmentTimecode the ERROR names: the fragment that
	// failed, or 0 for an error outside any fragment.
	timecode uint64
	// persisted are the timecodes of the fragments stored before it.
	persisted []uint64
	// holdOpen keeps the body open after the ERROR, as a producer that
	// does not react to it: the server must end the response by itself
	// after reading on briefly (at most 10 s, ingest.maxDrainTime). The
	// other cases close the body when the ERROR arrives, as the official
	// producer does.
	holdOpen bool
}

// frames returns one key frame per track, each 33 ms long at most.
func frames(tracks ...uint64) []synth.Frame {
	var out []synth.Frame
	for _, n := range tracks {
		out = append(out, synth.Frame{Track: n, Timecode: 0, Key: true}, synth.Frame{Track: n, Timecode: 33})
	}
	return out
}

// metadata returns n producer tags.
func metadata(n int) []byte {
	var pairs []string
	for i := range n {
		pairs = append(pairs, fmt.Sprintf("tag%02d", i), "v")
	}
	return synth.Tags(pairs...)
}

// TestPutMediaErrorAcks sends each class of bad PutMedia body the README
// lists to a real server with its default flags, and checks the ERROR ACK
// byte for byte (key order, ErrorId, ErrorCode, FragmentTimecode, a
// fragment number), that it is the last ACK, that what came before it was
// stored, and that the response then ends cleanly.
func TestPutMediaErrorAcks(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	one := func(tc uint64) []byte { return synth.Cluster(tc, frames(1)...) }
	// A fragment just over the default 50,000,000 bytes: 60 frames of 2 s
	// at 201 Mbit/s. The default --putmedia-bytes-per-second (12.5 MB/s)
	// reads it in about 4 s, in parallel with the other cases.
	huge := bytes.Join(synth.Video{Bitrate: 201_000_000}.Fragment(gmBase, 1), nil)
	if len(huge) <= 50_000_000 || len(huge) > 51_000_000 {
		t.Fatalf("the large fragment has %d bytes, want just over 50,000,000", len(huge))
	}
	cases := []ackErrorCase{
		{name: "garbage before the stream header", body: [][]byte{[]byte("not a Matroska stream\n")},
			id: 4006, code: "INVALID_MKV_DATA", timecode: 0},
		{name: "body starting inside a fragment", body: synth.Video{Bitrate: 40_000}.Fragment(gmBase, 0)[1:],
			id: 4000, code: "STREAM_READ_ERROR", timecode: 0},
		{name: "fragment over 50 MB", body: [][]byte{synth.Header(1), one(gmBase), huge, eofr},
			id: 4001, code: "MAX_FRAGMENT_SIZE_REACHED", timecode: gmBase + 2000, persisted: []uint64{gmBase}},
		{name: "fragment over 20 s", body: [][]byte{synth.Header(1),
			// Frames at 0 and 10 s, each lasting the 10 s interval: exactly 20 s, allowed.
			synth.Cluster(gmBase, synth.Frame{Track: 1, Timecode: 0, Key: true}, synth.Frame{Track: 1, Timecode: 10000}),
			// 1 ms more: 20.002 s.
			synth.Cluster(gmBase+20000, synth.Frame{Track: 1, Timecode: 0, Key: true}, synth.Frame{Track: 1, Timecode: 10001}), eofr},
			id: 4002, code: "MAX_FRAGMENT_DURATION_REACHED", timecode: gmBase + 20000, persisted: []uint64{gmBase}},
		{name: "more than 3 tracks", body: [][]byte{synth.Header(1, 2, 3, 4), synth.Cluster(gmBase, frames(1, 2, 3, 4)...), eofr},
			id: 4012, code: "MORE_THAN_ALLOWED_TRACKS_FOUND", timecode: gmBase},
		{name: "block of an undeclared track", body: [][]byte{synth.Header(1), one(gmBase), synth.Cluster(gmBase+2000, frames(1, 2)...), eofr},
			id: 4010, code: "TRACK_NUMBER_MISMATCH", timecode: gmBase + 2000, persisted: []uint64{gmBase}},
		{name: "declared track without frames", body: [][]byte{synth.Header(1, 2), synth.Cluster(gmBase, frames(1, 2)...),
			synth.Cluster(gmBase+2000, frames(1)...), synth.Cluster(gmBase+4000, frames(1, 2)...)},
			id: 4011, code: "FRAMES_MISSING_FOR_TRACK", timecode: gmBase + 2000, persisted: []uint64{gmBase}},
		{name: "timecode lower than the previous", body: [][]byte{synth.Header(1), one(gmBase + 4000), one(gmBase + 6000), one(gmBase + 2000), eofr},
			id: 4004, code: "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", timecode: gmBase + 2000, persisted: []uint64{gmBase + 4000, gmBase + 6000},
			holdOpen: true},
		{name: "producer timestamp out of range", body: [][]byte{synth.Header(1), one(gmBase), one(1 << 62), eofr},
			id: 4007, code: "INVALID_PRODUCER_TIMESTAMP", timecode: 1 << 62, persisted: []uint64{gmBase}},
		// 10 tags are allowed, 11 are not.
		{name: "more than 10 metadata tags", body: [][]byte{synth.Header(1), one(gmBase), metadata(10), one(gmBase + 2000), metadata(11), one(gmBase + 4000)},
			id: 4009, code: "FRAGMENT_METADATA_LIMIT_REACHED", timecode: gmBase + 2000, persisted: []uint64{gmBase}},
		{name: "deleted stream", body: [][]byte{synth.Header(1), one(gmBase), synth.Cluster(gmBase + 2000)},
			before: func(t *testing.T, srv *serverProc, p *gmProducer, stream string) {
				p.waitAcks("PERSISTED", 1)
				p.waitAcks("BUFFERING", 2) // the second fragment is open
				_, err := srv.control().DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: describe(t, srv.control(), stream).StreamARN})
				gmFatalIf(t, err, "DeleteStream")
			},
			id: 4008, code: "STREAM_NOT_ACTIVE", timecode: gmBase + 2000, persisted: []uint64{gmBase}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErrorAck(t, srv, fmt.Sprintf("s%d", i), tc)
		})
	}
	t.Run("3 tracks", func(t *testing.T) {
		t.Parallel()
		createStream(t, srv, "tracks", 24)
		p := gmStartProducer(t, srv, "tracks")
		p.write(synth.Header(1, 2, 3), synth.Cluster(gmBase, frames(1, 2, 3)...))
		p.close()
		p.waitAcks("PERSISTED", 1)
	})
	t.Run("PutMedia calls per second", func(t *testing.T) {
		t.Parallel()
		checkPutMediaCallRate(t, srv)
	})
}

// TestPutMediaMaxFragmentSizeFlag proves --max-fragment-size is the limit
// PutMedia applies: with 100,000 bytes, a fragment of 50 KB is stored and
// one of 150 KB is refused with ERROR 4001.
func TestPutMediaMaxFragmentSizeFlag(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--max-fragment-size", "100000")
	small := gmFrags(synth.Video{Bitrate: 200_000}, 0, 1)[0].data
	big := gmFrags(synth.Video{Bitrate: 600_000}, 1, 1)[0].data
	if len(small) >= 100_000 || len(big) <= 100_000 {
		t.Fatalf("fragments of %d and %d bytes: not either side of 100,000", len(small), len(big))
	}
	checkErrorAck(t, srv, "cam", ackErrorCase{body: [][]byte{synth.Header(1), small, big, eofr},
		id: 4001, code: "MAX_FRAGMENT_SIZE_REACHED", timecode: gmBase + 2000, persisted: []uint64{gmBase}})
}

// checkErrorAck creates stream, sends tc.body and checks the ERROR ACK and
// what happens around it.
func checkErrorAck(t *testing.T, srv *serverProc, stream string, tc ackErrorCase) {
	t.Helper()
	createStream(t, srv, stream, 24)
	p := gmStartProducer(t, srv, stream)
	go func() {
		for _, b := range tc.body {
			if _, err := p.pw.Write(b); err != nil {
				return // the server ended the session; the body was closed under us
			}
		}
	}()
	if tc.before != nil {
		tc.before(t, srv, p, stream)
	}
	// The refused fragment must not be RECEIVED; fail at once if it is.
	_, at := p.waitError(func(a client.Ack) bool {
		return tc.timecode != 0 && a.EventType == "RECEIVED" && a.FragmentTimecode == tc.timecode
	})
	errorAt := time.Now()
	if !tc.holdOpen {
		p.pw.Close()
	}
	p.waitEnd()
	p.mu.Lock()
	lines, acks, endErr, endedAt := p.lines, p.acks, p.endErr, p.endedAt
	p.mu.Unlock()
	if endErr != io.EOF {
		t.Errorf("the response did not end cleanly: %v", endErr)
	}
	if tc.holdOpen {
		// The server reads what the producer still sends for at most 10 s.
		if d := endedAt.Sub(errorAt); d > 13*time.Second {
			t.Errorf("the response ended %v after the ERROR ACK with the body still open, want at most 10 s", d.Round(time.Millisecond))
		}
	}
	if at != len(lines)-1 {
		t.Errorf("ACKs after the ERROR: %q", lines[at+1:])
	}
	// The fragment the ERROR names: the one that began with that timecode,
	// if BUFFERING announced it, else a new number after every other.
	var persisted []uint64
	number, newest := "", ""
	for _, a := range acks[:at] {
		switch a.EventType {
		case "PERSISTED":
			persisted = append(persisted, a.FragmentTimecode)
		case "BUFFERING":
			if a.FragmentTimecode == tc.timecode {
				number = a.FragmentNumber
			}
		}
		newest = max(newest, a.FragmentNumber)
	}
	for _, line := range lines[:at] {
		if !ackLine.MatchString(line) && line != `{"EventType":"IDLE"}`+"\n" {
			t.Errorf("ACK %q is not laid out as KVS lays it out", line)
		}
	}
	if !slices.Equal(persisted, tc.persisted) {
		t.Errorf("PERSISTED before the ERROR: timecodes %v, want %v", persisted, tc.persisted)
	}
	got := acks[at].FragmentNumber
	if number == "" {
		if !fragmentNumber.MatchString(got) || got <= newest {
			t.Errorf("the ERROR names fragment number %q, want a new 47-digit number after %q", got, newest)
		}
		number = got
	}
	want := fmt.Sprintf(`{"EventType":"ERROR","FragmentTimecode":%d,"FragmentNumber":"%s","ErrorCode":"%s","ErrorId":%d}`+"\n",
		tc.timecode, number, tc.code, tc.id)
	if lines[at] != want {
		t.Errorf("ERROR ACK\n%q\nwant\n%q", lines[at], want)
	}
	// Nothing from the session but the fragments acknowledged PERSISTED is
	// listed (a deleted stream lists nothing).
	if tc.id != 4008 {
		if n := len(gmListAll(t, srv, stream)); n != len(tc.persisted) {
			t.Errorf("%d fragments listed, want the %d PERSISTED", n, len(tc.persisted))
		}
	}
}

// checkPutMediaCallRate sends 10 PutMedia calls for one stream at once: the
// default limit of 5 calls per second admits 5 of them (and one more for
// every 200 ms the calls took) and answers the others with
// ClientLimitExceededException.
func checkPutMediaCallRate(t *testing.T, srv *serverProc) {
	createStream(t, srv, "rate", 24)
	const calls = 10
	statuses := make([]int, calls)
	bodies := make([]string, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx(t), "POST", srv.URL+"/putMedia", http.NoBody)
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("x-amzn-stream-name", "rate")
			req.Header.Set("x-amzn-fragment-timecode-type", "ABSOLUTE")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			statuses[i], bodies[i], errs[i] = resp.StatusCode, string(b), err
		}()
	}
	wg.Wait()
	took := time.Since(start)
	ok, limited := 0, 0
	want := errorBody("ClientLimitExceededException", "Message", "PutMedia is limited to 5 calls per second per stream.")
	for i := range calls {
		switch {
		case errs[i] != nil:
			t.Errorf("call %d: %v", i, errs[i])
		case statuses[i] == http.StatusOK:
			ok++
		case statuses[i] == http.StatusBadRequest && bodies[i] == want:
			limited++
		default:
			t.Errorf("call %d: %d %s, want 200 or 400 %s", i, statuses[i], bodies[i], want)
		}
	}
	// A token every 200 ms on top of the burst of 5.
	if most := 5 + int(took/(200*time.Millisecond)); ok < 5 || ok > most || ok+limited != calls {
		t.Errorf("%d calls in %v: %d admitted, %d limited; want 5 to %d admitted and the rest limited",
			calls, took.Round(time.Millisecond), ok, limited, most)
	}
}
