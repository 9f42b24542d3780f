package store

import (
	"crypto/rand"
	"encoding/binary"
	"math/big"
)

// numberBase is 2^156: every fragment number has this bit set, so all
// numbers have 47 decimal digits while the sequence fits in 64 bits, and
// string order equals numeric order (kvs-protocol.md §5.4).
var numberBase = new(big.Int).Lsh(big.NewInt(1), 156)

// FragmentNumber builds the 47-digit fragment number of the layout real KVS
// numbers decode to: 2^156 | seq<<92 | serverMillis<<28 | random28.
// seq is strictly increasing per stream, so numbers are too.
func FragmentNumber(seq uint64, serverMillis int64) string {
	var r [4]byte
	rand.Read(r[:])
	n := new(big.Int).SetUint64(seq)
	n.Lsh(n, 64)
	n.Or(n, new(big.Int).SetUint64(uint64(serverMillis)))
	n.Lsh(n, 28)
	n.Or(n, big.NewInt(int64(binary.BigEndian.Uint32(r[:])>>4)))
	n.Or(n, numberBase)
	return n.String()
}

// FragmentSequence returns the sequence a FragmentNumber was built from;
// a string that is not such a number reads as the largest sequence.
func FragmentSequence(number string) uint64 {
	n, ok := new(big.Int).SetString(number, 10)
	if !ok || len(number) != 47 {
		return ^uint64(0)
	}
	n.Rsh(n, 92)
	return n.And(n, new(big.Int).SetUint64(^uint64(0))).Uint64()
}
