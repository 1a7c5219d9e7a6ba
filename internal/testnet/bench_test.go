package testnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/p2p"
)

// BenchmarkMesh measures, for in-process networks of real nodes on
// loopback where every node knows only node 0:
//   - mesh_s: from node 0's start until every node is connected to every
//     other (starting the nodes one after another is included);
//   - discover_s: from the last node's start until the full mesh;
//   - gossip_p50_ms / gossip_p99_ms: GossipSub delivery latency from
//     publish to each receiver, over 50 messages from rotating publishers.
//
// Run: go test -run '^$' -bench Mesh -benchtime 1x ./internal/testnet/
func BenchmarkMesh(b *testing.B) {
	for _, n := range []int{20, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for range b.N {
				benchMesh(b, n)
			}
		})
	}
}

func benchMesh(b *testing.B, n int) {
	start := time.Now()
	nodes := New(b, n, Options{Configure: func(i int, cfg *config.Config) {
		cfg.Log.Level = "warn"
	}})
	lastStarted := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		b.Fatal(err)
	}
	meshed := time.Now()
	b.ReportMetric(meshed.Sub(start).Seconds(), "mesh_s")
	b.ReportMetric(meshed.Sub(lastStarted).Seconds(), "discover_s")

	topics := make([]*p2p.Topic, n)
	for i, nd := range nodes {
		tp, err := nd.Network().Join("/vft/1/bench", func(context.Context, peer.ID, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		topics[i] = tp
		b.Cleanup(func() { tp.Close() })
	}
	// Let every node's topic mesh fill (GossipSub's D = 6).
	for _, tp := range topics {
		for len(tp.Peers()) < min(6, n-1) {
			select {
			case <-ctx.Done():
				b.Fatal("topic mesh did not form")
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	time.Sleep(2 * time.Second) // a few heartbeats so meshes settle

	const messages = 50
	var mu sync.Mutex
	var latencies []time.Duration
	var wg sync.WaitGroup
	recvCtx, stopRecv := context.WithCancel(ctx)
	for _, tp := range topics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				msg, err := tp.Next(recvCtx)
				if err != nil {
					return
				}
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(msg.Data)))
				mu.Lock()
				latencies = append(latencies, time.Since(sent))
				mu.Unlock()
			}
		}()
	}
	for i := range messages {
		payload := make([]byte, 256)
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		if err := topics[i%n].Publish(ctx, payload); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := messages * (n - 1)
	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		got := len(latencies)
		mu.Unlock()
		if got >= want {
			break
		}
		select {
		case <-deadline:
			b.Fatalf("only %d of %d deliveries arrived", got, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopRecv()
	wg.Wait()
	slices.Sort(latencies)
	b.ReportMetric(ms(latencies[len(latencies)/2]), "gossip_p50_ms")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "gossip_p99_ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
