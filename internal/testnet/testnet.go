// Package testnet builds in-process networks of real VFT nodes for tests
// and benchmarks: real libp2p hosts on 127.0.0.1, real repos in temporary
// directories, each node bootstrapped only to node 0, so that every other
// connection has to be found through the DHT.
package testnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/node"
	"github.com/vft-network/vft/repo"
)

// Options tune a test network.
type Options struct {
	// Mode of every node (default miner).
	Mode config.Mode
	// Configure edits node i's config before it starts.
	Configure func(i int, cfg *config.Config)
	// Bandwidth, when set, counts every node's bytes per protocol.
	Bandwidth metrics.Reporter
	// Faults makes node i a dishonest miner (job.Faults); the harness
	// turns on debug.allow_faults for it.
	Faults map[int]string
	// HeartbeatRate replaces heartbeat.NetworkBeatRate on every node.
	HeartbeatRate float64
	// RescueAfter replaces job.RescueAfter on every node.
	RescueAfter time.Duration
}

// Config is the config of a node on a loopback test network: fast
// discovery, no multicast or router traffic, ports picked by the kernel.
func Config(mode config.Mode) config.Config {
	cfg := config.Default(mode)
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.P2P.MDNS = false
	cfg.P2P.NATPortMap = false
	// Every node is on 127.0.0.1: peers learned through the DHT too.
	cfg.P2P.AllowPrivateAddrs = true
	cfg.P2P.Rendezvous = "vft/1/testnet"
	cfg.P2P.DiscoveryInterval.UnmarshalText([]byte("2s"))
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Market.ReportGrace.UnmarshalText([]byte("3s"))
	cfg.Log.Level = "debug"
	// Tests that pay start a localnet and turn this on.
	cfg.Chain.Settle = false
	return cfg
}

// New starts n nodes and stops them when the test ends. Node 0 starts
// first; every other node has only node 0 as its bootstrap peer.
func New(tb testing.TB, n int, opts Options) []*node.Node {
	tb.Helper()
	if opts.Mode == "" {
		opts.Mode = config.ModeMiner
	}
	nodes := make([]*node.Node, 0, n)
	var bootstrap []string
	for i := range n {
		cfg := Config(opts.Mode)
		cfg.P2P.Bootstrap = bootstrap
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		fault := opts.Faults[i]
		if fault != "" {
			cfg.Debug.AllowFaults = true
		}
		nd := Start(tb, cfg, fmt.Sprintf("node%d", i), node.Options{Version: "test", Bandwidth: opts.Bandwidth, Fault: fault, HeartbeatRate: opts.HeartbeatRate, RescueAfter: opts.RescueAfter})
		nodes = append(nodes, nd)
		if i == 0 {
			for _, a := range nd.Network().Addrs() {
				bootstrap = append(bootstrap, a.String())
			}
		}
	}
	return nodes
}

// BootstrapTo adds nd's addresses to cfg's bootstrap peers.
func BootstrapTo(cfg *config.Config, nd *node.Node) {
	for _, a := range nd.Network().Addrs() {
		cfg.P2P.Bootstrap = append(cfg.P2P.Bootstrap, a.String())
	}
}

// Start initialises a repo for one node, starts it, and registers its stop.
func Start(tb testing.TB, cfg config.Config, name string, opts node.Options) *node.Node {
	tb.Helper()
	return StartIn(tb, filepath.Join(tb.TempDir(), name), cfg, opts)
}

// StartIn starts a node on the repo in dir, initialising it first if it
// holds none: call it again on the same dir to restart a node.
func StartIn(tb testing.TB, dir string, cfg config.Config, opts node.Options) *node.Node {
	tb.Helper()
	name := filepath.Base(dir)
	r, err := repo.Open(dir)
	if errors.Is(err, repo.ErrNotInitialised) {
		r, _, err = repo.Init(dir, cfg)
	}
	if err != nil {
		tb.Fatalf("repo %s: %v", name, err)
	}
	key, err := r.Identity()
	if err != nil {
		tb.Fatalf("identity %s: %v", name, err)
	}
	nd, err := node.New(r, cfg, key, Logger(tb).With("node", name), opts)
	if err != nil {
		tb.Fatalf("new %s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nd.Start(ctx); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := nd.Close(); err != nil {
			tb.Errorf("stop %s: %v", name, err)
		}
	})
	return nd
}

// Logger discards logs unless VFT_TEST_LOG=1, which sends them to stderr.
func Logger(tb testing.TB) *slog.Logger {
	if os.Getenv("VFT_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// WaitFullMesh waits until every node is connected to every other one and
// returns how long that took.
func WaitFullMesh(ctx context.Context, nodes []*node.Node) (time.Duration, error) {
	start := time.Now()
	for {
		missing := 0
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && !a.Network().IsConnected(b.Network().ID()) {
					missing++
				}
			}
		}
		if missing == 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("mesh incomplete after %s: %d directed links missing", time.Since(start).Round(time.Millisecond), missing)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
