package p2p

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// lanTCPFirst is libp2p's dial order (swarm.DefaultDialRanker) except on
// the same machine or LAN (loopback and private addresses), where TCP is
// dialled first and QUIC lanQUICDelay after it, the other way round. QUIC does in user space what the kernel does for TCP
// (acknowledgements, pacing, a send call per packet): with 50 nodes on
// one machine a job cost a third less CPU over TCP, and its assignment p99
// fell from 231–256 to 134–148 ms (docs/BENCHMARKS.md). What QUIC is for,
// one round trip to connect and hole punching, does not matter between
// neighbours. Public addresses keep the default order, QUIC first, and are
// dialled in parallel with the private ones as before, so a peer's stale
// LAN address costs nothing more.
func lanTCPFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	var lanTCP, rest []ma.Multiaddr
	for _, a := range addrs {
		if isLANTCP(a) {
			lanTCP = append(lanTCP, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(lanTCP) == 0 {
		return swarm.DefaultDialRanker(addrs)
	}
	out := swarm.DefaultDialRanker(lanTCP)
	for _, d := range swarm.DefaultDialRanker(rest) {
		if manet.IsPrivateAddr(d.Addr) && !isRelayed(d.Addr) {
			d.Delay += lanQUICDelay
		}
		out = append(out, d)
	}
	return out
}

// lanQUICDelay is how long a LAN dial waits for TCP before it tries QUIC
// too. libp2p's 30 ms for its private addresses was too short: with 50
// nodes starting on 2 cores a TCP upgrade (Noise, yamux) often took
// longer, QUIC was dialled as well, and 1,090 of 2,670 connections ended
// up on QUIC. A refused or reset TCP dial starts QUIC at once (the swarm
// dials the next address when none is in flight); only a LAN that drops
// TCP silently and passes UDP waits this long, once per peer.
const lanQUICDelay = swarm.PublicTCPDelay

// isLANTCP says whether a is a direct TCP address on loopback or a private
// network.
func isLANTCP(a ma.Multiaddr) bool {
	if isRelayed(a) || !manet.IsPrivateAddr(a) {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_TCP)
	return err == nil
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
