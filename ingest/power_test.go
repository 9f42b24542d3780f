package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/openkvs/openkvs/blob/file"
	"github.com/openkvs/openkvs/internal/powerfs"
	"github.com/openkvs/openkvs/live"
	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/sqlite"
	"github.com/openkvs/openkvs/synth"
)

// powerFragments is how many fragments the power-loss session sends.
const powerFragments = 6

// powerWait bounds a power-loss session.
const powerWait = 10 * time.Second

// endOfFragment is the tag with which the official producer ends a
// fragment at once.
var endOfFragment = synth.Tags("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")

// powerParts is what the power-loss producer sends, fragment by fragment:
// fragment i has timecode i*1000 and ends with endOfFragment; the first
// part starts with the stream header.
func powerParts() [][]byte {
	parts := make([][]byte, powerFragments)
	for i := range parts {
		parts[i] = concat(goodFragment(uint64(i)*1000), endOfFragment)
	}
	parts[0] = concat(synth.Header(1), parts[0])
	return parts
}

// pacedBody sends a fragment only once the previous one was PERSISTED, as
// the official producer does with its last fragment, so that power cuts
// fall between PERSISTED ACKs. When the power fails the connection breaks.
type pacedBody struct {
	parts     [][]byte
	next      int
	cur       []byte
	persisted chan struct{} // a value for each PERSISTED the producer heard
	dead      <-chan struct{}
	err       error // why the producer gave up waiting, if it did
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if len(b.cur) == 0 {
		if b.next == len(b.parts) {
			return 0, io.EOF
		}
		if b.next > 0 {
			if err := b.waitPersisted(); err != nil {
				return 0, err
			}
		}
		b.cur = b.parts[b.next]
		b.next++
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

func (b *pacedBody) waitPersisted() error {
	select {
	case <-b.persisted:
		return nil
	case <-b.dead:
		return errors.New("connection lost: the power failed")
	case <-time.After(powerWait):
		b.err = fmt.Errorf("no PERSISTED for fragment %d in %v", b.next-1, powerWait)
		return b.err
	}
}

// powerRun is what a session that lost power left: the blobs' file system,
// the catalog file, the stream and the ACKs the producer received.
type powerRun struct {
	fs      *powerfs.FS
	catalog string
	stream  *store.Stream
	acks    []Ack
}

// runPowerSession streams powerParts, all at once or paced, through a
// Manager whose blobs are on a powerfs that fails after cut operations
// (never if cut is 0) and whose catalog is SQLite in a temporary directory.
// ACKs written after the cut are not received: the producer's connection
// died with the machine.
func runPowerSession(t *testing.T, cut int, paced bool) powerRun {
	t.Helper()
	run := powerRun{fs: powerfs.New(), catalog: filepath.Join(t.TempDir(), "catalog.db")}
	catalog, err := sqlite.Open(run.catalog)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close()
	blobs, err := file.OpenFS(run.fs, "blobs")
	if err != nil {
		t.Fatal(err)
	}
	if cut > 0 {
		run.fs.CutAfter(cut)
	}
	run.stream = &store.Stream{Name: "s", ARN: "arn:aws:kinesisvideo:us-east-1:000000000000:stream/s/1",
		Status: store.StatusActive, RetentionHours: 24, Version: "v", StorageTier: "HOT", CreationTime: time.Now()}
	if err := catalog.CreateStream(context.Background(), run.stream); err != nil {
		t.Fatal(err)
	}
	m := NewManager(catalog, blobs, live.NewHub(live.Options{}), Options{}, slog.New(slog.DiscardHandler))
	s, err := m.Open(context.Background(), run.stream)
	if err != nil {
		t.Fatal(err)
	}
	var log ackLog
	persisted := make(chan struct{}, powerFragments)
	ack := func(line []byte) error {
		select {
		case <-run.fs.Dead():
			return errors.New("connection lost: the power failed")
		default:
		}
		if bytes.Contains(line, []byte(`"EventType":"PERSISTED"`)) {
			persisted <- struct{}{}
		}
		return log.write(line)
	}
	pb := &pacedBody{parts: powerParts(), persisted: persisted, dead: run.fs.Dead()}
	var body io.Reader = pb
	if !paced {
		body = bytes.NewReader(concat(pb.parts...))
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background(), Params{Body: body, Ack: ack}) }()
	select {
	case err := <-done:
		if err != nil && cut == 0 {
			t.Fatalf("session without a power cut: %v", err)
		}
	case <-time.After(2 * powerWait):
		t.Fatalf("power cut after %d operations: the session did not end in %v", cut, 2*powerWait)
	}
	if pb.err != nil {
		t.Fatalf("power cut after %d operations: %v", cut, pb.err)
	}
	run.acks = log.acks(t)
	return run
}

// checkPowerRun restarts on what survived the cut, the catalog reopened
// and Blobs reopened on the durable state, and checks that every fragment
// the producer heard PERSISTED for has its row, and that every row's
// fragment and header blobs read back byte for byte. It returns how many
// fragments were PERSISTED and how many rows there are.
func checkPowerRun(run powerRun) (persisted, rows int, err error) {
	ctx := context.Background()
	catalog, err := sqlite.Open(run.catalog)
	if err != nil {
		return 0, 0, fmt.Errorf("reopen catalog: %w", err)
	}
	defer catalog.Close()
	blobs, err := file.OpenFS(run.fs.Durable(), "blobs")
	if err != nil {
		return 0, 0, fmt.Errorf("reopen blobs: %w", err)
	}
	frags, err := catalog.FragmentsAfter(ctx, run.stream.ID, "", 1000)
	if err != nil {
		return 0, 0, fmt.Errorf("read rows: %w", err)
	}
	byNumber := map[string]*store.Fragment{}
	for _, f := range frags {
		byNumber[f.Number] = f
	}
	heard := map[string]bool{}
	for _, a := range run.acks {
		if a.EventType != AckPersisted {
			continue
		}
		heard[a.FragmentNumber] = true
		f := byNumber[a.FragmentNumber]
		if f == nil {
			return 0, 0, fmt.Errorf("fragment %s (timecode %d) was PERSISTED but has no row", a.FragmentNumber, a.FragmentTimecode)
		}
		if f.ProducerTime.UnixMilli() != int64(a.FragmentTimecode) {
			return 0, 0, fmt.Errorf("fragment %s was PERSISTED with timecode %d, its row says %v", a.FragmentNumber, a.FragmentTimecode, f.ProducerTime)
		}
	}
	for _, f := range frags {
		if err := checkRowBlobs(ctx, blobs, f, heard[f.Number]); err != nil {
			return 0, 0, err
		}
	}
	return len(heard), len(frags), nil
}

// checkRowBlobs checks that row r's blobs hold its fragment's cluster and
// the stream header, exactly; persisted says whether the producer heard
// PERSISTED for it.
func checkRowBlobs(ctx context.Context, blobs store.Blobs, r *store.Fragment, persisted bool) error {
	spans := synth.ClusterSpans(concat(powerParts()...))
	i := int(r.ProducerTime.UnixMilli() / 1000)
	if i < 0 || i >= len(spans) || r.ProducerTime.UnixMilli() != int64(i)*1000 {
		return fmt.Errorf("row %s has producer time %v, which no fragment sent has", r.Number, r.ProducerTime)
	}
	row := fmt.Sprintf("row of fragment %d (%s, not PERSISTED)", i, r.Number)
	if persisted {
		row = fmt.Sprintf("row of fragment %d (%s, PERSISTED before the cut)", i, r.Number)
	}
	for _, b := range []struct {
		key  string
		want []byte
	}{{r.BlobKey, spans[i]}, {r.HeaderKey, synth.Header(1)}} {
		got, err := readBlob(ctx, blobs, b.key)
		if err != nil {
			return fmt.Errorf("%s: %w", row, err)
		}
		if !bytes.Equal(got, b.want) {
			return fmt.Errorf("%s: blob %s holds %d bytes, want the %d bytes sent", row, b.key, len(got), len(b.want))
		}
	}
	return nil
}

func readBlob(ctx context.Context, blobs store.Blobs, key string) ([]byte, error) {
	rc, err := blobs.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", key, err)
	}
	return b, nil
}

// TestIngestPowerLoss cuts the power after every file-system operation a
// PutMedia session makes in turn: after the restart, every fragment the
// producer heard PERSISTED for has its catalog row, and every row's blobs
// read back byte for byte. Blobs are on powerfs, which loses what was not
// fsynced; the catalog is SQLite on the real disk, whose durability rests
// on its settings (TestConnectionSettings in store/sqlite). The producer
// sends its fragments at once (blobs written in parallel, rows committed
// in groups: the producer hears every PERSISTED at about the same time),
// or each after the previous one's PERSISTED (cuts fall between PERSISTED
// ACKs).
func TestIngestPowerLoss(t *testing.T) {
	for _, mode := range []struct {
		name  string
		paced bool
	}{{"streamed", false}, {"paced", true}} {
		t.Run(mode.name, func(t *testing.T) {
			ref := runPowerSession(t, 0, mode.paced) // fails unless the session ends cleanly
			numbers, _ := checkAckOrder(t, ref.acks, true)
			if len(numbers) != powerFragments {
				t.Fatalf("without a power cut %d fragments were acknowledged, want %d", len(numbers), powerFragments)
			}
			total := ref.fs.Ops()
			var failed []int
			someRows, somePersisted := 0, 0 // cuts after which some fragments, not all, were stored, or PERSISTED
			for cut := 1; cut <= total; cut++ {
				p, r, err := checkPowerRun(runPowerSession(t, cut, mode.paced))
				if err != nil {
					failed = append(failed, cut)
					if len(failed) <= 3 {
						t.Errorf("power cut after %d of %d operations: %v", cut, total, err)
					}
				}
				if r > 0 && r < powerFragments {
					someRows++
				}
				if p > 0 && p < powerFragments {
					somePersisted++
				}
			}
			if len(failed) > 0 {
				t.Errorf("%d of %d power cuts broke the promise, after operations %v", len(failed), total, failed)
			} else if someRows == 0 || (mode.paced && somePersisted == 0) {
				t.Errorf("%d cuts fell between the first row and the last, %d between the first PERSISTED and the last: the cuts missed the persisting", someRows, somePersisted)
			}
			t.Logf("%d power cuts; %d fell between the first row and the last, %d between the first PERSISTED and the last", total, someRows, somePersisted)
		})
	}
}
