package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkvs/openkvs/internal/wait"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/synth"
)

// goodFragment is a valid one-track fragment at the given timecode.
func goodFragment(tc uint64) []byte { return synth.Cluster(tc, synth.Frames(1, 30, 33)...) }

func TestIngestErrors(t *testing.T) {
	var manyTags []string
	for i := range 11 {
		manyTags = append(manyTags, "tag"+string(rune('a'+i)), "v")
	}
	cases := []struct {
		name  string
		opts  Options
		typ   TimecodeType
		body  []byte
		class AckErrorClass
		// persisted is how many fragments before the bad one stay stored.
		persisted int
		// errTimecode is the FragmentTimecode the ERROR names.
		errTimecode uint64
	}{
		{"invalid MKV", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(1000), goodFragment(2000), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x00}), ErrInvalidMKV, 1, 2000},
		{"invalid MKV between fragments", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(1000), synth.Tags("AWS_KINESISVIDEO_END_OF_FRAGMENT", ""), []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x00}), ErrInvalidMKV, 1, 0},
		{"timecode lower than previous", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(5000), goodFragment(6000), goodFragment(4000)), ErrTimecodeLower, 2, 4000},
		{"too many tracks", Options{}, Absolute,
			concat(synth.Header(1, 2, 3, 4), goodFragment(0)), ErrTooManyTracks, 0, 0},
		{"track number mismatch", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(0), synth.Cluster(2000, synth.Frame{Track: 1, Timecode: 0}, synth.Frame{Track: 2, Timecode: 33})), ErrTrackNumberMismatch, 1, 2000},
		{"frames missing for a track", Options{}, Absolute,
			concat(synth.Header(1, 2), synth.Cluster(0, synth.Frame{Track: 1, Timecode: 0}, synth.Frame{Track: 2, Timecode: 0}), synth.Cluster(2000, synth.Frames(1, 5, 33)...), goodFragment(4000)), ErrFramesMissing, 1, 2000},
		{"fragment too large", Options{MaxFragmentSize: 2000}, Absolute,
			concat(synth.Header(1), synth.Cluster(0, synth.Frames(1, 5, 33)...), goodFragment(1000)), ErrFragmentTooLarge, 1, 1000},
		{"fragment too long", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(0), synth.Cluster(1000, synth.Frame{Track: 1, Timecode: 0}, synth.Frame{Track: 1, Timecode: 25000})), ErrFragmentTooLong, 1, 1000},
		{"producer timestamp out of range", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(0), goodFragment(1<<62)), ErrInvalidProducerTime, 1, 1 << 62},
		{"metadata limit", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(0), synth.Cluster(1000, synth.Frames(1, 3, 33)...), synth.Tags(manyTags...), goodFragment(2000)), ErrMetadataLimit, 1, 1000},
		{"metadata too long", Options{}, Absolute,
			concat(synth.Header(1), goodFragment(0), synth.Cluster(1000, synth.Frames(1, 3, 33)...), synth.Tags("k", strings.Repeat("v", 257)), goodFragment(2000)), ErrMetadataLimit, 1, 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			st := h.stream("bad", 24)
			acks, err := h.put(st, Params{TimecodeType: tc.typ}, tc.body)
			var ae *ackError
			if !errors.As(err, &ae) || ae.class != tc.class {
				t.Fatalf("session error = %v, want %s", err, tc.class.Code)
			}
			last := acks[len(acks)-1]
			if last.EventType != AckError || last.ErrorID != tc.class.ID || last.ErrorCode != tc.class.Code || last.FragmentTimecode != tc.errTimecode {
				t.Errorf("last ACK = %+v, want ERROR %d %s at timecode %d", last, tc.class.ID, tc.class.Code, tc.errTimecode)
			}
			// The failed fragment got BUFFERING at most; the others the full set.
			var others []Ack
			for _, a := range acks[:len(acks)-1] {
				if a.FragmentNumber != last.FragmentNumber {
					others = append(others, a)
				}
			}
			numbers, _ := checkAckOrder(t, others, true)
			frags, _ := h.storedFragments(st)
			if len(frags) != tc.persisted {
				t.Fatalf("%d fragments stored, want %d", len(frags), tc.persisted)
			}
			for k, f := range frags {
				if f.Number != numbers[k] {
					t.Errorf("stored fragment %d is %s, acknowledged %s", k, f.Number, numbers[k])
				}
			}
			// The bad fragment is neither stored nor acknowledged beyond
			// BUFFERING, and the ERROR names a number after every stored one.
			if len(frags) > 0 && last.FragmentNumber <= frags[len(frags)-1].Number {
				t.Errorf("ERROR names %s, not after the stored %s", last.FragmentNumber, frags[len(frags)-1].Number)
			}
		})
	}
}

// tally counts the PERSISTED ACKs and returns the ERROR ACKs.
func tally(acks []Ack) (persisted int, errs []Ack) {
	for _, a := range acks {
		switch a.EventType {
		case AckError:
			errs = append(errs, a)
		case AckPersisted:
			persisted++
		}
	}
	return persisted, errs
}

// failingBlobs fails the Put of one object, chosen by its bytes: blobs of
// one session are written in parallel, so their order is not fixed.
type failingBlobs struct {
	store.Blobs
	fail []byte
}

func (f *failingBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if bytes.Equal(data, f.fail) {
		return errors.New("disk full")
	}
	return f.Blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
}

func TestIngestArchivalError(t *testing.T) {
	h := newHarness(t, Options{})
	h.m.blobs = &failingBlobs{Blobs: h.blobs, fail: goodFragment(1000)}
	st := h.stream("s", 24)
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(0), goodFragment(1000), goodFragment(2000)))
	if err == nil {
		t.Fatal("session succeeded with failing storage")
	}
	persisted, errs := tally(acks)
	if persisted != 1 || len(errs) != 1 || errs[0].ErrorID != 5001 || errs[0].ErrorCode != "ARCHIVAL_ERROR" || errs[0].FragmentTimecode != 1000 {
		t.Errorf("%d PERSISTED, errors %+v; want 1 and one ARCHIVAL_ERROR 5001 at timecode 1000", persisted, errs)
	}
	if frags, _ := h.storedFragments(st); len(frags) != 1 {
		t.Errorf("%d fragments indexed, want 1", len(frags))
	}
}

// pipeBody is a request body fed by the test whose read deadline, like a
// connection's, cuts a blocked read short.
type pipeBody struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newPipeBody() *pipeBody {
	r, w := io.Pipe()
	return &pipeBody{r, w}
}

func (p *pipeBody) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *pipeBody) SetReadDeadline(t time.Time) error {
	if !t.After(time.Now()) {
		p.r.CloseWithError(os.ErrDeadlineExceeded)
	}
	return nil
}

func (a *ackLog) count(event string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, l := range a.lines {
		if strings.Contains(l, `"EventType":"`+event+`"`) {
			n++
		}
	}
	return n
}

// startPiped runs a session whose body the test writes as it goes.
func (h *harness) startPiped(st *store.Stream) (*pipeBody, *ackLog, chan error) {
	h.t.Helper()
	s, err := h.m.Open(context.Background(), st)
	if err != nil {
		h.t.Fatal(err)
	}
	body, log := newPipeBody(), &ackLog{}
	done := make(chan error, 1)
	go func() {
		done <- s.Run(context.Background(), Params{Body: body, SetReadDeadline: body.SetReadDeadline, Ack: log.write})
	}()
	return body, log, done
}

func TestIngestStreamDeleted(t *testing.T) {
	h := newHarness(t, Options{})
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0), goodFragment(1000)))
	wait.For(t, "first PERSISTED", func() bool { return log.count(AckPersisted) == 1 })
	h.m.StreamChanged(st, nil)
	err := <-done
	var ae *ackError
	if !errors.As(err, &ae) || ae.class != ErrStreamNotActive {
		t.Fatalf("session error = %v, want STREAM_NOT_ACTIVE", err)
	}
	acks := log.acks(t)
	if last := acks[len(acks)-1]; last.ErrorID != 4008 || last.ErrorCode != "STREAM_NOT_ACTIVE" || last.FragmentTimecode != 1000 {
		t.Errorf("last ACK = %+v, want ERROR 4008 for the open fragment at 1000", last)
	}
}

func TestIngestTakeover(t *testing.T) {
	h := newHarness(t, Options{})
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0), goodFragment(1000)))
	wait.For(t, "first PERSISTED", func() bool { return log.count(AckPersisted) == 1 })
	// A newer connection for the stream ends the older one; the older
	// one's unfinished fragment is dropped, its finished one kept.
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(3000)))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(<-done, errTakenOver) {
		t.Error("older session did not end with errTakenOver")
	}
	checkAckOrder(t, acks, true)
	frags, _ := h.storedFragments(st)
	if len(frags) != 2 {
		t.Errorf("%d fragments stored, want 2 (one per session)", len(frags))
	}
}

func TestIngestIdle(t *testing.T) {
	h := newHarness(t, Options{IdleInterval: 20 * time.Millisecond})
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0)))
	wait.For(t, "IDLE while the body is silent", func() bool { return log.count(AckIdle) >= 2 })
	body.w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if log.count(AckPersisted) != 1 {
		t.Errorf("PERSISTED = %d after the body ended, want 1", log.count(AckPersisted))
	}
}

// An end-of-fragment tag closes the fragment at once, without waiting for
// more input: the official producer waits for the last PERSISTED before it
// ends the body (kvs-protocol.md §4.4).
func TestIngestEndOfFragmentTag(t *testing.T) {
	h := newHarness(t, Options{})
	st := h.stream("s", 24)
	body, log, done := h.startPiped(st)
	body.w.Write(concat(synth.Header(1), goodFragment(0), synth.Tags("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")))
	wait.For(t, "PERSISTED before the body ends", func() bool { return log.count(AckPersisted) == 1 })
	body.w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestIngestRetentionZero(t *testing.T) {
	h := newHarness(t, Options{})
	st := h.stream("s", 0)
	acks, err := h.put(st, Params{}, concat(synth.Header(1), goodFragment(0), goodFragment(1000)))
	if err != nil {
		t.Fatal(err)
	}
	numbers, _ := checkAckOrder(t, acks, false)
	if frags, _ := h.storedFragments(st); len(frags) != 0 {
		t.Errorf("%d fragments stored for a retention-0 stream", len(frags))
	}
	if f := h.hub.Stream(st.ID).Get(numbers[1]); f == nil {
		t.Error("retention-0 fragment not in the live window")
	}
}

// A broken stream ends with its own ERROR and harms nothing else: a second
// stream ingesting at the same time gets every fragment stored.
func TestIngestStreamsIsolated(t *testing.T) {
	h := newHarness(t, Options{})
	good, bad := h.stream("good", 24), h.stream("bad", 24)
	src := readFile(t, filepath.Join("..", "testdata", "media", "h264.mkv"))
	var wg sync.WaitGroup
	var goodAcks []Ack
	var goodErr error
	wg.Go(func() {
		goodAcks, goodErr = h.put(good, Params{}, src)
	})
	badAcks, badErr := h.put(bad, Params{}, concat(synth.Header(1), goodFragment(0), []byte("garbage!")))
	wg.Wait()
	if badErr == nil || badAcks[len(badAcks)-1].ErrorID != 4006 {
		t.Errorf("bad stream: err %v, last ACK %+v", badErr, badAcks[len(badAcks)-1])
	}
	if goodErr != nil {
		t.Fatal(goodErr)
	}
	checkAckOrder(t, goodAcks, true)
	frags, data := h.storedFragments(good)
	want := synth.ClusterSpans(src)
	if len(frags) != len(want) {
		t.Fatalf("good stream stored %d fragments, want %d", len(frags), len(want))
	}
	for k := range want {
		if string(data[k]) != string(want[k]) {
			t.Errorf("good stream fragment %d differs from the source", k)
		}
	}
}
