package mkv

// children iterates over the elements inside a master element payload that is already in
// memory (Info, Tracks, Tags, BlockGroup, EBML header). It never allocates, so the Splitter
// can use it per frame.
type children struct {
	data    []byte // the payload
	base    int64  // absolute input offset of data[0], for errors
	pos     int    // offset of the next element within data
	id      ID     // current element
	off     int64  // absolute offset of the current element
	body    []byte // current element's payload
	bodyOff int64  // absolute offset of body
	err     error
}

func newChildren(payload []byte, base int64) children {
	return children{data: payload, base: base}
}

// next advances to the next child; it returns false at the end of the payload or on error.
func (c *children) next() bool {
	if c.err != nil || c.pos >= len(c.data) {
		return false
	}
	rest := c.data[c.pos:]
	c.off = c.base + int64(c.pos)
	n := vintLen(rest[0])
	if n > maxIDLen || n > len(rest) {
		c.err = invalidf(c.off, "bad element ID inside a %d-byte parent", len(c.data))
		return false
	}
	var id uint32
	for _, b := range rest[:n] {
		id = id<<8 | uint32(b)
	}
	if !validID(id, n) {
		c.err = invalidf(c.off, "invalid element ID 0x%0*X", 2*n, id)
		return false
	}
	rest = rest[n:]
	if len(rest) == 0 || vintLen(rest[0]) > min(maxSizeLen, len(rest)) {
		c.err = invalidf(c.off, "bad size field of %v", ID(id))
		return false
	}
	m := vintLen(rest[0])
	size := decodeSize(rest[:m])
	rest = rest[m:]
	if size == UnknownSize || size > int64(len(rest)) {
		c.err = invalidf(c.off, "%v of size %d exceeds its parent", ID(id), size)
		return false
	}
	c.id = ID(id)
	c.body = rest[:size]
	c.bodyOff = c.off + int64(n+m)
	c.pos += n + m + int(size)
	return true
}

// sub iterates over the children of the current element.
func (c *children) sub() children {
	return newChildren(c.body, c.bodyOff)
}

// uint decodes the current element as an unsigned integer.
func (c *children) uint() (uint64, bool) {
	v, ok := decodeUint(c.body)
	if !ok {
		c.err = invalidf(c.off, "%v is a %d-byte unsigned integer", c.id, len(c.body))
	}
	return v, ok
}
