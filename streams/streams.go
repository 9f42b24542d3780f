// Package streams is the Kinesis Video Streams control plane: stream
// lifecycle, metadata, tags, retention, storage tier and data endpoints, as
// the kinesisvideo 2017-09-30 model defines them. It validates every input
// against the model's constraints and keeps streams in a store.Catalog; the
// HTTP layer only decodes requests and encodes what this package returns.
//
// Choices where AWS behaviour is asynchronous or unspecified
// (kvs-protocol.md §3.4): streams are ACTIVE as soon as CreateStream returns
// and updates apply at once (no CREATING/UPDATING phase to poll through);
// tagging does not change Version; ListStreams is ordered by name; more than
// 50 tags on a stream, in one request or in total, is
// TagsPerResourceExceededLimitException.
package streams

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/store"
)

// DefaultStorageTier is the tier of a stream created without one.
const DefaultStorageTier = "HOT"

// Service implements the control-plane operations.
type Service struct {
	catalog store.Catalog
	region  string
	account string
	now     func() time.Time

	// mu serializes read-modify-write of stream metadata so that concurrent
	// tag calls, which do not change Version, cannot lose each other's tags.
	mu sync.Mutex
	// onChange is told about every stream that was deleted or changed, so
	// the data plane can end ingest sessions or apply a new retention.
	onChange []func(old, new *store.Stream)
	router   Router // nil: every endpoint is this server
}

// Router picks the node whose URL GetDataEndpoint returns, in a cluster.
type Router interface {
	// DataEndpoint returns the base URL serving apiName for st; self is
	// this server's.
	DataEndpoint(ctx context.Context, st *store.Stream, apiName, self string) (string, error)
}

// SetRouter makes GetDataEndpoint ask r; without one it answers with this
// server's URL.
func (s *Service) SetRouter(r Router) { s.router = r }

// New returns a Service for one region and account.
func New(catalog store.Catalog, region, account string) *Service {
	return &Service{catalog: catalog, region: region, account: account, now: time.Now}
}

// OnChange registers fn to run after a stream changes (new is the stream
// after the change) or is deleted (new is nil).
func (s *Service) OnChange(fn func(old, new *store.Stream)) { s.onChange = append(s.onChange, fn) }

func (s *Service) changed(old, new *store.Stream) {
	for _, fn := range s.onChange {
		fn(old, new)
	}
}

// Catalog returns the catalog the service keeps streams in.
func (s *Service) Catalog() store.Catalog { return s.catalog }

// ARN returns the ARN of a stream created at t.
func (s *Service) ARN(name string, t time.Time) string {
	return fmt.Sprintf("arn:aws:kinesisvideo:%s:%s:stream/%s/%d", s.region, s.account, name, t.UnixMilli())
}

// DefaultKMSKeyID is the AWS-managed key real KVS reports when none was given.
func (s *Service) DefaultKMSKeyID() string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:alias/aws/kinesisvideo", s.region, s.account)
}

const versionAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newVersion returns a 20-character alphanumeric version like real KVS's.
func newVersion() string {
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		b[i] = versionAlphabet[int(b[i])%len(versionAlphabet)]
	}
	return string(b)
}

// Resolve finds the stream a request names by StreamName or StreamARN.
// Exactly one is usually given; when both are, they must agree.
func (s *Service) Resolve(ctx context.Context, ref Ref) (*store.Stream, error) {
	var v api.Validator
	ref.validate(&v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.resolve(ctx, ref)
}

func (s *Service) resolve(ctx context.Context, ref Ref) (*store.Stream, error) {
	var st *store.Stream
	var err error
	switch {
	case ref.StreamARN != nil:
		st, err = s.catalog.StreamByARN(ctx, *ref.StreamARN)
		if err == nil && ref.StreamName != nil && *ref.StreamName != st.Name {
			return nil, api.InvalidArgument("StreamName %q and StreamARN %q name different streams", *ref.StreamName, *ref.StreamARN)
		}
	case ref.StreamName != nil:
		st, err = s.catalog.StreamByName(ctx, *ref.StreamName)
	default:
		return nil, api.InvalidArgument("Either StreamName or StreamARN must be specified")
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.StreamNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("resolve stream: %w", err)
	}
	return st, nil
}

func info(st *store.Stream) StreamInfo {
	return StreamInfo{
		DeviceName:           st.DeviceName,
		StreamName:           st.Name,
		StreamARN:            st.ARN,
		MediaType:            st.MediaType,
		KmsKeyId:             st.KMSKeyID,
		Version:              st.Version,
		Status:               st.Status,
		CreationTime:         api.At(st.CreationTime),
		DataRetentionInHours: st.RetentionHours,
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// CreateStream creates an ACTIVE stream.
func (s *Service) CreateStream(ctx context.Context, in *CreateStreamInput) (*CreateStreamOutput, error) {
	var v api.Validator
	v.Required("StreamName", in.StreamName != nil)
	v.String("StreamName", in.StreamName, 1, 256, patternName)
	v.String("DeviceName", in.DeviceName, 1, 128, patternName)
	v.String("MediaType", in.MediaType, 1, 128, patternMediaType)
	v.String("KmsKeyId", in.KmsKeyId, 1, 2048, patternAny)
	v.Range("DataRetentionInHours", in.DataRetentionInHours, 0, MaxRetentionHours)
	if err := validateTagMap(&v, in.Tags, false); err != nil {
		return nil, err
	}
	if in.StreamStorageConfiguration != nil {
		in.StreamStorageConfiguration.validate(&v, "StreamStorageConfiguration")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	now := s.now().Truncate(time.Millisecond)
	st := &store.Stream{
		Name:         *in.StreamName,
		ARN:          s.ARN(*in.StreamName, now),
		DeviceName:   deref(in.DeviceName),
		MediaType:    deref(in.MediaType),
		KMSKeyID:     deref(in.KmsKeyId),
		Version:      newVersion(),
		Status:       store.StatusActive,
		CreationTime: now,
		StorageTier:  DefaultStorageTier,
		Tags:         in.Tags,
	}
	if st.KMSKeyID == "" {
		st.KMSKeyID = s.DefaultKMSKeyID()
	}
	if in.DataRetentionInHours != nil {
		st.RetentionHours = *in.DataRetentionInHours
	}
	if in.StreamStorageConfiguration != nil {
		st.StorageTier = *in.StreamStorageConfiguration.DefaultStorageTier
	}
	err := s.catalog.CreateStream(ctx, st)
	if errors.Is(err, store.ErrExists) {
		return nil, api.ResourceInUse("The stream %s already exists.", st.Name)
	}
	if err != nil {
		return nil, err
	}
	return &CreateStreamOutput{StreamARN: st.ARN}, nil
}

// DescribeStream returns a stream's metadata.
func (s *Service) DescribeStream(ctx context.Context, in *Ref) (*DescribeStreamOutput, error) {
	st, err := s.Resolve(ctx, *in)
	if err != nil {
		return nil, err
	}
	return &DescribeStreamOutput{StreamInfo: info(st)}, nil
}

// listScanRows is how many catalog rows ListStreams reads at a time while
// it looks for streams a filter lets through: memory stays bounded however
// many streams the filter hides.
const listScanRows = 1000

// ListStreams lists streams in name order, a page at a time. visible, when
// not nil, keeps only the streams a caller may see; pages are full all the
// same, and NextToken, set only when another visible stream follows, is
// the name of the last stream on the page, so that no token, returned or
// crafted, lists or reveals a hidden name.
func (s *Service) ListStreams(ctx context.Context, in *ListStreamsInput, visible func(name string) bool) (*ListStreamsOutput, error) {
	var v api.Validator
	v.Range("MaxResults", in.MaxResults, 1, MaxListStreams)
	v.String("NextToken", in.NextToken, 0, 1024, patternToken)
	prefix := ""
	if c := in.StreamNameCondition; c != nil {
		v.Enum("StreamNameCondition.ComparisonOperator", c.ComparisonOperator, "BEGINS_WITH")
		v.String("StreamNameCondition.ComparisonValue", c.ComparisonValue, 1, 256, patternName)
		prefix = deref(c.ComparisonValue)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	limit := MaxListStreams
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	after := ""
	if tok := deref(in.NextToken); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		if err != nil || !patternName.Match(b) {
			return nil, api.InvalidArgument("NextToken %q is not a token this API returned", tok)
		}
		after = string(b)
	}
	// One extra stream tells whether another page exists.
	list, err := s.scanStreams(ctx, prefix, after, limit+1, visible)
	if err != nil {
		return nil, err
	}
	out := &ListStreamsOutput{StreamInfoList: []StreamInfo{}}
	if len(list) > limit {
		list = list[:limit]
		out.NextToken = base64.StdEncoding.EncodeToString([]byte(list[limit-1].Name))
	}
	for _, st := range list {
		out.StreamInfoList = append(out.StreamInfoList, info(st))
	}
	return out, nil
}

// scanStreams returns the first n streams after the name after, with the
// prefix, that visible (nil: all) lets through, reading the catalog
// listScanRows at a time while a filter skips some.
func (s *Service) scanStreams(ctx context.Context, prefix, after string, n int, visible func(string) bool) ([]*store.Stream, error) {
	if visible == nil {
		return s.catalog.ListStreams(ctx, prefix, after, n)
	}
	var found []*store.Stream
	for {
		page, err := s.catalog.ListStreams(ctx, prefix, after, listScanRows)
		if err != nil {
			return nil, err
		}
		for _, st := range page {
			if !visible(st.Name) {
				continue
			}
			if found = append(found, st); len(found) == n {
				return found, nil
			}
		}
		if len(page) < listScanRows {
			return found, nil // the catalog has no more
		}
		after = page[len(page)-1].Name
	}
}

// DeleteStream deletes a stream and makes its data inaccessible at once.
func (s *Service) DeleteStream(ctx context.Context, in *DeleteStreamInput) error {
	var v api.Validator
	v.Required("StreamARN", in.StreamARN != nil)
	v.String("StreamARN", in.StreamARN, 1, 1024, patternARN)
	v.String("CurrentVersion", in.CurrentVersion, 1, 64, patternVersion)
	if err := v.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.resolve(ctx, Ref{StreamARN: in.StreamARN})
	if err != nil {
		return err
	}
	if in.CurrentVersion != nil && *in.CurrentVersion != st.Version {
		return versionMismatch(st, *in.CurrentVersion)
	}
	err = s.catalog.DeleteStream(ctx, st.ID)
	if errors.Is(err, store.ErrNotFound) {
		return api.StreamNotFound()
	}
	if err != nil {
		return err
	}
	s.changed(st, nil)
	return nil
}

func versionMismatch(st *store.Stream, given string) error {
	return api.VersionMismatch("The version %s does not match the current version of stream %s.", given, st.Name)
}

// update applies fn to the stream named by ref under the version check and
// stores the result with a new Version when bump is set.
func (s *Service) update(ctx context.Context, ref Ref, currentVersion *string, bump bool, fn func(*store.Stream) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return err
	}
	if currentVersion != nil && *currentVersion != st.Version {
		return versionMismatch(st, *currentVersion)
	}
	if st.Status != store.StatusActive {
		return api.ResourceInUse("The stream %s is %s, not ACTIVE.", st.Name, st.Status)
	}
	old := *st
	if err := fn(st); err != nil {
		return err
	}
	if bump {
		st.Version = newVersion()
	}
	err = s.catalog.UpdateStream(ctx, st, old.Version)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return api.StreamNotFound()
	case errors.Is(err, store.ErrVersionMismatch):
		return versionMismatch(&old, old.Version)
	case err != nil:
		return err
	}
	s.changed(&old, st)
	return nil
}

// UpdateStream changes a stream's device name or media type.
func (s *Service) UpdateStream(ctx context.Context, in *UpdateStreamInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	v.Required("CurrentVersion", in.CurrentVersion != nil)
	v.String("CurrentVersion", in.CurrentVersion, 1, 64, patternVersion)
	v.String("DeviceName", in.DeviceName, 1, 128, patternName)
	v.String("MediaType", in.MediaType, 1, 128, patternMediaType)
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, in.Ref, in.CurrentVersion, true, func(st *store.Stream) error {
		if in.DeviceName != nil {
			st.DeviceName = *in.DeviceName
		}
		if in.MediaType != nil {
			st.MediaType = *in.MediaType
		}
		return nil
	})
}

// UpdateDataRetention increases or decreases a stream's retention.
func (s *Service) UpdateDataRetention(ctx context.Context, in *UpdateDataRetentionInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	v.Required("CurrentVersion", in.CurrentVersion != nil)
	v.String("CurrentVersion", in.CurrentVersion, 1, 64, patternVersion)
	v.Required("Operation", in.Operation != nil)
	v.Enum("Operation", in.Operation, "INCREASE_DATA_RETENTION", "DECREASE_DATA_RETENTION")
	v.Required("DataRetentionChangeInHours", in.DataRetentionChangeInHours != nil)
	v.Range("DataRetentionChangeInHours", in.DataRetentionChangeInHours, 1, MaxRetentionHours)
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, in.Ref, in.CurrentVersion, true, func(st *store.Stream) error {
		change := *in.DataRetentionChangeInHours
		if *in.Operation == "DECREASE_DATA_RETENTION" {
			change = -change
		}
		next := st.RetentionHours + change
		if next < 0 || next > MaxRetentionHours {
			return api.InvalidArgument("The resulting data retention of %d hours is outside 0 to %d hours; the stream keeps data for %d hours.",
				next, MaxRetentionHours, st.RetentionHours)
		}
		st.RetentionHours = next
		return nil
	})
}

// GetDataEndpoint returns the base URL, without a path, that serves the
// named API for the stream; base is this server's public URL.
func (s *Service) GetDataEndpoint(ctx context.Context, in *GetDataEndpointInput, base string) (*GetDataEndpointOutput, error) {
	var v api.Validator
	in.Ref.validate(&v)
	v.Required("APIName", in.APIName != nil)
	v.Enum("APIName", in.APIName, apiNames...)
	if err := v.Err(); err != nil {
		return nil, err
	}
	st, err := s.resolve(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	if s.router != nil {
		if base, err = s.router.DataEndpoint(ctx, st, *in.APIName, base); err != nil {
			return nil, err
		}
	}
	return &GetDataEndpointOutput{DataEndpoint: base}, nil
}

func mergeTags(st *store.Stream, tags map[string]string) error {
	merged := make(map[string]string, len(st.Tags)+len(tags))
	for k, v := range st.Tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	if len(merged) > MaxTags {
		return api.TagsPerResourceExceeded("A stream can have at most %d tags; this request would leave %d", MaxTags, len(merged))
	}
	st.Tags = merged
	return nil
}

func removeTags(st *store.Stream, keys []string) {
	for _, k := range keys {
		delete(st.Tags, k)
	}
}

// validateTagMap checks a Tags map member. More than 50 tags is answered
// with TagsPerResourceExceededLimitException rather than a validation error.
func validateTagMap(v *api.Validator, tags map[string]string, required bool) error {
	if required {
		v.Required("Tags", tags != nil)
	}
	if tags == nil {
		return nil
	}
	if len(tags) > MaxTags {
		return api.TagsPerResourceExceeded("A stream can have at most %d tags; the request has %d", MaxTags, len(tags))
	}
	v.Count("Tags", len(tags), 1, MaxTags)
	validateTags(v, "Tags", tags)
	return nil
}

// TagStream adds or overwrites tags of a stream.
func (s *Service) TagStream(ctx context.Context, in *TagStreamInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	if err := validateTagMap(&v, in.Tags, true); err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, in.Ref, nil, false, func(st *store.Stream) error { return mergeTags(st, in.Tags) })
}

// UntagStream removes tags; unknown keys are ignored.
func (s *Service) UntagStream(ctx context.Context, in *UntagStreamInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	v.Required("TagKeyList", in.TagKeyList != nil)
	validateTagKeys(&v, "TagKeyList", in.TagKeyList)
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, in.Ref, nil, false, func(st *store.Stream) error {
		removeTags(st, in.TagKeyList)
		return nil
	})
}

// ListTagsForStream returns all of a stream's tags; at most 50 fit one page.
func (s *Service) ListTagsForStream(ctx context.Context, in *ListTagsForStreamInput) (*TagsOutput, error) {
	var v api.Validator
	in.Ref.validate(&v)
	v.String("NextToken", in.NextToken, 0, 1024, patternToken)
	if err := v.Err(); err != nil {
		return nil, err
	}
	st, err := s.resolve(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	return tagsOutput(st), nil
}

func tagsOutput(st *store.Stream) *TagsOutput {
	if st.Tags == nil {
		return &TagsOutput{Tags: map[string]string{}}
	}
	return &TagsOutput{Tags: st.Tags}
}

// resourceRef validates a ResourceARN; only stream ARNs name resources here.
func resourceRef(v *api.Validator, arn *string) Ref {
	v.Required("ResourceARN", arn != nil)
	v.String("ResourceARN", arn, 1, 1024, patternARN)
	return Ref{StreamARN: arn}
}

// TagResource tags a stream by its ARN.
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) error {
	var v api.Validator
	ref := resourceRef(&v, in.ResourceARN)
	v.Required("Tags", in.Tags != nil)
	if len(in.Tags) > MaxTags {
		return api.TagsPerResourceExceeded("A stream can have at most %d tags; the request has %d", MaxTags, len(in.Tags))
	}
	if in.Tags != nil {
		v.Count("Tags", len(in.Tags), 1, MaxTags)
	}
	tags := make(map[string]string, len(in.Tags))
	for _, t := range in.Tags {
		v.Required("Tags.member.Key", t.Key != nil)
		v.Required("Tags.member.Value", t.Value != nil)
		v.String("Tags.member.Key", t.Key, 1, 128, patternTagKey)
		v.String("Tags.member.Value", t.Value, 0, 256, patternTagValue)
		tags[deref(t.Key)] = deref(t.Value)
	}
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, ref, nil, false, func(st *store.Stream) error { return mergeTags(st, tags) })
}

// UntagResource removes tags from a stream by its ARN.
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) error {
	var v api.Validator
	ref := resourceRef(&v, in.ResourceARN)
	v.Required("TagKeyList", in.TagKeyList != nil)
	validateTagKeys(&v, "TagKeyList", in.TagKeyList)
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, ref, nil, false, func(st *store.Stream) error {
		removeTags(st, in.TagKeyList)
		return nil
	})
}

// ListTagsForResource returns a stream's tags by its ARN.
func (s *Service) ListTagsForResource(ctx context.Context, in *ListTagsForResourceInput) (*TagsOutput, error) {
	var v api.Validator
	ref := resourceRef(&v, in.ResourceARN)
	v.String("NextToken", in.NextToken, 0, 1024, patternToken)
	if err := v.Err(); err != nil {
		return nil, err
	}
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	return tagsOutput(st), nil
}

// DescribeStreamStorageConfiguration returns a stream's storage tier.
func (s *Service) DescribeStreamStorageConfiguration(ctx context.Context, in *Ref) (*StorageConfigurationOutput, error) {
	st, err := s.Resolve(ctx, *in)
	if err != nil {
		return nil, err
	}
	tier := st.StorageTier
	return &StorageConfigurationOutput{
		StreamName:                 st.Name,
		StreamARN:                  st.ARN,
		StreamStorageConfiguration: StorageConfiguration{DefaultStorageTier: &tier},
	}, nil
}

// UpdateStreamStorageConfiguration changes a stream's storage tier.
func (s *Service) UpdateStreamStorageConfiguration(ctx context.Context, in *UpdateStorageConfigurationInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	v.Required("CurrentVersion", in.CurrentVersion != nil)
	v.String("CurrentVersion", in.CurrentVersion, 1, 64, patternVersion)
	v.Required("StreamStorageConfiguration", in.StreamStorageConfiguration != nil)
	if in.StreamStorageConfiguration != nil {
		in.StreamStorageConfiguration.validate(&v, "StreamStorageConfiguration")
	}
	if err := v.Err(); err != nil {
		return err
	}
	return s.update(ctx, in.Ref, in.CurrentVersion, true, func(st *store.Stream) error {
		st.StorageTier = *in.StreamStorageConfiguration.DefaultStorageTier
		return nil
	})
}
