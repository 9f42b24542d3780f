package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/openkvs/openkvs/store"
	"github.com/openkvs/openkvs/store/postgres"
	"github.com/openkvs/openkvs/store/sqlite"
)

// catalogOpenTimeout bounds connecting to and migrating a PostgreSQL
// catalog at start-up.
const catalogOpenTimeout = 30 * time.Second

// openCatalog opens the catalog --catalog names: PostgreSQL for a
// postgres:// or postgresql:// URL, else ("") SQLite in the data directory.
func openCatalog(url, data string) (store.Catalog, error) {
	switch {
	case url == "":
		path := filepath.Join(data, "catalog.db")
		c, err := sqlite.Open(path)
		if errors.Is(err, sqlite.ErrReadOnly) {
			return nil, fmt.Errorf("catalog %s is not writable: check its permissions and owner", path)
		}
		if err != nil {
			return nil, err
		}
		return c, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		ctx, cancel := context.WithTimeout(context.Background(), catalogOpenTimeout)
		defer cancel()
		c, err := postgres.Open(ctx, url)
		if err != nil {
			// One line, as start-up errors are (pgx puts each address
			// tried on a line), and not unwrapped: the client commands'
			// hints about dial errors are not for serve.
			return nil, fmt.Errorf("--catalog: %s", strings.Join(strings.Fields(err.Error()), " "))
		}
		return c, nil
	}
	// Not echoed: the URL may hold a password.
	return nil, errors.New("--catalog must be a postgres:// or postgresql:// URL, or empty for SQLite in --data")
}
