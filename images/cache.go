package images

import (
	"container/list"
	"sync"
)

// cache keeps encoded images, least recently used first out, within a
// budget of bytes.
type cache struct {
	mu      sync.Mutex
	max     int64
	size    int64
	order   *list.List // of *entry, most recently used at the front
	entries map[string]*list.Element
}

type entry struct {
	key   string
	image []byte
}

func newCache(maxBytes int64) *cache {
	return &cache{max: maxBytes, order: list.New(), entries: map[string]*list.Element{}}
}

func (c *cache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry).image, true
}

// put keeps image under key; an image larger than the whole budget is not kept.
func (c *cache) put(key string, image []byte) {
	n := int64(len(image))
	if n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.order.PushFront(&entry{key: key, image: image})
	c.size += n
	for c.size > c.max {
		old := c.order.Remove(c.order.Back()).(*entry)
		delete(c.entries, old.key)
		c.size -= int64(len(old.image))
	}
}
