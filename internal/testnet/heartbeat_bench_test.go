package testnet

import (
	"context"
	"fmt"
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
//     nodes beating every 30 s (the default interval, without scaling);
//   - Bps_per_node_10k_scaled: the same for 10,000 nodes with interval
//     scaling (heartbeat.NetworkBeatRate heartbeats per second in all).
//
// Run: go test -run '^$' -bench HeartbeatBandwidth -benchtime 1x ./internal/testnet/
func BenchmarkHeartbeatBandwidth(b *testing.B) {
	for range b.N {
		benchHeartbeats(b, 50, 5*time.Second, 0, 30*time.Second)
	}
}

// BenchmarkHeartbeatScaling shows the interval scaling of a large network
// at a small scale: with the network rate set to 1 heartbeat per second,
// 16 and 32 nodes stretch a 5 s interval to 16 s and 32 s, and each node
// should receive about the same bytes per second at both sizes; "fixed"
// keeps the 5 s interval (the behaviour before scaling), under which the
// bytes per node double with the node count.
//
// Run: go test -run '^$' -bench HeartbeatScaling -benchtime 1x ./internal/testnet/
func BenchmarkHeartbeatScaling(b *testing.B) {
	for _, n := range []int{16, 32} {
		b.Run(fmt.Sprintf("fixed/n=%d", n), func(b *testing.B) {
			for range b.N {
				benchHeartbeats(b, n, 5*time.Second, 0, 30*time.Second)
			}
		})
		b.Run(fmt.Sprintf("scaled/n=%d", n), func(b *testing.B) {
			for range b.N {
				benchHeartbeats(b, n, 5*time.Second, 1, 2*time.Duration(n)*time.Second)
			}
		})
	}
}

// benchHeartbeats measures n nodes configured for interval; rate, when not
// zero, replaces heartbeat.NetworkBeatRate.
func benchHeartbeats(b *testing.B, n int, interval time.Duration, rate float64, window time.Duration) {
	counter := metrics.NewBandwidthCounter()
	nodes := New(b, n, Options{Bandwidth: counter, HeartbeatRate: rate, Configure: func(i int, cfg *config.Config) {
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
	if rate > 0 {
		interval = heartbeat.ScaledInterval(interval, n, rate)
		waitAnnounced(ctx, b, nodes, interval)
	}

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
	// With scaling, 10,000 nodes beat every 1,000 s: NetworkBeatRate per second in all.
	b.ReportMetric(heartbeat.NetworkBeatRate*float64(size)*amplification, "Bps_per_node_10k_scaled")
	b.ReportMetric(interval.Seconds(), "interval_s")
}

// waitAnnounced waits until every node has announced interval (they double
// theirs beat by beat up to it), then one interval more.
func waitAnnounced(ctx context.Context, b *testing.B, nodes []*node.Node, interval time.Duration) {
	for _, nd := range nodes {
		for {
			var announced time.Duration
			for _, e := range nd.Heartbeats().Nodes() {
				if e.Self {
					announced = time.Duration(e.Heartbeat.IntervalSec) * time.Second
				}
			}
			if announced == interval {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("a node announces %v, not the scaled %v", announced, interval)
			case <-time.After(time.Second):
			}
		}
	}
	time.Sleep(interval)
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
