package live

import (
	"math/bits"
	"sync"
)

// chunkClasses are the chunk capacities the hub reuses: powers of two from minChunk to
// maxChunk. A chunk of another capacity (one Write larger than maxChunk) is left to the GC.
const chunkClasses = 9 // 16 KiB << 8 == 4 MiB

// chunkPool keeps the chunks of fragments that left the hub without any reader ever being
// handed them, for the next fragments to fill. Reusing them spares the allocator zeroing
// every fresh chunk, the kernel faulting its pages in and the collector's cycles, which at
// hundreds of cameras cost more CPU than copying the bytes. sync.Pool bounds what it keeps:
// the collector drops what was not reused within two cycles.
type chunkPool [chunkClasses]sync.Pool

// classSize rounds a chunk capacity up to its class, or to whole pages above maxChunk.
func classSize(size int) int {
	if size > maxChunk {
		return (size + pageSize - 1) / pageSize * pageSize
	}
	return max(minChunk, 1<<bits.Len(uint(size-1)))
}

// class returns the pool index of a chunk of capacity size, -1 if it has none.
func class(size int) int {
	if size < minChunk || size > maxChunk || size&(size-1) != 0 {
		return -1
	}
	return bits.Len(uint(size/minChunk)) - 1
}

// get returns a chunk of capacity size (a classSize); a reused one holds old bytes, which
// only the producer's writes ever expose.
func (p *chunkPool) get(size int) []byte {
	if i := class(size); i >= 0 {
		if b, ok := p[i].Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, size)
}

// put gives back the chunks of a fragment that nobody can read any more and returns their
// capacity. It stores pointers into the chunks' own slice, so that giving them back allocates
// nothing; that slice must not change afterwards.
func (p *chunkPool) put(chunks []chunk) int64 {
	var n int64
	for i := range chunks {
		if k := class(len(chunks[i].b)); k >= 0 {
			p[k].Put(&chunks[i].b)
			n += int64(len(chunks[i].b))
		}
	}
	return n
}
