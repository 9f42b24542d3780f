package server

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/sigv4"
)

// route is one API operation: the IAM action it is authorized as
// ("DescribeStream", see access.Actions), its handler, and the request
// headers it acts on, which must be signed when present.
type route struct {
	action        string
	operation     string // its name in request metrics: the action, but for openkvs's own APIs
	method        string // http.MethodPost for every AWS operation
	handler       http.HandlerFunc
	signedHeaders []string
}

// handle registers the operation served at path. action is its IAM action
// name: the request is authenticated before h runs, and h authorizes it
// with s.authorize once it knows the stream (jsonOp does this for JSON
// operations). A JSON body is read, bounded, before h runs and is decoded
// with decodeJSON; only PutMedia's body is left unread (bodyStreams).
// signed names the headers h takes parameters from: with authentication on,
// a request carrying one must have signed it, or a captured request could
// be pointed at another stream by changing it.
func (s *Server) handle(path, action string, h http.HandlerFunc, signed ...string) {
	s.routes[path] = route{action: action, operation: action, method: http.MethodPost, handler: h, signedHeaders: signed}
}

// bodyStreams reports whether an operation's request body is a media stream
// rather than a JSON document. Such a body is signed with a placeholder hash
// and is never buffered (kvs-protocol.md §1.3, §4.1); every other operation,
// GetMedia included, sends a small JSON body that is signed with its hash.
func bodyStreams(action string) bool { return action == "PutMedia" }

// accessDeniedActions are the operations whose model lists
// AccessDeniedException; the others answer a denial with
// NotAuthorizedException, which every data-plane model lists
// (kvs-protocol.md §2.4; CreateStream and ListStreams model neither).
var accessDeniedActions = []string{
	"DescribeStreamStorageConfiguration", "UpdateStreamStorageConfiguration",
	"TagResource", "UntagResource", "ListTagsForResource",
	"DescribeImageGenerationConfiguration", "UpdateImageGenerationConfiguration",
	"DescribeNotificationConfiguration", "UpdateNotificationConfiguration",
	"DescribeMediaStorageConfiguration", "UpdateMediaStorageConfiguration",
	"DescribeMappedResourceConfiguration",
}

// newVerifier returns the SigV4 verifier for cfg, or nil when
// authentication is off.
func newVerifier(cfg Config) *sigv4.Verifier {
	if cfg.Credentials == nil {
		return nil
	}
	return &sigv4.Verifier{
		Region: cfg.Region,
		Lookup: func(id string) (string, bool) { return cfg.Credentials().Secret(id) },
	}
}

// checkHeaders runs, before any body is read, every authentication check
// that needs none: the Authorization header (sigv4.Verifier.Check), the
// payload hash header, and that the headers rt acts on are signed. A
// request that cannot authenticate thus costs no body memory. It returns
// nil while authentication is off.
func (s *Server) checkHeaders(r *http.Request, rt route) (*sigv4.Signature, error) {
	if s.verifier == nil {
		return nil, nil
	}
	// Every permission check of the request uses this one snapshot, so that
	// a reload cannot change the answer halfway through (ListStreams asks
	// once per stream).
	info(r.Context()).keys = s.cfg.Credentials()
	sig, err := s.verifier.Check(r)
	if err == nil {
		err = checkPayloadHeader(r, rt.action)
	}
	if err == nil {
		err = sig.RequireSigned(rt.signedHeaders...)
	}
	if err != nil {
		return nil, authError(err)
	}
	return sig, nil
}

// checkPayloadHeader checks, before the body is read, that the
// x-amz-content-sha256 header of a request for action is one its body may
// be signed with.
func checkPayloadHeader(r *http.Request, action string) error {
	if bodyStreams(action) {
		_, err := sigv4.StreamingPayloadHash(r)
		return err
	}
	return sigv4.CheckPayloadHeader(r)
}

// payloadHash is the hash the signature of a request for action must
// cover: the placeholder of a streamed body, else the SHA-256 of the JSON
// body.
func payloadHash(r *http.Request, action string, body []byte) (string, error) {
	if bodyStreams(action) {
		return sigv4.StreamingPayloadHash(r)
	}
	return sigv4.PayloadHash(r, body)
}

// authenticate verifies sig, from checkHeaders, over the request's payload
// and records who signed. body is the JSON body read, or nil for an
// operation whose body streams; sig is nil while authentication is off.
func (s *Server) authenticate(r *http.Request, sig *sigv4.Signature, body []byte) error {
	if sig == nil {
		return nil
	}
	ri := info(r.Context())
	hash, err := payloadHash(r, ri.action, body)
	if err != nil {
		return authError(err)
	}
	id, err := sig.Verify(hash)
	if err != nil {
		return authError(err)
	}
	ri.accessKey = id.AccessKeyID
	ri.log = ri.log.With("access_key", id.AccessKeyID)
	return nil
}

// authError turns a sigv4 failure into the error AWS answers with: its
// type, status and message, under the lower-case "message" key of the
// auth layer (kvs-protocol.md §1.3).
func authError(err error) error {
	var e *sigv4.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("authenticate: %w", err)
	}
	return &api.Error{Type: e.Code(), Status: e.HTTPStatus(), Message: e.Message(), LowerMessage: true}
}

// authorize reports whether the authenticated caller may perform action
// (an IAM action name such as "PutMedia") on stream, given as a name or a
// stream ARN as the request named it; "" is no stream (ListStreams). It
// returns nil when authentication is off, else the modeled denial
// (AccessDeniedException or NotAuthorizedException, 401).
//
// Call it before looking the stream up: the denial is the same whether the
// stream exists or not, so it tells a caller nothing about streams it may
// not see.
func (s *Server) authorize(r *http.Request, action, stream string) error {
	if s.verifier == nil {
		return nil
	}
	ri := info(r.Context())
	if ri.keys != nil && ri.keys.Allowed(ri.accessKey, action, streamNameOf(stream)) {
		return nil
	}
	resource := stream
	if resource == "" {
		resource = "*"
	}
	// AWS's wording, with the access key id where AWS names the IAM user.
	const format = "User: %s is not authorized to perform: kinesisvideo:%s on resource: %s"
	if slices.Contains(accessDeniedActions, action) {
		return api.AccessDenied(format, ri.accessKey, action, resource)
	}
	return api.NotAuthorized(format, ri.accessKey, action, resource)
}

// visible returns the filter that keeps the streams the caller may see
// through action (ListStreams), or nil when authentication is off.
func (s *Server) visible(r *http.Request, action string) func(name string) bool {
	if s.verifier == nil {
		return nil
	}
	ri := info(r.Context())
	return func(name string) bool { return ri.keys != nil && ri.keys.Allowed(ri.accessKey, action, name) }
}

// streamNameOf returns the stream name inside a stream ARN
// (arn:aws:kinesisvideo:region:account:stream/NAME/creation-ms, spec §3.3),
// or s itself when it is not an ARN. A malformed ARN yields "", which only
// a key allowed on every stream ("*") matches, so it fails closed.
func streamNameOf(s string) string {
	if !strings.HasPrefix(s, "arn:") {
		return s
	}
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return ""
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 3 || res[0] != "stream" {
		return ""
	}
	return res[1]
}

// streamMembers are the request members with which KVS operations name a
// stream: by name, by ARN, or as the resource of the tag APIs
// (kvs-protocol.md §3, §5.1, §7).
var streamMembers = []string{"StreamName", "StreamARN", "ResourceARN"}

// namedStreams returns every stream a decoded JSON input names, as given.
// It finds them by JSON member name, embedded structs included, so that a
// new input type is covered without a list to keep up to date; an input
// naming none is checked as naming "" (only keys allowed on every stream
// pass), which fails closed.
func namedStreams(in any) []string {
	v := reflect.ValueOf(in)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for _, f := range reflect.VisibleFields(v.Type()) {
		member, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || f.Type != reflect.TypeFor[*string]() || !slices.Contains(streamMembers, member) {
			continue
		}
		// FieldByIndexErr fails only through a nil embedded pointer: nothing named there.
		fv, err := v.FieldByIndexErr(f.Index)
		if err == nil && !fv.IsNil() {
			names = append(names, *fv.Interface().(*string))
		}
	}
	return names
}

// authorizeInput authorizes the request's action on every stream its
// decoded input names; see namedStreams.
func (s *Server) authorizeInput(r *http.Request, in any) error {
	action := info(r.Context()).action
	names := namedStreams(in)
	if len(names) == 0 {
		names = []string{""}
	}
	for _, name := range names {
		if err := s.authorize(r, action, name); err != nil {
			return err
		}
	}
	return nil
}
