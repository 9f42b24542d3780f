// Package sqlrow is what the SQL catalogs (store/sqlite and store/postgres)
// share: the columns of their common schema and how a row of them becomes
// a store type. Only the dialects differ between the two backends.
package sqlrow

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/openkvs/openkvs/store"
)

// Scanner is a row of either driver (database/sql or pgx).
type Scanner interface {
	Scan(dest ...any) error
}

// StreamColumns are the streams table's columns, in Stream's order.
const StreamColumns = `id, name, arn, device_name, media_type, kms_key_id, version, status,
	created_ms, retention_hours, storage_tier, tags, image_generation, notification`

// FragmentColumns are the fragments table's columns, in Fragment's order.
const FragmentColumns = `stream_id, number, producer_ms, server_ms, duration_ms, size, blob_key, header_key`

// Stream reads a row of StreamColumns. A Scan error comes back as it is,
// so that each backend can tell its own "no rows".
func Stream(row Scanner) (*store.Stream, error) {
	var s store.Stream
	var created int64
	var tags string
	if err := row.Scan(&s.ID, &s.Name, &s.ARN, &s.DeviceName, &s.MediaType, &s.KMSKeyID, &s.Version,
		&s.Status, &created, &s.RetentionHours, &s.StorageTier, &tags, &s.ImageGeneration, &s.Notification); err != nil {
		return nil, err
	}
	s.CreationTime = time.UnixMilli(created)
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return nil, fmt.Errorf("decode tags of stream %s: %w", s.Name, err)
	}
	return &s, nil
}

// Fragment reads a row of FragmentColumns.
func Fragment(row Scanner) (*store.Fragment, error) {
	var f store.Fragment
	var producer, server, duration int64
	if err := row.Scan(&f.StreamID, &f.Number, &producer, &server, &duration, &f.Size, &f.BlobKey, &f.HeaderKey); err != nil {
		return nil, err
	}
	f.ProducerTime = time.UnixMilli(producer)
	f.ServerTime = time.UnixMilli(server)
	f.Duration = time.Duration(duration) * time.Millisecond
	return &f, nil
}

// EncodeTags is the tags column's value: a JSON object, {} for none.
func EncodeTags(tags map[string]string) (string, error) {
	if tags == nil {
		tags = map[string]string{}
	}
	b, err := json.Marshal(tags)
	return string(b), err
}

// InOrder returns the fragments of found in the order of numbers, leaving
// out numbers with no fragment.
func InOrder(numbers []string, found []*store.Fragment) []*store.Fragment {
	byNumber := make(map[string]*store.Fragment, len(found))
	for _, f := range found {
		byNumber[f.Number] = f
	}
	out := make([]*store.Fragment, 0, len(found))
	for _, n := range numbers {
		if f, ok := byNumber[n]; ok {
			out = append(out, f)
		}
	}
	return out
}

// Rows are the rows of a query of either driver.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// All reads every row with read; the caller closes rows.
func All[T any](rows Rows, read func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := read(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
