package job

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
)

// BidGrace is the least a submitter keeps its bid window open once it has
// as many usable bids as it needs workers, for later bids to join the
// choice (graceAfter: longer when the first bids took longer): with
// exactly k bids the fastest k miners would always win, and
// verify.Choose's reputation ranking and unpredictable draw need a pool.
// Loopback and LAN bids arrive within a few milliseconds of each other,
// a continent away within ~100 ms.
const BidGrace = 100 * time.Millisecond

// bidWindowDone says whether a submitter that needs need workers and has
// no pool to wait for (no heartbeat table: bidWindow.decide) can choose
// now instead of at the end of its bid window: once more bids could no
// longer improve the choice. That is when there are twice as
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

// minPool is the fewest miners a submitter draws to choose among (see
// drawPool); poolSize says how many for a job that needs need workers.
const minPool = 8

// poolSize is how many of the miners that could run a job the submitter
// draws for its choice: twice the workers needed, at least minPool, so
// that verify.Choose's ranking and draw have a choice and a decline has a
// replacement at hand.
func poolSize(need int) int { return max(2*need, minPool) }

// drawPool draws, from the miners the heartbeat table says could run the
// job, the size whose bids the choice will be made among: every one of
// them when there are no more, else a sample weighted by reputation
// (Efraimidis–Spirakis: the size smallest −ln(u)/reputation), with u
// drawn from SHA-256(secret ‖ miner). Drawing the pool before any bid
// arrives is what makes the choice fair: which miners can win no longer
// depends on whose bid arrives first, so a miner far from the submitter
// earns as often as one next to it, and a Sybil placed near a big
// submitter gains nothing by its place. The secret (the submitter's
// signature over the job) keeps the draw unpredictable to miners. Miners
// below the reputation floor are never drawn.
func drawPool(could []peer.ID, size int, reputation func(peer.ID) float64, secret []byte) []peer.ID {
	type keyed struct {
		id  peer.ID
		key float64
	}
	var all []keyed
	for _, p := range could {
		r := reputation(p)
		if r < verify.ChooseFloor {
			continue
		}
		u := uniform(secret, p)
		all = append(all, keyed{p, -math.Log(1-u) / r}) // 1−u ∈ (0, 1]: never −ln 0
	}
	slices.SortFunc(all, func(a, b keyed) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(string(a.id), string(b.id))
	})
	out := make([]peer.ID, 0, min(size, len(all)))
	for _, k := range all[:min(size, len(all))] {
		out = append(out, k.id)
	}
	return out
}

// uniform maps (secret, miner) to a number in [0, 1): 53 bits of
// SHA-256("vft/pool/" ‖ secret ‖ miner).
func uniform(secret []byte, p peer.ID) float64 {
	h := sha256.New()
	h.Write([]byte("vft/pool/"))
	h.Write(secret)
	h.Write([]byte(p))
	return float64(binary.BigEndian.Uint64(h.Sum(nil)[:8])>>11) / math.Exp2(53)
}

// graceAfter is how long a window stays open for the rest of its pool
// once it has enough bids, enough having taken took: as long again, at
// least BidGrace. It scales with the network's real round trips: on
// loopback the window closes BidGrace after enough, on links of 100 ms it
// waits for bidders two or three times slower than the first.
func graceAfter(took time.Duration) time.Duration { return max(BidGrace, took) }

// bidWindow is one bid window of a submitter: when it opened, the pool it
// drew (drawPool), which of the pool answered its invitation (invite), and
// when the pool's bids, and all usable bids, first numbered need.
type bidWindow struct {
	need   int
	could  []peer.ID        // miners the heartbeat table says could run the job
	pool   map[peer.ID]bool // the drawn pool; empty without a table
	opened time.Time
	// answered are the drawn miners whose invitation is over: they
	// answered it, with a bid or with why they do not bid, or could not
	// be asked.
	answered map[peer.ID]bool
	// poolEnough and anyEnough: when the pool's usable bids, and all
	// usable bids, first numbered need (zero: not yet).
	poolEnough, anyEnough time.Time
}

func newBidWindow(need int, could, pool []peer.ID, opened time.Time) *bidWindow {
	w := &bidWindow{need: need, could: could, pool: map[peer.ID]bool{}, answered: map[peer.ID]bool{}, opened: opened}
	for _, p := range pool {
		w.pool[p] = true
	}
	return w
}

// answer records that drawn miner p's invitation is over.
func (w *bidWindow) answer(p peer.ID) { w.answered[p] = true }

// poolDone reports whether every drawn miner has answered (poolBids: the
// pool's usable bids so far): by bidding or, invited, by saying it does
// not bid or by being out of reach.
func (w *bidWindow) poolDone(poolBids []Bid) bool {
	for p := range w.pool {
		if !w.answered[p] && !slices.ContainsFunc(poolBids, func(b Bid) bool { return b.Worker == p }) {
			return false
		}
	}
	return true
}

// poolShort reports whether the pool can no longer fill the job: it has
// all answered, or there is none, with fewer than need usable bids. The
// submitter then asks every miner (the offer's gossip again), and the
// window decides as one without a pool.
func (w *bidWindow) poolShort(usable []Bid) bool {
	pool := w.poolBids(usable)
	return len(pool) < w.need && w.poolDone(pool)
}

// decide says whether, at now and with the usable bids so far, the
// submitter can choose, and among which bids. The rule:
//   - With a drawn pool, the choice is among the pool's bids, and the
//     window closes once every drawn miner has answered (bid, said why
//     not, or could not be asked), or once need of them have bid for
//     graceAfter (a drawn miner that answers slowly costs at most that).
//   - When the pool's bids never number need (the table was stale: drawn
//     miners are busy or gone) but all bids do, the window closes on all
//     usable bids twice that grace after they did.
//   - Without a table (no pool), or once the whole pool has answered
//     short (poolShort), the first rule of bidWindowDone applies: twice
//     need, every able miner, or need for BidGrace.
//
// When it cannot choose yet, wake is when to decide again if no bid
// arrives (zero: only a new bid, or the window's end, can change it).
func (w *bidWindow) decide(usable []Bid, now time.Time) (choice []Bid, done bool, wake time.Time) {
	pool := w.poolBids(usable)
	if len(pool) >= w.need && w.poolEnough.IsZero() {
		w.poolEnough = now
	}
	if len(usable) >= w.need && w.anyEnough.IsZero() {
		w.anyEnough = now
	}
	switch {
	case len(w.pool) == 0 || w.poolShort(usable):
		if w.anyEnough.IsZero() {
			return nil, false, time.Time{}
		}
		if bidWindowDone(w.need, usable, w.could, now.Sub(w.anyEnough), BidGrace) {
			return usable, true, time.Time{}
		}
		return nil, false, w.anyEnough.Add(BidGrace)
	case !w.poolEnough.IsZero():
		end := w.poolEnough.Add(graceAfter(w.poolEnough.Sub(w.opened)))
		if w.poolDone(pool) || !now.Before(end) {
			return pool, true, time.Time{}
		}
		return nil, false, end
	case !w.anyEnough.IsZero():
		end := w.anyEnough.Add(2 * graceAfter(w.anyEnough.Sub(w.opened)))
		if !now.Before(end) {
			return usable, true, time.Time{}
		}
		return nil, false, end
	}
	return nil, false, time.Time{}
}

// poolBids are the usable bids from the drawn pool.
func (w *bidWindow) poolBids(usable []Bid) []Bid {
	var out []Bid
	for _, b := range usable {
		if w.pool[b.Worker] {
			out = append(out, b)
		}
	}
	return out
}

// remainingBids are the bids of a closed window still usable for a
// replacement: not taken (the job's workers, those dropped, those that
// declined).
func remainingBids(bids []Bid, taken func(peer.ID) bool) []Bid {
	var out []Bid
	for _, b := range bids {
		if !taken(b.Worker) {
			out = append(out, b)
		}
	}
	return out
}
