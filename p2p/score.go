package p2p

import (
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring for GossipSub. Every value here was chosen for VFT's traffic:
// sparse, signed messages (job offers, heartbeats, verdicts) where a peer
// that sends invalid messages must lose its mesh slots quickly, and a quiet
// honest peer must not be punished for being quiet.

// Thresholds below which a peer loses, in order: our gossip, our published
// messages, and every message exchange (graylist).
func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:   -100,
		PublishThreshold:  -500,
		GraylistThreshold: -1000,
		// Peer exchange only from peers that have earned some standing, so
		// a fresh Sybil cannot fill our peer table on PRUNE.
		AcceptPXThreshold: 10,
		// Graft better peers when the mesh's median score drops below this.
		OpportunisticGraftThreshold: 5,
	}
}

// peerScoreParams returns the global score parameters. appScore lets the
// node feed reputation into the gossip layer later without p2p knowing why.
func peerScoreParams(appScore func(peer.ID) float64) *pubsub.PeerScoreParams {
	if appScore == nil {
		appScore = func(peer.ID) float64 { return 0 }
	}
	return &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:     50,
		AppSpecificScore:  appScore,
		AppSpecificWeight: 1,
		// More than 3 peers behind one IP start to cost score: a cheap way for
		// one operator to run many identities. Loopback is exempt so a devnet
		// or a test mesh on one machine is not penalised.
		IPColocationFactorWeight:    -20,
		IPColocationFactorThreshold: 3,
		IPColocationFactorWhitelist: loopbackNets(),
		// Broken promises (IWANT not answered) and GRAFT spam during backoff.
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 5,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		// A peer that reconnects keeps its bad score for an hour.
		RetainScore: time.Hour,
	}
}

// topicScoreParams apply to every VFT topic.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,
		// Up to +1 for an hour in the mesh.
		TimeInMeshWeight:  1.0 / 3600,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     3600,
		// Reward being first to deliver, up to +20.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:    20,
		// Mesh delivery-rate penalties are off: VFT topics carry a few
		// messages a minute, so a delivery quota would punish honest peers
		// whenever the network is idle.
		MeshMessageDeliveriesWeight: 0,
		MeshFailurePenaltyWeight:    0,
		// Invalid messages (bad signature, stale, oversize, malformed) are
		// squared and weigh heavily: about 10 invalid messages graylist a peer.
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		SkipAtomicValidation:           true,
	}
}

func loopbackNets() []*net.IPNet {
	var nets []*net.IPNet
	for _, cidr := range []string{"127.0.0.0/8", "::1/128"} {
		_, n, err := net.ParseCIDR(cidr)
		if err == nil {
			nets = append(nets, n)
		}
	}
	return nets
}
