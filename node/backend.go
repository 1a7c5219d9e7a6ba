package node

import (
	"context"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/p2p"
)

// backend adapts the node to what the API serves.
type backend struct{ n *Node }

func (b backend) Identity() api.Identity {
	id := api.Identity{
		PeerID:  b.n.key.PeerID().String(),
		Wallet:  b.n.key.WalletAddress(),
		Mode:    string(b.n.cfg.Node.Mode),
		Version: b.n.opts.Version,
		Addrs:   []string{},
	}
	for _, a := range b.n.net.Addrs() {
		id.Addrs = append(id.Addrs, a.String())
	}
	id.Reachability = &api.Reachability{Reachability: b.n.net.Reachability()}
	if id.Reachability.Status == "private" {
		id.Reachability.Fix = p2p.NATFix
	}
	return id
}

func (b backend) Peers() []api.Peer {
	var out []api.Peer
	for _, p := range b.n.net.Peers() {
		out = append(out, api.Peer{
			ID:        p.ID.String(),
			Addr:      p.Addr,
			Direction: p.Direction,
			LatencyMS: p.Latency.Milliseconds(),
			Agent:     p.Agent,
			Relayed:   p.Relayed,
		})
	}
	return out
}

func (b backend) Connect(ctx context.Context, addr string) (string, error) {
	info, err := b.n.net.Connect(ctx, addr)
	if err != nil {
		return "", err
	}
	return info.ID.String(), nil
}

func (b backend) Nodes() []api.NodeEntry {
	entries := b.n.heartbeat.Nodes()
	out := make([]api.NodeEntry, len(entries))
	for i, e := range entries {
		out[i] = api.NodeEntry{Entry: e, Reputation: b.n.reputation.Score(e.Peer), Excluded: b.n.reputation.Excluded(e.Peer)}
	}
	return out
}

func (b backend) ClockSkew() (time.Duration, int) { return b.n.heartbeat.ClockSkew() }
