package escrow

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gagliardetto/solana-go"
)

// ErrNotApproved is wrapped by every reason Approve refuses a request.
var ErrNotApproved = errors.New("the worker's record does not approve it")

// Stake is a worker's own record of an escrowed job, what it decides a
// signature request on. The node translates its job record into one.
type Stake struct {
	// Terms are what the job promised; Terms.Workers are its assigned
	// workers, this one among them.
	Terms
	Self  solana.PublicKey
	Exact bool // results agree only when their CIDs are equal
	// Result is what this worker committed to; empty when it committed no
	// result (it never ran the job, or its run failed).
	Result string
	// Ended: the job is over for this worker without a result of its own
	// (cancelled, failed, or past its deadline). A worker that is still
	// running has a result to come and signs no refund.
	Ended bool
	// PastDeadline: the job's deadline has passed. Before it, the
	// submitter is there to send its verdict; after it, workers may
	// release a silent submitter's escrow themselves, with no verdict.
	PastDeadline bool
	// Verdict is the submitter's verdict as this worker checked it (its
	// signed reveals verified), nil when none reached it.
	Verdict *Verdict
}

// Verdict is the part of a checked verdict a worker decides on.
type Verdict struct {
	Accepted string // empty: rejected
	Agreed   []solana.PublicKey
	// Revealed holds, for each worker whose signed reveal the verdict
	// carries, the result it revealed: the evidence of a rejection.
	Revealed map[solana.PublicKey]string
}

// Approve is a worker's say on a release or refund of its job's escrow,
// from its own record: nil means sign. It checks what checkRequest cannot
// know: whom the job's verdict pays.
//
// A release must be of the result this worker committed to, pay exactly
// the reward to each payee, pay only the job's workers, this one among
// them, and every worker the verdict says agreed; the rest goes back to
// the submitter. Without a verdict (workers rescuing a silent submitter's
// escrow) it must come after the deadline and pay at least the quorum.
//
// A refund gives the submitter the work for nothing, so a worker that
// committed a result signs one only on signed evidence that no quorum was
// reached: a rejection whose carried reveals fall short of the quorum even
// if every worker it has no reveal of had agreed (otherwise a submitter
// could show each worker a rejection that leaves the others out). A
// worker that committed nothing signs once the job is over for it.
func Approve(s Stake, req SignRequest) error {
	var err error
	switch req.Kind {
	case KindRefund:
		err = approveRefund(s)
	case KindRelease:
		err = approveRelease(s, req)
	default:
		err = fmt.Errorf("request kind %q: want %q or %q", req.Kind, KindRelease, KindRefund)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotApproved, err)
	}
	return nil
}

func approveRefund(s Stake) error {
	v := s.Verdict
	switch {
	case v != nil && v.Accepted != "":
		return fmt.Errorf("the job has an accepted result (%s): it is paid, not refunded", v.Accepted)
	case s.Result == "" && !s.Ended:
		return fmt.Errorf("this worker is still running the job")
	case s.Result == "":
		return nil // committed nothing: nothing of this worker's is at stake
	case v == nil:
		return fmt.Errorf("this worker committed result %s and holds no verdict that rejects it", s.Result)
	case !s.Exact:
		// Reveals with different CIDs may still agree within the job's
		// tolerance or by its verifier: a third party cannot tell.
		return fmt.Errorf("this worker committed result %s and the job compares results by content, so a rejection's reveals cannot prove there was no quorum", s.Result)
	}
	best, unproven := noQuorumEvidence(s.Workers, v.Revealed)
	if best+unproven >= s.Quorum {
		return fmt.Errorf("the rejection shows %d matching reveals and %d workers without a reveal, which could reach the quorum of %d: no proof of failure", best, unproven, s.Quorum)
	}
	return nil
}

// noQuorumEvidence returns the largest group of equal revealed results
// among workers and how many workers have no reveal in the evidence.
func noQuorumEvidence(workers []solana.PublicKey, revealed map[solana.PublicKey]string) (best, unproven int) {
	groups := map[string]int{}
	for _, w := range workers {
		r, ok := revealed[w]
		if !ok || r == "" {
			unproven++
			continue
		}
		groups[r]++
		best = max(best, groups[r])
	}
	return best, unproven
}

func approveRelease(s Stake, req SignRequest) error {
	if s.Result == "" || req.ResultCID != s.Result {
		return fmt.Errorf("the release pays for result %s, this worker computed %q", req.ResultCID, s.Result)
	}
	if v := s.Verdict; v != nil && v.Accepted != s.Result {
		return fmt.Errorf("the release pays for result %s, the submitter's verdict accepted %q", req.ResultCID, v.Accepted)
	}
	var paid []solana.PublicKey
	var toSubmitter uint64
	for _, p := range req.Payouts {
		switch {
		case p.Recipient == s.Submitter:
			toSubmitter += p.Amount
		case !slices.Contains(s.Workers, p.Recipient):
			return fmt.Errorf("the release pays %s, who is not one of the job's %d workers", p.Recipient, len(s.Workers))
		case slices.Contains(paid, p.Recipient):
			return fmt.Errorf("the release pays %s twice", p.Recipient)
		case p.Amount != s.Reward:
			return fmt.Errorf("the release pays %s %d, the reward is %d", p.Recipient, p.Amount, s.Reward)
		default:
			paid = append(paid, p.Recipient)
		}
	}
	if !slices.Contains(paid, s.Self) {
		return fmt.Errorf("the release does not pay this worker")
	}
	if s.Verdict != nil {
		for _, a := range s.Verdict.Agreed {
			if !slices.Contains(paid, a) {
				return fmt.Errorf("the release does not pay %s, who agreed with the accepted result", a)
			}
		}
	} else if !s.PastDeadline {
		// Only the verdict tells who agreed: without it a release could
		// leave out an agreeing worker that is not asked to sign.
		return fmt.Errorf("no verdict from the submitter says whom a release of %s must pay (a release without one is a rescue, after the deadline)", req.ResultCID)
	} else if len(paid) < s.Quorum {
		return fmt.Errorf("the release pays %d workers, fewer than the quorum of %d", len(paid), s.Quorum)
	}
	if moved := s.Reward*uint64(len(paid)) + toSubmitter; moved != s.Amount {
		return fmt.Errorf("the release moves %d of the escrow's %d", moved, s.Amount)
	}
	return nil
}
