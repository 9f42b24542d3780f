package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// scan finds every marker and the bytes after it however the stream is cut
// into reads.
func TestScanAcrossReads(t *testing.T) {
	marker := []byte("MARK")
	var stream []byte
	var want []uint64
	for i := range 50 {
		stream = append(stream, bytes.Repeat([]byte{'x'}, i*7%23)...)
		stream = append(stream, marker...)
		stream = binary.BigEndian.AppendUint64(stream, uint64(i))
		want = append(want, uint64(i))
	}
	for _, r := range []io.Reader{bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream)), iotest.HalfReader(bytes.NewReader(stream))} {
		var got []uint64
		n, err := scan(r, make([]byte, 64), marker, 8, func(after []byte) bool {
			got = append(got, binary.BigEndian.Uint64(after))
			return true
		})
		if err != nil || n != int64(len(stream)) {
			t.Fatalf("scan: %d bytes, %v; want %d", n, err, len(stream))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("scan found %v, want %v", got, want)
		}
	}
}

// fragments splits an MKV producer stream with openkvs's own splitter and
// returns the bytes of each fragment.
func fragments(t *testing.T, r io.Reader) [][]byte {
	t.Helper()
	sp := mkv.NewSplitter(r, mkv.SplitterOptions{})
	var out [][]byte
	for {
		ev, err := sp.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.(type) {
		case *mkv.FragmentStart:
			out = append(out, append([]byte{}, ev.Bytes()...))
		case *mkv.Frame, *mkv.FragmentData:
			out[len(out)-1] = append(out[len(out)-1], ev.Bytes()...)
		}
	}
}

// The fast body is valid MKV of the size it claims, the same through Read
// and WriteTo.
func TestFastBody(t *testing.T) {
	v := newVideo(4_000_000)
	b := newFastBody(v, 3)
	var viaWriteTo bytes.Buffer
	if _, err := b.WriteTo(&viaWriteTo); err != nil {
		t.Fatal(err)
	}
	viaRead, err := io.ReadAll(iotest.HalfReader(newFastBody(v, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(viaRead, viaWriteTo.Bytes()) || int64(len(viaRead)) != b.Size() {
		t.Fatalf("Read gave %d bytes, WriteTo %d, Size says %d", len(viaRead), viaWriteTo.Len(), b.Size())
	}
	frags := fragments(t, bytes.NewReader(viaRead))
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	for _, f := range frags {
		if int64(len(f)) != v.size {
			t.Errorf("fragment of %d bytes, want %d", len(f), v.size)
		}
	}
	if v.size < 990_000 || v.size > 1_010_000 {
		t.Errorf("a 2 s fragment at 4 Mbit/s holds %d bytes, want about 1 MB", v.size)
	}
}

// The live body paces frames, stamps each with its sequence number, records
// when it went out and tells when each fragment ended.
func TestLiveBody(t *testing.T) {
	v := newVideo(400_000)
	start := time.Now().Add(-v.FragmentDuration) // the first fragment is due at once
	b := newLiveBody(v, 2, start, true)
	var ends []int
	b.fragmentEnd = func(i int, at time.Time) { ends = append(ends, i) }
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 2*v.FragmentDuration-v.frameAt(1) {
		t.Errorf("2 fragments went out %s after the first was due: not paced", took)
	}
	if !slices.Equal(ends, []int{0, 1}) {
		t.Errorf("fragment ends %v, want [0 1]", ends)
	}
	if frags := fragments(t, bytes.NewReader(data)); len(frags) != 2 {
		t.Fatalf("%d fragments, want 2", len(frags))
	}
	var seqs []uint64
	scan(bytes.NewReader(data), make([]byte, 4096), stampMagic, 8, func(after []byte) bool {
		seqs = append(seqs, binary.BigEndian.Uint64(after))
		return true
	})
	if len(seqs) != b.frames() {
		t.Fatalf("%d stamps, want %d", len(seqs), b.frames())
	}
	for i, s := range seqs {
		if s != uint64(i) || b.sentAt(s).IsZero() {
			t.Fatalf("stamp %d is %d (sent at %v)", i, s, b.sentAt(s))
		}
	}
}

// The ramp doubles while steps pass, then bisects to within an eighth.
func TestRamp(t *testing.T) {
	const largest = 700 // steps up to this pass
	r := &ramp{start: 50, limit: 4000}
	var tried []int
	for {
		n, ok := r.next()
		if !ok {
			break
		}
		tried = append(tried, n)
		r.record(n, n <= largest)
	}
	if r.pass > largest || largest-r.pass > largest/8 {
		t.Errorf("found %d after %v, want within an eighth below %d", r.pass, tried, largest)
	}
	r = &ramp{start: 50, limit: 4000}
	for n, ok := r.next(); ok; n, ok = r.next() {
		r.record(n, n <= 3)
	}
	if r.pass != 3 {
		t.Errorf("halving down found %d, want 3", r.pass)
	}
}

// TestSearchBoth checks that two searches take turns, the first one first
// in even rounds and last in odd ones, and that each finds its own N.
func TestSearchBoth(t *testing.T) {
	var order []string
	side := func(name string, largest int) *searcher[int] {
		return newSearcher(&ramp{start: 8, limit: 64}, time.Hour, func(n int) (int, bool, error) {
			order = append(order, fmt.Sprintf("%s%d", name, n))
			return n, n <= largest, nil
		})
	}
	a, b := side("a", 20), side("b", 40)
	if err := searchBoth(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
	want := "a8 b8 b16 a16 a32 b32 b64 a24 a20 b48 b40 a22 b44"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("steps %s, want %s", got, want)
	}
	if a.bestN != 20 || b.bestN != 40 {
		t.Errorf("found %d and %d, want 20 and 40", a.bestN, b.bestN)
	}

	// Each search's budget counts its own steps: a slow one does not use
	// up the other's.
	slow := newSearcher(&ramp{start: 8, limit: 64}, 70*time.Millisecond, func(n int) (int, bool, error) {
		time.Sleep(20 * time.Millisecond)
		return n, true, nil
	})
	fast := side("c", 40)
	fast.budget = 50 * time.Millisecond
	if err := searchBoth(context.Background(), slow, fast); err != nil {
		t.Fatal(err)
	}
	if slow.bestN != 32 || fast.bestN != 40 {
		t.Errorf("with a slow search beside it, the other found %d (the slow one %d), want 40 (32)", fast.bestN, slow.bestN)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 of 1..100 = %d", p)
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 of 1..100 = %d", p)
	}
}

// A search goal is met or missed only when the search could reach it; one
// whose ceiling is below it (quick mode) was not tried, in the table and
// in the JSON report.
func TestAtLeastGoal(t *testing.T) {
	for _, tc := range []struct {
		n, ceiling int
		target     string
		met        *bool
		notTried   string
	}{
		{650, 2000, ">= 500 (met)", ptr(true), ""},
		{300, 2000, ">= 500 (missed)", ptr(false), ""},
		{64, 64, ">= 500 (not tried: this run searched up to 64)", nil, "this run searched up to 64"},
		{16, 64, ">= 500 (not tried: this run searched up to 64)", nil, "this run searched up to 64"},
	} {
		f := figure("largest N", float64(tc.n), "streams").atLeast(500, tc.n, tc.ceiling)
		if (f.Met == nil) != (tc.met == nil) || f.Met != nil && *f.Met != *tc.met || f.NotTried != tc.notTried {
			t.Errorf("n %d, ceiling %d: met %v, not tried %q; want %v, %q", tc.n, tc.ceiling, f.Met, f.NotTried, tc.met, tc.notTried)
		}
		var table strings.Builder
		rep := &Report{Mode: "quick", Scenarios: []*Scenario{{ID: "ingest-concurrent", Title: "N streams", Figures: []*Figure{f}}}}
		if err := rep.WriteTable(&table); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(table.String(), " "+tc.target+" ") {
			t.Errorf("n %d, ceiling %d: table\n%s\nwant target %q", tc.n, tc.ceiling, table.String(), tc.target)
		}
	}
}

func ptr[T any](v T) *T { return &v }
