package p2p

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestBucket(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := Rate{Every: time.Second, Burst: 3}
	var b Bucket
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {0, true}, {0, true}, {0, false}, // the burst, then empty
		{500 * time.Millisecond, false},
		{time.Second, true}, {time.Second, false}, // one token a second
		{10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, true}, {10 * time.Second, false}, // refilled to the burst, no more
	}
	for i, s := range steps {
		if got := b.Allow(r, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d at %v: Allow = %v, want %v", i, s.at, got, s.want)
		}
	}
	if w := b.Wait(r, t0.Add(10*time.Second)); w != time.Second {
		t.Fatalf("Wait on an empty bucket = %v, want 1s", w)
	}
}

// A crowd of identities cannot grow a Limiter past its cap, and one that
// is throttled does not get a fresh burst because others arrived.
func TestLimiterBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(Rate{Every: time.Minute, Burst: 2}, 10)
	flooder := peer.ID("flooder")
	for l.Allow(flooder, t0) {
	}
	for i := range 1000 {
		l.Allow(peer.ID(fmt.Sprintf("sybil-%d", i)), t0)
		if l.Len() > 10 {
			t.Fatalf("limiter tracks %d peers, cap 10", l.Len())
		}
	}
	// The flooder had spent its whole burst: the fullest buckets went first.
	if l.Allow(flooder, t0) {
		t.Fatal("the throttled peer got a fresh burst after a crowd of newcomers")
	}
}
