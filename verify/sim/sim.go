// Package sim runs simulated markets through the code the network runs:
// verify.Next decides every job (accept, reject, program failure, a spot
// check's verifier, a tie-breaker), verify.Choose picks every worker from
// the bids, verify.SpotDraw decides which spot jobs are checked, and a
// verify.Reputation table learns from the submitter's own verdicts, as
// job.Market and node/ wire them together. A pool of workers, some of whom
// cheat, works for one honest submitter; the package measures what each
// policy lets through and what it costs (docs/VERIFICATION.md shows the
// tables TestSim prints).
//
// What the simulator models rather than runs: the network (bids arrive in
// a random order and the submitter ranks the first few, as awaitBids does
// on a busy network), the secrets (a hash of a seed stands for the
// submitter's signature over the job), and the workers' behaviours.
package sim

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/verify"
)

// Worker behaviours in a simulation.
const (
	Honest       = "honest"
	CheatWrong   = "wrong"   // an independent random wrong result
	CheatCollude = "collude" // the same wrong result as every other colluder
	// CheatColludeSmart colludes only when the ring holds a quorum of the
	// job's first seats (its members tell each other out of band which
	// jobs they got) and is honest otherwise, so it never dissents from a
	// majority. In spot mode a lone ring worker always cheats and a ring
	// verifier covers for it.
	CheatColludeSmart = "collude-smart"
	// CheatSleeper is a Sybil that builds reputation first: honest on its
	// first SleeperPatience jobs, then the same wrong result as every
	// other sleeper, always.
	CheatSleeper = "sleeper"
	CheatCopy    = "copy"    // copies another's commitment, cannot open it
	CheatNoShow  = "no-show" // takes the job and never reports
)

// SleeperPatience is how many jobs a sleeper does honestly before it cheats.
const SleeperPatience = 20

// cheatKinds fixes the order in which a pool's cheaters are assigned, so a
// seed gives the same pool whatever the map's order.
var cheatKinds = []string{CheatWrong, CheatCollude, CheatColludeSmart, CheatSleeper, CheatCopy, CheatNoShow}

// Payments are counted in windows, a hundredth of the jobs each; a tenth
// is tenth windows.
const (
	windows = 100
	tenth   = windows / 10
)

// reward is every job's reward; every worker asks all of it, so price
// does not sort the bids and reputation and the draw do.
const reward = 1000

// Config is one simulated market.
type Config struct {
	Name string
	Seed uint64
	// Workers in the pool and jobs run.
	Workers, Jobs int
	// Policy is the jobs' verification policy, as a spec carries it.
	Policy verify.Policy
	// Reputation on: bids carry the submitter's Reputation.Standing of the
	// bidder (0 once excluded) and its verdicts feed the table. Off: every
	// bid carries a stranger's 0.5 and nothing is learnt.
	Reputation bool
	// Cheaters maps a behaviour (Cheat*) to its fraction of the pool.
	Cheaters map[string]float64
	// RingVerdicts is how many made-up verdicts the colluders (smart ring
	// or collude) gossip per job the honest submitter runs: each comes
	// from a ring member acting as the submitter of a job that never ran,
	// and names k ring members as agreeing (it carries their reveals,
	// which they sign gladly). This is collusion with a submitter.
	RingVerdicts int
	// BidsPerSeat is how many bids the submitter waits for per seat to
	// fill before it ranks them (awaitBids: 2); more arrive while none
	// is good enough. 0 means 2.
	BidsPerSeat int
}

// Result is what a simulated market did.
type Result struct {
	Accepted, Rejected, Unplaced int
	// Failed are jobs decided as the program's failure (none here: every
	// simulated program succeeds).
	Failed int
	// WrongAccepted are accepted jobs whose result is not the true one.
	WrongAccepted int
	// HonestReports are honest workers' results; HonestFlagged those
	// marked as dissent.
	HonestReports, HonestFlagged int
	// Executions counts runs of the job (no-shows run nothing).
	Executions int
	// NoShows and Escalations count the extra seats they cost.
	NoShows, Escalations int
	// CheaterShare is the cheaters' share of the payments in each
	// hundredth of the jobs, in order.
	CheaterShare []float64
	// ShareBelow1PctAfter is the number of jobs after which the cheaters'
	// share stays below 1% in every later hundredth; -1 if it never does.
	ShareBelow1PctAfter int
}

// WrongAcceptedPct is the percentage of accepted jobs with a wrong result.
func (r Result) WrongAcceptedPct() float64 { return pct(r.WrongAccepted, r.Accepted) }

// HonestFlaggedPct is the percentage of honest reports marked dissent.
func (r Result) HonestFlaggedPct() float64 { return pct(r.HonestFlagged, r.HonestReports) }

// ExecPerAccepted is the compute spent per accepted job, in executions.
func (r Result) ExecPerAccepted() float64 {
	if r.Accepted == 0 {
		return 0
	}
	return float64(r.Executions) / float64(r.Accepted)
}

// ShareWindow is the cheaters' share of payments over a tenth of the jobs:
// 0 is the first tenth, 9 the last.
func (r Result) ShareWindow(t int) float64 {
	var sum float64
	for _, s := range r.CheaterShare[t*tenth : (t+1)*tenth] {
		sum += s
	}
	return sum / tenth
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

type market struct {
	cfg      Config
	rng      *rand.Rand
	key      []byte // stands for the submitter's signing key
	self     peer.ID
	workers  []peer.ID
	behavior map[peer.ID]string
	served   map[peer.ID]int // jobs each worker was assigned, for sleepers
	ring     []peer.ID       // colluders that gossip made-up verdicts
	rep      *verify.Reputation
	clock    time.Time
	res      Result
	paid     [windows]struct{ cheaters, all int }
}

// Run runs cfg's market and measures it. It is deterministic for a seed.
func Run(cfg Config) Result {
	if cfg.BidsPerSeat == 0 {
		cfg.BidsPerSeat = 2
	}
	s := &market{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), behavior: make(map[peer.ID]string),
		served: make(map[peer.ID]int), self: Peer("submitter"), clock: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	s.key = fmt.Appendf(nil, "key-%d", s.rng.Uint64())
	for i := range cfg.Workers {
		w := Peer(fmt.Sprintf("worker-%d", i))
		s.workers = append(s.workers, w)
		s.behavior[w] = Honest
	}
	// Cheaters are a random part of the pool, in a fixed order of kinds.
	order := s.rng.Perm(cfg.Workers)
	next := 0
	for _, kind := range cheatKinds {
		for n := int(cfg.Cheaters[kind]*float64(cfg.Workers) + 0.5); n > 0 && next < len(order); n-- {
			w := s.workers[order[next]]
			s.behavior[w] = kind
			if kind == CheatCollude || kind == CheatColludeSmart {
				s.ring = append(s.ring, w)
			}
			next++
		}
	}
	if cfg.Reputation {
		rep, err := verify.NewReputation(dssync.MutexWrap(datastore.NewMapDatastore()), s.self, nil)
		if err != nil {
			panic(err) // an in-memory datastore does not fail
		}
		rep.SetClock(func() time.Time { return s.clock })
		s.rep = rep
	}
	for j := range cfg.Jobs {
		s.clock = s.clock.Add(time.Minute)
		s.gossipRingVerdicts(j)
		s.runJob(j)
	}
	s.res.CheaterShare = make([]float64, windows)
	s.res.ShareBelow1PctAfter = -1
	for i, p := range s.paid {
		if p.all > 0 {
			s.res.CheaterShare[i] = float64(p.cheaters) / float64(p.all)
		}
	}
	for i := windows - 1; i >= 0; i-- {
		if s.res.CheaterShare[i] >= 0.01 {
			break
		}
		s.res.ShareBelow1PctAfter = i * cfg.Jobs / windows
	}
	return s.res
}

// secret stands for the submitter's signature over label: fixed for the
// job, unknowable to the workers.
func (s *market) secret(label string) []byte {
	sum := sha256.Sum256(append(append([]byte{}, s.key...), label...))
	return sum[:]
}

// Peer is a valid peer ID for a name (the reputation table stores IDs as
// text, which must parse back).
func Peer(name string) peer.ID {
	m, _ := mh.Sum([]byte(name), mh.SHA2_256, -1)
	return peer.ID(m)
}
