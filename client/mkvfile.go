package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/openkvs/openkvs/mkv"
)

// ErrNewSetup is returned, wrapped, by MKVWriter.Write when a fragment's
// codec setup differs from the file's: one Matroska file cannot switch to
// other tracks or codec data (players decode on with the first setup).
var ErrNewSetup = errors.New("the stream's codec setup changed")

// MKVWriter writes fragments read with Get as a playable Matroska file.
//
// A GetMedia payload repeats the stream header in every chunk, each a
// document of its own (kvs-protocol.md §5.3); players read the second
// document's Segment as a stray element. MKVWriter writes the header once,
// with its unknown-size Segment, and then each fragment's Cluster and the
// producer elements that followed it, so that consecutive fragments form
// one Segment, across producer sessions too as long as the codec setup
// (tracks, codec data, timecode scale) stays the same. KVS's own tags are
// left out: they have no Targets, which every Matroska Tag must have
// (RFC 9559, Targets).
//
// Timestamps in the file increase strictly on every track: where a
// fragment would start at or before the latest frame written on one of its
// tracks (a producer that sent RELATIVE timecodes starting at 0 again, or
// two uploads of a file that overlap in time), its Cluster Timecode, and
// those of the fragments after it, are moved forward to follow that frame
// by one frame interval.
//
// A fragment that comes again, with the Cluster Timecode and producer
// timestamp of the one before it, is a producer re-sending a fragment
// whose connection broke: a live reader got what was sent of it before,
// as far as it went. Only its frames after those already written are
// written, so that the file has every frame once.
//
// Where the codec setup changes, Write returns ErrNewSetup: call Next to
// start another file and Write the fragment again.
type MKVWriter struct {
	w      io.Writer
	key    []byte // codec setup of the file; nil before its first fragment
	tracks map[uint64]*trackTimes
	shift  int64 // added to Cluster timecodes, in TimecodeScale units
	last   struct {
		timecode int64 // the latest fragment's Cluster Timecode, as written
		producer time.Time
	}
}

// trackTimes is what the writer knows of one track's frames in the file.
type trackTimes struct {
	latest   int64 // the latest frame's timestamp, as written
	interval int64 // the smallest step between consecutive frames seen
}

// NewMKVWriter returns a writer of a Matroska file to w.
func NewMKVWriter(w io.Writer) *MKVWriter {
	return &MKVWriter{w: w}
}

// Next makes the writer start a new file in w.
func (m *MKVWriter) Next(w io.Writer) {
	*m = MKVWriter{w: w}
}

// Write appends f to the file.
func (m *MKVWriter) Write(f *Fragment) error {
	key := setupKey(f.Header)
	if m.key != nil && !bytes.Equal(key, m.key) {
		return fmt.Errorf("fragment %s: %w", f.Number, ErrNewSetup)
	}
	tc, blocks, err := clusterBlocks(f)
	if err != nil {
		return err
	}
	if m.key == nil {
		if _, err := m.w.Write(f.Header); err != nil {
			return fmt.Errorf("write header of fragment %s: %w", f.Number, err)
		}
		m.key, m.tracks = key, map[uint64]*trackTimes{}
	} else if int64(tc)+m.shift == m.last.timecode && f.ProducerTime.Equal(m.last.producer) {
		blocks = slices.DeleteFunc(blocks, func(b block) bool { return int64(tc)+m.shift+b.rel <= m.tracks[b.track].latestOr(-1<<62) })
		if len(blocks) == 0 {
			return nil
		}
		return m.write(f, tc, resent(f.Cluster, uint64(int64(tc)+m.shift), blocks), blocks)
	}
	for _, b := range blocks {
		if t := m.tracks[b.track]; t != nil && int64(tc)+m.shift+b.rel <= t.latest {
			m.shift += t.latest + max(t.interval, 1) - (int64(tc) + m.shift + b.rel)
		}
	}
	cluster := f.Cluster
	if m.shift != 0 {
		if cluster, err = mkv.SetClusterTimecode(f.Cluster, uint64(int64(tc)+m.shift)); err != nil {
			return fmt.Errorf("fragment %s: %w", f.Number, err)
		}
	}
	return m.write(f, tc, cluster, blocks)
}

// write writes a fragment's Cluster as it is to go out, and its trailing
// elements, and notes the times of its blocks.
func (m *MKVWriter) write(f *Fragment, tc uint64, cluster []byte, blocks []block) error {
	if _, err := m.w.Write(cluster); err != nil {
		return fmt.Errorf("write fragment %s: %w", f.Number, err)
	}
	if _, err := m.w.Write(f.Trailing); err != nil {
		return fmt.Errorf("write fragment %s: %w", f.Number, err)
	}
	m.last.timecode, m.last.producer = int64(tc)+m.shift, f.ProducerTime
	prev := map[uint64]int64{}
	for _, b := range blocks {
		t := m.tracks[b.track]
		if t == nil {
			t = &trackTimes{latest: -1 << 62}
			m.tracks[b.track] = t
		}
		t.latest = max(t.latest, int64(tc)+m.shift+b.rel)
		if p, ok := prev[b.track]; ok {
			if step := b.rel - p; step > 0 && (t.interval == 0 || step < t.interval) {
				t.interval = step
			}
		}
		prev[b.track] = b.rel
	}
	return nil
}

// latestOr is the latest frame's timestamp, or def for a track without
// frames yet.
func (t *trackTimes) latestOr(def int64) int64 {
	if t == nil {
		return def
	}
	return t.latest
}

// resent is a Cluster of unknown size with Timecode tc and the given
// blocks of cluster.
func resent(cluster []byte, tc uint64, blocks []block) []byte {
	out := []byte{0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xE7, 0x88}
	out = binary.BigEndian.AppendUint64(out, tc)
	for _, b := range blocks {
		out = append(out, cluster[b.start:b.end]...)
	}
	return out
}

// block is one SimpleBlock or BlockGroup of a Cluster: its track, its
// timecode relative to the Cluster's, and where its bytes are.
type block struct {
	track      uint64
	rel        int64
	start, end int
}

// clusterBlocks returns a fragment's Cluster Timecode and its blocks, in
// the order of the Cluster.
func clusterBlocks(f *Fragment) (uint64, []block, error) {
	sp := mkv.NewSplitter(io.MultiReader(bytes.NewReader(f.Header), bytes.NewReader(f.Cluster)), mkv.SplitterOptions{})
	var tc uint64
	var blocks []block
	off := -len(f.Header) // of the event in f.Cluster: the events' bytes are the input's, in order
	for {
		ev, err := sp.Next()
		if err == io.EOF {
			return tc, blocks, nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("fragment %s: %w", f.Number, err)
		}
		switch e := ev.(type) {
		case *mkv.FragmentStart:
			tc = e.Timecode
		case *mkv.Frame:
			blocks = append(blocks, block{track: e.Track, rel: int64(e.Timecode), start: off, end: off + len(e.Data)})
		}
		off += len(ev.Bytes())
	}
}

// setupKey is what must match for two chunk headers to share a Segment:
// the codec setup, that is the EBML header, the TimecodeScale and the
// TrackEntry elements without their TrackUID. Left out are what differs
// between two sessions of the same camera without changing how its frames
// decode: Info's SegmentUID, dates and application names, the TrackUIDs
// muxers pick at random, and the Tags (KVS replays producer Tags that came
// before Info only in a session's first chunk, kvs-protocol.md §5.3 note
// A). A header that does not parse is compared whole.
func setupKey(h []byte) []byte {
	r := mkv.NewReader(bytes.NewReader(h))
	key := make([]byte, 0, len(h))
	for {
		e, err := r.Next()
		if err == io.EOF {
			return key
		}
		if err != nil {
			return h
		}
		switch {
		case e.ID == mkv.IDSegment || e.ID == mkv.IDInfo || e.ID == mkv.IDTracks:
			if err := r.Enter(); err != nil {
				return h
			}
			continue
		case e.Unknown() || e.DataOffset()+e.Size > int64(len(h)):
			return h
		}
		whole := h[e.Offset : e.DataOffset()+e.Size]
		switch {
		case e.ID == mkv.IDEBML || e.ID == mkv.IDTimecodeScale:
			key = append(key, whole...)
		case e.ID == mkv.IDTrackEntry:
			key = appendTrackKey(key, whole[e.HeaderLen:])
		}
	}
}

// appendTrackKey appends a TrackEntry's children but its TrackUID, with a
// separator so that entries stay apart.
func appendTrackKey(key, entry []byte) []byte {
	r := mkv.NewReader(bytes.NewReader(entry))
	key = append(key, byte(mkv.IDTrackEntry))
	for {
		e, err := r.Next()
		if err == io.EOF {
			return key
		}
		if err != nil || e.Unknown() || e.DataOffset()+e.Size > int64(len(entry)) {
			return append(key, entry...) // the whole entry then
		}
		if e.ID != mkv.IDTrackUID {
			key = append(key, entry[e.Offset:e.DataOffset()+e.Size]...)
		}
	}
}
