package playback

import (
	"fmt"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/hevc"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// Matroska codec IDs KVS documents (kvs-protocol.md §7.5); the V_MPEG/ISO forms are
// the ones the KVS developer guide spells.
const (
	codecH264    = "V_MPEG4/ISO/AVC"
	codecH264Alt = "V_MPEG/ISO/AVC"
	codecH265    = "V_MPEGH/ISO/HEVC"
	codecH265Alt = "V_MPEG/ISO/HEVC"
	codecAAC     = "A_AAC"
)

type codecKind int

const (
	kindH264 codecKind = iota + 1
	kindH265
	kindAAC
)

// codec is a track's codec setup, decoded from its CodecPrivate.
type codec struct {
	kind          codecKind
	vps, sps, pps []byte // first parameter sets (video)
	lengthSize    int    // bytes of each NAL unit's length prefix in a block (video)
	aac           mpeg4audio.AudioSpecificConfig
}

// Codec decodes the track's codec setup; the errors are ErrUnsupportedCodec,
// ErrMissingCodecPrivateData and ErrInvalidCodecPrivateData.
func (t *Track) codec() (*codec, error) {
	var kind codecKind
	switch t.CodecID {
	case codecH264, codecH264Alt:
		kind = kindH264
	case codecH265, codecH265Alt:
		kind = kindH265
	case codecAAC:
		kind = kindAAC
	default:
		return nil, fmt.Errorf("track %d: codec %q: %w", t.Number, t.CodecID, ErrUnsupportedCodec)
	}
	if len(t.CodecPrivate) == 0 {
		return nil, fmt.Errorf("track %d (%s): %w", t.Number, t.CodecID, ErrMissingCodecPrivateData)
	}
	c := &codec{kind: kind}
	var err error
	switch kind {
	case kindH264:
		err = c.parseAVC(t.CodecPrivate)
	case kindH265:
		err = c.parseHEVC(t.CodecPrivate)
	case kindAAC:
		err = c.aac.Unmarshal(t.CodecPrivate)
	}
	if err != nil {
		return nil, fmt.Errorf("track %d (%s): %w: %w", t.Number, t.CodecID, ErrInvalidCodecPrivateData, err)
	}
	return c, nil
}

// parseAVC reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1).
func (c *codec) parseAVC(cp []byte) (err error) {
	// mp4ff indexes the record without checking every length.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed avcC: %v", r)
		}
	}()
	rec, err := avc.DecodeAVCDecConfRec(cp)
	if err != nil {
		return err
	}
	if len(rec.SPSnalus) == 0 || len(rec.PPSnalus) == 0 {
		return fmt.Errorf("avcC holds %d SPS and %d PPS", len(rec.SPSnalus), len(rec.PPSnalus))
	}
	c.sps, c.pps = rec.SPSnalus[0], rec.PPSnalus[0]
	c.lengthSize = int(cp[4]&3) + 1 // lengthSizeMinusOne
	return nil
}

// parseHEVC reads an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1).
func (c *codec) parseHEVC(cp []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed hvcC: %v", r)
		}
	}()
	rec, err := hevc.DecodeHEVCDecConfRec(cp)
	if err != nil {
		return err
	}
	for _, a := range rec.NaluArrays {
		if len(a.Nalus) == 0 {
			continue
		}
		switch a.NaluType() {
		case hevc.NALU_VPS:
			c.vps = a.Nalus[0]
		case hevc.NALU_SPS:
			c.sps = a.Nalus[0]
		case hevc.NALU_PPS:
			c.pps = a.Nalus[0]
		}
	}
	if c.vps == nil || c.sps == nil || c.pps == nil {
		return fmt.Errorf("hvcC lacks a VPS, SPS or PPS")
	}
	c.lengthSize = int(rec.LengthSizeMinusOne) + 1
	return nil
}

// nalus splits a block payload of length-prefixed NAL units.
func (c *codec) nalus(payload []byte) ([][]byte, error) {
	var out [][]byte
	for len(payload) > 0 {
		if len(payload) < c.lengthSize {
			return nil, fmt.Errorf("%w: truncated NAL unit length", ErrInvalidMediaFrame)
		}
		n := 0
		for _, b := range payload[:c.lengthSize] {
			n = n<<8 | int(b)
		}
		payload = payload[c.lengthSize:]
		if n == 0 || n > len(payload) {
			return nil, fmt.Errorf("%w: NAL unit of %d bytes in %d", ErrInvalidMediaFrame, n, len(payload))
		}
		out = append(out, payload[:n])
		payload = payload[n:]
	}
	return out, nil
}

// avcc returns the payload with 4-byte NAL unit lengths, as fragmented MP4 samples
// carry them; it is the payload itself when the producer already used 4 bytes.
func (c *codec) avcc(payload []byte) ([]byte, error) {
	if c.lengthSize == 4 {
		if _, err := c.nalus(payload); err != nil {
			return nil, err
		}
		return payload, nil
	}
	nalus, err := c.nalus(payload)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(payload)+4*len(nalus))
	for _, n := range nalus {
		out = append(out, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out, nil
}
