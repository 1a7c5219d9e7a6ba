package p2p

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// fakeNATManager is a router's answer: found or not, and the mapping of
// each listen address it granted.
type fakeNATManager struct {
	found  bool
	mapped map[string]string
}

func (f fakeNATManager) GetMapping(a ma.Multiaddr) ma.Multiaddr {
	if ext, ok := f.mapped[a.String()]; ok {
		return ma.StringCast(ext)
	}
	return nil
}
func (f fakeNATManager) HasDiscoveredNAT() bool { return f.found }
func (f fakeNATManager) Close() error           { return nil }

var _ basichost.NATManager = fakeNATManager{}

// listenOnly is a network that only answers ListenAddresses.
type listenOnly struct {
	network.Network
	addrs []ma.Multiaddr
}

func (l listenOnly) ListenAddresses() []ma.Multiaddr { return l.addrs }

func TestPortMapWatcherCheck(t *testing.T) {
	listen := listenOnly{addrs: []ma.Multiaddr{
		ma.StringCast("/ip4/0.0.0.0/tcp/4101"),
		ma.StringCast("/ip4/0.0.0.0/udp/4101/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4102"), // loopback: never mapped, not counted
		ma.StringCast("/ip6/::/tcp/4101"),        // IPv6: no NAT to map through
	}}
	tcpMapped := map[string]string{"/ip4/0.0.0.0/tcp/4101": "/ip4/203.0.113.7/tcp/54749"}
	bothMapped := map[string]string{"/ip4/0.0.0.0/tcp/4101": "/ip4/203.0.113.7/tcp/54749", "/ip4/0.0.0.0/udp/4101/quic-v1": "/ip4/203.0.113.7/udp/54749/quic-v1"}
	cases := []struct {
		name        string
		nat         fakeNATManager
		wantState   string
		wantRefused []string
	}{
		{"no gateway", fakeNATManager{}, "no gateway", nil},
		{"all mapped", fakeNATManager{found: true, mapped: bothMapped}, "mapped", nil},
		{"one refused", fakeNATManager{found: true, mapped: tcpMapped}, "partly", []string{"/ip4/0.0.0.0/udp/4101/quic-v1"}},
		{"all refused", fakeNATManager{found: true}, "refused", []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &portMapWatcher{NATManager: tc.nat, net: listen, log: slog.New(slog.DiscardHandler)}
			state, _, refused := w.check()
			if state != tc.wantState || !slices.Equal(refused, tc.wantRefused) {
				t.Errorf("check() = %q refused %v, want %q refused %v", state, refused, tc.wantState, tc.wantRefused)
			}
		})
	}
}
