// Package p2p is the node's transport: a libp2p host (TCP and QUIC, Noise and
// TLS) with resource and connection limits, a Kademlia DHT under the /vft
// protocol prefix, rendezvous discovery on that DHT, mDNS for LANs, and
// GossipSub topics with validators and peer scoring. It knows nothing of
// jobs or money.
package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// ProtocolPrefix keeps VFT's DHT apart from the public IPFS DHT.
const ProtocolPrefix = "/vft"

// HostConstructor builds the libp2p host; tests replace it (mocknet).
type HostConstructor func(opts ...libp2p.Option) (host.Host, error)

// Options are the parts of a Network that are not user configuration.
type Options struct {
	// DHTServer answers DHT queries for others (miners); clients only ask.
	DHTServer bool
	// Registerer receives libp2p's metrics; nil disables them.
	Registerer prometheus.Registerer
	// AppScore feeds an application score (reputation) into peer scoring.
	AppScore func(peer.ID) float64
	// UserAgent is announced through identify.
	UserAgent string
	// NewHost replaces libp2p.New.
	NewHost HostConstructor
	// Bandwidth, when set, counts bytes per protocol (benchmarks, metrics).
	Bandwidth metrics.Reporter
	// DirectProtocols are the request/response protocols whose inbound
	// streams per peer are capped at p2p.max_streams_per_peer.
	DirectProtocols []protocol.ID
	// Now replaces time.Now for the gossip rate limits.
	Now func() time.Time
	// ScoreInspectPeriod is how often PeerScores is refreshed from
	// GossipSub (default 10 s).
	ScoreInspectPeriod time.Duration
	// FindRendezvous replaces the DHT lookup of the rendezvous namespace
	// (tests count the lookups).
	FindRendezvous func(ctx context.Context, ns string) (<-chan peer.AddrInfo, error)
}

// Network is a started libp2p node.
type Network struct {
	cfg       Config
	key       crypto.PrivKey
	opts      Options
	log       *slog.Logger
	bootstrap []peer.AddrInfo
	gater     *gater
	reach     *reachWatcher
	// staticRelayCheck is when watchStaticRelays first looks at the
	// static relays and how often after (tests shorten it).
	staticRelayCheck struct{ first, every time.Duration }

	scoresMu sync.Mutex
	scores   map[peer.ID]float64

	// startedMu guards host and dht while Start builds them: AutoRelay's
	// peer source may run before Start returns.
	startedMu sync.RWMutex
	host      host.Host
	dht       *dht.IpfsDHT
	discovery *drouting.RoutingDiscovery
	pubsub    *pubsub.PubSub
	mdns      mdns.Service

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New checks the configuration; it does no network I/O (see Start).
func New(cfg Config, key crypto.PrivKey, opts Options, log *slog.Logger) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("p2p: no identity key")
	}
	bootstrap, err := ParseBootstrap(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}
	if opts.NewHost == nil {
		opts.NewHost = libp2p.New
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ScoreInspectPeriod <= 0 {
		opts.ScoreInspectPeriod = 10 * time.Second
	}
	g := newGater(cfg.AllowPrivateAddrs)
	for _, info := range bootstrap {
		g.allow(info.ID, info.Addrs...)
	}
	log = log.With("component", "p2p")
	n := &Network{
		cfg:       cfg,
		key:       key,
		opts:      opts,
		log:       log,
		bootstrap: bootstrap,
		gater:     g,
		reach:     newReachWatcher(log),
	}
	n.staticRelayCheck.first, n.staticRelayCheck.every = staticRelayFirstCheck, relayBackoff
	return n, nil
}

// Start listens, joins the DHT through the bootstrap peers and starts
// discovery and GossipSub. If every bootstrap peer is unreachable it fails
// and names them, rather than running alone without saying so.
func (n *Network) Start(ctx context.Context) (err error) {
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := checkPortsFree(n.cfg.Listen); err != nil {
		return err
	}
	if n.cfg.BenchmarkRangePublic {
		treatBenchmarkRangeAsPublic()
		n.log.Warn("p2p.benchmark_range_public: 198.18.0.0/15 counts as public internet (test networks only)")
	}
	hostOpts, err := n.hostOptions()
	if err != nil {
		return err
	}
	h, err := n.opts.NewHost(hostOpts...)
	if err != nil {
		return fmt.Errorf("start libp2p host on %v: %w", n.cfg.Listen, err)
	}
	n.startedMu.Lock()
	n.host = h
	n.startedMu.Unlock()
	if err := n.watchReachability(n.ctx, h); err != nil {
		return err
	}
	if n.opts.Registerer != nil {
		if err := n.registerConnMetrics(n.opts.Registerer); err != nil {
			return err
		}
	}

	// A miner serves the DHT unless AutoNAT finds it behind NAT: peers
	// could not dial it to ask. Other nodes only ask.
	mode := dht.ModeClient
	if n.opts.DHTServer {
		mode = dht.ModeAutoServer
	}
	d, err := dht.New(n.host,
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.Mode(mode),
		dht.BootstrapPeers(n.bootstrap...),
		dht.RoutingTableRefreshPeriod(n.cfg.RoutingTableRefresh.Std()),
	)
	if err != nil {
		return fmt.Errorf("start DHT: %w", err)
	}
	n.startedMu.Lock()
	n.dht = d
	n.startedMu.Unlock()
	n.discovery = drouting.NewRoutingDiscovery(n.dht)
	n.pubsub, err = newGossipSub(n.ctx, n, n.log)
	if err != nil {
		return err
	}

	if err := n.connectBootstrap(ctx); err != nil {
		return err
	}
	if err := n.dht.Bootstrap(n.ctx); err != nil {
		return fmt.Errorf("bootstrap DHT: %w", err)
	}
	if n.cfg.MDNS {
		n.mdns = mdns.NewMdnsService(n.host, mdnsServiceName, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			// mDNS is a convenience for LANs; a host without multicast
			// still works through the DHT.
			n.log.Warn("mDNS unavailable, relying on the DHT only", "err", err)
			n.mdns = nil
		}
	}
	n.wg.Add(2)
	go n.rendezvousLoop()
	go n.bootstrapLoop()
	if len(n.cfg.StaticRelays) > 0 {
		n.wg.Add(1)
		go n.watchStaticRelays()
	}
	n.log.Info("p2p started", "peer", n.host.ID(), "addrs", n.host.Addrs(), "dht_server", n.opts.DHTServer,
		"reachability", n.cfg.Reachability, "relay_service", n.cfg.RelayService, "hole_punching", n.cfg.HolePunching)
	return nil
}

func (n *Network) hostOptions() ([]libp2p.Option, error) {
	rm, err := newResourceManager(n.cfg, n.opts.DirectProtocols, n.opts.Registerer)
	if err != nil {
		return nil, err
	}
	cm, err := newConnManager(n.cfg)
	if err != nil {
		rm.Close()
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.key),
		libp2p.ListenAddrStrings(n.cfg.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(n.gater),
		libp2p.SwarmOpts(swarm.WithDialRanker(lanTCPFirst)),
	}
	if n.cfg.NATPortMap {
		opts = append(opts, n.natPortMapOption())
	}
	natOpts, err := n.natOptions()
	if err != nil {
		rm.Close()
		return nil, err
	}
	opts = append(opts, natOpts...)
	if n.opts.Bandwidth != nil {
		opts = append(opts, libp2p.BandwidthReporter(n.opts.Bandwidth))
	}
	if n.opts.UserAgent != "" {
		opts = append(opts, libp2p.UserAgent(n.opts.UserAgent))
	}
	if n.opts.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(n.opts.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	return opts, nil
}

// Close stops discovery, GossipSub, the DHT and the host, in that order.
// It is safe to call more than once.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		var errs []error
		// mDNS first: its callbacks start dial goroutines on our WaitGroup.
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		n.wg.Wait()
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Host is the libp2p host, for components that open their own protocols
// (bitswap, direct job streams).
func (n *Network) Host() host.Host { return n.host }

// Streams is a host for request/reply protocols between the parties of
// a job (a worker's commitment, escrow signatures, a rescue's reveals): a
// stream to a peer this node has no connection to and no address of is
// dialled at the addresses the DHT finds for it (a submitter that
// restarted elsewhere, a co-worker behind NAT reachable through its
// relay). Not for anything a stranger can trigger at will, such as bids
// on gossiped offers: each lookup costs queries across the network. Call
// it after Start.
func (n *Network) Streams() host.Host { return routedhost.Wrap(n.host, n.dht) }

// DHT is the Kademlia DHT, usable as content routing.
func (n *Network) DHT() *dht.IpfsDHT { return n.dht }

// ID is this node's peer ID.
func (n *Network) ID() peer.ID { return n.host.ID() }

// Addrs returns the node's dialable addresses, each ending in /p2p/<ID>.
func (n *Network) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
	addrs, err := peer.AddrInfoToP2pAddrs(&info)
	if err != nil {
		return nil
	}
	return addrs
}

// PeerInfo describes one connected peer.
type PeerInfo struct {
	ID        peer.ID       `json:"id"`
	Addr      string        `json:"addr"`
	Direction string        `json:"direction"`
	Latency   time.Duration `json:"latency_ns"`
	Agent     string        `json:"agent,omitempty"`
	// Relayed is a connection through a relay: no direct one exists
	// (yet).
	Relayed bool `json:"relayed,omitempty"`
}

// Peers lists connected peers, one entry per peer: its first direct
// connection, or a relayed one when it has no direct one.
func (n *Network) Peers() []PeerInfo {
	var out []PeerInfo
	for _, id := range n.host.Network().Peers() {
		conns := n.host.Network().ConnsToPeer(id)
		if len(conns) == 0 {
			continue
		}
		conn := conns[0]
		for _, c := range conns {
			if !relayed(c) {
				conn = c
				break
			}
		}
		info := PeerInfo{
			ID:        id,
			Addr:      conn.RemoteMultiaddr().String(),
			Direction: conn.Stat().Direction.String(),
			Latency:   n.host.Peerstore().LatencyEWMA(id),
			Relayed:   relayed(conn),
		}
		if agent, err := n.host.Peerstore().Get(id, "AgentVersion"); err == nil {
			info.Agent, _ = agent.(string)
		}
		out = append(out, info)
	}
	return out
}

// Connect dials a peer given as a multiaddr ending in /p2p/<ID>.
func (n *Network) Connect(ctx context.Context, addr string) (peer.AddrInfo, error) {
	info, err := ParsePeerAddr(addr)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	if info.ID == n.host.ID() {
		return peer.AddrInfo{}, fmt.Errorf("%s is this node itself", addr)
	}
	// The operator named this address: dial it even if it is private.
	n.gater.allow(info.ID, info.Addrs...)
	if err := n.host.Connect(ctx, info); err != nil {
		return peer.AddrInfo{}, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// A peer dialled by hand is kept: the user asked for it.
	n.host.ConnManager().Protect(info.ID, "user")
	return info, nil
}

func (n *Network) connectedness(id peer.ID) network.Connectedness {
	return n.host.Network().Connectedness(id)
}

// PeerScores is GossipSub's score of each connected peer, as of its last
// inspection (Options.ScoreInspectPeriod).
func (n *Network) PeerScores() map[peer.ID]float64 {
	n.scoresMu.Lock()
	defer n.scoresMu.Unlock()
	out := make(map[peer.ID]float64, len(n.scores))
	for id, s := range n.scores {
		out[id] = s
	}
	return out
}

func (n *Network) inspectScores(scores map[peer.ID]float64) {
	n.scoresMu.Lock()
	n.scores = scores
	n.scoresMu.Unlock()
}

// IsConnected reports whether we have a live connection to the peer.
func (n *Network) IsConnected(id peer.ID) bool {
	return n.connectedness(id) == network.Connected
}

// relayed reports whether c goes through a relay (a circuit address),
// limited or not (a relay with p2p.relay_content gives unlimited ones).
func relayed(c network.Conn) bool {
	if c.Stat().Limited {
		return true
	}
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
