package mkv

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzChunkReader reads arbitrary payloads as GetMedia output: it ends
// with io.EOF or an error, never panics, and every chunk it returns is a
// slice of the input in order.
func FuzzChunkReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Add(AppendErrorChunk(nil, nil, "91343852333181432392682062683874585502641787168", 4000, "FRAGMENT_NOT_FOUND"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := NewChunkReader(bytes.NewReader(data))
		next := int64(0)
		for range len(data) + 1 {
			c, err := cr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if _, again := cr.Next(); !errors.Is(again, err) {
					t.Fatalf("error %v is not sticky: then %v", err, again)
				}
				return
			}
			if c.Offset < next || c.Offset+int64(len(c.Data)) > int64(len(data)) ||
				!bytes.Equal(c.Data, data[c.Offset:c.Offset+int64(len(c.Data))]) {
				t.Fatalf("chunk at %d of %d bytes is not the input's bytes after %d", c.Offset, len(c.Data), next)
			}
			next = c.Offset + int64(len(c.Data))
			c.Err()
		}
		t.Fatalf("more chunks than input bytes")
	})
}
