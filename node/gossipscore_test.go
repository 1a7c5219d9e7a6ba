package node

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/verify"
)

// GossipSub's application score is this node's reputation of the peer:
// nothing before reputation exists or for a stranger, below GossipSub's
// gossip threshold (-100) for a peer this node caught cheating.
func TestGossipScoreFollowsReputation(t *testing.T) {
	self, _ := identity.Generate()
	cheat, _ := identity.Generate()
	stranger, _ := identity.Generate()
	n := &Node{}
	if s := n.gossipScore(cheat.PeerID()); s != 0 {
		t.Fatalf("score %v before reputation exists, want 0", s)
	}
	rep, err := verify.NewReputation(dssync.MutexWrap(datastore.NewMapDatastore()), self.PeerID(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.gossipRep.Store(rep)
	if err := rep.Penalize(context.Background(), cheat.PeerID(), "forged verdict"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    peer.ID
		ok   func(float64) bool
	}{
		{"stranger", stranger.PeerID(), func(s float64) bool { return s == 0 }},
		{"caught cheating", cheat.PeerID(), func(s float64) bool { return s < -100 }},
	} {
		if s := n.gossipScore(tc.p); !tc.ok(s) {
			t.Errorf("%s: gossip score %v", tc.name, s)
		}
	}
}

// Every request/response protocol a miner serves has its per-peer stream
// cap (p2p.max_streams_per_peer): a protocol added later without one
// would let a peer pin goroutines on it.
func TestDirectProtocolsCapped(t *testing.T) {
	nd := startTestNode(t)
	for _, proto := range nd.Network().Host().Mux().Protocols() {
		// The DHT's own protocol is not a one-request exchange.
		if !strings.HasPrefix(string(proto), p2p.ProtocolPrefix+"/") || strings.HasPrefix(string(proto), p2p.ProtocolPrefix+"/kad/") {
			continue
		}
		if !slices.Contains(directProtocols, proto) {
			t.Errorf("%s is served without a per-peer stream cap: add it to directProtocols", proto)
		}
	}
}
