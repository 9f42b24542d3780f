package streams

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/store"
)

// Enumerations and patterns of the image generation and notification
// configurations (kinesisvideo 2017-09-30 model).
const (
	StatusEnabled  = "ENABLED"
	StatusDisabled = "DISABLED"
)

var (
	patternDestinationURI    = api.Match(`^[a-zA-Z_0-9]+:(//)?([^/]+)/?([^*]*)$`)
	patternDestinationRegion = api.Match(`^[a-z]+(-[a-z]+)?-[a-z]+-[0-9]$`)
	patternFormatConfigValue = api.Match(`^[a-zA-Z_0-9]+`)
)

// MinSamplingInterval is the shortest SamplingInterval the model's
// documentation allows, in milliseconds; it sets no maximum.
const MinSamplingInterval = 200

// ImageGenerationDestination is where generated images go.
type ImageGenerationDestination struct {
	Uri               *string `json:"Uri"`
	DestinationRegion *string `json:"DestinationRegion"`
}

// ImageGenerationConfiguration is a stream's image generation configuration.
type ImageGenerationConfiguration struct {
	Status            *string                     `json:"Status"`
	ImageSelectorType *string                     `json:"ImageSelectorType"`
	DestinationConfig *ImageGenerationDestination `json:"DestinationConfig"`
	SamplingInterval  *int64                      `json:"SamplingInterval"`
	Format            *string                     `json:"Format"`
	FormatConfig      map[string]string           `json:"FormatConfig,omitempty"`
	WidthPixels       *int64                      `json:"WidthPixels,omitempty"`
	HeightPixels      *int64                      `json:"HeightPixels,omitempty"`
}

// Enabled reports whether images are to be generated.
func (c *ImageGenerationConfiguration) Enabled() bool {
	return c != nil && deref(c.Status) == StatusEnabled
}

func (c *ImageGenerationConfiguration) validate(v *api.Validator, name string) {
	v.Required(name+".Status", c.Status != nil)
	v.Enum(name+".Status", c.Status, StatusEnabled, StatusDisabled)
	v.Required(name+".ImageSelectorType", c.ImageSelectorType != nil)
	v.Enum(name+".ImageSelectorType", c.ImageSelectorType, "SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP")
	v.Required(name+".DestinationConfig", c.DestinationConfig != nil)
	if d := c.DestinationConfig; d != nil {
		v.Required(name+".DestinationConfig.Uri", d.Uri != nil)
		v.String(name+".DestinationConfig.Uri", d.Uri, 1, 255, patternDestinationURI)
		v.Required(name+".DestinationConfig.DestinationRegion", d.DestinationRegion != nil)
		v.String(name+".DestinationConfig.DestinationRegion", d.DestinationRegion, 9, 14, patternDestinationRegion)
	}
	v.Required(name+".SamplingInterval", c.SamplingInterval != nil)
	v.Required(name+".Format", c.Format != nil)
	v.Enum(name+".Format", c.Format, "JPEG", "PNG")
	if c.FormatConfig != nil {
		v.Count(name+".FormatConfig", len(c.FormatConfig), 1, 1)
		for k, val := range c.FormatConfig {
			v.Enum(name+".FormatConfig.key", &k, "JPEGQuality")
			v.Text(name+".FormatConfig.value", val, 0, 256, patternFormatConfigValue)
		}
	}
	v.Range(name+".WidthPixels", c.WidthPixels, 1, 3840)
	v.Range(name+".HeightPixels", c.HeightPixels, 1, 2160)
}

// check applies the documented rules the model's constraints do not carry.
func (c *ImageGenerationConfiguration) check(region string) error {
	if *c.SamplingInterval < MinSamplingInterval {
		return api.InvalidArgument("SamplingInterval must be at least %d ms; it is %d.", MinSamplingInterval, *c.SamplingInterval)
	}
	if q, ok := c.FormatConfig["JPEGQuality"]; ok {
		if _, err := api.JPEGQuality(q); err != nil {
			return err
		}
	}
	if r := *c.DestinationConfig.DestinationRegion; r != region {
		return api.InvalidArgument("DestinationRegion %s must be the region of the stream, %s.", r, region)
	}
	return nil
}

// NotificationDestination is where notifications go.
type NotificationDestination struct {
	Uri *string `json:"Uri"`
}

// NotificationConfiguration is a stream's notification configuration.
type NotificationConfiguration struct {
	Status            *string                  `json:"Status"`
	DestinationConfig *NotificationDestination `json:"DestinationConfig"`
}

// Enabled reports whether notifications are to be sent.
func (c *NotificationConfiguration) Enabled() bool {
	return c != nil && deref(c.Status) == StatusEnabled
}

func (c *NotificationConfiguration) validate(v *api.Validator, name string) {
	v.Required(name+".Status", c.Status != nil)
	v.Enum(name+".Status", c.Status, StatusEnabled, StatusDisabled)
	v.Required(name+".DestinationConfig", c.DestinationConfig != nil)
	if d := c.DestinationConfig; d != nil {
		v.Required(name+".DestinationConfig.Uri", d.Uri != nil)
		v.String(name+".DestinationConfig.Uri", d.Uri, 1, 255, patternDestinationURI)
	}
}

// UpdateImageGenerationInput is the UpdateImageGenerationConfiguration request.
type UpdateImageGenerationInput struct {
	Ref
	ImageGenerationConfiguration *ImageGenerationConfiguration `json:"ImageGenerationConfiguration"`
}

// ImageGenerationOutput is the DescribeImageGenerationConfiguration response.
type ImageGenerationOutput struct {
	ImageGenerationConfiguration *ImageGenerationConfiguration `json:"ImageGenerationConfiguration,omitempty"`
}

// UpdateNotificationInput is the UpdateNotificationConfiguration request.
type UpdateNotificationInput struct {
	Ref
	NotificationConfiguration *NotificationConfiguration `json:"NotificationConfiguration"`
}

// NotificationOutput is the DescribeNotificationConfiguration response.
type NotificationOutput struct {
	NotificationConfiguration *NotificationConfiguration `json:"NotificationConfiguration,omitempty"`
}

// ImageGeneration returns the stream's image generation configuration,
// nil if it was never set.
func ImageGeneration(st *store.Stream) (*ImageGenerationConfiguration, error) {
	return decodeConfig[ImageGenerationConfiguration](st, st.ImageGeneration)
}

// Notification returns the stream's notification configuration, nil if it
// was never set.
func Notification(st *store.Stream) (*NotificationConfiguration, error) {
	return decodeConfig[NotificationConfiguration](st, st.Notification)
}

func decodeConfig[T any](st *store.Stream, doc string) (*T, error) {
	if doc == "" {
		return nil, nil
	}
	c := new(T)
	if err := json.Unmarshal([]byte(doc), c); err != nil {
		return nil, fmt.Errorf("configuration of stream %s: %w", st.Name, err)
	}
	return c, nil
}

// noRetention is the error of enabling what needs stored media on a
// stream that keeps none.
func noRetention(st *store.Stream, what string) error {
	return api.NoDataRetention("The stream %s keeps no data: %s needs data retention.", st.Name, what)
}

// UpdateImageGenerationConfiguration sets a stream's image generation
// configuration. Like tagging, it does not change the stream's Version:
// the operation takes no CurrentVersion.
func (s *Service) UpdateImageGenerationConfiguration(ctx context.Context, in *UpdateImageGenerationInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	if c := in.ImageGenerationConfiguration; c != nil {
		c.validate(&v, "ImageGenerationConfiguration")
	}
	if err := v.Err(); err != nil {
		return err
	}
	c := in.ImageGenerationConfiguration
	if c != nil {
		if err := c.check(s.region); err != nil {
			return err
		}
	}
	return s.update(ctx, in.Ref, nil, false, func(st *store.Stream) error {
		if c == nil {
			st.ImageGeneration = ""
			return nil
		}
		if c.Enabled() && st.RetentionHours == 0 {
			return noRetention(st, "image generation")
		}
		b, err := json.Marshal(c)
		st.ImageGeneration = string(b)
		return err
	})
}

// DescribeImageGenerationConfiguration returns a stream's image generation
// configuration; a stream that has none answers {}.
func (s *Service) DescribeImageGenerationConfiguration(ctx context.Context, in *Ref) (*ImageGenerationOutput, error) {
	st, err := s.Resolve(ctx, *in)
	if err != nil {
		return nil, err
	}
	c, err := ImageGeneration(st)
	return &ImageGenerationOutput{ImageGenerationConfiguration: c}, err
}

// UpdateNotificationConfiguration sets a stream's notification
// configuration, without changing its Version.
func (s *Service) UpdateNotificationConfiguration(ctx context.Context, in *UpdateNotificationInput) error {
	var v api.Validator
	in.Ref.validate(&v)
	if c := in.NotificationConfiguration; c != nil {
		c.validate(&v, "NotificationConfiguration")
	}
	if err := v.Err(); err != nil {
		return err
	}
	c := in.NotificationConfiguration
	return s.update(ctx, in.Ref, nil, false, func(st *store.Stream) error {
		if c == nil {
			st.Notification = ""
			return nil
		}
		if c.Enabled() && st.RetentionHours == 0 {
			return noRetention(st, "notification of persisted fragments")
		}
		b, err := json.Marshal(c)
		st.Notification = string(b)
		return err
	})
}

// DescribeNotificationConfiguration returns a stream's notification
// configuration; a stream that has none answers {}.
func (s *Service) DescribeNotificationConfiguration(ctx context.Context, in *Ref) (*NotificationOutput, error) {
	st, err := s.Resolve(ctx, *in)
	if err != nil {
		return nil, err
	}
	c, err := Notification(st)
	return &NotificationOutput{NotificationConfiguration: c}, err
}
