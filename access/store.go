package access

import (
	"maps"
	"slices"
)

// Store is an immutable set of access keys with their secrets and policies, safe for concurrent
// use. Build it with Load or Parse.
type Store struct {
	keys map[string]*key
}

// key is one access key. A nil policy means the key may do everything.
type key struct {
	secret string
	policy []statement
}

// statement grants its actions on its streams.
type statement struct {
	actions []pattern
	streams []pattern
}

// Len returns the number of access keys.
func (s *Store) Len() int { return len(s.keys) }

// IDs returns the access key IDs in byte order.
func (s *Store) IDs() []string { return slices.Sorted(maps.Keys(s.keys)) }

// Secret returns the secret access key of accessKeyID; its signature fits sigv4.Verifier.Lookup.
func (s *Store) Secret(accessKeyID string) (string, bool) {
	k, ok := s.keys[accessKeyID]
	if !ok {
		return "", false
	}
	return k.secret, true
}

// Allowed reports whether accessKeyID may perform action (a bare IAM action name such as
// "PutMedia", see Actions) on the stream named streamName. Unknown keys and unknown actions are
// always denied, even for keys without a policy, so that a misspelled action in the server fails
// closed.
//
// streamName is matched against the statement's stream patterns. For ListStreams, which names no
// stream, pass "" to ask whether the key may call it at all (it has the action for any stream
// pattern), then call Allowed(key, "ListStreams", name) for each stream to filter the results:
// a key granted ListStreams on "cam-*" lists only the cam-* streams. For every other action ""
// matches only the "*" pattern, so a forgotten stream name never widens a restricted key.
func (s *Store) Allowed(accessKeyID, action, streamName string) bool {
	k, ok := s.keys[accessKeyID]
	if !ok || !knownAction(action) {
		return false
	}
	if k.policy == nil {
		return true
	}
	anyStream := streamName == "" && slices.Contains(accountActions, action)
	for _, st := range k.policy {
		if matchAny(st.actions, action) && (anyStream || matchAny(st.streams, streamName)) {
			return true
		}
	}
	return false
}

func matchAny(patterns []pattern, name string) bool {
	for _, p := range patterns {
		if p.match(name) {
			return true
		}
	}
	return false
}
