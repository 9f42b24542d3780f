package access

import (
	"slices"
	"strings"
)

// actionPrefix is the IAM service prefix of every action in a policy.
const actionPrefix = "kinesisvideo:"

// actions are the IAM action names (case-sensitive, without the prefix) that the server
// authorizes: the stream APIs of the control plane, PutMedia/GetMedia and archived media.
var actions = []string{
	// Control plane (spec §3).
	"CreateStream", "DeleteStream", "DescribeStream", "ListStreams", "UpdateStream",
	"UpdateDataRetention", "GetDataEndpoint",
	"TagStream", "UntagStream", "ListTagsForStream", "TagResource", "UntagResource", "ListTagsForResource",
	"DescribeStreamStorageConfiguration", "UpdateStreamStorageConfiguration",
	"DescribeImageGenerationConfiguration", "UpdateImageGenerationConfiguration",
	"DescribeNotificationConfiguration", "UpdateNotificationConfiguration",
	"DescribeMediaStorageConfiguration", "UpdateMediaStorageConfiguration",
	"DescribeMappedResourceConfiguration",
	// Media (spec §4, §5).
	"PutMedia", "GetMedia",
	// Archived media (spec §7).
	"ListFragments", "GetMediaForFragmentList", "GetClip", "GetImages",
	"GetHLSStreamingSessionURL", "GetDASHStreamingSessionURL",
}

// accountActions are the actions that name no stream; Allowed with streamName "" asks whether the
// key may call them at all.
var accountActions = []string{"ListStreams"}

// Actions returns every action name Allowed knows, without the "kinesisvideo:" prefix, sorted.
// The server can test that each operation it routes is in this list.
func Actions() []string {
	s := slices.Clone(actions)
	slices.Sort(s)
	return s
}

func knownAction(name string) bool { return slices.Contains(actions, name) }

// suggestAction returns the correctly cased name for a case-insensitive match, or "".
func suggestAction(name string) string {
	for _, a := range actions {
		if strings.EqualFold(a, name) {
			return a
		}
	}
	return ""
}
