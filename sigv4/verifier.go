package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultService is the SigV4 signing name of every KVS API, including PutMedia (spec §1.1).
const DefaultService = "kinesisvideo"

// DefaultMaxSkew is how far the request time may be from the server clock; real KVS rejects
// requests more than 5 minutes off (spec §1.3).
const DefaultMaxSkew = 5 * time.Minute

// amzDateLayout is the ISO-8601 basic format of X-Amz-Date.
const amzDateLayout = "20060102T150405Z"

// Verifier checks SigV4 Authorization headers. Set the fields before first use and do not change
// or copy it afterwards; it is safe for concurrent use.
type Verifier struct {
	// Region is the only region accepted in the credential scope, e.g. "us-east-1". Required.
	Region string
	// Service is the signing name accepted in the scope; empty means DefaultService.
	Service string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is the accepted distance between the request time and Now; zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// Lookup returns the secret access key of an access key id (access.Store.Secret fits).
	Lookup func(accessKeyID string) (secret string, ok bool)

	keys keyCache
}

// Identity is who signed a verified request.
type Identity struct {
	// AccessKeyID is the key id from the credential scope.
	AccessKeyID string
	// SessionToken is the x-amz-security-token header, or "". It is reported, not checked: there is
	// no STS here, and the C producer adds it after signing so it may be unsigned.
	SessionToken string
	// Time is the signing time (X-Amz-Date, or Date).
	Time time.Time
	// Region is the region from the credential scope.
	Region string
}

// Verify checks the Authorization header of r against the canonical request rebuilt from the
// client's SignedHeaders: Check, then Signature.Verify. payloadHash is the hash the client must
// have signed: use PayloadHash for buffered bodies and StreamingPayloadHash for PutMedia. On
// failure the error is an *Error.
func (v *Verifier) Verify(r *http.Request, payloadHash string) (*Identity, error) {
	sig, err := v.Check(r)
	if err != nil {
		return nil, err
	}
	return sig.Verify(payloadHash)
}

// Signature is a request whose Authorization header passed Check: well formed, scoped to this
// verifier, current, and naming a known access key. Only the signature itself is left to verify.
type Signature struct {
	r        *http.Request
	a        *authorization
	amzDate  string
	signedAt time.Time
	secret   string
	keys     *keyCache
}

// Check runs every check of r's Authorization header that needs no payload, cheapest first:
// header syntax, date header, credential scope, clock skew, key lookup. A server calls it before
// reading a body, so that a request that cannot authenticate costs no body memory. On failure
// the error is an *Error.
func (v *Verifier) Check(r *http.Request) (*Signature, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 || values[0] == "" {
		return nil, errMissing()
	}
	if len(values) > 1 {
		return nil, errIncomplete("Request has more than one Authorization header.")
	}
	a, err := parseAuthorization(values[0])
	if err != nil {
		return nil, err
	}
	amzDate, signedAt, err := requestTime(r)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(a, amzDate); err != nil {
		return nil, err
	}
	if err := v.checkSkew(signedAt); err != nil {
		return nil, err
	}
	if v.Lookup == nil {
		return nil, errUnknownKey()
	}
	secret, ok := v.Lookup(a.accessKeyID)
	if !ok {
		return nil, errUnknownKey()
	}
	return &Signature{r: r, a: a, amzDate: amzDate, signedAt: signedAt, secret: secret, keys: &v.keys}, nil
}

// AccessKeyID is the access key id of the credential scope.
func (s *Signature) AccessKeyID() string { return s.a.accessKeyID }

// RequireSigned returns an InvalidSignatureException naming the first of headers that the request
// carries but did not sign. A server calls it for the headers it acts on, so that a captured
// request cannot be pointed elsewhere by adding or changing one of them.
func (s *Signature) RequireSigned(headers ...string) error {
	for _, h := range headers {
		if len(s.r.Header.Values(h)) > 0 && !s.a.signs(h) {
			return errInvalid("Header '%s' must be signed: add it to SignedHeaders.", strings.ToLower(h))
		}
	}
	return nil
}

// Verify compares the signature, in constant time, with the one computed over the canonical
// request with payloadHash (see Verifier.Verify). On failure the error is an *Error.
func (s *Signature) Verify(payloadHash string) (*Identity, error) {
	a := s.a
	canonical := sha256.Sum256([]byte(canonicalRequest(s.r, a, payloadHash)))
	stringToSign := algorithm + "\n" + s.amzDate + "\n" + a.scope() + "\n" + hex.EncodeToString(canonical[:])
	key := s.keys.get(s.secret, a.date, a.region, a.service)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(a.signature)) {
		return nil, errSignature()
	}
	return &Identity{
		AccessKeyID:  a.accessKeyID,
		SessionToken: s.r.Header.Get("X-Amz-Security-Token"),
		Time:         s.signedAt,
		Region:       a.region,
	}, nil
}

// requestTime returns the signing time as it appears in the string to sign and as a time.
// X-Amz-Date wins over Date, as in the SigV4 specification.
func requestTime(r *http.Request) (string, time.Time, error) {
	if s := r.Header.Get("X-Amz-Date"); s != "" {
		t, err := time.Parse(amzDateLayout, s)
		if err != nil {
			return "", time.Time{}, errIncomplete(
				"Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", s)
		}
		return s, t, nil
	}
	if s := r.Header.Get("Date"); s != "" {
		t, err := http.ParseTime(s)
		if err != nil {
			return "", time.Time{}, errIncomplete("Date header must be an HTTP date (RFC 7231). Got '%s'.", s)
		}
		t = t.UTC()
		return t.Format(amzDateLayout), t, nil
	}
	return "", time.Time{}, errIncomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
}

// checkScope compares the credential scope with the configured region and service and with the
// request date. Messages are the ones AWS answers with.
func (v *Verifier) checkScope(a *authorization, amzDate string) error {
	switch {
	case a.terminator != terminator:
		return errInvalid("Credential should be scoped with a valid terminator: '%s', not '%s'.", terminator, a.terminator)
	case a.service != v.service():
		return errInvalid("Credential should be scoped to correct service: '%s'.", v.service())
	case a.region != v.Region:
		return errInvalid("Credential should be scoped to a valid region, not '%s'.", a.region)
	case a.date != amzDate[:8]:
		return errInvalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.date, amzDate[:8], amzDate)
	}
	return nil
}

// checkSkew rejects a request signed more than MaxSkew before or after now, with AWS's wording:
// "Signature expired: 20231107T044734Z is now earlier than 20231107T045305Z (20231107T045805Z - 5 min.)".
func (v *Verifier) checkSkew(signedAt time.Time) error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now().UTC().Truncate(time.Second)
	skew := v.maxSkew()
	switch {
	case signedAt.Before(t.Add(-skew)):
		return errInvalid("Signature expired: %s is now earlier than %s (%s - %s.)",
			signedAt.Format(amzDateLayout), t.Add(-skew).Format(amzDateLayout), t.Format(amzDateLayout), skewText(skew))
	case signedAt.After(t.Add(skew)):
		return errInvalid("Signature not yet current: %s is still later than %s (%s + %s.)",
			signedAt.Format(amzDateLayout), t.Add(skew).Format(amzDateLayout), t.Format(amzDateLayout), skewText(skew))
	}
	return nil
}

// skewText renders the window as AWS does ("5 min").
func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min", d/time.Minute)
	}
	return d.String()
}

func (v *Verifier) service() string {
	if v.Service == "" {
		return DefaultService
	}
	return v.Service
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew <= 0 {
		return DefaultMaxSkew
	}
	return v.MaxSkew
}
