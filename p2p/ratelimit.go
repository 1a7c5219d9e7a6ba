package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Rate is a token bucket's shape: it holds up to Burst tokens and gains
// one every Every. A message costs one token.
type Rate struct {
	Every time.Duration
	Burst int
}

// PerMinute is a Rate of n messages a minute with bursts of burst.
func PerMinute(n, burst int) Rate {
	return Rate{Every: time.Minute / time.Duration(max(n, 1)), Burst: max(burst, 1)}
}

// Bucket is one token bucket. The zero Bucket is full. It is not safe for
// concurrent use: its owner locks.
type Bucket struct {
	used float64 // tokens spent and not yet refilled
	at   time.Time
}

// refill returns the tokens spent as of now.
func (b *Bucket) refill(r Rate, now time.Time) float64 {
	if b.at.IsZero() || r.Every <= 0 {
		return 0
	}
	if gained := float64(now.Sub(b.at)) / float64(r.Every); gained > 0 {
		return max(0, b.used-gained)
	}
	return b.used
}

// Allow takes a token if there is one.
func (b *Bucket) Allow(r Rate, now time.Time) bool {
	return b.Wait(r, now) == 0
}

// Wait takes a token and returns 0 if there is one; otherwise it takes
// nothing and returns how long until there will be.
func (b *Bucket) Wait(r Rate, now time.Time) time.Duration {
	used := b.refill(r, now)
	if used+1 > float64(r.Burst) {
		return max(time.Nanosecond, time.Duration((used+1-float64(r.Burst))*float64(r.Every)))
	}
	b.used, b.at = used+1, now
	return 0
}

// full reports whether the bucket has refilled completely, so that
// forgetting it loses nothing.
func (b *Bucket) full(r Rate, now time.Time) bool { return b.refill(r, now) == 0 }

// Limiter keeps one Bucket per peer, for at most maxPeers peers: a crowd of
// fresh identities cannot grow it without bound. When it is full, buckets
// that have refilled are forgotten first (that loses nothing), then the
// fullest one.
type Limiter struct {
	rate     Rate
	maxPeers int

	mu      sync.Mutex
	buckets map[peer.ID]*Bucket
}

// NewLimiter returns a Limiter of the given rate per peer.
func NewLimiter(r Rate, maxPeers int) *Limiter {
	return &Limiter{rate: r, maxPeers: max(maxPeers, 1), buckets: map[peer.ID]*Bucket{}}
}

// Allow takes one of p's tokens if it has one.
func (l *Limiter) Allow(p peer.ID, now time.Time) bool { return l.Wait(p, now) == 0 }

// Wait takes one of p's tokens and returns 0, or returns how long until
// p will have one.
func (l *Limiter) Wait(p peer.ID, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[p]
	if !ok {
		if len(l.buckets) >= l.maxPeers {
			l.evict(now)
		}
		b = &Bucket{}
		l.buckets[p] = b
	}
	return b.Wait(l.rate, now)
}

// Len is how many peers the limiter tracks.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) evict(now time.Time) {
	var fullest peer.ID
	least := -1.0
	for id, b := range l.buckets {
		used := b.refill(l.rate, now)
		if used == 0 {
			delete(l.buckets, id)
			continue
		}
		if least < 0 || used < least {
			fullest, least = id, used
		}
	}
	if len(l.buckets) >= l.maxPeers {
		delete(l.buckets, fullest)
	}
}
