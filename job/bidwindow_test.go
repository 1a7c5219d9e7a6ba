package job

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
)

// TestBidWindow: when a submitter stops waiting for bids and chooses, for
// the edge cases of issue #22. The window closes as soon as more bids
// could not improve the choice, and never with fewer usable bids than
// workers needed.
func TestBidWindow(t *testing.T) {
	miners := make([]peer.ID, 6)
	for i := range miners {
		miners[i] = peer.ID(fmt.Sprintf("miner-%d", i))
	}
	const reward = 1000
	bid := func(i int, price uint64) Bid { return Bid{Worker: miners[i], Price: price} }
	bids := func(n int) []Bid {
		var out []Bid
		for i := range n {
			out = append(out, bid(i, 500))
		}
		return out
	}
	none := func(peer.ID) bool { return false }
	known := func(n int) []peer.ID { return miners[:n] }

	cases := []struct {
		name      string
		need      int
		bids      []Bid
		couldBid  []peer.ID
		enoughFor time.Duration
		want      bool
	}{
		{"k bids at once from the only k able miners", 3, bids(3), known(3), 0, true},
		{"a slow last bidder: 2 of 3 so far", 3, bids(2), known(3), 0, false},
		{"the slow last bidder arrives", 3, bids(3), known(3), 0, true},
		{"a miner that never answers: k bids, grace not over", 3, bids(3), known(4), 50 * time.Millisecond, false},
		{"a miner that never answers: grace over", 3, bids(3), known(4), BidGrace, true},
		{"more bids than k, twice over", 3, bids(6), known(6), 0, true},
		{"more bids than k, not yet twice", 3, bids(4), known(6), 0, false},
		{"no table (a submitter that hears no heartbeats): grace decides", 1, bids(1), nil, BidGrace, true},
		{"no bids", 1, nil, known(3), time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			usable := usableBids(tc.bids, reward, func(peer.ID) float64 { return verify.StrangerScore }, none)
			if got := bidWindowDone(tc.need, usable, tc.couldBid, tc.enoughFor, BidGrace); got != tc.want {
				t.Fatalf("bidWindowDone(need %d, %d bids, %d able) = %v, want %v", tc.need, len(usable), len(tc.couldBid), got, tc.want)
			}
		})
	}

	t.Run("bids asking more than the reward do not count", func(t *testing.T) {
		over := []Bid{bid(0, reward+1), bid(1, reward+1), bid(2, reward+1)}
		usable := usableBids(over, reward, func(peer.ID) float64 { return verify.StrangerScore }, none)
		if len(usable) != 0 || bidWindowDone(1, usable, known(3), time.Hour, BidGrace) {
			t.Fatalf("%d usable of 3 bids above the reward; the window must wait for its end", len(usable))
		}
	})
	t.Run("taken workers and reputations below the floor do not count", func(t *testing.T) {
		taken := func(p peer.ID) bool { return p == miners[0] }
		reputation := func(p peer.ID) float64 {
			if p == miners[1] {
				return verify.ChooseFloor / 2
			}
			return verify.StrangerScore
		}
		usable := usableBids(bids(3), reward, reputation, taken)
		if len(usable) != 1 || usable[0].Worker != miners[2] {
			t.Fatalf("usable = %v, want only %s", usable, miners[2])
		}
	})
}

// TestFailedRunsInWaitingReason: a job waiting for a tie-breaker after
// its workers' runs failed says so (found running the PyTorch image
// before the unpacker handled sticky directories: every miner failed the
// same way, and the reason only said "needs 4 workers, has 3").
func TestFailedRunsInWaitingReason(t *testing.T) {
	rec := Record{Reports: map[string]string{
		"w1": "error: image sha256:ab: mkdirat tmp: unsupported file mode",
		"w2": fakeCID("result"),
		"w3": "error: image sha256:ab: mkdirat tmp: unsupported file mode",
	}}
	got := failedRuns(rec)
	if want := "; 2 of its workers' runs failed (image sha256:ab: mkdirat tmp: unsupported file mode)"; got != want {
		t.Fatalf("failedRuns = %q, want %q", got, want)
	}
	if got := failedRuns(Record{Reports: map[string]string{"w1": fakeCID("r")}}); got != "" {
		t.Fatalf("no failure: failedRuns = %q, want nothing", got)
	}
}
