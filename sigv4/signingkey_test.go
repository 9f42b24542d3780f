package sigv4

import (
	"encoding/hex"
	"fmt"
	"testing"
)

// TestDeriveSigningKey checks the key derivation example of the AWS documentation.
func TestDeriveSigningKey(t *testing.T) {
	got := hex.EncodeToString(deriveSigningKey(testSecret, "20120215", "us-east-1", "iam"))
	const want = "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
	if got != want {
		t.Errorf("signing key = %s, want %s", got, want)
	}
}

func TestKeyCacheBounded(t *testing.T) {
	var c keyCache
	first := c.get("secret", "20260102", "us-east-1", DefaultService)
	if again := c.get("secret", "20260102", "us-east-1", DefaultService); &again[0] != &first[0] {
		t.Error("second lookup derived the key again instead of using the cache")
	}
	if other := c.get("secret", "20260103", "us-east-1", DefaultService); hex.EncodeToString(other) == hex.EncodeToString(first) {
		t.Error("a different date gave the same key")
	}
	for i := range 3 * maxCachedKeys {
		c.get(fmt.Sprint("secret", i), "20260102", "us-east-1", DefaultService)
		if n := len(c.keys); n > maxCachedKeys {
			t.Fatalf("cache holds %d keys, limit %d", n, maxCachedKeys)
		}
	}
}
