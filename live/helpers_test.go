package live

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Values of Begin's archived argument.
const (
	toArchive  = true
	memoryOnly = false
)

// number returns the i-th fragment number of a test stream: 47 digits, increasing with i.
func number(i int) string {
	return fmt.Sprintf("913438523331814323877303020447676887284957%05d", i)
}

// meta returns the Meta of the i-th fragment of a test stream.
func meta(i int) Meta {
	return Meta{Number: number(i)}
}

// pattern returns n bytes that differ with seed and position, so that a misplaced or
// repeated byte shows.
func pattern(seed, n int) []byte {
	p := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x)
	}
	return p
}

// eventually waits until cond holds, failing the test after a deadline. It yields instead of
// sleeping: cond is a state another goroutine is about to reach.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

// readAll follows f to its end and returns a copy of its bytes.
func readAll(t testing.TB, f *Fragment) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b []byte
	for {
		p, done, err := f.Next(ctx, len(b))
		if err != nil {
			t.Fatalf("Next(%d): %v", len(b), err)
		}
		b = append(b, p...)
		if done {
			return b
		}
	}
}

// streamParked reports whether a reader waits in s.After.
func streamParked(s *Stream) bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.changed != nil
}

// fragmentParked reports whether a reader waits in f.Next.
func fragmentParked(f *Fragment) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed != nil
}
