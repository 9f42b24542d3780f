package sigv4

import (
	"strings"
)

// algorithm is the only signing algorithm accepted (SigV4 with HMAC-SHA256).
const algorithm = "AWS4-HMAC-SHA256"

// terminator ends every SigV4 credential scope.
const terminator = "aws4_request"

// authorization is a parsed Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request, SignedHeaders=a;b, Signature=hex".
type authorization struct {
	accessKeyID string
	date        string // YYYYMMDD from the credential scope
	region      string
	service     string
	terminator  string
	// signedHeaders is the list exactly as the client sent it; it is repeated verbatim in the
	// canonical request, so names are neither re-cased nor re-sorted.
	signedHeaders string
	signature     string
}

// scope returns the credential scope "YYYYMMDD/region/service/aws4_request" as signed.
func (a *authorization) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/" + a.terminator
}

// headerNames splits SignedHeaders into names.
func (a *authorization) headerNames() []string {
	return strings.Split(a.signedHeaders, ";")
}

// signs reports whether the header name is in SignedHeaders (names compare case-insensitively).
func (a *authorization) signs(name string) bool {
	for _, n := range a.headerNames() {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// parseAuthorization parses an Authorization header value. Errors are IncompleteSignatureException
// with messages in the style AWS uses ("Authorization header requires 'Credential' parameter.").
func parseAuthorization(h string) (*authorization, error) {
	algo, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if algo != algorithm {
		return nil, errIncomplete("Unsupported AWS 'algorithm': '%s'; only '%s' is accepted.", algo, algorithm)
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue // stray text is reported below as a missing parameter, as AWS does
		}
		if _, dup := params[key]; dup {
			return nil, errIncomplete("Authorization header has more than one '%s' parameter. Authorization=%s", key, h)
		}
		params[key] = strings.TrimSpace(value)
	}
	var missing strings.Builder
	for _, name := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[name] == "" {
			missing.WriteString("Authorization header requires '" + name + "' parameter. ")
		}
	}
	if missing.Len() > 0 {
		return nil, errIncomplete("%sAuthorization=%s", missing.String(), h)
	}

	a := &authorization{signedHeaders: params["SignedHeaders"], signature: params["Signature"]}
	cred := strings.Split(params["Credential"], "/")
	if len(cred) != 5 || cred[0] == "" || cred[1] == "" || cred[2] == "" || cred[3] == "" || cred[4] == "" {
		return nil, errIncomplete("Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/%s, not '%s'.",
			terminator, params["Credential"])
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminator = cred[0], cred[1], cred[2], cred[3], cred[4]

	host := false
	for _, name := range a.headerNames() {
		if name == "" {
			return nil, errIncomplete("SignedHeaders contains an empty header name: '%s'.", a.signedHeaders)
		}
		host = host || strings.EqualFold(name, "host")
	}
	if !host {
		// Without host a signature could be replayed against another endpoint.
		return nil, errIncomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return a, nil
}
