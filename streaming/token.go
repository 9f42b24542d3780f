package streaming

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"

	"github.com/openkvs/openkvs/store"
)

// Session kinds and the codes a token stores its settings as.
const (
	kindHLS byte = iota + 1
	kindDASH
)

var (
	modeCodes          = []string{ModeLive, ModeLiveReplay, ModeOnDemand}
	containerCodes     = []string{ContainerFMP4, ContainerMPEGTS}
	discontinuityCodes = []string{DiscontinuityAlways, DiscontinuityNever, DiscontinuityOnGap}
)

// tokenVersion is the first byte of every token, so the layout can change.
const tokenVersion = 1

// macSize is the HMAC-SHA256 prefix a token carries: 128 bits.
const macSize = 16

// Token is a streaming session, carried in its URLs: everything a playlist,
// manifest or fragment request needs, so any node holding the key serves them.
type Token struct {
	ID               [8]byte // random: tells sessions apart for the 10-per-stream limit
	Kind             byte
	Stream           int64 // store.Stream.ID: a re-created stream does not match
	Mode             string
	Field            store.TimeField
	Start, End       time.Time // zero when not set
	Container        string    // HLS
	Discontinuity    string    // HLS
	DisplayTimestamp bool
	DisplayNumber    bool // DASH
	MaxResults       int
	Created, Expires time.Time
}

func code(list []string, s string) byte {
	for i, v := range list {
		if v == s {
			return byte(i)
		}
	}
	return 0
}

func decode(list []string, b byte) (string, bool) {
	if int(b) >= len(list) {
		return "", false
	}
	return list[b], true
}

func millis(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixMilli())
}

func fromMillis(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// seal encodes the token and signs it with key: URL-safe base64 of the fields
// and an HMAC of them.
func (t *Token) seal(key []byte) string {
	b := make([]byte, 0, 96)
	b = append(b, tokenVersion)
	b = append(b, t.ID[:]...)
	b = append(b, t.Kind, code(modeCodes, t.Mode), byte(t.Field), code(containerCodes, t.Container), code(discontinuityCodes, t.Discontinuity))
	var flags byte
	if t.DisplayTimestamp {
		flags |= 1
	}
	if t.DisplayNumber {
		flags |= 2
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Stream))
	b = binary.BigEndian.AppendUint32(b, uint32(t.MaxResults))
	for _, ts := range []time.Time{t.Start, t.End, t.Created, t.Expires} {
		b = binary.BigEndian.AppendUint64(b, millis(ts))
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	b = m.Sum(b)[:len(b)+macSize]
	return base64.RawURLEncoding.EncodeToString(b)
}

// errTokenInvalid refuses a token that is not one the key signed.
var errTokenInvalid = errors.New("streaming session token is not valid")

// tokenBody is the length of a version-1 token before its MAC.
const tokenBody = 1 + 8 + 6 + 8 + 4 + 4*8

// openToken checks s's signature with key and decodes it.
func openToken(key []byte, s string) (*Token, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != tokenBody+macSize || b[0] != tokenVersion {
		return nil, errTokenInvalid
	}
	m := hmac.New(sha256.New, key)
	m.Write(b[:tokenBody])
	if !hmac.Equal(m.Sum(nil)[:macSize], b[tokenBody:]) {
		return nil, errTokenInvalid
	}
	t := &Token{Kind: b[9], Field: store.TimeField(b[11])}
	copy(t.ID[:], b[1:9])
	var ok1, ok2, ok3 bool
	t.Mode, ok1 = decode(modeCodes, b[10])
	t.Container, ok2 = decode(containerCodes, b[12])
	t.Discontinuity, ok3 = decode(discontinuityCodes, b[13])
	if !ok1 || !ok2 || !ok3 {
		return nil, errTokenInvalid
	}
	t.DisplayTimestamp, t.DisplayNumber = b[14]&1 != 0, b[14]&2 != 0
	p := b[15:]
	t.Stream = int64(binary.BigEndian.Uint64(p))
	t.MaxResults = int(binary.BigEndian.Uint32(p[8:]))
	p = p[12:]
	ts := make([]time.Time, 4)
	for i := range ts {
		ts[i] = fromMillis(binary.BigEndian.Uint64(p[8*i:]))
	}
	t.Start, t.End, t.Created, t.Expires = ts[0], ts[1], ts[2], ts[3]
	return t, nil
}
