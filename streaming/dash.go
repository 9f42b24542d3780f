package streaming

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// kvsNamespace is the XML namespace of the kvs:fn and kvs:ts attributes. AWS
// documents the attributes but no real manifest shows the namespace URI
// (kvs-playback.md §4): this one is openkvs's choice.
const kvsNamespace = "urn:openkvs:kinesisvideo:dash:2024"

// DASHManifest renders a session's MPD: one Period per codec setup, an
// AdaptationSet per track, and a SegmentTemplate whose $Number$ is the
// session index of each fragment over a SegmentTimeline in milliseconds since
// the Unix epoch (kvs-playback.md §4; the layout is openkvs's, no real AWS MPD
// being public).
func (s *Service) DASHManifest(ctx context.Context, token string) (*Playlist, error) {
	sess, err := s.open(ctx, token, kindDASH, func(l limiters) error { return allow(l.playlist, "manifest") })
	if err != nil {
		return nil, err
	}
	_, stats, err := s.describe(ctx, sess)
	if err != nil {
		return nil, err
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	entries := sess.entries
	tok := sess.tok
	final := sess.ended()
	first := sess.fragmentTime(entries[0].f)
	last := entries[len(entries)-1]
	end := sess.fragmentTime(last.f).Add(last.f.Duration)
	q := "SessionToken=" + token

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:kvs="%s" profiles="urn:mpeg:dash:profile:isoff-live:2011"`, kvsNamespace)
	// Periods start at their first fragment's time; a static MPD counts from
	// the first fragment, a dynamic one from the epoch its timeline uses.
	base := time.Unix(0, 0)
	if final {
		base = first
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s"`, isoDuration(end.Sub(first)))
	} else {
		target := time.Second
		for _, e := range entries {
			target = max(target, e.f.Duration)
		}
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z" publishTime="%s" minimumUpdatePeriod="PT1S" timeShiftBufferDepth="%s" suggestedPresentationDelay="%s"`,
			s.opts.Now().UTC().Format(time.RFC3339), isoDuration(end.Sub(first)), isoDuration(target))
	}
	b.WriteString(` minBufferTime="PT2S">` + "\n")
	for p := 0; p < len(entries); {
		n := p + 1
		for n < len(entries) && entries[n].init == entries[p].init {
			n++
		}
		period := entries[p:n]
		h, err := s.header(ctx, sess.headers[period[0].init])
		if err != nil {
			return nil, err
		}
		infos, err := playable(h.info, tok.Kind)
		if err != nil {
			return nil, err
		}
		start := sess.fragmentTime(period[0].f)
		fmt.Fprintf(&b, "  <Period id=\"%d\" start=\"%s\">\n", period[0].init, isoDuration(start.Sub(base)))
		for _, in := range infos {
			if in.Video {
				b.WriteString(`    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">` + "\n")
				fmt.Fprintf(&b, `      <Representation id="%d" codecs="%s" bandwidth="%d" width="%d" height="%d"`, in.Number, in.Codec, stats.bandwidth, in.Width, in.Height)
				if stats.frameRate > 0 {
					fmt.Fprintf(&b, ` frameRate="%.0f"`, stats.frameRate)
				}
				b.WriteString(">\n")
			} else {
				b.WriteString(`    <AdaptationSet contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1">` + "\n")
				fmt.Fprintf(&b, `      <Representation id="%d" codecs="%s" bandwidth="128000" audioSamplingRate="%d">`+"\n", in.Number, in.Codec, in.SampleRate)
			}
			fmt.Fprintf(&b, `        <SegmentTemplate timescale="1000" startNumber="%d" presentationTimeOffset="%d" initialization="getMP4InitFragment.mp4?TrackNumber=%d&amp;SequenceNumber=%d&amp;%s" media="getMP4MediaFragment.mp4?FragmentNumber=$Number$&amp;TrackNumber=%d&amp;%s">`+"\n",
				period[0].index, start.UnixMilli(), in.Number, period[0].init, q, in.Number, q)
			b.WriteString("          <SegmentTimeline>\n")
			for _, e := range period {
				fmt.Fprintf(&b, `            <S t="%d" d="%d"`, sess.fragmentTime(e.f).UnixMilli(), e.f.Duration.Milliseconds())
				if tok.DisplayNumber {
					fmt.Fprintf(&b, ` kvs:fn="%s"`, e.f.Number)
				}
				if tok.DisplayTimestamp {
					fmt.Fprintf(&b, ` kvs:ts="%d"`, sess.fragmentTime(e.f).UnixMilli())
				}
				b.WriteString("/>\n")
			}
			b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n")
		}
		b.WriteString("  </Period>\n")
		p = n
	}
	b.WriteString("</MPD>\n")
	return &Playlist{Body: []byte(b.String()), Final: final}, nil
}

// isoDuration formats d as an xs:duration in seconds with milliseconds.
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}
