package p2p

import (
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// maxExplicit bounds the addresses the operator can add by hand.
const maxExplicit = 4096

// gater refuses to dial private, loopback and link-local addresses that
// other peers told us about (DHT records, identify, peer exchange): a
// hostile peer could otherwise make this node dial services on its own
// LAN or on localhost. Dials to such addresses are allowed only when the
// node is configured for a LAN (p2p.allow_private_addrs), or when the
// address was given by the operator or found by mDNS, for that peer.
// Inbound connections are not gated: the resource and connection managers
// bound them.
type gater struct {
	allowPrivate bool

	mu sync.RWMutex
	// explicit holds, per peer, the private endpoints we may dial: an IP
	// and port, or just a port for an address given by DNS name (the name
	// is resolved before the dial reaches us).
	explicit map[peer.ID][]endpoint
	count    int
}

type endpoint struct {
	ip   net.IP // nil: any IP (a DNS name)
	port string
}

func newGater(allowPrivate bool) *gater {
	return &gater{allowPrivate: allowPrivate, explicit: map[peer.ID][]endpoint{}}
}

// allow records addresses the operator gave, or mDNS found, for p.
func (g *gater) allow(p peer.ID, addrs ...ma.Multiaddr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, a := range addrs {
		if g.count >= maxExplicit {
			return
		}
		e, ok := endpointOf(a)
		if !ok {
			continue
		}
		g.explicit[p] = append(g.explicit[p], e)
		g.count++
	}
}

// endpointOf reads the IP (or DNS name) and port at the start of a.
func endpointOf(a ma.Multiaddr) (endpoint, bool) {
	var e endpoint
	dns, ok := false, true
	ma.ForEach(a, func(c ma.Component) bool {
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6:
			e.ip = net.IP(c.RawValue())
		case ma.P_DNS, ma.P_DNS4, ma.P_DNS6, ma.P_DNSADDR:
			dns = true
		case ma.P_TCP, ma.P_UDP:
			e.port = c.Value()
			return false
		case ma.P_IP6ZONE:
		default:
			ok = false
			return false
		}
		return true
	})
	return e, ok && e.port != "" && (e.ip != nil || dns)
}

// private reports whether dialling a would reach something other than the
// public internet: loopback, RFC 1918 and other private ranges, link-local,
// unspecified, multicast.
func private(a ma.Multiaddr) bool {
	ip, err := manet.ToIP(a)
	if err != nil {
		return false // no IP to judge (a relay, say): libp2p resolves names before asking us
	}
	return !manet.IsPublicAddr(a) || ip.IsLoopback() || ip.IsUnspecified() || ip.IsMulticast() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsPrivate()
}

func (g *gater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if g.allowPrivate || !private(a) {
		return true
	}
	e, ok := endpointOf(a)
	if !ok {
		return false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, allowed := range g.explicit[p] {
		if allowed.port == e.port && (allowed.ip == nil || allowed.ip.Equal(e.ip)) {
			return true
		}
	}
	return false
}

func (g *gater) InterceptPeerDial(peer.ID) bool              { return true }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *gater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
