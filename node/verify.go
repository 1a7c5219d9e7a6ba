package node

import (
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/verify"
)

// maxCompareBytes bounds what a submitter fetches to compare two results
// in the tolerance and custom modes.
const maxCompareBytes = 4 << 30

// reputationOf is the market's view of a bidder: excluded peers score 0,
// below every choice floor, so they are never chosen again.
func (n *Node) reputationOf(p peer.ID) float64 {
	if n.reputation.Excluded(p) {
		return 0
	}
	return n.reputation.Score(p)
}

// observeVerdict feeds a checked verdict (this node's own or a gossiped
// one) to the reputation table.
func (n *Node) observeVerdict(v job.CheckedVerdict) {
	// The unproven are the workers that missed the deadline (they revealed
	// nothing): benched for a while, not excluded, since a crash looks the same.
	err := n.reputation.Observe(n.work, verify.Observation{Author: v.Author, Job: v.Job, Agreed: v.Agreed,
		Dissented: v.Dissented, Missed: v.Unproven, At: time.Now()})
	if err != nil {
		n.log.Warn("reputation not updated", "job", v.Job, "err", err)
	}
}

func (n *Node) penalize(p peer.ID, reason string) {
	if err := n.reputation.Penalize(n.work, p, reason); err != nil {
		n.log.Warn("reputation not updated", "peer", p, "err", err)
	}
}

// matcher builds the comparison the tolerance and custom modes need.
func (n *Node) matcher(run verify.Runner) func(verify.Policy) (verify.Matcher, error) {
	return func(p verify.Policy) (verify.Matcher, error) {
		scratch := n.repo.Path("verify")
		if err := os.MkdirAll(scratch, 0o700); err != nil {
			return nil, fmt.Errorf("verify scratch dir: %w", err)
		}
		fetch := jobContent{s: n.storage}
		switch p.Mode {
		case job.VerifyTolerance:
			return verify.NewToleranceMatcher(fetch, scratch, p.RelTol, p.AbsTol, maxCompareBytes), nil
		case job.VerifyCustom:
			return verify.NewCustomMatcher(fetch, run, p.Verifier, scratch, maxCompareBytes,
				executor.Limits{MemoryBytes: 256 << 20, Timeout: 2 * time.Minute, MaxOutputBytes: 1 << 20}), nil
		}
		return nil, nil // exact and spot: equal CIDs agree
	}
}
