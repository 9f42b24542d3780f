package server

import (
	"context"
	"net/http"
	"time"

	"github.com/openkvs/openkvs/streams"
)

// streamLabel is implemented by inputs that name a stream, for the access log.
type streamLabel interface{ Label() string }

// jsonOp adapts a control-plane call to an HTTP handler: decode,
// authorize the route's action on every stream the input names, call,
// encode. A nil output is sent as {}.
func jsonOp[In any](s *Server, fn func(ctx context.Context, r *http.Request, in *In) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Control-plane answers are small: a client that does not read one
		// within the limit must not hold the handler.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
		in := new(In)
		if err := decodeJSON(r, in); err != nil {
			writeError(w, r, err)
			return
		}
		if l, ok := any(in).(streamLabel); ok {
			info(r.Context()).stream = l.Label()
		}
		if err := s.authorizeInput(r, in); err != nil {
			writeError(w, r, err)
			return
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
	s.handle("/createStream", "CreateStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.CreateStreamInput) (any, error) {
		return svc.CreateStream(ctx, in)
	}))
	s.handle("/describeStream", "DescribeStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeStream(ctx, in)
	}))
	s.handle("/listStreams", "ListStreams", jsonOp(s, func(ctx context.Context, r *http.Request, in *streams.ListStreamsInput) (any, error) {
		// Only the streams the caller may list: the catalog's pages are
		// filtered before a page or its NextToken is made.
		return svc.ListStreams(ctx, in, s.visible(r, "ListStreams"))
	}))
	s.handle("/deleteStream", "DeleteStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.DeleteStreamInput) (any, error) {
		return done(svc.DeleteStream(ctx, in))
	}))
	s.handle("/updateStream", "UpdateStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UpdateStreamInput) (any, error) {
		return done(svc.UpdateStream(ctx, in))
	}))
	s.handle("/updateDataRetention", "UpdateDataRetention", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UpdateDataRetentionInput) (any, error) {
		return done(svc.UpdateDataRetention(ctx, in))
	}))
	s.handle("/getDataEndpoint", "GetDataEndpoint", jsonOp(s, func(ctx context.Context, r *http.Request, in *streams.GetDataEndpointInput) (any, error) {
		return svc.GetDataEndpoint(ctx, in, s.dataEndpoint(r))
	}))
	s.handle("/tagStream", "TagStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.TagStreamInput) (any, error) {
		return done(svc.TagStream(ctx, in))
	}))
	s.handle("/untagStream", "UntagStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UntagStreamInput) (any, error) {
		return done(svc.UntagStream(ctx, in))
	}))
	s.handle("/listTagsForStream", "ListTagsForStream", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.ListTagsForStreamInput) (any, error) {
		return svc.ListTagsForStream(ctx, in)
	}))
	s.handle("/TagResource", "TagResource", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.TagResourceInput) (any, error) {
		return done(svc.TagResource(ctx, in))
	}))
	s.handle("/UntagResource", "UntagResource", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UntagResourceInput) (any, error) {
		return done(svc.UntagResource(ctx, in))
	}))
	s.handle("/ListTagsForResource", "ListTagsForResource", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.ListTagsForResourceInput) (any, error) {
		return svc.ListTagsForResource(ctx, in)
	}))
	s.handle("/describeStreamStorageConfiguration", "DescribeStreamStorageConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeStreamStorageConfiguration(ctx, in)
	}))
	s.handle("/updateStreamStorageConfiguration", "UpdateStreamStorageConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UpdateStorageConfigurationInput) (any, error) {
		return done(svc.UpdateStreamStorageConfiguration(ctx, in))
	}))
	s.handle("/describeImageGenerationConfiguration", "DescribeImageGenerationConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeImageGenerationConfiguration(ctx, in)
	}))
	s.handle("/updateImageGenerationConfiguration", "UpdateImageGenerationConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UpdateImageGenerationInput) (any, error) {
		return done(svc.UpdateImageGenerationConfiguration(ctx, in))
	}))
	s.handle("/describeNotificationConfiguration", "DescribeNotificationConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.Ref) (any, error) {
		return svc.DescribeNotificationConfiguration(ctx, in)
	}))
	s.handle("/updateNotificationConfiguration", "UpdateNotificationConfiguration", jsonOp(s, func(ctx context.Context, _ *http.Request, in *streams.UpdateNotificationInput) (any, error) {
		return done(svc.UpdateNotificationConfiguration(ctx, in))
	}))
}
