// Package playback remuxes stored KVS fragments (the producer's MKV header and one
// Cluster) into the containers players read: fragmented MP4 (an init segment of
// ftyp+moov per track and one moof+mdat per fragment, as HLS and DASH sessions serve
// them) and MPEG-TS (one self-contained segment per fragment). It copies the coded
// frames unchanged; it never transcodes and knows nothing about HTTP.
//
// Codecs: H.264 (V_MPEG4/ISO/AVC and the documented V_MPEG/ISO/AVC), H.265
// (V_MPEGH/ISO/HEVC, V_MPEG/ISO/HEVC) and AAC (A_AAC), following kvs-protocol.md §7.5.
// G.711 (A_MS/ACM) is refused with ErrUnsupportedCodec for now: ISO BMFF has no
// standard G.711 sample entry that browsers' Media Source Extensions accept.
//
// Timing: Matroska stores presentation times in decode order. Decode times are the
// sorted presentation times shifted back by the fragment's largest reordering delay
// (zero without B-frames), so composition offsets are never negative: MPEG-TS needs
// that, and ffmpeg's MP4 reader would otherwise move every picture by the largest
// negative offset. A caller's timeline must therefore start at least that delay
// before its first fragment.
//
// Init segments and TS packets are written with github.com/bluenviron/mediacommon/v2;
// media segments (moof and mdat) with github.com/Eyevinn/mp4ff, whose hand-coded boxes
// remux several times faster than mediacommon's reflective writer and let the mdat refer to
// the frames instead of copying them; codec private data is parsed with mp4ff too. This
// package only maps Matroska tracks and blocks onto them (kvs-playback.md §7 records the
// trials that chose both libraries).
package playback
