package sim

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/verify"
)

// Decide is the simulated submitter's decision on a job: verify.Next, as
// job.Market's decide calls it. A simulated job has no escrow and all the
// time it needs, so a tie-breaker is always allowed, and results are
// compared by CID.
func Decide(p verify.Policy, workers int, reports []verify.Report, spotSecret []byte) verify.Step {
	step, err := verify.Next(context.Background(), p, verify.Progress{Workers: workers, Reports: reports,
		SpotSecret: spotSecret, MayAddWorkers: true}, nil)
	if err != nil {
		panic(err) // comparing by CID does not fail
	}
	return step
}

// Pick is how the simulated submitter fills seats: verify.Choose over the
// bids, with the market's reward and floor.
func Pick(bids []verify.Bid, seats int, reward uint64, secret []byte) []peer.ID {
	return verify.Choose(bids, seats, reward, secret, verify.ChooseFloor)
}

// runJob runs one job as job.Market does: it fills the seats the job
// needs from the bids, drops no-shows and fills their seats again,
// collects the reports, asks Decide, adds the workers it asks for, and
// feeds the verdict to the reputation table as node/ does.
func (s *market) runJob(j int) {
	jobID := fmt.Sprintf("job-%d", j)
	truth := "ok-" + jobID
	p := s.cfg.Policy
	chooseSecret, spotSecret := s.secret("vft/choose/"+jobID), s.secret("vft/spot/"+jobID)
	b := &bidding{s: s, arrivals: s.rng.Perm(len(s.workers)), secret: chooseSecret}
	need := p.K()
	var reports []verify.Report
	var out verify.Outcome
	ringCheats := false
	for round := 0; ; round++ {
		for len(b.assigned) < need {
			chosen := b.pick(need - len(b.assigned))
			if chosen == nil {
				s.res.Unplaced++
				return
			}
			for _, w := range chosen {
				if s.behavior[w] == CheatNoShow {
					// The submitter waits for the report deadline, records
					// it as missed and fills the seat again.
					b.missed = append(b.missed, w)
					s.res.NoShows++
					continue
				}
				b.assigned = append(b.assigned, w)
				s.served[w]++
			}
		}
		if round == 0 {
			ringCheats = s.ringHoldsQuorum(b.assigned, p)
		}
		for _, w := range b.assigned[len(reports):] {
			s.res.Executions++
			reports = append(reports, s.report(w, jobID, truth, ringCheats))
		}
		step := Decide(p, len(b.assigned), reports, spotSecret)
		if step.Workers > 0 {
			need = step.Workers
			s.res.Escalations++
			continue
		}
		if !step.Done {
			panic(fmt.Sprintf("job %s undecided with all %d reports in", jobID, len(reports)))
		}
		out = step.Outcome
		break
	}
	s.account(j, truth, reports, out)
	if s.rep != nil && !out.Unchecked {
		// node/ observes every verdict the market concludes but an
		// unchecked spot job's; the workers that missed the deadline are
		// unproven (benched, not excluded).
		err := s.rep.Observe(context.Background(), verify.Observation{Author: s.self, Job: jobID,
			Agreed: out.Agreed, Dissented: out.Dissented, Missed: b.missed, At: s.clock})
		if err != nil {
			panic(err)
		}
	}
}

// bidding is one job's bids as the submitter sees them: every worker bids,
// in a random order of arrival; the submitter ranks the first BidsPerSeat
// per seat it fills (awaitBids returns once it has that many), and when
// those cannot fill the seats it waits out a whole window, by which time
// everyone has bid.
type bidding struct {
	s                *market
	arrivals         []int
	arrived          int
	secret           []byte
	assigned, missed []peer.ID
}

// pick fills seats, or returns nil when the bids cannot.
func (b *bidding) pick(seats int) []peer.ID {
	b.arrived = max(b.arrived, min(len(b.arrivals), b.s.cfg.BidsPerSeat*seats))
	for {
		var bids []verify.Bid
		for _, i := range b.arrivals[:b.arrived] {
			w := b.s.workers[i]
			if slices.Contains(b.assigned, w) || slices.Contains(b.missed, w) {
				continue // collect drops these bids
			}
			standing := verify.StrangerScore
			if b.s.rep != nil {
				standing = b.s.rep.Standing(w)
			}
			bids = append(bids, verify.Bid{Worker: w, Price: reward, Reputation: standing, FreeSlots: 1})
		}
		if chosen := Pick(bids, seats, reward, b.secret); len(chosen) == seats {
			return chosen
		}
		if b.arrived == len(b.arrivals) {
			return nil
		}
		b.arrived = len(b.arrivals)
	}
}

// ringHoldsQuorum says whether the smart colluders among a job's first
// workers are enough to win it. A lone spot-mode worker is its own quorum
// unless checked, which it cannot know, so it always cheats.
func (s *market) ringHoldsQuorum(workers []peer.ID, p verify.Policy) bool {
	n := 0
	for _, w := range workers {
		if s.behavior[w] == CheatColludeSmart {
			n++
		}
	}
	return n > 0 && (p.Mode == verify.ModeSpot || n >= p.M())
}

// report is what worker w reveals for the job; ringCheats is whether the
// smart colluders cheat on it.
func (s *market) report(w peer.ID, jobID, truth string, ringCheats bool) verify.Report {
	switch s.behavior[w] {
	case CheatColludeSmart:
		if ringCheats {
			return verify.Report{Worker: w, Result: "collude-" + jobID}
		}
	case CheatSleeper:
		if s.served[w] > SleeperPatience {
			return verify.Report{Worker: w, Result: "sleeper-" + jobID}
		}
	case CheatWrong:
		return verify.Report{Worker: w, Result: fmt.Sprintf("wrong-%s-%x", jobID, s.rng.Uint64())}
	case CheatCollude:
		return verify.Report{Worker: w, Result: "collude-" + jobID}
	case CheatCopy:
		if s.cfg.Policy.Mode == verify.ModeSpot {
			// Alone on the job there is nothing to copy: it makes one up.
			return verify.Report{Worker: w, Result: fmt.Sprintf("made-up-%s-%x", jobID, s.rng.Uint64())}
		}
		// Its commitment was someone else's: under commit–reveal its
		// reveal cannot open it (CheckReveal fails), a failed report, and
		// the market penalises it (askReveal).
		if s.rep != nil {
			if err := s.rep.Penalize(context.Background(), w, "reveal does not open its commitment"); err != nil {
				panic(err)
			}
		}
		return verify.Report{Worker: w, Failed: verify.ErrRevealMismatch.Error()}
	}
	return verify.Report{Worker: w, Result: truth}
}

// account records the outcome's figures and pays the agreed workers.
func (s *market) account(j int, truth string, reports []verify.Report, out verify.Outcome) {
	for _, r := range reports {
		if s.behavior[r.Worker] == Honest {
			s.res.HonestReports++
			if slices.Contains(out.Dissented, r.Worker) {
				s.res.HonestFlagged++
			}
		}
	}
	switch {
	case out.Failure != "":
		s.res.Failed++
		return
	case out.Accepted == "":
		s.res.Rejected++
		return
	}
	s.res.Accepted++
	if out.Accepted != truth {
		s.res.WrongAccepted++
	}
	window := &s.paid[j*windows/s.cfg.Jobs]
	for _, w := range out.Agreed {
		window.all++
		if s.behavior[w] != Honest {
			window.cheaters++
		}
	}
}

// gossipRingVerdicts has the colluders, acting as submitters of jobs that
// never ran, gossip verdicts that name k of them as agreeing. The honest
// submitter's table weighs them as node/ does any other author's verdict
// that passed job.OpenVerdict (the ring signs the reveals it carries): by
// what it knows of the author.
func (s *market) gossipRingVerdicts(j int) {
	if s.rep == nil || len(s.ring) < 2 {
		return
	}
	k := min(max(s.cfg.Policy.K(), 1), len(s.ring)-1)
	for i := range s.cfg.RingVerdicts {
		author := s.ring[s.rng.IntN(len(s.ring))]
		var agreed []peer.ID
		for _, n := range s.rng.Perm(len(s.ring)) {
			if w := s.ring[n]; w != author && len(agreed) < k {
				agreed = append(agreed, w)
			}
		}
		err := s.rep.Observe(context.Background(), verify.Observation{Author: author,
			Job: fmt.Sprintf("ring-%d-%d", j, i), Agreed: agreed, At: s.clock})
		if err != nil {
			panic(err)
		}
	}
}
