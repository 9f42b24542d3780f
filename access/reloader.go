package access

import (
	"fmt"
	"sync/atomic"
)

// Reloader holds the Store loaded from a credentials file and swaps in a new one on Reload
// (e.g. on SIGHUP). Readers are never blocked and requests in flight keep the Store they started
// with; a failed reload keeps the previous Store.
type Reloader struct {
	path  string
	store atomic.Pointer[Store]
}

// NewReloader loads path and returns a Reloader serving it.
func NewReloader(path string) (*Reloader, error) {
	r := &Reloader{path: path}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the file again and swaps the new Store in. On error the current Store stays.
func (r *Reloader) Reload() error {
	s, err := Load(r.path)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	r.store.Store(s)
	return nil
}

// Store returns the current Store. Use one Store for all checks of one request so that a reload in
// between cannot mix two files.
func (r *Reloader) Store() *Store { return r.store.Load() }

// Secret is Store().Secret; its signature fits sigv4.Verifier.Lookup.
func (r *Reloader) Secret(accessKeyID string) (string, bool) { return r.Store().Secret(accessKeyID) }

// Allowed is Store().Allowed.
func (r *Reloader) Allowed(accessKeyID, action, streamName string) bool {
	return r.Store().Allowed(accessKeyID, action, streamName)
}
