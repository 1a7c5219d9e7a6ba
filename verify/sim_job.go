package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// maxEscalation is how many workers beyond the first round a job may
// add before the submitter gives up on it.
const maxEscalation = 3

// runJob places one job, collects reports and decides. When no group
// reaches the quorum the submitter adds one worker at a time (a tie
// breaker) rather than failing the job, so honest workers in a split job
// still end up agreeing with the accepted result.
func (s *sim) runJob(j int) {
	jobID := fmt.Sprintf("job-%d", j)
	truth := "ok-" + jobID
	policy, need := s.cfg.Policy, s.cfg.Policy.K
	checked := true
	if policy.Mode == ModeSpot {
		checked = SpotDraw(s.secret, jobID, policy.SpotProbability)
		policy.M, need = 1, 1
		if checked {
			policy.M, need = 2, 2 // the worker and one verifier
		}
	}
	limit := need + maxEscalation
	weights := s.weights()
	var used, noShows []peer.ID
	var reports []Report
	var out Outcome
	ringCheats := false
	for round := 0; ; round++ {
		var fresh []peer.ID
		for len(reports)+len(fresh) < need {
			w, ok := s.pick(jobID, len(reports)+len(fresh) > 0, used, weights)
			if !ok {
				s.res.Unplaced++
				return
			}
			used = append(used, w)
			if s.behavior[w] == CheatNoShow {
				// The submitter waits for its deadline, then asks another.
				noShows = append(noShows, w)
				s.res.NoShows++
				continue
			}
			fresh = append(fresh, w)
		}
		if round == 0 {
			ringCheats = s.ringHoldsQuorum(fresh, policy.M)
		}
		for _, w := range fresh {
			s.res.Executions++
			reports = append(reports, s.report(w, jobID, truth, ringCheats))
		}
		var err error
		if out, err = Decide(context.Background(), policy, reports, need, nil); err != nil {
			panic(err) // a nil matcher does not fail
		}
		if out.Accepted != "" || need >= limit {
			break
		}
		need++
		s.res.Escalations++
	}
	observed := Observation{Author: s.self, Job: jobID, Agreed: out.Agreed, Dissented: out.Dissented, Missed: noShows, At: s.clock}
	out.Dissented = append(out.Dissented, noShows...)
	s.account(j, truth, reports, out)
	if s.rep != nil && checked {
		// An unchecked spot job is no evidence either way.
		err := s.rep.Observe(context.Background(), observed)
		if err != nil {
			panic(err)
		}
	}
}

// ringHoldsQuorum says whether the smart colluders among a job's first
// workers are enough to win it. A lone spot-mode worker is its own quorum
// unless checked, which it cannot know, so it always cheats.
func (s *sim) ringHoldsQuorum(workers []peer.ID, m int) bool {
	n := 0
	for _, w := range workers {
		if s.behavior[w] == CheatColludeSmart {
			n++
		}
	}
	return n > 0 && (s.cfg.Policy.Mode == ModeSpot || n >= m)
}

// report is what worker w reveals for the job; ringCheats is whether the
// smart colluders cheat on it.
func (s *sim) report(w peer.ID, jobID, truth string, ringCheats bool) Report {
	switch s.behavior[w] {
	case CheatColludeSmart:
		if ringCheats {
			return Report{Worker: w, Result: "collude-" + jobID}
		}
	case CheatWrong:
		return Report{Worker: w, Result: fmt.Sprintf("wrong-%s-%x", jobID, s.rng.Uint64())}
	case CheatCollude:
		return Report{Worker: w, Result: "collude-" + jobID}
	case CheatCopy:
		if s.cfg.Policy.Mode == ModeSpot {
			// Alone on the job there is nothing to copy: it makes one up.
			return Report{Worker: w, Result: fmt.Sprintf("made-up-%s-%x", jobID, s.rng.Uint64())}
		}
		// Its commitment was someone else's: under commit–reveal its
		// reveal cannot open it (CheckReveal fails), a failed report.
		return Report{Worker: w, Failed: ErrRevealMismatch.Error()}
	}
	return Report{Worker: w, Result: truth}
}

// account records the outcome's figures and pays the agreed workers.
func (s *sim) account(j int, truth string, reports []Report, out Outcome) {
	for _, r := range reports {
		if s.behavior[r.Worker] == simHonest {
			s.res.HonestReports++
			if slices.Contains(out.Dissented, r.Worker) {
				s.res.HonestFlagged++
			}
		}
	}
	if out.Accepted == "" {
		s.res.Rejected++
		return
	}
	s.res.Accepted++
	if out.Accepted != truth {
		s.res.WrongAccepted++
	}
	window := &s.paid[j*simSpots/s.cfg.Jobs]
	for _, w := range out.Agreed {
		window.all++
		if s.behavior[w] != simHonest {
			window.cheaters++
		}
	}
}

// weights are each worker's chance to be picked for this job: its score
// with reputation on (0 when excluded), 1 for all with it off.
func (s *sim) weights() []float64 {
	ws := make([]float64, len(s.workers))
	for i, w := range s.workers {
		switch {
		case s.rep == nil:
			ws[i] = 1
		case !s.rep.Excluded(w):
			ws[i] = s.rep.Score(w)
		}
	}
	return ws
}

// pick chooses the job's next worker among those not used yet. In spot
// mode, once the worker has reported, every pick is a verifier, chosen
// by the keyed draw the workers cannot predict.
func (s *sim) pick(jobID string, verifier bool, used []peer.ID, weights []float64) (peer.ID, bool) {
	if s.cfg.Policy.Mode == ModeSpot && verifier {
		var cands []peer.ID
		for i, w := range s.workers {
			if weights[i] > 0 {
				cands = append(cands, w)
			}
		}
		return PickVerifier(s.secret, fmt.Sprintf("%s/%d", jobID, len(used)), cands, used)
	}
	var total float64
	for i, w := range s.workers {
		if !slices.Contains(used, w) {
			total += weights[i]
		}
	}
	if total == 0 {
		return "", false
	}
	x := s.rng.Float64() * total
	for i, w := range s.workers {
		if slices.Contains(used, w) || weights[i] == 0 {
			continue
		}
		if x -= weights[i]; x < 0 {
			return w, true
		}
	}
	// Rounding left x a hair above zero: the last eligible worker.
	for i := len(s.workers) - 1; i >= 0; i-- {
		if w := s.workers[i]; weights[i] > 0 && !slices.Contains(used, w) {
			return w, true
		}
	}
	return "", false
}
