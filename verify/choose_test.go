package verify

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func bids(n int, rep float64) []Bid {
	out := make([]Bid, n)
	for i := range out {
		out[i] = Bid{Worker: peer.ID(fmt.Sprintf("worker-%02d", i)), Price: 1000, Reputation: rep, FreeSlots: 1}
	}
	return out
}

func TestChoose(t *testing.T) {
	pool := bids(10, 0.5)
	pool = append(pool,
		Bid{Worker: "greedy", Price: 99999, Reputation: 1, FreeSlots: 4}, // asks more than the reward
		Bid{Worker: "cheater", Price: 1, Reputation: 0.05, FreeSlots: 4}, // below the reputation floor
		pool[0], // a duplicate bid
	)
	got := Choose(pool, 3, 5000, []byte("job-secret"), 0.1)
	if len(got) != 3 {
		t.Fatalf("chose %v, want 3 workers", got)
	}
	seen := map[peer.ID]bool{}
	for _, id := range got {
		if id == "greedy" || id == "cheater" || seen[id] {
			t.Fatalf("chose %v", got)
		}
		seen[id] = true
	}
	if got := Choose(bids(2, 0.5), 3, 5000, []byte("x"), 0); len(got) != 2 {
		t.Fatalf("with 2 bids for k=3 chose %v, want both", got)
	}
}

// Among equal bids no worker is always picked: the draw depends on the
// job's secret, so workers cannot arrange to be chosen together, and over
// many jobs the picks spread evenly.
func TestChooseIsUnpredictableAndFair(t *testing.T) {
	pool := bids(10, 0.5)
	counts := map[peer.ID]int{}
	const jobs = 3000
	for j := range jobs {
		for _, id := range Choose(pool, 3, 5000, []byte(fmt.Sprintf("secret-%d", j)), 0) {
			counts[id]++
		}
	}
	want := jobs * 3 / 10
	for id, n := range counts {
		if n < want*8/10 || n > want*12/10 {
			t.Errorf("%s picked %d times over %d jobs, want about %d", id, n, jobs, want)
		}
	}
	// Reputation still matters: a trusted worker is picked far more often.
	pool[0].Reputation = 1
	trusted := 0
	for j := range 500 {
		for _, id := range Choose(pool, 3, 5000, []byte(fmt.Sprintf("s%d", j)), 0) {
			if id == pool[0].Worker {
				trusted++
			}
		}
	}
	if trusted < 450 {
		t.Errorf("a worker with reputation 1 among 0.5s was picked in %d of 500 jobs", trusted)
	}
}

// Newcomers get a seat: among workers with a record, a stranger is picked
// for one of three seats, and never more than one.
func TestChooseSeatsOneStranger(t *testing.T) {
	pool := bids(6, 0.9)
	pool = append(pool, Bid{Worker: "new1", Price: 1000, Reputation: 0.5, FreeSlots: 1},
		Bid{Worker: "new2", Price: 1000, Reputation: 0.5, FreeSlots: 1})
	for j := range 200 {
		got := Choose(pool, 3, 5000, []byte(fmt.Sprintf("s%d", j)), 0.1)
		newcomers := 0
		for _, id := range got {
			if id == "new1" || id == "new2" {
				newcomers++
			}
		}
		if len(got) != 3 || newcomers != 1 {
			t.Fatalf("job %d chose %v: want 3 workers, exactly one a newcomer", j, got)
		}
	}
}
