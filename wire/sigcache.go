package wire

import (
	"crypto/sha256"
	"sync"
	"time"
)

// SigCache remembers, by the SHA-256 of their bytes, the messages whose
// signature a node has checked, so the same bytes reaching it again cost
// a hash instead of an ed25519 check. A job's offer does: every node
// checks it as it is gossiped, again as the market reads it, and again
// inside the job's verdict; a worker also in its invitation and its
// assignment. Only a signature that checked out is remembered, and only
// for those exact bytes; size, form, kind and freshness are checked on
// every call.
//
// One cache belongs to one node, so that nodes sharing a process (the
// test networks) each pay for their own checks, as daemons do.
type SigCache struct {
	mu       sync.Mutex
	known    map[[sha256.Size]byte]struct{}
	order    [][sha256.Size]byte // oldest first
	max      int
	verified int // signatures checked and found good
}

// NewSigCache remembers up to max messages, forgetting the oldest first.
func NewSigCache(max int) *SigCache {
	return &SigCache{known: make(map[[sha256.Size]byte]struct{}, max), max: max}
}

// Open is the package's Open, with the signature check skipped for bytes
// this cache has seen pass it. A nil cache checks every signature.
func (c *SigCache) Open(data []byte, kind string, lim Limits, now time.Time) (Opened, error) {
	return open(data, kind, lim, now, c)
}

// Checked is how many signatures the cache has verified and remembered:
// the opens it did not skip, less those that failed.
func (c *SigCache) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verified
}

func (c *SigCache) has(key [sha256.Size]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.known[key]
	return ok
}

func (c *SigCache) add(key [sha256.Size]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verified++
	if _, ok := c.known[key]; ok {
		return
	}
	c.known[key] = struct{}{}
	c.order = append(c.order, key)
	if len(c.order) > c.max {
		delete(c.known, c.order[0])
		c.order = c.order[1:]
	}
}
