package store

import "context"

// Importer is a catalog that takes in another catalog's streams as they
// are, IDs included: `openkvs migrate` moves an embedded catalog into a
// shared one through it. Keeping a stream's ID keeps its blob keys
// (s{id}/...) valid, so that blobs copy under their own keys and fragment
// rows copy unchanged (AddFragments).
type Importer interface {
	// ImportStream inserts s with its ID, ARN, version, status, creation
	// time, tags and configurations as they are, and with next as the first
	// fragment sequence it will reserve, so that no sequence the source
	// catalog handed out is handed out again. No stream created later gets
	// s.ID or a smaller one. A stream with s's ID, name and ARN is s,
	// imported before: its sequence is raised to next if lower and nothing
	// else changes (created is false). ErrExists when another stream holds
	// s's ID, name or ARN.
	ImportStream(ctx context.Context, s *Stream, next uint64) (created bool, err error)
	// ReserveStreamIDs makes sure that no stream created from now on gets
	// an ID of at most id: the IDs of streams deleted in the source
	// catalog are not given out again.
	ReserveStreamIDs(ctx context.Context, id int64) error
}
