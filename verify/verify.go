// Package verify decides whether workers' results are correct before
// anyone is paid: commitments that stop copying, the per-job policies
// (exact quorum, numeric tolerance, spot checks, a custom verifier
// module), and the reputation each node keeps from verdicts.
//
// It owns every verification decision and knows result CIDs and peers,
// not the market: Policy is the rule a job carries, Next says what a
// job's reports mean (accept, reject, the program's failure, or how many
// more workers to add and why), Choose picks the workers and SpotDraw
// decides which spot jobs are checked. job/ runs the protocol (who
// commits, reveals and verifies when) around those calls, and the
// simulator in verify/sim drives the very same functions.
package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Report is one worker's revealed outcome: a result CID, or why it has
// none (its run failed, or its reveal did not match its commitment).
type Report struct {
	Worker peer.ID
	Result string
	Failed string
	// Failure is set when Failed is the program's own failure, which every
	// honest run of the job repeats ("exit code 3", "trap: unreachable"),
	// rather than the worker's (an input it could not fetch, a node that
	// stopped): runs that fail the same way agree on that failure.
	Failure string
}

// Outcome is what the reports so far decide.
type Outcome struct {
	// Done is true once the job is decided either way.
	Done bool
	// Accepted is the result CID accepted; empty when rejected or undecided.
	Accepted string
	// Agreed are the workers whose result matches the accepted one;
	// Dissented those whose result differs or who failed (when the job is
	// rejected, only those who failed: differing results prove nothing
	// about each other).
	Agreed, Dissented []peer.ID
	Reason            string
	// Failure is set when M workers' runs failed the same way: the program
	// fails, not the workers. The job is decided as failed, and nobody is
	// proven wrong: Agreed is empty and Dissented names only the workers
	// whose runs failed for reasons of their own.
	Failure string
	// Unchecked is set when nobody checked the outcome: a spot job the
	// draw passed over. It is accepted and paid, but it is no evidence
	// about the worker, and the submitter's reputation table must not
	// count it (a cheater would otherwise build a record on unchecked
	// jobs and, once proven, not be excluded when finally caught).
	Unchecked bool
}

// Matcher says whether two result CIDs are the same answer. Exact
// verification needs none (equal CIDs); tolerance and custom modes compare
// the content.
type Matcher interface {
	Match(ctx context.Context, a, b string) (bool, error)
}

// Decide groups the reports by agreement and decides once quorum agree,
// or once expected reports are in and no group can reach it. With a nil
// matcher results agree only when their CIDs are equal. It is the vote
// alone; Next is the whole rule a job follows.
func Decide(ctx context.Context, quorum int, reports []Report, expected int, match Matcher) (Outcome, error) {
	var groups [][]Report // each group's results agree with its first
	for _, r := range reports {
		if r.Failed != "" || r.Result == "" {
			continue // a failure agrees with nothing; it is a dissent below
		}
		placed := false
		for i, g := range groups {
			same := g[0].Result == r.Result
			if !same && match != nil {
				var err error
				if same, err = match.Match(ctx, g[0].Result, r.Result); err != nil {
					return Outcome{}, fmt.Errorf("compare %s with %s: %w", g[0].Result, r.Result, err)
				}
			}
			if same {
				groups[i] = append(g, r)
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, []Report{r})
		}
	}
	for _, g := range groups {
		if len(g) < quorum {
			continue
		}
		out := Outcome{Done: true, Accepted: g[0].Result,
			Reason: fmt.Sprintf("%d of %d results agree", len(g), len(reports))}
		for _, r := range reports {
			if slices.ContainsFunc(g, func(x Report) bool { return x.Worker == r.Worker }) {
				out.Agreed = append(out.Agreed, r.Worker)
			} else {
				out.Dissented = append(out.Dissented, r.Worker)
			}
		}
		return out, nil
	}
	if out, ok := agreedFailure(quorum, reports); ok {
		return out, nil
	}
	if len(reports) < expected {
		return Outcome{}, nil
	}
	// Rejected: only the workers that failed are proven wrong; with no
	// quorum nobody can tell which of the differing results is right.
	out := Outcome{Done: true, Reason: fmt.Sprintf("no %d of %d results agree", quorum, len(reports))}
	for _, r := range reports {
		if r.Failed != "" || r.Result == "" {
			out.Dissented = append(out.Dissented, r.Worker)
		}
	}
	return out, nil
}

// agreedFailure decides a job whose program failed the same way on M
// workers. Only a result quorum, checked first, outranks it: a program
// that fails everywhere is the submitter's to fix, and counting its
// failures as dissent would punish every honest miner that ran it.
func agreedFailure(quorum int, reports []Report) (Outcome, bool) {
	count := map[string]int{}
	for _, r := range reports {
		if r.Failure != "" {
			count[r.Failure]++
		}
	}
	for _, r := range reports { // in report order, so the outcome is deterministic
		if r.Failure == "" || count[r.Failure] < quorum {
			continue
		}
		out := Outcome{Done: true, Failure: r.Failure,
			Reason: fmt.Sprintf("the program failed the same way on %d of %d workers (%s)", count[r.Failure], len(reports), r.Failure)}
		for _, x := range reports {
			if x.Failed != "" && x.Failure == "" {
				out.Dissented = append(out.Dissented, x.Worker)
			}
		}
		return out, true
	}
	return Outcome{}, false
}
