package main

import (
	"cmp"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// defaultEndpoint is where the client commands look for a server that
// nothing names.
const defaultEndpoint = "http://127.0.0.1:4567"

// endpointHelp is the help of --endpoint.
const endpointHelp = "`URL` of the openkvs (or KVS) control plane (default: AWS_ENDPOINT_URL_KINESIS_VIDEO, else " +
	"AWS_ENDPOINT_URL, else " + defaultEndpoint + ")"

// setEndpoint settles c.endpoint and makes it cfg's: --endpoint or
// OPENKVS_ENDPOINT when given, else the endpoint the SDK itself would use
// for Kinesis Video with cfg (AWS_ENDPOINT_URL_KINESIS_VIDEO, then
// AWS_ENDPOINT_URL, then the shared config file's endpoint_url settings,
// unless AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true), else
// defaultEndpoint, where the SDK would pick AWS's own.
func (c *clientConfig) setEndpoint(cfg *aws.Config) {
	if c.endpoint == "" {
		c.endpoint = cmp.Or(aws.ToString(kinesisvideo.NewFromConfig(*cfg).Options().BaseEndpoint), defaultEndpoint)
	}
	cfg.BaseEndpoint = aws.String(c.endpoint)
	// Each client would otherwise look up its service's endpoint variable
	// and config again, and AWS_ENDPOINT_URL_KINESIS_VIDEO would override
	// the flag. The sources hold nothing else a client with a fixed
	// endpoint uses (dual-stack and FIPS choose among AWS's endpoints).
	cfg.ConfigSources = nil
}

// dataTransport is the HTTP transport of the data-plane calls that the
// client commands make themselves (PutMedia, GetMedia): the one the SDK
// built for the control plane, so that AWS_CA_BUNDLE (or ca_bundle in the
// shared config file) and its proxy settings apply to both.
func dataTransport(cfg aws.Config) http.RoundTripper {
	if b, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		return b.GetTransport()
	}
	return http.DefaultTransport
}
