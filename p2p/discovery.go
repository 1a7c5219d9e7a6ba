package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	mdnsServiceName  = "_vft-p2p._udp"
	dialTimeout      = 15 * time.Second
	firstRetry       = time.Second
	bootstrapTimeout = 20 * time.Second
)

// connectBootstrap dials every bootstrap peer in parallel. One reachable
// peer is enough to join the DHT; none reachable is an error naming each.
func (n *Network) connectBootstrap(ctx context.Context) error {
	if len(n.bootstrap) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	errs := make([]error, len(n.bootstrap))
	var wg sync.WaitGroup
	for i, info := range n.bootstrap {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.host.Connect(ctx, info); err != nil {
				errs[i] = fmt.Errorf("%s at %v: %s", info.ID, info.Addrs, oneLine(err))
				return
			}
			// Bootstrap peers are how we rejoin; keep their connections.
			n.host.ConnManager().Protect(info.ID, "bootstrap")
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == len(n.bootstrap) {
		msgs := make([]string, len(failed))
		for i, err := range failed {
			msgs[i] = err.Error()
		}
		return fmt.Errorf("no bootstrap peer could be reached (%s); check p2p.bootstrap, or that those nodes are running", strings.Join(msgs, "; "))
	}
	for _, err := range failed {
		n.log.Warn("bootstrap peer unreachable", "err", err)
	}
	return nil
}

// bootstrapLoop redials the bootstrap list when the node has lost most of
// its peers, so a node rejoins the network after an outage by itself.
func (n *Network) bootstrapLoop() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.BootstrapInterval.Std())
	defer ticker.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-ticker.C:
		}
		if len(n.host.Network().Peers()) >= max(1, len(n.bootstrap)) {
			continue
		}
		n.log.Info("few peers left, re-bootstrapping", "peers", len(n.host.Network().Peers()))
		if err := n.connectBootstrap(n.ctx); err != nil {
			n.log.Warn("re-bootstrap failed", "err", err)
		}
		if err := n.dht.Bootstrap(n.ctx); err != nil {
			n.log.Warn("DHT bootstrap failed", "err", err)
		}
	}
}

// rendezvousLoop advertises this node under the network's namespace on the
// DHT and connects to the other nodes found there. This is how a node that
// only knows one bootstrap peer meets everyone else. It retries quickly at
// start (the routing table is still filling) and then settles to the
// configured interval.
func (n *Network) rendezvousLoop() {
	defer n.wg.Done()
	wait := firstRetry
	for {
		advertised := n.advertise()
		found := n.findPeers()
		n.log.Debug("rendezvous round", "advertised", advertised, "new_peers", found)
		if advertised {
			wait = min(wait*2, n.cfg.DiscoveryInterval.Std())
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (n *Network) advertise() bool {
	if n.dht.RoutingTable().Size() == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	defer cancel()
	if _, err := n.discovery.Advertise(ctx, n.cfg.Rendezvous); err != nil {
		n.log.Debug("rendezvous advertise failed", "err", err)
		return false
	}
	return true
}

// findPeers connects to nodes under the rendezvous namespace while the
// node is under its low watermark, and returns how many it connected to.
func (n *Network) findPeers() int {
	if n.dht.RoutingTable().Size() == 0 && len(n.host.Network().Peers()) == 0 {
		return 0
	}
	// At the low watermark every peer found would be passed over below, so
	// the lookup (a DHT walk whose answers list every node under the
	// namespace, with its addresses) would buy nothing. Newcomers still
	// find this node: it keeps advertising, and they look while they are
	// under their own watermark.
	if len(n.host.Network().Peers()) >= n.cfg.ConnLow {
		return 0
	}
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	defer cancel()
	find := n.discovery.FindPeers
	if n.opts.FindRendezvous != nil {
		find = func(ctx context.Context, ns string, _ ...discovery.Option) (<-chan peer.AddrInfo, error) {
			return n.opts.FindRendezvous(ctx, ns)
		}
	}
	infos, err := find(ctx, n.cfg.Rendezvous)
	if err != nil {
		n.log.Debug("rendezvous lookup failed", "err", err)
		return 0
	}
	connected := 0
	for info := range infos {
		if info.ID == n.host.ID() || len(info.Addrs) == 0 {
			continue
		}
		if n.connectedness(info.ID) == network.Connected {
			continue
		}
		if len(n.host.Network().Peers()) >= n.cfg.ConnLow {
			continue
		}
		if err := n.host.Connect(ctx, info); err != nil {
			n.log.Debug("dial rendezvous peer failed", "peer", info.ID, "err", err)
			continue
		}
		connected++
	}
	return connected
}

// mdnsNotifee dials peers announced on the local network.
type mdnsNotifee struct{ n *Network }

func (m mdnsNotifee) HandlePeerFound(info peer.AddrInfo) {
	n := m.n
	if info.ID == n.host.ID() || n.connectedness(info.ID) == network.Connected {
		return
	}
	// mDNS answers come from the local link, not from a remote peer: their
	// private addresses are the point of mDNS.
	n.gater.allow(info.ID, info.Addrs...)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
		defer cancel()
		if err := n.host.Connect(ctx, info); err != nil {
			n.log.Debug("dial mDNS peer failed", "peer", info.ID, "err", err)
		}
	}()
}

// checkPortsFree turns "address already in use" into one clear error that
// names the address, before libp2p would log it and carry on without it.
func checkPortsFree(listen []string) error {
	for _, s := range listen {
		addr, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("p2p.listen: %q is not a valid multiaddr: %w", s, err)
		}
		netw, hostport, err := manet.DialArgs(addr)
		if err != nil {
			continue // not an IP address we can check here
		}
		if strings.HasSuffix(hostport, ":0") {
			continue
		}
		var closer interface{ Close() error }
		switch {
		case strings.HasPrefix(netw, "tcp"):
			closer, err = net.Listen(netw, hostport)
		case strings.HasPrefix(netw, "udp"):
			closer, err = net.ListenPacket(netw, hostport)
		default:
			continue
		}
		if err == nil {
			closer.Close()
			continue
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("p2p.listen: %s is already in use by another program; stop it or choose another port (VFT_P2P_LISTEN=/ip4/0.0.0.0/tcp/4102)", s)
		}
		// Other failures (no IPv6 on this host, say) are left to libp2p,
		// which listens on the addresses that work.
	}
	return nil
}

// oneLine flattens libp2p's multi-line dial errors for a one-line message.
func oneLine(err error) string {
	fields := strings.Fields(err.Error())
	return strings.Join(fields, " ")
}
