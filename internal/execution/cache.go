package execution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Cache backs atp.cache. Scope is the client id ("anonymous" for anonymous
// callers), so a client sees only its own keys and they persist across its
// executions. Values are JSON. The engine calls it on the execution's
// goroutine, in the order the code calls atp.cache, so an implementation
// must be quick; the context ends with the execution.
type Cache interface {
	// Get returns the value and true, or false for a missing or expired key.
	Get(ctx context.Context, scope, key string) (json.RawMessage, bool, error)
	// Set stores value for ttl (0: the cache's default). An error is thrown
	// in the code; ErrCacheFull when a cap is reached.
	Set(ctx context.Context, scope, key string, value json.RawMessage, ttl time.Duration) error
	Has(ctx context.Context, scope, key string) (bool, error)
	Delete(ctx context.Context, scope, key string) error
	// Clear deletes every key of scope (and of no other scope).
	Clear(ctx context.Context, scope string) error
}

// ErrCacheFull is returned by MemoryCache.Set past a cap.
var ErrCacheFull = errors.New("the cache is full")

// MemoryCacheOptions configure NewMemoryCache; zero fields take defaults.
type MemoryCacheOptions struct {
	DefaultTTL      time.Duration // 600 s, as the reference's NodeCache
	MaxTTL          time.Duration // 24 h: a longer ttl is cut to it
	MaxKeysPerScope int           // 1000, as the reference's maxKeys
	MaxValueBytes   int           // 1 MiB
	MaxBytes        int64         // 64 MiB over all scopes (keys and values)
	Now             func() time.Time
}

// MemoryCache is a Cache in process memory with per-key TTLs and caps on
// keys per client, value size and total size. Expired keys are dropped
// when met and, when a cap is reached, swept before Set gives up.
type MemoryCache struct {
	o MemoryCacheOptions

	mu     sync.Mutex
	scopes map[string]map[string]cacheEntry
	bytes  int64
}

type cacheEntry struct {
	value   json.RawMessage
	expires time.Time
}

// NewMemoryCache returns an empty MemoryCache.
func NewMemoryCache(o MemoryCacheOptions) *MemoryCache {
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = 600 * time.Second
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = 24 * time.Hour
	}
	if o.MaxKeysPerScope <= 0 {
		o.MaxKeysPerScope = 1000
	}
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = 1 << 20
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MemoryCache{o: o, scopes: make(map[string]map[string]cacheEntry)}
}

func entrySize(key string, e cacheEntry) int64 { return int64(len(key) + len(e.value)) }

// lookup returns the live entry of key, dropping it if it expired.
func (c *MemoryCache) lookup(scope, key string, now time.Time) (cacheEntry, bool) {
	m := c.scopes[scope]
	e, ok := m[key]
	if !ok {
		return cacheEntry{}, false
	}
	if !now.Before(e.expires) {
		c.remove(scope, key)
		return cacheEntry{}, false
	}
	return e, true
}

func (c *MemoryCache) remove(scope, key string) {
	m := c.scopes[scope]
	if e, ok := m[key]; ok {
		c.bytes -= entrySize(key, e)
		delete(m, key)
		if len(m) == 0 {
			delete(c.scopes, scope)
		}
	}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, scope, key string) (json.RawMessage, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lookup(scope, key, c.o.Now())
	return e.value, ok, nil
}

// Has implements Cache.
func (c *MemoryCache) Has(_ context.Context, scope, key string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.lookup(scope, key, c.o.Now())
	return ok, nil
}

// Delete implements Cache.
func (c *MemoryCache) Delete(_ context.Context, scope, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(scope, key)
	return nil
}

// Clear implements Cache.
func (c *MemoryCache) Clear(_ context.Context, scope string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key := range c.scopes[scope] {
		c.remove(scope, key)
	}
	return nil
}

// Set implements Cache.
func (c *MemoryCache) Set(_ context.Context, scope, key string, value json.RawMessage, ttl time.Duration) error {
	if len(value) > c.o.MaxValueBytes {
		return fmt.Errorf("%w: a value may be at most %d bytes of JSON, this one is %d", ErrCacheFull, c.o.MaxValueBytes, len(value))
	}
	if ttl <= 0 {
		ttl = c.o.DefaultTTL
	}
	ttl = min(ttl, c.o.MaxTTL)
	now := c.o.Now()
	e := cacheEntry{value: append(json.RawMessage(nil), value...), expires: now.Add(ttl)}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(scope, key)
	if len(c.scopes[scope]) >= c.o.MaxKeysPerScope {
		c.sweep(scope, now)
		if len(c.scopes[scope]) >= c.o.MaxKeysPerScope {
			return fmt.Errorf("%w: a client may keep at most %d keys", ErrCacheFull, c.o.MaxKeysPerScope)
		}
	}
	if c.bytes+entrySize(key, e) > c.o.MaxBytes {
		for s := range c.scopes {
			c.sweep(s, now)
		}
		if c.bytes+entrySize(key, e) > c.o.MaxBytes {
			return fmt.Errorf("%w: the server's cache holds %d bytes at most", ErrCacheFull, c.o.MaxBytes)
		}
	}
	m := c.scopes[scope]
	if m == nil {
		m = make(map[string]cacheEntry)
		c.scopes[scope] = m
	}
	m[key] = e
	c.bytes += entrySize(key, e)
	return nil
}

// sweep drops the expired keys of scope.
func (c *MemoryCache) sweep(scope string, now time.Time) {
	for key, e := range c.scopes[scope] {
		if !now.Before(e.expires) {
			c.remove(scope, key)
		}
	}
}
