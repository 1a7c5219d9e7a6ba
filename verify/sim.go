package verify

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// The simulation runs many jobs through this package's real Decide,
// SpotDraw, PickVerifier and Reputation, with a pool of workers some of
// whom cheat, to measure what each policy lets through and what it costs.
// Jobs run one after another on behalf of one submitter, whose
// reputation table is the one that learns.

// Worker behaviours in a simulation.
const (
	simHonest    = "honest"
	CheatWrong   = "wrong"   // an independent random wrong result
	CheatCollude = "collude" // the same wrong result as every other colluder
	// CheatColludeSmart colludes only when the ring holds a quorum of the
	// job (its members tell each other out of band which jobs they got)
	// and is honest otherwise, so it never dissents from a majority.
	CheatColludeSmart = "collude-smart"
	CheatCopy         = "copy"    // copies another's commitment, cannot open it
	CheatNoShow       = "no-show" // takes the job and never reports
)

// Payments are counted in simSpots windows of jobs; a tenth is simTenth.
const (
	simSpots = 100
	simTenth = simSpots / 10
)

// SimConfig is one simulated market.
type SimConfig struct {
	Name string
	Seed uint64
	// Workers in the pool and jobs run.
	Workers, Jobs int
	// Policy: ModeExact with K and M, or ModeSpot with SpotProbability.
	Policy Policy
	// Reputation on: the submitter picks workers weighted by score and
	// never picks excluded ones. Off: uniform picks, no memory.
	Reputation bool
	// Cheaters maps a behaviour (CheatWrong, CheatCollude,
	// CheatColludeSmart, CheatCopy, CheatNoShow) to its fraction of the pool.
	Cheaters map[string]float64
}

// SimResult is what a simulated market did.
type SimResult struct {
	Accepted, Rejected, Unplaced int
	// WrongAccepted are accepted jobs whose result is not the true one.
	WrongAccepted int
	// HonestReports are honest workers' results; HonestFlagged those
	// marked as dissent.
	HonestReports, HonestFlagged int
	// Executions counts runs of the job (no-shows run nothing).
	Executions int
	// NoShows and Escalations count the extra rounds they cost.
	NoShows, Escalations int
	// CheaterShare is the cheaters' share of the payments in each
	// hundredth of the jobs, in order.
	CheaterShare []float64
	// ShareBelow1PctAfter is the number of jobs after which the cheaters'
	// share stays below 1% in every later hundredth; -1 if it never does.
	ShareBelow1PctAfter int
}

// WrongAcceptedPct is the percentage of accepted jobs with a wrong result.
func (r SimResult) WrongAcceptedPct() float64 { return pct(r.WrongAccepted, r.Accepted) }

// HonestFlaggedPct is the percentage of honest reports marked dissent.
func (r SimResult) HonestFlaggedPct() float64 { return pct(r.HonestFlagged, r.HonestReports) }

// ExecPerAccepted is the compute spent per accepted job, in executions.
func (r SimResult) ExecPerAccepted() float64 {
	if r.Accepted == 0 {
		return 0
	}
	return float64(r.Executions) / float64(r.Accepted)
}

// ShareWindow is the cheaters' share of payments over a tenth of the jobs:
// 0 is the first tenth, 9 the last.
func (r SimResult) ShareWindow(tenth int) float64 {
	var sum float64
	for _, s := range r.CheaterShare[tenth*simTenth : (tenth+1)*simTenth] {
		sum += s
	}
	return sum / simTenth
}

func pct(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

type sim struct {
	cfg      SimConfig
	rng      *rand.Rand
	secret   []byte
	self     peer.ID
	workers  []peer.ID
	behavior map[peer.ID]string
	rep      *Reputation
	clock    time.Time
	res      SimResult
	paid     [simSpots]struct{ cheaters, all int }
}

// Simulate runs cfg's market and measures it. It is deterministic for a
// seed.
func Simulate(cfg SimConfig) SimResult {
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5eed)), behavior: make(map[peer.ID]string),
		self: simPeer("submitter"), clock: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	s.secret = fmt.Appendf(nil, "secret-%d", s.rng.Uint64())
	for i := range cfg.Workers {
		w := simPeer(fmt.Sprintf("worker-%d", i))
		s.workers = append(s.workers, w)
		s.behavior[w] = simHonest
	}
	// Cheaters are a random part of the pool, in a fixed order of kinds.
	order := s.rng.Perm(cfg.Workers)
	next := 0
	for _, kind := range []string{CheatWrong, CheatCollude, CheatColludeSmart, CheatCopy, CheatNoShow} {
		for n := int(cfg.Cheaters[kind]*float64(cfg.Workers) + 0.5); n > 0 && next < len(order); n-- {
			s.behavior[s.workers[order[next]]] = kind
			next++
		}
	}
	if cfg.Reputation {
		rep, err := NewReputation(dssync.MutexWrap(datastore.NewMapDatastore()), s.self, nil)
		if err != nil {
			panic(err) // an in-memory datastore does not fail
		}
		rep.now = func() time.Time { return s.clock }
		s.rep = rep
	}
	for j := range cfg.Jobs {
		s.clock = s.clock.Add(time.Minute)
		s.runJob(j)
	}
	s.res.CheaterShare = make([]float64, simSpots)
	s.res.ShareBelow1PctAfter = -1
	for i, p := range s.paid {
		if p.all > 0 {
			s.res.CheaterShare[i] = float64(p.cheaters) / float64(p.all)
		}
	}
	for i := simSpots - 1; i >= 0; i-- {
		if s.res.CheaterShare[i] >= 0.01 {
			break
		}
		s.res.ShareBelow1PctAfter = i * cfg.Jobs / simSpots
	}
	return s.res
}

// simPeer is a valid peer ID for a name (the reputation table stores IDs
// as text, which must parse back).
func simPeer(name string) peer.ID {
	m, _ := mh.Sum([]byte(name), mh.SHA2_256, -1)
	return peer.ID(m)
}
