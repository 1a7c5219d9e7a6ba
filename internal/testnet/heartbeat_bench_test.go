package testnet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/heartbeat"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/wire"
)

// BenchmarkHeartbeatBandwidth runs 50 miners beating every 5 s and counts
// the GossipSub bytes each node receives, so the cost of heartbeats in a
// large network can be extrapolated:
//   - hb_bytes: one signed heartbeat (a miner with 8 GPUs);
//   - in_Bps_per_node: GossipSub bytes received per node per second;
//   - amplification: received bytes / (heartbeats sent × size), i.e. how
//     many times each node receives each heartbeat's worth of bytes
//     (mesh duplicates plus IHAVE/IWANT gossip and control traffic);
//   - Bps_per_node_10k_30s: the same amplification applied to 10,000
//     nodes beating every 30 s (the default interval).
//
// Run: go test -run '^$' -bench HeartbeatBandwidth -benchtime 1x ./internal/testnet/
func BenchmarkHeartbeatBandwidth(b *testing.B) {
	for range b.N {
		benchHeartbeats(b, 50, 5*time.Second, 30*time.Second)
	}
}

func benchHeartbeats(b *testing.B, n int, interval, window time.Duration) {
	counter := metrics.NewBandwidthCounter()
	nodes := New(b, n, Options{Bandwidth: counter, Configure: func(i int, cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.Heartbeat.Interval.UnmarshalText([]byte(interval.String()))
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		b.Fatal(err)
	}
	var all []peer.ID
	for _, nd := range nodes {
		all = append(all, nd.Network().ID())
	}
	waitTables(ctx, b, nodes, all)

	before := meshsubBytesIn(counter)
	time.Sleep(window)
	received := meshsubBytesIn(counter) - before

	// The test nodes have no GPUs, so their heartbeats are smaller than a
	// rig's: amplification uses their real size, the extrapolation a rig's.
	actual := ownHeartbeatSize(b, nodes[0])
	size := sampleHeartbeatSize(b)
	perNode := float64(received) / float64(n) / window.Seconds()
	sent := float64(n) * window.Seconds() / interval.Seconds() // heartbeats published in the window
	amplification := float64(received) / float64(n) / (sent * float64(actual))
	b.ReportMetric(float64(actual), "test_hb_bytes")
	b.ReportMetric(float64(size), "hb_bytes")
	b.ReportMetric(perNode, "in_Bps_per_node")
	b.ReportMetric(amplification, "amplification")
	b.ReportMetric(10000*float64(size)*amplification/30, "Bps_per_node_10k_30s")
}

// meshsubBytesIn sums received bytes over GossipSub's protocol versions.
func meshsubBytesIn(c *metrics.BandwidthCounter) int64 {
	var total int64
	for proto, stats := range c.GetBandwidthByProtocol() {
		if strings.HasPrefix(string(proto), "/meshsub/") {
			total += stats.TotalIn
		}
	}
	return total
}

func ownHeartbeatSize(b *testing.B, nd *node.Node) int {
	for _, e := range nd.Heartbeats().Nodes() {
		if e.Self {
			data, err := wire.Seal(nd.Key(), heartbeat.Kind, e.SignedAt, e.Heartbeat)
			if err != nil {
				b.Fatal(err)
			}
			return len(data)
		}
	}
	b.Fatal("node has no heartbeat of its own")
	return 0
}

func sampleHeartbeatSize(b *testing.B) int {
	key, _ := identity.Generate()
	hb := heartbeat.Heartbeat{
		Mode: "miner", Version: "v1.0.0", UptimeSec: 86400, IntervalSec: 30,
		Executors: []string{"wasm", "native"}, PriceFloor: 1_000_000, Mint: "VFTmint1111111111111111111111111111111111111",
		FreeSlots: 8, CPUCores: 64, MemoryBytes: 512 << 30, FreeMemoryBytes: 400 << 30,
	}
	for range 8 {
		hb.GPUs = append(hb.GPUs, heartbeat.GPU{Name: "NVIDIA H100 80GB HBM3", MemoryBytes: 80 << 30, FreeMemoryBytes: 79 << 30, ComputeCapability: "9.0", UtilPercent: 37})
	}
	data, err := wire.Seal(key, heartbeat.Kind, time.Now(), hb)
	if err != nil {
		b.Fatal(err)
	}
	return len(data)
}
