package media

import (
	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/streams"
)

// Patterns of the kinesis-video-media and kinesis-video-archived-media
// 2017-09-30 models (kvs-protocol.md §5.1, §7).
var (
	patternNumber    = api.Match(`^[0-9]+$`)
	patternToken     = api.Match(`^[a-zA-Z0-9_\.\-]+$`)
	patternNextToken = api.Match(`[a-zA-Z0-9+/]+={0,2}`)
)

// StartSelector types.
const (
	SelectNow               = "NOW"
	SelectEarliest          = "EARLIEST"
	SelectFragmentNumber    = "FRAGMENT_NUMBER"
	SelectProducerTimestamp = "PRODUCER_TIMESTAMP"
	SelectServerTimestamp   = "SERVER_TIMESTAMP"
	SelectContinuationToken = "CONTINUATION_TOKEN"
)

// StartSelector says where GetMedia starts.
type StartSelector struct {
	StartSelectorType   *string        `json:"StartSelectorType"`
	AfterFragmentNumber *string        `json:"AfterFragmentNumber"`
	StartTimestamp      *api.Timestamp `json:"StartTimestamp"`
	ContinuationToken   *string        `json:"ContinuationToken"`
}

// GetMediaInput is the GetMedia request.
type GetMediaInput struct {
	streams.Ref
	StartSelector *StartSelector `json:"StartSelector"`
}

// validate checks the request against the model and the selector's own
// required member.
func (in *GetMediaInput) validate() error {
	var v api.Validator
	v.String("StreamName", in.StreamName, 1, 256, api.Match(`[a-zA-Z0-9_.-]+`))
	v.String("StreamARN", in.StreamARN, 1, 1024, api.Match(`arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+`))
	v.Required("StartSelector", in.StartSelector != nil)
	if s := in.StartSelector; s != nil {
		v.Required("StartSelector.StartSelectorType", s.StartSelectorType != nil)
		v.Enum("StartSelector.StartSelectorType", s.StartSelectorType, SelectFragmentNumber, SelectServerTimestamp,
			SelectProducerTimestamp, SelectNow, SelectEarliest, SelectContinuationToken)
		v.String("StartSelector.AfterFragmentNumber", s.AfterFragmentNumber, 1, 128, patternNumber)
		v.String("StartSelector.ContinuationToken", s.ContinuationToken, 1, 128, patternToken)
	}
	if err := v.Err(); err != nil {
		return err
	}
	s := in.StartSelector
	switch *s.StartSelectorType {
	case SelectFragmentNumber:
		if s.AfterFragmentNumber == nil {
			return api.InvalidArgument("StartSelector.AfterFragmentNumber is required with StartSelectorType FRAGMENT_NUMBER.")
		}
	case SelectProducerTimestamp, SelectServerTimestamp:
		if s.StartTimestamp == nil {
			return api.InvalidArgument("StartSelector.StartTimestamp is required with StartSelectorType %s.", *s.StartSelectorType)
		}
	case SelectContinuationToken:
		if s.ContinuationToken == nil {
			return api.InvalidArgument("StartSelector.ContinuationToken is required with StartSelectorType CONTINUATION_TOKEN.")
		}
		if !patternNumber.MatchString(*s.ContinuationToken) {
			return api.InvalidArgument("StartSelector.ContinuationToken %q is not a token GetMedia returned.", *s.ContinuationToken)
		}
	}
	return nil
}
