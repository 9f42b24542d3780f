package streaming

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keySize is the length of a session key: an HMAC-SHA256 key of 256 bits.
const keySize = 32

// SharedKeyName names the session key in a cluster's shared secrets
// (store.Cluster.Secret): every node signs and checks tokens with it.
const SharedKeyName = "playback-session-key"

// LoadKey returns the session key kept in the file at path, creating the file
// with a new random key (mode 0600, written atomically and synced) when it
// does not exist, so that session URLs survive a restart.
func LoadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) != keySize {
			return nil, fmt.Errorf("session key %s has %d bytes, want %d: delete it to make a new one", path, len(key), keySize)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read session key: %w", err)
	}
	key = make([]byte, keySize)
	rand.Read(key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".session-key-*")
	if err != nil {
		return nil, fmt.Errorf("create session key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write session key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sync session key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write session key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("save session key: %w", err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("sync session key directory: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return nil, fmt.Errorf("sync session key directory: %w", err)
	}
	return key, nil
}
