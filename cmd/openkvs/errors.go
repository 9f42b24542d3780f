package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"

	"github.com/openkvs/openkvs/api"
	"github.com/openkvs/openkvs/client"
	"github.com/openkvs/openkvs/mkv"
)

// explained is an error with a sentence that says what to do about it.
type explained struct {
	hint string
	err  error
}

func (e *explained) Error() string { return e.hint + "\n  cause: " + e.err.Error() }
func (e *explained) Unwrap() error { return e.err }

// streamError names the stream a failed call was about, where no --stream
// flag does: the SDK's errors and the server's messages do not.
type streamError struct {
	stream string
	err    error
}

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// inStream marks err as an error of a call about stream.
func inStream(stream string, err error) error {
	return &streamError{stream: stream, err: err}
}

// explain adds to err, which ended the command line args, what to do about
// it where the cause is known: the server cannot be reached, the stream
// does not exist, the credentials are missing or refused, a server limit,
// input that is not MKV, a certificate that is not trusted. Client-side
// (SDK) and data-plane (client.APIError) errors are mapped here, in one
// place, for every command.
func explain(args []string, err error) error {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "healthcheck" {
		// A probe's reason is for a log, and it has no --endpoint to suggest.
		return err
	}
	stream := streamFlag(args)
	var se *streamError
	if errors.As(err, &se) {
		stream = se.stream
	}
	if hint := hintFor(cmd, stream, err); hint != "" {
		return &explained{hint: hint, err: err}
	}
	return err
}

// credentialErrors are the answers to a request whose signature the server
// did not accept (kvs-protocol.md §1.3).
var credentialErrors = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationTokenException": true,
}

// credentialSources says where the client commands find credentials: the
// AWS SDK's default chain, without instance metadata.
const credentialSources = "openkvs reads credentials as the AWS CLI does: AWS_ACCESS_KEY_ID and " +
	"AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), else the profile AWS_PROFILE (\"default\" if unset) " +
	"in ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE) and ~/.aws/config (AWS_CONFIG_FILE)"

// callRateFlags and connectionFlags are the server flags behind
// ClientLimitExceededException and ConnectionLimitExceededException, by
// operation.
var (
	callRateFlags = map[string]string{
		"PutMedia":                "--putmedia-calls-per-second",
		"GetMedia":                "--getmedia-calls-per-second",
		"ListFragments":           "--listfragments-calls-per-second",
		"GetMediaForFragmentList": "--getmediaforfragmentlist-calls-per-second",
		"GetClip":                 "--getclip-calls-per-second",
		"GetImages":               "--getimages-calls-per-second",
	}
	connectionFlags = map[string]string{
		"GetMedia":                "--getmedia-connections",
		"GetMediaForFragmentList": "--getmediaforfragmentlist-connections",
	}
)

// streamFlag is the value of --stream on the command line args, else of
// OPENKVS_STREAM, else "NAME".
func streamFlag(args []string) string {
	for i, a := range args {
		for _, name := range []string{"-stream", "--stream"} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	if v := os.Getenv(envName("stream")); v != "" {
		return v
	}
	return "NAME"
}

// hintFor is what to do about err, which ended command cmd about stream,
// "" when that is not known.
func hintFor(cmd, stream string, err error) string {
	op, code, msg := apiError(err)
	switch {
	case code == "ResourceNotFoundException" && msg == api.MsgStreamNotFound:
		hint := fmt.Sprintf("stream %q does not exist: create it with `openkvs streams create %s`", stream, stream)
		if cmd == "put" {
			hint += ", or give put --create"
		}
		return hint
	case code == "MissingAuthenticationTokenException":
		return "the server requires signed requests (it runs with --credentials) and no credentials were found: " + credentialSources
	case credentialErrors[code]:
		return "the server did not accept the credentials (" + code + "): check the access key and secret, that --region " +
			"(AWS_REGION) is the server's --region and that the clocks agree; " + credentialSources
	case code == "NotAuthorizedException" || code == "AccessDeniedException":
		return "the access key may not do this: the server's --credentials file must grant it the action in a policy statement"
	case code == "ClientLimitExceededException" && callRateFlags[op] != "":
		return fmt.Sprintf("the server limits %s calls per stream per second (openkvs serve %s): try again later, or raise the limit", op, callRateFlags[op])
	case code == "ConnectionLimitExceededException" && connectionFlags[op] != "":
		return fmt.Sprintf("too many %s connections to this stream are open (openkvs serve %s): close some, or raise the limit", op, connectionFlags[op])
	}
	var ack *client.ErrAck
	if cmd == "put" && (errors.Is(err, mkv.ErrInvalid) || errors.Is(err, mkv.ErrMidFragment) || errors.As(err, &ack) && ack.Ack.ErrorID == 4006) {
		return "the input is not a Matroska (MKV) stream from its start, which PutMedia takes; remux other containers " +
			"without re-encoding: ffmpeg -i in.mp4 -c copy -f matroska - | openkvs put --stream " + stream + " -"
	}
	server := "the server"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			server = u.Scheme + "://" + u.Host
		}
	}
	var unknownCA x509.UnknownAuthorityError
	var certErr *tls.CertificateVerificationError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA) || errors.As(err, &certErr):
		return fmt.Sprintf("the certificate of %s is not trusted: give its CA certificate (PEM) in AWS_CA_BUNDLE, as for the AWS CLI", server)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Sprintf("cannot reach %s: is `openkvs serve` running at %s? Give the server's URL with --endpoint "+
			"(OPENKVS_ENDPOINT, AWS_ENDPOINT_URL)", server, server)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return fmt.Sprintf("%s closed the connection before it answered: it may be restarting, or refusing connections "+
			"from this address beyond its limit (openkvs serve --max-conns-per-ip)", server)
	}
	return ""
}

// apiError returns the operation, error code and message of an API error
// answer, from the SDK or from the client package's data-plane calls.
func apiError(err error) (op, code, msg string) {
	var ce *client.APIError
	if errors.As(err, &ce) {
		return ce.Op, ce.Type, ce.Message
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		op = oe.Operation()
	}
	return op, code, msg
}
