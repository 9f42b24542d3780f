package streaming

import (
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/streams"
)

// Enumerations of the kinesis-video-archived-media 2017-09-30 model
// (kvs-protocol.md §7.5, §7.6).
const (
	ModeLive       = "LIVE"
	ModeLiveReplay = "LIVE_REPLAY"
	ModeOnDemand   = "ON_DEMAND"

	SelectProducerTimestamp = "PRODUCER_TIMESTAMP"
	SelectServerTimestamp   = "SERVER_TIMESTAMP"

	ContainerFMP4   = "FRAGMENTED_MP4"
	ContainerMPEGTS = "MPEG_TS"

	DiscontinuityAlways = "ALWAYS"
	DiscontinuityNever  = "NEVER"
	DiscontinuityOnGap  = "ON_DISCONTINUITY"

	DisplayAlways = "ALWAYS"
	DisplayNever  = "NEVER"
)

// Limits of the model and the developer guide.
const (
	minExpires        = 300
	maxExpires        = 43200
	defaultExpires    = 300
	maxResults        = 5000
	defaultLiveMax    = 5
	defaultOnDemand   = 1000
	maxRange          = 24 * time.Hour
	liveLookback      = 30 * time.Second // LIVE needs a fragment this recent
	discontinuityGap  = 50 * time.Millisecond
	maxSessionsStream = 10
)

// HLSInput is the GetHLSStreamingSessionURL request.
type HLSInput struct {
	streams.Ref
	PlaybackMode                    *string               `json:"PlaybackMode"`
	HLSFragmentSelector             *api.FragmentSelector `json:"HLSFragmentSelector"`
	ContainerFormat                 *string               `json:"ContainerFormat"`
	DiscontinuityMode               *string               `json:"DiscontinuityMode"`
	DisplayFragmentTimestamp        *string               `json:"DisplayFragmentTimestamp"`
	Expires                         *int64                `json:"Expires"`
	MaxMediaPlaylistFragmentResults *int64                `json:"MaxMediaPlaylistFragmentResults"`
}

// HLSOutput is the GetHLSStreamingSessionURL response.
type HLSOutput struct {
	HLSStreamingSessionURL string `json:"HLSStreamingSessionURL"`
}

// DASHInput is the GetDASHStreamingSessionURL request.
type DASHInput struct {
	streams.Ref
	PlaybackMode               *string               `json:"PlaybackMode"`
	DASHFragmentSelector       *api.FragmentSelector `json:"DASHFragmentSelector"`
	DisplayFragmentTimestamp   *string               `json:"DisplayFragmentTimestamp"`
	DisplayFragmentNumber      *string               `json:"DisplayFragmentNumber"`
	Expires                    *int64                `json:"Expires"`
	MaxManifestFragmentResults *int64                `json:"MaxManifestFragmentResults"`
}

// DASHOutput is the GetDASHStreamingSessionURL response.
type DASHOutput struct {
	DASHStreamingSessionURL string `json:"DASHStreamingSessionURL"`
}

// common is what both requests share, validated once.
type common struct {
	mode       string
	selector   *api.FragmentSelector
	expires    *int64
	maxResults *int64
}

// validate checks the members both requests share against the model and the
// range rules of each playback mode, and returns the session's settings.
func (c common) validate(v *api.Validator, selectorName, maxName string) {
	v.Enum("PlaybackMode", &c.mode, ModeLive, ModeLiveReplay, ModeOnDemand)
	v.Range("Expires", c.expires, minExpires, maxExpires)
	v.Range(maxName, c.maxResults, 1, maxResults)
	if s := c.selector; s != nil {
		v.Enum(selectorName+".FragmentSelectorType", s.FragmentSelectorType, SelectProducerTimestamp, SelectServerTimestamp)
	}
}

// rangeError checks the selector's range against the mode (kvs-protocol.md §7.5).
func (c common) rangeError(selectorName string) error {
	var r *api.TimestampRange
	if c.selector != nil {
		r = c.selector.TimestampRange
	}
	switch c.mode {
	case ModeLive:
		if r != nil {
			return api.InvalidArgument("%s.TimestampRange must not be set with PlaybackMode LIVE.", selectorName)
		}
	case ModeLiveReplay:
		if r == nil || r.StartTimestamp == nil {
			return api.InvalidArgument("%s.TimestampRange.StartTimestamp is required with PlaybackMode LIVE_REPLAY.", selectorName)
		}
	case ModeOnDemand:
		if r == nil || r.StartTimestamp == nil || r.EndTimestamp == nil {
			return api.InvalidArgument("%s.TimestampRange with StartTimestamp and EndTimestamp is required with PlaybackMode ON_DEMAND.", selectorName)
		}
	}
	if r != nil && r.StartTimestamp != nil && r.EndTimestamp != nil {
		start, end := r.StartTimestamp.Time, r.EndTimestamp.Time
		if !end.After(start) {
			return api.InvalidArgument("%s.TimestampRange.EndTimestamp must be after StartTimestamp.", selectorName)
		}
		if end.Sub(start) > maxRange {
			return api.InvalidArgument("%s.TimestampRange must not span more than 24 hours.", selectorName)
		}
	}
	return nil
}
