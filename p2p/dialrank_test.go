package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func TestLANTCPFirstOrder(t *testing.T) {
	const relay = "/ip4/192.168.1.9/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit"
	tests := []struct {
		name  string
		addrs []string
		want  map[string]time.Duration // each address's delay
	}{
		{"loopback: TCP, then QUIC", []string{"/ip4/127.0.0.1/udp/4001/quic-v1", "/ip4/127.0.0.1/tcp/4001"}, map[string]time.Duration{
			"/ip4/127.0.0.1/tcp/4001":         0,
			"/ip4/127.0.0.1/udp/4001/quic-v1": lanQUICDelay,
		}},
		{"LAN: TCP, then QUIC", []string{"/ip4/192.168.1.9/udp/4001/quic-v1", "/ip4/192.168.1.9/tcp/4001"}, map[string]time.Duration{
			"/ip4/192.168.1.9/tcp/4001":         0,
			"/ip4/192.168.1.9/udp/4001/quic-v1": lanQUICDelay,
		}},
		{"public: QUIC, then TCP, as libp2p does", []string{"/ip4/198.18.0.7/tcp/4001", "/ip4/198.18.0.7/udp/4001/quic-v1"}, map[string]time.Duration{
			"/ip4/198.18.0.7/udp/4001/quic-v1": 0,
			"/ip4/198.18.0.7/tcp/4001":         swarm.PublicTCPDelay,
		}},
		{"LAN and public at once, as before", []string{"/ip4/198.18.0.7/udp/4001/quic-v1", "/ip4/10.0.0.7/tcp/4001", "/ip4/198.18.0.7/tcp/4001"}, map[string]time.Duration{
			"/ip4/10.0.0.7/tcp/4001":           0,
			"/ip4/198.18.0.7/udp/4001/quic-v1": 0,
			"/ip4/198.18.0.7/tcp/4001":         swarm.PublicTCPDelay,
		}},
		{"a relayed address is not a LAN one", []string{relay, "/ip4/198.18.0.7/udp/4001/quic-v1"}, map[string]time.Duration{
			"/ip4/198.18.0.7/udp/4001/quic-v1": 0,
			relay:                              swarm.RelayDelay,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []ma.Multiaddr
			for _, s := range tc.addrs {
				addrs = append(addrs, ma.StringCast(s))
			}
			got := lanTCPFirst(addrs)
			if len(got) != len(tc.want) {
				t.Fatalf("ranked %d addresses, want %d: %v", len(got), len(tc.want), got)
			}
			for _, d := range got {
				want, ok := tc.want[d.Addr.String()]
				if !ok || d.Delay != want {
					t.Errorf("%s dialled after %v, want %v", d.Addr, d.Delay, want)
				}
			}
		})
	}
}

// Two nodes on one machine, each listening on TCP and QUIC as the daemon
// does, connect over TCP: libp2p's own order would pick QUIC.
func TestNeighboursConnectOverTCP(t *testing.T) {
	both := func(c *Config) {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
		c.AllowPrivateAddrs = true
	}
	a := startNetwork(t, both, Options{})
	b := startNetwork(t, both, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: b.Host().ID(), Addrs: b.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Host().Network().ConnsToPeer(b.Host().ID())
	if len(conns) == 0 {
		t.Fatal("no connection after Connect")
	}
	for _, c := range conns {
		if _, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err != nil {
			t.Errorf("connected over %s, want TCP", c.RemoteMultiaddr())
		}
	}
}
