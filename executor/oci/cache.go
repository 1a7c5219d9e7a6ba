package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache keeps unpacked root file systems, one per manifest digest, under
// one directory, and evicts the least recently used ones (not in use by a
// running task) to stay under MaxBytes. Safe for concurrent use.
//
// On disk: DIR/<hex>/rootfs and DIR/<hex>/size (the unpacked bytes, written
// last: a directory without it is a crashed unpack and is removed at
// start). The size file's modification time is the entry's last use.
// DIR/<hex>/owner names the host id that owns the rootfs (the container's
// root in a user namespace); without it the daemon's user does. An entry
// unpacked for another owner is removed at start.
type Cache struct {
	dir      string
	maxBytes int64
	owner    int
	log      *slog.Logger

	mu      sync.Mutex
	entries map[string]*cacheEntry
	pending map[string]chan struct{}
	unpacks int
}

type cacheEntry struct {
	hex      string
	size     int64
	lastUsed time.Time
	inUse    int
}

// OpenCache opens (creating) the cache directory and forgets crashed
// unpacks. Root file systems are given to owner (uid and gid; -1: left to
// the daemon's user).
func OpenCache(dir string, maxBytes int64, owner int, log *slog.Logger) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("rootfs cache size %d: must be positive", maxBytes)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("rootfs cache: %w", err)
	}
	c := &Cache{dir: dir, maxBytes: maxBytes, owner: owner, log: log, entries: map[string]*cacheEntry{}, pending: map[string]chan struct{}{}}
	list, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs cache: %w", err)
	}
	for _, e := range list {
		p := filepath.Join(dir, e.Name())
		raw, err := os.ReadFile(filepath.Join(p, "size"))
		size, perr := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		st, serr := os.Stat(filepath.Join(p, "size"))
		if strings.HasPrefix(e.Name(), ".") || err != nil || perr != nil || serr != nil || entryOwner(p) != owner {
			if rerr := os.RemoveAll(p); rerr != nil {
				log.Warn("cannot remove an unfinished rootfs", "dir", p, "err", rerr)
			}
			continue
		}
		c.entries[e.Name()] = &cacheEntry{hex: e.Name(), size: size, lastUsed: st.ModTime()}
	}
	return c, nil
}

// Get returns the rootfs of img, unpacking it on a miss, and a release
// function to call when the task using it is done (until then the entry is
// not evicted). hit tells whether it was already there.
func (c *Cache) Get(ctx context.Context, img *Image) (rootfs string, release func(), hit bool, err error) {
	key := img.Digest.Hex
	for {
		c.mu.Lock()
		if e, ok := c.entries[key]; ok {
			e.inUse++
			e.lastUsed = time.Now()
			c.mu.Unlock()
			now := time.Now()
			_ = os.Chtimes(filepath.Join(c.dir, key, "size"), now, now)
			return filepath.Join(c.dir, key, "rootfs"), c.releaser(e), true, nil
		}
		wait, busy := c.pending[key]
		if !busy {
			c.pending[key] = make(chan struct{})
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", nil, false, ctx.Err()
		}
	}
	defer func() {
		c.mu.Lock()
		close(c.pending[key])
		delete(c.pending, key)
		c.mu.Unlock()
	}()

	if err := img.VerifyLayers(); err != nil {
		return "", nil, false, err
	}
	tmp := filepath.Join(c.dir, "."+key+"-"+randomSuffix())
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", nil, false, fmt.Errorf("rootfs cache: %w", err)
	}
	start := time.Now()
	size, err := Unpack(ctx, img, filepath.Join(tmp, "rootfs"), c.maxBytes, c.owner)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, false, err
	}
	if c.owner >= 0 {
		if err := os.WriteFile(filepath.Join(tmp, "owner"), []byte(strconv.Itoa(c.owner)), 0o600); err != nil {
			_ = os.RemoveAll(tmp)
			return "", nil, false, fmt.Errorf("rootfs cache: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "size"), []byte(strconv.FormatInt(size, 10)), 0o600); err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, false, fmt.Errorf("rootfs cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unpacks++
	c.evictLocked(size)
	if err := os.Rename(tmp, filepath.Join(c.dir, key)); err != nil {
		_ = os.RemoveAll(tmp)
		return "", nil, false, fmt.Errorf("rootfs cache: %w", err)
	}
	e := &cacheEntry{hex: key, size: size, lastUsed: time.Now(), inUse: 1}
	c.entries[key] = e
	c.log.Info("image unpacked", "digest", img.Digest.String(), "bytes", size, "took", time.Since(start))
	return filepath.Join(c.dir, key, "rootfs"), c.releaser(e), false, nil
}

// entryOwner reads the owner an entry was unpacked for (-1: none recorded).
func entryOwner(dir string) int {
	raw, err := os.ReadFile(filepath.Join(dir, "owner"))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return -2 // unreadable: matches no owner, so the entry goes
	}
	return n
}

func (c *Cache) releaser(e *cacheEntry) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			e.inUse--
			c.evictLocked(0)
		})
	}
}

// evictLocked removes least recently used entries not in use until room
// more bytes fit. Entries in use stay: the cache may then sit over its
// size until they are released.
func (c *Cache) evictLocked(room int64) {
	for c.usedLocked()+room > c.maxBytes {
		var oldest *cacheEntry
		for _, e := range c.entries {
			if e.inUse == 0 && (oldest == nil || e.lastUsed.Before(oldest.lastUsed)) {
				oldest = e
			}
		}
		if oldest == nil {
			return
		}
		delete(c.entries, oldest.hex)
		p := filepath.Join(c.dir, oldest.hex)
		// Rename first, so that a crash mid-removal leaves a dot directory
		// that OpenCache clears, not a half-deleted entry.
		gone := filepath.Join(c.dir, "."+oldest.hex+"-evicted-"+randomSuffix())
		if err := os.Rename(p, gone); err == nil {
			p = gone
		}
		if err := os.RemoveAll(p); err != nil {
			c.log.Warn("cannot remove an evicted rootfs", "dir", p, "err", err)
		}
		c.log.Info("rootfs evicted", "digest", "sha256:"+oldest.hex, "bytes", oldest.size)
	}
}

func (c *Cache) usedLocked() int64 {
	var n int64
	for _, e := range c.entries {
		n += e.size
	}
	return n
}

// CacheStats tells what the cache holds.
type CacheStats struct {
	Entries int
	Bytes   int64
	// Unpacks counts the images unpacked since the cache was opened.
	Unpacks int
}

// Stats returns the cache's current content.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Entries: len(c.entries), Bytes: c.usedLocked(), Unpacks: c.unpacks}
}

// Has tells whether the rootfs of the manifest digest (hex) is cached.
func (c *Cache) Has(hexDigest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[hexDigest]
	return ok
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
