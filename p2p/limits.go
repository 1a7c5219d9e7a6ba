package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/prometheus/client_golang/prometheus"
)

// newResourceManager bounds what libp2p may use in memory, file
// descriptors, connections and streams. With max_memory or max_fds unset
// the limits scale with the machine, as go-libp2p's AutoScale does.
//
// Each direct request/response protocol gets a per-peer cap on inbound
// streams (p2p.max_streams_per_peer): such a stream pins a goroutine until
// its request arrives or its deadline passes, so a peer that opens many and
// never writes must run into the cap, not into our memory.
func newResourceManager(cfg Config, direct []protocol.ID, reg prometheus.Registerer) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	for _, proto := range direct {
		scaling.AddProtocolPeerLimit(proto, rcmgr.BaseLimit{
			StreamsInbound:  cfg.MaxStreamsPerPeer,
			StreamsOutbound: 128,
			Streams:         cfg.MaxStreamsPerPeer + 128,
			Memory:          16 << 20,
		}, rcmgr.BaseLimitIncrease{})
	}
	var limits rcmgr.ConcreteLimitConfig
	if cfg.MaxMemory > 0 || cfg.MaxFDs > 0 {
		auto := scaling.AutoScale()
		mem := int64(cfg.MaxMemory)
		if mem == 0 {
			mem = auto.ToPartialLimitConfig().System.Memory.Build(1 << 30)
		}
		fds := cfg.MaxFDs
		if fds == 0 {
			fds = auto.ToPartialLimitConfig().System.FD.Build(512)
		}
		limits = scaling.Scale(mem, fds)
	} else {
		limits = scaling.AutoScale()
	}
	var opts []rcmgr.Option
	if reg != nil {
		rcmgr.MustRegisterWith(reg)
		reporter, err := rcmgr.NewStatsTraceReporter()
		if err != nil {
			return nil, fmt.Errorf("resource manager metrics: %w", err)
		}
		opts = append(opts, rcmgr.WithTraceReporter(reporter))
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

func newConnManager(cfg Config) (*connmgr.BasicConnMgr, error) {
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace.Std()))
	if err != nil {
		return nil, fmt.Errorf("connection manager (p2p.conn_low %d, p2p.conn_high %d): %w", cfg.ConnLow, cfg.ConnHigh, err)
	}
	return cm, nil
}
