package server

import (
	"context"
	"net/http"

	"github.com/openkvs/openkvs/streams"
)

// streamLabel is implemented by inputs that name a stream, for the access log.
type streamLabel interface{ Label() string }

// jsonOp adapts a control-plane call to an HTTP handler: decode, call,
// encode. A nil output is sent as {}.
func jsonOp[In any](fn func(ctx context.Context, r *http.Request, in *In) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in := new(In)
		if err := decodeJSON(r, in); err != nil {
			writeError(w, r, err)
			return
		}
		if l, ok := any(in).(streamLabel); ok {
			info(r.Context()).stream = l.Label()
		}
		out, err := fn(r.Context(), r, in)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if out == nil {
			out = struct{}{}
		}
		writeJSON(w, r, out)
	}
}

// done adapts an operation that returns only an error.
func done(err error) (any, error) { return nil, err }

func (s *Server) controlRoutes() {
	svc := s.streams
	s.routes["/createStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.CreateStreamInput) (any, error) {
		return svc.CreateStream(ctx, in)
	})
	s.routes["/describeStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeStream(ctx, in)
	})
	s.routes["/listStreams"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.ListStreamsInput) (any, error) {
		return svc.ListStreams(ctx, in)
	})
	s.routes["/deleteStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.DeleteStreamInput) (any, error) {
		return done(svc.DeleteStream(ctx, in))
	})
	s.routes["/updateStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.UpdateStreamInput) (any, error) {
		return done(svc.UpdateStream(ctx, in))
	})
	s.routes["/updateDataRetention"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.UpdateDataRetentionInput) (any, error) {
		return done(svc.UpdateDataRetention(ctx, in))
	})
	s.routes["/getDataEndpoint"] = jsonOp(func(ctx context.Context, r *http.Request, in *streams.GetDataEndpointInput) (any, error) {
		return svc.GetDataEndpoint(ctx, in, s.dataEndpoint(r))
	})
	s.routes["/tagStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.TagStreamInput) (any, error) {
		return done(svc.TagStream(ctx, in))
	})
	s.routes["/untagStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.UntagStreamInput) (any, error) {
		return done(svc.UntagStream(ctx, in))
	})
	s.routes["/listTagsForStream"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.ListTagsForStreamInput) (any, error) {
		return svc.ListTagsForStream(ctx, in)
	})
	s.routes["/TagResource"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.TagResourceInput) (any, error) {
		return done(svc.TagResource(ctx, in))
	})
	s.routes["/UntagResource"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.UntagResourceInput) (any, error) {
		return done(svc.UntagResource(ctx, in))
	})
	s.routes["/ListTagsForResource"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.ListTagsForResourceInput) (any, error) {
		return svc.ListTagsForResource(ctx, in)
	})
	s.routes["/describeStreamStorageConfiguration"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeStreamStorageConfiguration(ctx, in)
	})
	s.routes["/updateStreamStorageConfiguration"] = jsonOp(func(ctx context.Context, _ *http.Request, in *streams.UpdateStorageConfigurationInput) (any, error) {
		return done(svc.UpdateStreamStorageConfiguration(ctx, in))
	})
}
