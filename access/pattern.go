package access

import (
	"errors"
	"fmt"
	"strings"
)

// maxStreamName is the longest stream name KVS accepts (spec §3.1).
const maxStreamName = 256

// pattern matches a name exactly, or every name starting with prefix when it ended in '*'.
type pattern struct {
	prefix   string
	wildcard bool
}

func (p pattern) match(name string) bool {
	if p.wildcard {
		return strings.HasPrefix(name, p.prefix)
	}
	return name == p.prefix
}

// parsePattern splits a trailing '*' off s; a '*' anywhere else is an error.
func parsePattern(s string) (pattern, error) {
	prefix, wildcard := strings.CutSuffix(s, "*")
	if strings.Contains(prefix, "*") {
		return pattern{}, errors.New("'*' is only allowed at the end")
	}
	return pattern{prefix, wildcard}, nil
}

// parseStreamPattern parses a stream name pattern: "cam-1", "cam-*" or "*". The name part must be
// a possible stream name: 1–256 of [a-zA-Z0-9_.-] (spec §3.1).
func parseStreamPattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, errors.New("empty pattern")
	}
	p, err := parsePattern(s)
	if err != nil {
		return pattern{}, fmt.Errorf("bad pattern %q: %w", s, err)
	}
	if len(p.prefix) > maxStreamName {
		return pattern{}, fmt.Errorf("bad pattern %q: longer than %d characters", s, maxStreamName)
	}
	for _, c := range p.prefix {
		if !streamNameChar(c) {
			return pattern{}, fmt.Errorf("bad pattern %q: stream names contain only letters, digits, '_', '.' and '-'", s)
		}
	}
	return p, nil
}

func streamNameChar(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// parseActionPattern parses "kinesisvideo:PutMedia", "kinesisvideo:Get*", "kinesisvideo:*" or
// "*" into a pattern over bare action names. A name or prefix matching no known action is an
// error, so typos are caught when the file is loaded rather than silently denying.
func parseActionPattern(s string) (pattern, error) {
	if s == "*" {
		return pattern{wildcard: true}, nil
	}
	name, ok := strings.CutPrefix(s, actionPrefix)
	if !ok {
		return pattern{}, fmt.Errorf("action %q must start with %q, e.g. %q", s, actionPrefix, actionPrefix+"PutMedia")
	}
	p, err := parsePattern(name)
	if err != nil {
		return pattern{}, fmt.Errorf("bad action %q: %w", s, err)
	}
	for _, a := range actions {
		if p.match(a) {
			return p, nil
		}
	}
	if hint := suggestAction(name); hint != "" {
		return pattern{}, fmt.Errorf("unknown action %q (action names are case-sensitive: did you mean %q?)", s, actionPrefix+hint)
	}
	return pattern{}, fmt.Errorf("unknown action %q", s)
}
