package sigv4

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// canonicalRequest rebuilds the SigV4 canonical request for r from the client's SignedHeaders:
//
//	Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
func canonicalRequest(r *http.Request, a *authorization, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, name := range a.headerNames() {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(headerValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(a.signedHeaders)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI encodes the path as AWS does for every service except S3: the path as sent on
// the wire (already percent-encoded) is URI-encoded once more, keeping '/'. So "/a%20b" signs as
// "/a%2520b". aws-sdk-go-v2 (httpbinding.EscapePath over URL.EscapedPath) and botocore
// (quote(path, safe='/~')) both do this; KVS paths such as /putMedia or
// /hls/v1/getHLSMasterPlaylist.m3u8 contain only unreserved characters and are unchanged.
// Dot segments are not removed: no KVS path has them and Go's net/http client does not either.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

// canonicalQuery sorts the decoded query parameters by encoded name, then encoded value, and
// re-encodes them with SigV4 rules ('+' in the raw query means a space, as url.ParseQuery reads
// it and as aws-sdk-go-v2 signs it).
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type param struct{ key, value string }
	var params []param
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		params = append(params, param{uriEncode(queryUnescape(k), true), uriEncode(queryUnescape(v), true)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].key != params[j].key {
			return params[i].key < params[j].key
		}
		return params[i].value < params[j].value
	})
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// queryUnescape decodes a query component; a malformed escape is kept as sent so that the
// signature simply fails to match instead of the request being rejected differently.
func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// uriEncode percent-encodes every byte outside the RFC 3986 unreserved set (A-Z a-z 0-9 - _ . ~)
// with upper-case hex; '/' is kept unless encodeSlash is set.
func uriEncode(s string, encodeSlash bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// headerValue returns the canonical value of one signed header. net/http moves some headers out
// of r.Header, so they are rebuilt from the fields that hold them now:
//   - host: r.Host, exactly as the client sent it (with or without port; the C producer sends
//     and signs the host without port even on a non-default port).
//   - content-length: r.ContentLength when known.
//   - transfer-encoding: r.TransferEncoding (net/http deletes the header).
//
// Values are trimmed, inner runs of spaces collapsed to one, and repeated headers joined by ','.
func headerValue(r *http.Request, name string) string {
	switch strings.ToLower(name) {
	case "host":
		if r.Host != "" {
			return trimAll(r.Host)
		}
		return trimAll(r.URL.Host)
	case "content-length":
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	case "transfer-encoding":
		if len(r.Header.Values(name)) == 0 {
			return strings.Join(r.TransferEncoding, ",")
		}
	}
	values := r.Header.Values(name)
	trimmed := make([]string, len(values))
	for i, v := range values {
		trimmed[i] = trimAll(v)
	}
	return strings.Join(trimmed, ",")
}

// trimAll removes leading and trailing whitespace and collapses inner runs of spaces into one
// space ("Trimall" of the SigV4 specification, as aws-sdk-go-v2 implements it).
func trimAll(s string) string {
	s = strings.Trim(s, " \t")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && i > 0 && s[i-1] == ' ' {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
