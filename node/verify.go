package node

import (
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/executor"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/storage"
	"github.com/vft-network/vft/verify"
)

// maxCompareBytes bounds what a submitter fetches to compare two results
// in the tolerance and custom modes.
const maxCompareBytes = 4 << 30

// reputationOf is the market's view of a bidder (verify.Reputation's
// Standing, which the simulator uses too).
func (n *Node) reputationOf(p peer.ID) float64 {
	return n.reputation.Standing(p)
}

// gossipScore turns this node's reputation of p into GossipSub's
// application score: 0 for a peer we know nothing about (reputation 0.5),
// up to +gossipRepWeight/2 for a proven worker, down to -gossipRepWeight/2
// for one that failed us, and gossipExcluded for one we excluded, which
// puts it under the gossip threshold (p2p's peerScoreThresholds): we stop
// gossiping with it and it gets no mesh slot.
func (n *Node) gossipScore(p peer.ID) float64 {
	rep := n.gossipRep.Load()
	if rep == nil {
		return 0
	}
	if rep.Excluded(p) {
		return gossipExcluded
	}
	return gossipRepWeight * (rep.Score(p) - 0.5)
}

const (
	gossipRepWeight = 40
	gossipExcluded  = -200
)

// directProtocols are the request/response protocols whose streams per
// peer the host caps (p2p.max_streams_per_peer).
var directProtocols = []protocol.ID{
	job.ProtocolBid, job.ProtocolInvite, job.ProtocolAssign, job.ProtocolStarted, job.ProtocolProgress, job.ProtocolCommit,
	job.ProtocolReveal, job.ProtocolVerdict, escrow.Protocol,
	storage.CARProtocol, storage.CARMultiProtocol,
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
			return verify.NewToleranceMatcher(fetch, scratch, p.RelTol(), p.AbsTol(), maxCompareBytes), nil
		case job.VerifyCustom:
			return verify.NewCustomMatcher(fetch, run, p.Verifier, scratch, maxCompareBytes,
				executor.Limits{MemoryBytes: 256 << 20, Timeout: 2 * time.Minute, MaxOutputBytes: 1 << 20}), nil
		}
		return nil, nil // exact and spot: equal CIDs agree
	}
}
