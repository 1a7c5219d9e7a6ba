package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Bid is a miner's answer to an offer, as the submitter weighs it.
type Bid struct {
	Worker     peer.ID
	Price      uint64  // what the worker asks, ≤ the offer's reward
	Reputation float64 // the submitter's own view, 0..1 (0.5 for strangers; 0 when excluded: Standing)
	FreeSlots  uint32
}

// ChooseFloor is the reputation below which a bidder is never chosen.
const ChooseFloor = 0.1

// StrangerScore is the reputation of a peer this node knows nothing about.
const StrangerScore = 0.5

// Standing is the reputation a bid carries into Choose: excluded peers
// score 0, below the floor, so they are never chosen again.
func (r *Reputation) Standing(p peer.ID) float64 {
	if r.Excluded(p) {
		return 0
	}
	return r.Score(p)
}

// Choose picks k workers from the bids. Cheaper, more reputable and less
// loaded workers score higher, and a per-job random draw, keyed by a secret
// only the submitter knows (its signature over the job, say), breaks ties
// and mixes the order, so that workers can neither predict nor arrange to
// be picked together for a job. Workers with a reputation below floor are
// never picked, and on jobs of 3 or more one seat is kept for a stranger
// (reputation 0.5) when one bids. It returns fewer than k when there are
// not enough bids. The market picks every worker with it, spot verifiers
// and tie-breakers included, and so does the simulator.
func Choose(bids []Bid, k int, reward uint64, secret []byte, floor float64) []peer.ID {
	type scored struct {
		id    peer.ID
		score float64
	}
	var pool []scored
	seen := map[peer.ID]bool{}
	strangers := map[peer.ID]bool{}
	for _, b := range bids {
		if seen[b.Worker] || b.Price > reward || b.Reputation < floor {
			continue
		}
		seen[b.Worker] = true
		strangers[b.Worker] = math.Abs(b.Reputation-StrangerScore) < 1e-9
		price := 1.0
		if reward > 0 {
			price = 1 - float64(b.Price)/float64(reward) // 0 (asks the full reward) .. 1 (free)
		}
		load := 1 - 1/float64(1+b.FreeSlots) // more free slots, less queueing
		// Reputation dominates, price and load follow, and the random
		// draw carries a weight of its own so the top of the list is not
		// fixed: a Sybil cannot win every job by undercutting.
		s := 3*b.Reputation + 1*price + 0.5*load + 1.5*draw(secret, string(b.Worker))
		pool = append(pool, scored{b.Worker, s})
	}
	slices.SortFunc(pool, func(a, b scored) int {
		if a.score != b.score {
			if a.score > b.score {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.id), string(b.id))
	})
	out := make([]peer.ID, 0, k)
	for i := 0; i < len(pool) && len(out) < k; i++ {
		out = append(out, pool[i].id)
	}
	// A newcomer never outscores workers with a record, so without a
	// reserved seat it would never earn one. On a job of 3 or more, one
	// seat goes to the best-placed stranger when none was picked: new
	// miners get work, and stay a minority on any job they join.
	if k >= 3 && len(out) == k {
		stranger := func(id peer.ID) bool { return strangers[id] }
		if !slices.ContainsFunc(out, stranger) {
			for _, c := range pool[k:] {
				if strangers[c.id] {
					out[k-1] = c.id
					break
				}
			}
		}
	}
	return out
}

// draw maps (secret, label) to a uniform number in [0, 1): the first 8
// bytes of SHA-256(secret ‖ label), 53 bits of them.
func draw(secret []byte, label string) float64 {
	h := sha256.New()
	h.Write(secret)
	h.Write([]byte(label))
	sum := h.Sum(nil)
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / math.Exp2(53)
}
