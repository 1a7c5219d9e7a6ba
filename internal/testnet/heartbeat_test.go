package testnet

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// Every node's table lists every miner from its heartbeats alone, and
// heartbeats forged or replayed by another peer never enter any table.
func TestHeartbeatTable(t *testing.T) {
	nodes := New(t, 4, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s"))
		if i == 3 {
			cfg.Node.Mode = config.ModeLight // listens, does not publish
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	miners := []peer.ID{nodes[0].Network().ID(), nodes[1].Network().ID(), nodes[2].Network().ID()}
	waitTables(ctx, t, nodes, miners)

	for _, e := range nodes[3].Heartbeats().Nodes() {
		if e.Peer == nodes[3].Network().ID() {
			t.Fatal("a light node published a heartbeat")
		}
		if e.Heartbeat.CPUCores == 0 || e.Heartbeat.MemoryBytes == 0 || len(e.Heartbeat.Executors) == 0 || e.Heartbeat.Mode != "miner" {
			t.Fatalf("heartbeat lacks capabilities: %+v", e.Heartbeat)
		}
	}

	// An attacker joins the network with a topic validator that lets
	// anything out, captures a genuine heartbeat and republishes it, and
	// publishes heartbeats signed with a key that is not its own.
	attacker, attackerKey := startAttacker(t, ctx, nodes[0], heartbeat.TopicName)
	attackerID := attackerKey.PeerID()
	captured, err := attacker.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim, _ := identity.Generate()
	forged, _ := wire.Seal(victim, heartbeat.Kind, time.Now(), heartbeat.Heartbeat{Mode: "miner", IntervalSec: 5, CPUCores: 999})
	stale, _ := wire.Seal(victim, heartbeat.Kind, time.Now().Add(-time.Hour), heartbeat.Heartbeat{Mode: "miner", IntervalSec: 5})
	for _, data := range [][]byte{forged, captured.Data, stale} {
		if err := attacker.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
	}
	// Give the forgeries time to spread if anyone would relay them, and a
	// new round of genuine heartbeats time to arrive.
	time.Sleep(6 * time.Second)
	for i, nd := range nodes {
		for _, e := range nd.Heartbeats().Nodes() {
			// The attacker never sent a heartbeat of its own, so no entry
			// may carry its ID or the victim's.
			if e.Peer == victim.PeerID() || e.Peer == attackerID || e.Heartbeat.CPUCores == 999 {
				t.Fatalf("node %d accepted a forged heartbeat: %+v", i, e)
			}
		}
	}
	waitTables(ctx, t, nodes, miners)
}

func waitTables(ctx context.Context, t testing.TB, nodes []*node.Node, want []peer.ID) {
	t.Helper()
	for i, nd := range nodes {
		for {
			have := map[peer.ID]bool{}
			for _, e := range nd.Heartbeats().Nodes() {
				have[e.Peer] = true
			}
			missing := 0
			for _, id := range want {
				if !have[id] {
					missing++
				}
			}
			if missing == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %d's table misses %d miners", i, missing)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// startAttacker joins the network as a bare libp2p node whose validator on
// topic accepts anything, so it can publish what honest nodes must refuse.
func startAttacker(t *testing.T, ctx context.Context, boot *node.Node, topicName string) (*p2p.Topic, *identity.Key) {
	t.Helper()
	a := joinBare(t, ctx, boot)
	return a.join(t, ctx, topicName), a.key
}
