package store

import (
	"context"
	"fmt"
	"io"
)

// ReadBlob reads the object key, of size bytes (any size if negative), into
// buf's room when it is large enough, else into a new buffer sized from size:
// a fragment read by growing a buffer would be copied several times. An
// object of another size is an error; a missing one is ErrNotFound (wrapped).
func ReadBlob(ctx context.Context, b Blobs, key string, size int64, buf []byte) ([]byte, error) {
	r, err := b.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer r.Close()
	if size < 0 {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		return data, nil
	}
	if int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	// One byte more than size tells a longer object from a whole one.
	n, err := io.ReadFull(r, buf[:size+1])
	if err != io.ErrUnexpectedEOF && err != nil || int64(n) != size {
		return nil, fmt.Errorf("read %s: %d bytes of %d: %v", key, n, size, err)
	}
	return buf[:n], nil
}
