package mkv

import (
	"encoding/binary"
	"math/bits"
)

// Matroska fixes EBMLMaxIDLength at 4 and EBMLMaxSizeLength at 8 (RFC 9559 §5.1.1); every
// KVS client assumes the same, so declared larger values are not honoured.
const (
	maxIDLen   = 4
	maxSizeLen = 8
)

// UnknownSize is Element.Size for an element whose size field is all ones (RFC 8794 §6.2).
const UnknownSize int64 = -1

// vintLen returns the total length of a VINT from its first byte: the position of the first
// set bit (RFC 8794 §4.1). A zero byte would mean more than 8 bytes and yields 9.
func vintLen(b byte) int {
	return bits.LeadingZeros8(b) + 1
}

// idLen returns the number of bytes id occupies on the wire.
func idLen(id ID) int {
	return (bits.Len32(uint32(id)) + 7) / 8
}

// validID reports whether id, written in n bytes, is a valid Element ID: VINT_DATA neither
// all zeros nor all ones, and no shorter encoding possible (RFC 8794 §5 and erratum 7189:
// e.g. two-byte IDs range from 0x407F to 0x7FFE).
func validID(id uint32, n int) bool {
	data := uint64(id) &^ (1 << (7 * n)) // strip the VINT_MARKER
	all := uint64(1)<<(7*n) - 1
	if data == 0 || data == all {
		return false
	}
	return n == 1 || data >= uint64(1)<<(7*(n-1))-1
}

// decodeSize decodes a data size VINT of len(b) bytes; all ones means unknown (RFC 8794 §6.2).
func decodeSize(b []byte) int64 {
	n := len(b)
	v := uint64(b[0]) & (0xFF >> n)
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
	}
	if v == uint64(1)<<(7*n)-1 {
		return UnknownSize
	}
	return int64(v) // at most 2^56-2, always fits
}

// appendID appends the wire bytes of id.
func appendID(dst []byte, id ID) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(id))
	return append(dst, b[4-idLen(id):]...)
}

// appendSizeN appends size as an n-byte data size VINT; UnknownSize is written as all ones.
// The caller guarantees that size fits in n bytes.
func appendSizeN(dst []byte, size int64, n int) []byte {
	v := uint64(size)
	if size == UnknownSize {
		v = uint64(1)<<(7*n) - 1
	}
	v |= uint64(1) << (7 * n) // the VINT_MARKER
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// appendSize4 appends size in the 4-byte form KVS uses for its own tags (10 xx xx xx),
// switching to 8 bytes only for sizes that 4 bytes cannot hold.
func appendSize4(dst []byte, size int) []byte {
	if size < 1<<28-1 {
		return appendSizeN(dst, int64(size), 4)
	}
	return appendSizeN(dst, int64(size), 8)
}

// decodeUint decodes an EBML unsigned integer payload (RFC 8794 §7.2): big-endian, 0 to 8 bytes.
func decodeUint(b []byte) (uint64, bool) {
	if len(b) > 8 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// decodeString decodes an EBML String or UTF-8 payload: zero bytes are padding and end the
// value (RFC 8794 §7.4, §7.5), as in PIC's DocType "matroska\0".
func decodeString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
