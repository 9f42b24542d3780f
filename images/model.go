package images

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/streams"
)

// Enumerations of the kinesis-video-archived-media 2017-09-30 model.
const (
	SelectProducerTimestamp = "PRODUCER_TIMESTAMP"
	SelectServerTimestamp   = "SERVER_TIMESTAMP"

	FormatJPEG = "JPEG"
	FormatPNG  = "PNG"

	ErrorNoMedia    = "NO_MEDIA"
	ErrorMediaError = "MEDIA_ERROR"

	jpegQualityKey = "JPEGQuality"
)

// Limits of the model and its documentation (kvs-playback.md §6).
const (
	minInterval      = 200 * time.Millisecond
	defaultInterval  = 3000 * time.Millisecond
	maxRange         = 300 * time.Second
	pageSize         = 25
	defaultQuality   = 80
	maxWidth         = 3840
	maxHeight        = 2160
	maxResultsLimit  = 100
	maxImageContents = 6 << 20 // ImageContent: at most 6 MiB of base64
)

var (
	patternNextToken   = api.Match(`[a-zA-Z0-9+/]+={0,2}`)
	patternFormatValue = api.Match(`^[a-zA-Z_0-9]+`)
)

// Input is the GetImages request.
type Input struct {
	streams.Ref
	ImageSelectorType *string           `json:"ImageSelectorType"`
	StartTimestamp    *api.Timestamp    `json:"StartTimestamp"`
	EndTimestamp      *api.Timestamp    `json:"EndTimestamp"`
	SamplingInterval  *int64            `json:"SamplingInterval"`
	Format            *string           `json:"Format"`
	FormatConfig      map[string]string `json:"FormatConfig"`
	WidthPixels       *int64            `json:"WidthPixels"`
	HeightPixels      *int64            `json:"HeightPixels"`
	MaxResults        *int64            `json:"MaxResults"`
	NextToken         *string           `json:"NextToken"`
}

// Output is the GetImages response.
type Output struct {
	Images    []Image `json:"Images"`
	NextToken string  `json:"NextToken,omitempty"`
}

// Image is one sample: its image, or why there is none.
type Image struct {
	TimeStamp    api.Timestamp `json:"TimeStamp"`
	Error        string        `json:"Error,omitempty"`
	ImageContent string        `json:"ImageContent,omitempty"`
}

// request is a validated Input.
type request struct {
	producer     bool
	start, end   time.Time
	interval     time.Duration
	spec         spec
	first, count int // the page: samples first..first+count-1
	totalSamples int
}

// spec is what an image is made as.
type spec struct {
	png           bool
	quality       int // JPEG 1..100
	width, height int // 0: from the frame
}

// parse validates in against the model and the documented rules.
func parse(in *Input) (*request, error) {
	var v api.Validator
	v.Required("ImageSelectorType", in.ImageSelectorType != nil)
	v.Enum("ImageSelectorType", in.ImageSelectorType, SelectProducerTimestamp, SelectServerTimestamp)
	v.Required("StartTimestamp", in.StartTimestamp != nil)
	v.Required("EndTimestamp", in.EndTimestamp != nil)
	v.Required("Format", in.Format != nil)
	v.Enum("Format", in.Format, FormatJPEG, FormatPNG)
	if in.FormatConfig != nil {
		v.Count("FormatConfig", len(in.FormatConfig), 1, 1)
		for k, val := range in.FormatConfig {
			v.Enum("FormatConfig.key", &k, jpegQualityKey)
			v.Text("FormatConfig.value", val, 0, 256, patternFormatValue)
		}
	}
	v.Range("WidthPixels", in.WidthPixels, 1, maxWidth)
	v.Range("HeightPixels", in.HeightPixels, 1, maxHeight)
	v.Range("MaxResults", in.MaxResults, 1, maxResultsLimit)
	v.String("NextToken", in.NextToken, 1, 4096, patternNextToken)
	if err := v.Err(); err != nil {
		return nil, err
	}
	r := &request{producer: *in.ImageSelectorType == SelectProducerTimestamp,
		start: in.StartTimestamp.Time, end: in.EndTimestamp.Time, interval: defaultInterval,
		spec: spec{png: *in.Format == FormatPNG, quality: defaultQuality}}
	if in.SamplingInterval != nil {
		// Any interval past the longest range gives one image: capping it
		// keeps the arithmetic from overflowing.
		r.interval = time.Duration(min(*in.SamplingInterval, int64(2*maxRange/time.Millisecond))) * time.Millisecond
		if r.interval < minInterval {
			return nil, api.InvalidArgument("SamplingInterval %d is below the minimum of %d milliseconds.", *in.SamplingInterval, minInterval.Milliseconds())
		}
	}
	if q, ok := in.FormatConfig[jpegQualityKey]; ok {
		n, err := api.JPEGQuality(q)
		if err != nil {
			return nil, err
		}
		r.spec.quality = n
	}
	if in.WidthPixels != nil {
		r.spec.width = int(*in.WidthPixels)
	}
	if in.HeightPixels != nil {
		r.spec.height = int(*in.HeightPixels)
	}
	switch {
	case r.end.Before(r.start):
		return nil, api.InvalidArgument("EndTimestamp must not be before StartTimestamp.")
	case r.end.Sub(r.start) > maxRange:
		return nil, api.InvalidArgument("The range from StartTimestamp to EndTimestamp must not exceed %d seconds.", int(maxRange.Seconds()))
	}
	// One sample per interval in [start, end); a range shorter than the
	// interval still gets the image at StartTimestamp.
	r.totalSamples = max(1, int((r.end.Sub(r.start)+r.interval-1)/r.interval))
	size := pageSize
	if in.MaxResults != nil {
		size = min(size, int(*in.MaxResults))
	}
	if in.NextToken != nil {
		first, err := decodeToken(*in.NextToken, r)
		if err != nil {
			return nil, err
		}
		r.first = first
	}
	r.count = min(size, r.totalSamples-r.first)
	return r, nil
}

// at is the time of sample i.
func (r *request) at(i int) time.Time { return r.start.Add(time.Duration(i) * r.interval) }

// pageToken is what a NextToken carries: the time of the next sample.
type pageToken struct {
	Next int64 `json:"n"` // epoch milliseconds
}

func (r *request) nextToken() string {
	if r.first+r.count >= r.totalSamples {
		return ""
	}
	b, _ := json.Marshal(pageToken{Next: r.at(r.first + r.count).UnixMilli()})
	return base64.StdEncoding.EncodeToString(b)
}

// decodeToken returns the sample a NextToken continues at; it must be a
// sample of this request's range.
func decodeToken(s string, r *request) (int, error) {
	var tok pageToken
	b, err := base64.StdEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &tok)
	}
	if err == nil {
		d := time.UnixMilli(tok.Next).Sub(r.start)
		if i := int(d / r.interval); d >= 0 && d%r.interval == 0 && i < r.totalSamples {
			return i, nil
		}
	}
	return 0, api.InvalidArgument("NextToken %q is not a token GetImages returned for these parameters.", s)
}
