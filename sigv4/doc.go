// Package sigv4 verifies AWS Signature Version 4 request signatures sent in the Authorization
// header (AWS4-HMAC-SHA256) for the Kinesis Video Streams signing name "kinesisvideo".
//
// It is written by hand rather than built on the AWS SDK's signer because the SDK signer chooses
// its own header set (it never signs user-agent or transfer-encoding, for example) and so cannot
// check what another client signed. The official C producer signs connection, transfer-encoding,
// user-agent and its x-amzn-* headers and hashes an empty payload for the streamed PutMedia body
// (spec/kvs-protocol.md §1.3). The verifier therefore rebuilds the canonical request from the
// client's own SignedHeaders list and the request as it arrived.
//
// Typical use in an HTTP handler: everything that needs no body first, so that a request that
// cannot authenticate is refused before its body costs any memory, then the signature:
//
//	sig, err := verifier.Check(r) // Authorization, date, scope, clock skew, access key
//	if err == nil {
//		err = sigv4.CheckPayloadHeader(r) // streamed PutMedia: hash, err := sigv4.StreamingPayloadHash(r)
//	}
//	// ... on success read the body, bounded, then:
//	hash, err := sigv4.PayloadHash(r, body)
//	if err == nil {
//		id, err = sig.Verify(hash)
//	}
//	var authErr *sigv4.Error
//	if errors.As(err, &authErr) { /* answer authErr.HTTPStatus(), Code(), Message() */ }
//
// A JSON call's body is always covered by the signature: UNSIGNED-PAYLOAD and the STREAMING-*
// literals are accepted only for PutMedia, whose streamed body no signature can cover.
//
// Presigned (query-string) signatures and SigV4a are not supported: a request without an
// Authorization header is answered with MissingAuthenticationTokenException.
package sigv4
