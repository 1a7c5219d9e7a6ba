package verify

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxTieBreakers is how many workers beyond k a split job (exact,
// tolerance or custom mode) may add before it is rejected.
const MaxTieBreakers = 2

// Progress is where a job stands when its submitter asks Next what to do.
type Progress struct {
	// Workers is how many workers the job has been assigned so far.
	Workers int
	// Reports are the revealed outcomes so far, in assignment order.
	Reports []Report
	// SpotSecret keys the spot draw: a secret only the submitter knows,
	// fixed for the job (the market uses its signature over
	// "vft/spot/"‖jobID).
	SpotSecret []byte
	// MayAddWorkers says the protocol still allows a tie-breaker: the
	// job's reward is not locked for exactly k workers in an escrow, and
	// there is time for one more run before the deadline.
	MayAddWorkers bool
}

// Step is what a job's reports so far mean.
type Step struct {
	// Outcome, when Done, is the decision: accepted, rejected, or the
	// program's own failure (Outcome.Failure).
	Outcome
	// Workers, when above zero, is how many workers the job needs in all
	// now (a spot check's verifier, a tie-breaker); Why says why.
	Workers int
	Why     string
}

// Next is the whole verification rule: given a job's policy and where it
// stands, it says accept, reject, fail as the program's failure, need more
// workers (and why), or nothing yet (a zero Step: reports still to come).
// The market and the simulator both follow it; job/ keeps only the
// protocol around it.
//
//   - Exact, tolerance and custom: Decide with the policy's quorum; a split
//     job (no quorum, no agreed failure) gets one more worker at a time,
//     chosen the same unpredictable way, up to MaxTieBreakers beyond k,
//     while MayAddWorkers holds: a cheater or a failed run can leave the
//     honest results short of a quorum, and one more worker can still make
//     it.
//   - Spot: the lone worker's result (or its program failure, which is
//     checked like a result: claiming one must not be a way out of the
//     work) is accepted, Unchecked, unless SpotDraw picks the job; then a verifier
//     re-runs it and SpotCheckQuorum runs must agree. When the two
//     disagree a third worker breaks the tie.
func Next(ctx context.Context, p Policy, at Progress, match Matcher) (Step, error) {
	if len(at.Reports) < at.Workers || at.Workers == 0 {
		return Step{}, nil // reveals still to come
	}
	quorum := p.M()
	if p.Mode == ModeSpot {
		if only := at.Reports[0]; len(at.Reports) == 1 && (only.Failed == "" || only.Failure != "") {
			if !SpotDraw(at.SpotSecret, p.SpotProbability()) {
				if only.Failure != "" {
					return Step{Outcome: Outcome{Done: true, Failure: only.Failure, Unchecked: true,
						Reason: "the program failed (" + only.Failure + "); not drawn for a spot check"}}, nil
				}
				return Step{Outcome: Outcome{Done: true, Accepted: only.Result, Agreed: []peer.ID{only.Worker}, Unchecked: true,
					Reason: "not drawn for a spot check"}}, nil
			}
			return Step{Workers: 2, Why: "spot check: a verifier re-runs the job"}, nil
		}
		quorum = SpotCheckQuorum
	}
	out, err := Decide(ctx, quorum, at.Reports, at.Workers, match)
	if err != nil {
		return Step{}, fmt.Errorf("comparing results: %w", err)
	}
	if !out.Done {
		return Step{}, nil
	}
	split := out.Accepted == "" && out.Failure == ""
	switch {
	case split && p.Mode == ModeSpot && at.Workers == 2:
		return Step{Workers: 3, Why: "the spot check disagrees with the worker: a third worker breaks the tie"}, nil
	case split && p.Mode != ModeSpot && at.MayAddWorkers && at.Workers < p.K()+MaxTieBreakers:
		return Step{Workers: at.Workers + 1, Why: out.Reason + ": one more worker breaks the tie"}, nil
	}
	return Step{Outcome: out}, nil
}
