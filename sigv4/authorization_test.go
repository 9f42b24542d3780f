package sigv4

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const validAuthorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/kinesisvideo/aws4_request, " +
	"SignedHeaders=host;x-amz-date, Signature=abc123"

func TestParseAuthorization(t *testing.T) {
	want := &authorization{accessKeyID: "AKIDEXAMPLE", date: "20260102", region: "us-east-1", service: "kinesisvideo",
		terminator: "aws4_request", signedHeaders: "host;x-amz-date", signature: "abc123"}
	for _, h := range []string{
		validAuthorization,
		// No spaces after the commas, as some hand-written clients send it.
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/us-east-1/kinesisvideo/aws4_request,SignedHeaders=host;x-amz-date,Signature=abc123",
		// Any parameter order, unknown parameters ignored.
		"AWS4-HMAC-SHA256 Signature=abc123, Extra=1, SignedHeaders=host;x-amz-date, Credential=AKIDEXAMPLE/20260102/us-east-1/kinesisvideo/aws4_request",
	} {
		got, err := parseAuthorization(h)
		if err != nil {
			t.Fatalf("parseAuthorization(%q): %v", h, err)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(authorization{})); diff != "" {
			t.Errorf("parseAuthorization(%q) (-want +got):\n%s", h, diff)
		}
	}
}

func TestParseAuthorizationErrors(t *testing.T) {
	const cred = "Credential=AKIDEXAMPLE/20260102/us-east-1/kinesisvideo/aws4_request"
	tests := []struct{ header, want string }{
		{"Bearer abc", "Unsupported AWS 'algorithm': 'Bearer'; only 'AWS4-HMAC-SHA256' is accepted."},
		{"AWS4-HMAC-SHA1 " + cred, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'; only 'AWS4-HMAC-SHA256' is accepted."},
		{"AWS4-HMAC-SHA256", "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
			"Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host",
			"Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host"},
		{"AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ab",
			"Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=ab"},
		{"AWS4-HMAC-SHA256 " + cred + ", Signature=ab, Signature=cd, SignedHeaders=host",
			"Authorization header has more than one 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 " + cred + ", Signature=ab, Signature=cd, SignedHeaders=host"},
		{"AWS4-HMAC-SHA256 Credential=AKID/20260102/us-east-1, SignedHeaders=host, Signature=ab",
			"Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request, not 'AKID/20260102/us-east-1'."},
		{"AWS4-HMAC-SHA256 Credential=/20260102/us-east-1/kinesisvideo/aws4_request, SignedHeaders=host, Signature=ab",
			"Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request, not '/20260102/us-east-1/kinesisvideo/aws4_request'."},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=x-amz-date, Signature=ab",
			"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x-amz-date, Signature=ab",
			"SignedHeaders contains an empty header name: 'host;;x-amz-date'."},
	}
	for _, tc := range tests {
		_, err := parseAuthorization(tc.header)
		if diff := cmp.Diff(incomplete(tc.want), fieldsOf(t, err)); diff != "" {
			t.Errorf("parseAuthorization(%q) (-want +got):\n%s", tc.header, diff)
		}
	}
}

// FuzzParseAuthorization checks that parsing never panics, fails only with
// IncompleteSignatureException, and that anything accepted survives a format/parse round trip
// with a host among its signed headers. Seeds are in testdata/fuzz/FuzzParseAuthorization.
func FuzzParseAuthorization(f *testing.F) {
	f.Add(validAuthorization)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code() != CodeIncompleteSignature || e.HTTPStatus() != 400 {
				t.Fatalf("parseAuthorization(%q) = %v, want an IncompleteSignatureException", h, err)
			}
			return
		}
		if a.accessKeyID == "" || a.date == "" || a.region == "" || a.service == "" || a.terminator == "" || a.signature == "" {
			t.Fatalf("parseAuthorization(%q) accepted an empty field: %+v", h, a)
		}
		host := false
		for _, name := range a.headerNames() {
			if name == "" {
				t.Fatalf("parseAuthorization(%q) accepted an empty header name", h)
			}
			host = host || strings.EqualFold(name, "host")
		}
		if !host {
			t.Fatalf("parseAuthorization(%q) accepted SignedHeaders without host", h)
		}
		formatted := algorithm + " Credential=" + a.accessKeyID + "/" + a.scope() + ", SignedHeaders=" + a.signedHeaders + ", Signature=" + a.signature
		again, err := parseAuthorization(formatted)
		if err != nil {
			t.Fatalf("reparse of %q (from %q): %v", formatted, h, err)
		}
		if *again != *a {
			t.Fatalf("round trip of %q: got %+v, want %+v", h, again, a)
		}
	})
}
