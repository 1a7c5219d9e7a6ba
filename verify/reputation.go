package verify

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Reputation is this node's own opinion of other peers, built from the
// verdicts it sees. There is no global score: each node weighs evidence by
// how much it trusts the author, first of all itself.
//
// Score is a Beta estimate, (good+1)/(good+bad+2), so an unknown peer is
// 0.5 and one verdict moves it a little. Evidence decays with a half-life
// so old behaviour is slowly forgotten; exclusion is not.
type Reputation struct {
	ds   datastore.Batching
	self peer.ID
	log  *slog.Logger
	now  func() time.Time // injected by tests and the simulation

	maxPeers int // bounds the table; maxPeersDefault but for tests

	mu    sync.Mutex
	peers map[peer.ID]*list.Element // of *record, most recently seen first
	lru   *list.List
	seen  *seenSet
}

// Tuning. The weights are the policy; the caps only bound memory and disk.
const (
	// authorFactor scales verdicts from trusted authors other than us:
	// a third-hand verdict is worth a fraction of our own check.
	authorFactor = 0.3
	// unvouchedWeight is what a verdict from an author we have no
	// first-hand evidence for weighs: near nothing, so sybils gain little.
	unvouchedWeight = 0.02
	// unvouchedCap bounds the total weight unvouched authors can add to
	// one peer's counts, so a sybil swarm cannot make or break anyone.
	unvouchedCap = 1.0
	// provenAfter is how many of our own checks a worker must pass before
	// a dissent no longer excludes it outright (it still counts as bad
	// evidence, and the floor still applies). The simulation's smart ring
	// wins 98% of jobs in the end without this and 12% with it; higher
	// values exclude more honest workers the ring outvotes early on.
	provenAfter = 1
	// penaltyWeight is the bad evidence a protocol violation adds.
	penaltyWeight = 1.0
	// missBench is how long a worker that missed its deadline on one of our
	// jobs is not chosen by us, before it has proven itself; each further
	// miss doubles it, up to maxBench. A miss is bad evidence but not proof
	// of cheating (a rig crashes, a link drops), so it benches rather than
	// excludes; a worker that keeps missing falls under ExcludeFloor.
	missBench = time.Hour
	maxBench  = 7 * 24 * time.Hour
	// ExcludeFloor is the score below which a peer is not selected.
	ExcludeFloor = 0.2
	// halfLife is how fast evidence decays.
	halfLife = 90 * 24 * time.Hour
	// verdictWindow: older verdicts are ignored, and (Author, Job) pairs
	// are remembered this long, so a replay is always caught.
	verdictWindow = 7 * 24 * time.Hour
	// maxPeersDefault and maxSeen bound the table in memory and on disk;
	// the least recently seen peer is forgotten first.
	maxPeersDefault = 10_000
	maxSeen         = 200_000
)

// Observation is a verdict's evidence: who authored it (the submitter
// that decided, or this node), the job, the workers it found agreeing with
// the accepted result or dissenting (wrong result, failed run, bad reveal),
// and those that missed the deadline to commit a result.
type Observation struct {
	Author            peer.ID
	Job               string
	Agreed, Dissented []peer.ID
	Missed            []peer.ID
	At                time.Time
}

// Entry is one peer's line in the table, as `vft reputation` shows it.
type Entry struct {
	Peer     peer.ID `json:"peer"`
	Score    float64 `json:"score"`
	Good     float64 `json:"good"`
	Bad      float64 `json:"bad"`
	Excluded bool    `json:"excluded"`
	// BenchedUntil: after a missed deadline, not chosen until then.
	BenchedUntil time.Time `json:"benched_until,omitzero"`
	LastSeen     time.Time `json:"last_seen"`
}

// NewReputation opens the table stored in ds under /vft/reputation.
func NewReputation(ds datastore.Batching, self peer.ID, log *slog.Logger) (*Reputation, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reputation{
		ds: ds, self: self, log: log.With("component", "reputation"), now: time.Now, maxPeers: maxPeersDefault,
		peers: make(map[peer.ID]*list.Element), lru: list.New(), seen: newSeenSet(),
	}
	if err := r.load(context.Background()); err != nil {
		return nil, err
	}
	return r, nil
}

// SetClock makes the table read time from now instead of the wall clock:
// the simulator runs thousands of jobs a minute apart in a second. Call it
// before the table is used.
func (r *Reputation) SetClock(now func() time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = now
}

// Observe counts a verdict. A replayed (Author, Job) pair, or a verdict
// older than the replay window, is ignored.
func (r *Reputation) Observe(ctx context.Context, o Observation) error {
	for _, p := range o.Agreed {
		if slices.Contains(o.Dissented, p) || slices.Contains(o.Missed, p) {
			return fmt.Errorf("verdict %s by %s: %s both agreed and dissented", o.Job, o.Author, p)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	at := o.At
	if at.IsZero() || at.After(now) {
		at = now
	}
	if now.Sub(at) > verdictWindow || r.seen.has(o.Author, o.Job) {
		return nil
	}
	w, vouched := r.weight(o.Author, now)
	if w == 0 {
		return nil
	}
	direct := o.Author == r.self
	// Only our own check of an accepted result is grounds to drop a worker.
	exclude := o.Author == r.self && len(o.Agreed) > 0
	var changed []*record
	for _, p := range o.Agreed {
		// Nobody vouches for themselves; and an author we do not trust
		// cannot add peers to the table, or a flood of made-up peers
		// would evict the ones we know.
		if p == o.Author || (!vouched && !r.known(p)) {
			continue
		}
		changed = append(changed, r.add(p, now, w, 0, vouched, direct, false))
	}
	for _, p := range o.Dissented {
		if !vouched && !r.known(p) {
			continue
		}
		changed = append(changed, r.add(p, now, 0, w, vouched, direct, exclude && !r.proven(p, now)))
	}
	for _, p := range o.Missed {
		if slices.Contains(o.Dissented, p) || (!vouched && !r.known(p)) {
			continue
		}
		bench := direct && !r.proven(p, now)
		rec := r.add(p, now, 0, w, vouched, direct, false)
		if bench {
			rec.Misses++
			rec.BenchedUntil = now.Add(min(maxBench, missBench<<min(rec.Misses-1, 16)))
		}
		changed = append(changed, rec)
	}
	return r.save(ctx, changed, seenKey(o.Author, o.Job), at)
}

// Penalize counts a protocol violation this node caught itself (a forged
// or replayed verdict, a reveal that does not open its commitment, a
// verdict about a job the sender was not part of); the peer is excluded.
func (r *Reputation) Penalize(ctx context.Context, p peer.ID, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log.Info("peer penalized", "peer", p, "reason", reason)
	rec := r.add(p, r.now(), 0, penaltyWeight, true, true, true)
	return r.save(ctx, []*record{rec}, "", time.Time{})
}

// Score is p's score in [0,1]; 0.5 for a peer we know nothing about.
func (r *Reputation) Score(p peer.ID) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.score(p, r.now())
}

// Excluded reports whether p must not be selected: this node saw it
// dissent from an accepted result or caught it cheating, or its score is
// below ExcludeFloor (for good), or it is benched after a missed deadline
// (for a while).
func (r *Reputation) Excluded(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.peers[p]
	if !ok {
		return false
	}
	now := r.now()
	rec := e.Value.(*record)
	return rec.Excluded || rec.decayed(now).score() < ExcludeFloor || now.Before(rec.BenchedUntil)
}

// All lists the table, best score first.
func (r *Reputation) All() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	out := make([]Entry, 0, len(r.peers))
	for e := r.lru.Front(); e != nil; e = e.Next() {
		rec := e.Value.(*record).decayed(now)
		s := rec.score()
		benched := now.Before(rec.BenchedUntil)
		out = append(out, Entry{Peer: rec.Peer, Score: s, Good: rec.Good, Bad: rec.Bad,
			Excluded: rec.Excluded || s < ExcludeFloor || benched, LastSeen: rec.LastSeen})
		if benched {
			out[len(out)-1].BenchedUntil = rec.BenchedUntil
		}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return a.LastSeen.Compare(b.LastSeen) * -1
	})
	return out
}

// weight is how much a verdict by author counts, and whether the author
// is vouched for (by us, or by our first-hand evidence about it).
func (r *Reputation) weight(author peer.ID, now time.Time) (float64, bool) {
	if author == r.self {
		return 1, true
	}
	e, ok := r.peers[author]
	if !ok {
		return unvouchedWeight, false
	}
	rec := e.Value.(*record).decayed(now)
	s := rec.score()
	switch {
	case rec.Excluded || s < ExcludeFloor:
		return 0, false
	case rec.Direct < 1 || s < 0.5:
		// Second-hand praise alone never makes an author trusted.
		return unvouchedWeight, false
	}
	return authorFactor * s, true
}

func (r *Reputation) known(p peer.ID) bool {
	_, ok := r.peers[p]
	return ok
}

// proven says whether we have seen p agree with accepted results often
// enough that one dissent is bad evidence rather than grounds to drop it.
// Without this, a ring of colluders that cheats only when it holds a
// job's quorum would get every honest worker it outvotes excluded, and
// take over the pool (see the simulation's "smart ring").
func (r *Reputation) proven(p peer.ID, now time.Time) bool {
	e, ok := r.peers[p]
	return ok && e.Value.(*record).decayed(now).Direct >= provenAfter
}

func (r *Reputation) score(p peer.ID, now time.Time) float64 {
	e, ok := r.peers[p]
	if !ok {
		return 0.5
	}
	return e.Value.(*record).decayed(now).score()
}

// add updates p's counts and returns its record. Evidence from unvouched
// authors is capped; evidence from our own checks (direct) is what later
// makes p's own verdicts count.
func (r *Reputation) add(p peer.ID, now time.Time, good, bad float64, vouched, direct, exclude bool) *record {
	e, ok := r.peers[p]
	if !ok {
		e = r.lru.PushFront(&record{Peer: p, Updated: now})
		r.peers[p] = e
	}
	r.lru.MoveToFront(e)
	rec := e.Value.(*record)
	*rec = rec.decayed(now)
	if !vouched {
		room := max(0, unvouchedCap-rec.Unvouched)
		good, bad = min(good, room), min(bad, room)
		rec.Unvouched += good + bad
	}
	rec.Good += good
	rec.Bad += bad
	if direct {
		rec.Direct += good
	}
	rec.Excluded = rec.Excluded || exclude
	rec.LastSeen = now
	return rec
}
