package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
)

// maxCachedKeys bounds the signing-key cache. A key is valid for one day, so the cache holds
// roughly one entry per access key in use; when full it is simply emptied.
const maxCachedKeys = 1024

// keyCacheKey identifies one derived signing key. The service is fixed per Verifier.
type keyCacheKey struct {
	secret, date, region string
}

// keyCache memoizes derived signing keys so a request costs one HMAC instead of five.
// The zero value is ready to use.
type keyCache struct {
	mu   sync.Mutex
	keys map[keyCacheKey][]byte
}

// get returns the signing key for (secret, date, region, service), deriving it on a miss.
func (c *keyCache) get(secret, date, region, service string) []byte {
	k := keyCacheKey{secret, date, region}
	c.mu.Lock()
	key, ok := c.keys[k]
	c.mu.Unlock()
	if ok {
		return key
	}
	key = deriveSigningKey(secret, date, region, service)
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[keyCacheKey][]byte)
	}
	c.keys[k] = key
	c.mu.Unlock()
	return key
}

// deriveSigningKey computes kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func deriveSigningKey(secret, date, region, service string) []byte {
	key := hmacSHA256([]byte("AWS4"+secret), date)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	return hmacSHA256(key, terminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
