package job

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
)

// BidGrace is how long a submitter keeps its bid window open once it has
// as many usable bids as it needs workers, for later bids to join the
// choice: with exactly k bids the fastest k miners would always win, and
// verify.Choose's reputation ranking and unpredictable draw need a pool.
// Loopback and LAN bids arrive within a few milliseconds of each other,
// a continent away within ~100 ms.
const BidGrace = 100 * time.Millisecond

// bidWindowDone says whether a submitter that needs need workers can
// choose now instead of at the end of its bid window: once more bids
// could no longer improve the choice. That is when there are twice as
// many usable bids as workers needed (a pool to choose from), or when
// there are enough and every miner the heartbeat table says could run
// the job (couldBid) has bid, or when there have been enough for the
// grace.
func bidWindowDone(need int, usable []Bid, couldBid []peer.ID, enoughFor, grace time.Duration) bool {
	switch {
	case len(usable) < need:
		return false
	case len(usable) >= 2*need:
		return true
	case everyoneBid(couldBid, usable):
		return true
	}
	return enoughFor >= grace
}

func everyoneBid(couldBid []peer.ID, bids []Bid) bool {
	for _, p := range couldBid {
		if !slices.ContainsFunc(bids, func(b Bid) bool { return b.Worker == p }) {
			return false
		}
	}
	return true
}

// usableBids are the bids Choose can pick from: at or below the reward,
// from a worker the reputation floor admits, not taken (already the
// job's, or dropped from it). Reputation is filled in.
func usableBids(bids []Bid, reward uint64, reputation func(peer.ID) float64, taken func(peer.ID) bool) []Bid {
	out := make([]Bid, 0, len(bids))
	for _, b := range bids {
		if taken(b.Worker) || b.Price > reward {
			continue
		}
		b.Reputation = reputation(b.Worker)
		if b.Reputation < verify.ChooseFloor {
			continue
		}
		out = append(out, b)
	}
	return out
}

// couldBid are the known miners, other than self and those taken, whose
// last heartbeat says they could run o now (CanRun).
func couldBid(o Offer, known []KnownNode, self peer.ID, taken func(peer.ID) bool) []peer.ID {
	var out []peer.ID
	for _, n := range known {
		if n.Peer != self && !taken(n.Peer) && CanRun(o, n.Capacity, n.Policy) == nil {
			out = append(out, n.Peer)
		}
	}
	return out
}
