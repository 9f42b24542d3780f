package streams

import (
	"github.com/openkvs/openkvs/api"
)

// Field patterns of the kinesisvideo 2017-09-30 model (kvs-protocol.md §3.1).
var (
	patternName      = api.Match(`[a-zA-Z0-9_.-]+`)
	patternMediaType = api.Match(`[\w\-\.\+]+/[\w\-\.\+]+(,[\w\-\.\+]+/[\w\-\.\+]+)*`)
	patternAny       = api.Match(`.+`)
	patternARN       = api.Match(`arn:[a-z\d-]+:kinesisvideo:[a-z0-9-]+:[0-9]+:[a-z]+/[a-zA-Z0-9_.-]+/[0-9]+`)
	patternVersion   = api.Match(`[a-zA-Z0-9]+`)
	patternToken     = api.Match(`[a-zA-Z0-9+/=]*`)
	patternTagKey    = api.Match(`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`)
	patternTagValue  = api.Match(`[\p{L}\p{Z}\p{N}_.:/=+\-@]*`)
)

// Limits from the model and the KVS documentation.
const (
	MaxTags           = 50
	MaxRetentionHours = 87600 // 10 years
	MaxListStreams    = 10000
)

// API names accepted by GetDataEndpoint.
var apiNames = []string{"PUT_MEDIA", "GET_MEDIA", "LIST_FRAGMENTS", "GET_MEDIA_FOR_FRAGMENT_LIST",
	"GET_HLS_STREAMING_SESSION_URL", "GET_DASH_STREAMING_SESSION_URL", "GET_CLIP", "GET_IMAGES"}

// Ref names a stream by name or ARN, as most operations do.
type Ref struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
}

// Label names the stream for logs: its name, else its ARN.
func (r Ref) Label() string {
	switch {
	case r.StreamName != nil:
		return *r.StreamName
	case r.StreamARN != nil:
		return *r.StreamARN
	}
	return ""
}

func (r *Ref) validate(v *api.Validator) {
	v.String("StreamName", r.StreamName, 1, 256, patternName)
	v.String("StreamARN", r.StreamARN, 1, 1024, patternARN)
}

// StorageConfiguration is the stream's storage tier.
type StorageConfiguration struct {
	DefaultStorageTier *string `json:"DefaultStorageTier"`
}

func (c *StorageConfiguration) validate(v *api.Validator, name string) {
	v.Required(name+".DefaultStorageTier", c.DefaultStorageTier != nil)
	v.Enum(name+".DefaultStorageTier", c.DefaultStorageTier, "HOT", "WARM")
}

func validateTags(v *api.Validator, name string, tags map[string]string) {
	for k, val := range tags {
		v.Text(name+".key", k, 1, 128, patternTagKey)
		v.Text(name+".value", val, 0, 256, patternTagValue)
	}
}

func validateTagKeys(v *api.Validator, name string, keys []string) {
	v.Count(name, len(keys), 1, MaxTags)
	for _, k := range keys {
		v.Text(name+".member", k, 1, 128, patternTagKey)
	}
}

// CreateStreamInput is the CreateStream request.
type CreateStreamInput struct {
	StreamName                 *string               `json:"StreamName"`
	DeviceName                 *string               `json:"DeviceName"`
	MediaType                  *string               `json:"MediaType"`
	KmsKeyId                   *string               `json:"KmsKeyId"`
	DataRetentionInHours       *int64                `json:"DataRetentionInHours"`
	Tags                       map[string]string     `json:"Tags"`
	StreamStorageConfiguration *StorageConfiguration `json:"StreamStorageConfiguration"`
}

// CreateStreamOutput is the CreateStream response.
type CreateStreamOutput struct {
	StreamARN string `json:"StreamARN"`
}

// StreamInfo describes a stream in DescribeStream and ListStreams.
type StreamInfo struct {
	DeviceName           string        `json:"DeviceName,omitempty"`
	StreamName           string        `json:"StreamName"`
	StreamARN            string        `json:"StreamARN"`
	MediaType            string        `json:"MediaType,omitempty"`
	KmsKeyId             string        `json:"KmsKeyId"`
	Version              string        `json:"Version"`
	Status               string        `json:"Status"`
	CreationTime         api.Timestamp `json:"CreationTime"`
	DataRetentionInHours int64         `json:"DataRetentionInHours"`
}

// DescribeStreamOutput is the DescribeStream response.
type DescribeStreamOutput struct {
	StreamInfo StreamInfo `json:"StreamInfo"`
}

// NameCondition filters ListStreams by name.
type NameCondition struct {
	ComparisonOperator *string `json:"ComparisonOperator"`
	ComparisonValue    *string `json:"ComparisonValue"`
}

// ListStreamsInput is the ListStreams request.
type ListStreamsInput struct {
	MaxResults          *int64         `json:"MaxResults"`
	NextToken           *string        `json:"NextToken"`
	StreamNameCondition *NameCondition `json:"StreamNameCondition"`
}

// ListStreamsOutput is the ListStreams response.
type ListStreamsOutput struct {
	StreamInfoList []StreamInfo `json:"StreamInfoList"`
	NextToken      string       `json:"NextToken,omitempty"`
}

// DeleteStreamInput is the DeleteStream request.
type DeleteStreamInput struct {
	StreamARN      *string `json:"StreamARN"`
	CurrentVersion *string `json:"CurrentVersion"`
}

// UpdateStreamInput is the UpdateStream request.
type UpdateStreamInput struct {
	Ref
	CurrentVersion *string `json:"CurrentVersion"`
	DeviceName     *string `json:"DeviceName"`
	MediaType      *string `json:"MediaType"`
}

// UpdateDataRetentionInput is the UpdateDataRetention request.
type UpdateDataRetentionInput struct {
	Ref
	CurrentVersion             *string `json:"CurrentVersion"`
	Operation                  *string `json:"Operation"`
	DataRetentionChangeInHours *int64  `json:"DataRetentionChangeInHours"`
}

// GetDataEndpointInput is the GetDataEndpoint request.
type GetDataEndpointInput struct {
	Ref
	APIName *string `json:"APIName"`
}

// GetDataEndpointOutput is the GetDataEndpoint response.
type GetDataEndpointOutput struct {
	DataEndpoint string `json:"DataEndpoint"`
}

// TagStreamInput is the TagStream request.
type TagStreamInput struct {
	Ref
	Tags map[string]string `json:"Tags"`
}

// UntagStreamInput is the UntagStream request.
type UntagStreamInput struct {
	Ref
	TagKeyList []string `json:"TagKeyList"`
}

// ListTagsForStreamInput is the ListTagsForStream request.
type ListTagsForStreamInput struct {
	Ref
	NextToken *string `json:"NextToken"`
}

// TagsOutput is the ListTagsForStream and ListTagsForResource response.
type TagsOutput struct {
	Tags map[string]string `json:"Tags"`
}

// Tag is one key/value pair of TagResource.
type Tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

// TagResourceInput is the TagResource request.
type TagResourceInput struct {
	ResourceARN *string `json:"ResourceARN"`
	Tags        []Tag   `json:"Tags"`
}

// UntagResourceInput is the UntagResource request.
type UntagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN"`
	TagKeyList  []string `json:"TagKeyList"`
}

// ListTagsForResourceInput is the ListTagsForResource request.
type ListTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN"`
	NextToken   *string `json:"NextToken"`
}

// StorageConfigurationOutput is the DescribeStreamStorageConfiguration response.
type StorageConfigurationOutput struct {
	StreamName                 string               `json:"StreamName"`
	StreamARN                  string               `json:"StreamARN"`
	StreamStorageConfiguration StorageConfiguration `json:"StreamStorageConfiguration"`
}

// UpdateStorageConfigurationInput is the UpdateStreamStorageConfiguration request.
type UpdateStorageConfigurationInput struct {
	Ref
	CurrentVersion             *string               `json:"CurrentVersion"`
	StreamStorageConfiguration *StorageConfiguration `json:"StreamStorageConfiguration"`
}
