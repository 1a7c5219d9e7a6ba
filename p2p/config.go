package p2p

import (
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/vft-network/vft/internal/units"
)

// Config is the `[p2p]` section of the node's config.
type Config struct {
	// Listen is where the host accepts connections: TCP and QUIC-v1.
	Listen []string `toml:"listen"`
	// Bootstrap holds full multiaddrs (ending in /p2p/<peer ID>) of nodes to
	// join the network through. An empty list starts a new network.
	Bootstrap []string `toml:"bootstrap"`
	// NATPortMap asks the home router (UPnP / NAT-PMP) to forward the listen
	// ports, so a rig behind NAT can be dialled.
	NATPortMap bool `toml:"nat_portmap"`
	// MDNS finds other VFT nodes on the local network without a bootstrap peer.
	MDNS bool `toml:"mdns"`
	// Rendezvous is the DHT namespace under which every node of one network
	// advertises itself; nodes with another value form a separate network.
	Rendezvous string `toml:"rendezvous"`
	// DiscoveryInterval is how often a node re-advertises itself and, while
	// it has fewer than ConnLow peers, looks for new nodes under the
	// rendezvous namespace.
	DiscoveryInterval units.Duration `toml:"discovery_interval"`
	// BootstrapInterval is how often a node with few peers dials its
	// bootstrap list again, so it rejoins after a network split.
	BootstrapInterval units.Duration `toml:"bootstrap_interval"`
	// RoutingTableRefresh is the DHT routing-table refresh period.
	RoutingTableRefresh units.Duration `toml:"routing_table_refresh"`
	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// high it trims connections down to low, oldest-unprotected first.
	ConnLow  int `toml:"conn_low"`
	ConnHigh int `toml:"conn_high"`
	// ConnGrace protects new connections from trimming for this long.
	ConnGrace units.Duration `toml:"conn_grace"`
	// MaxMemory and MaxFDs bound the libp2p resource manager (0 = derive from
	// the machine: 1/8 of RAM and half the file-descriptor limit).
	MaxMemory units.Bytes `toml:"max_memory"`
	MaxFDs    int         `toml:"max_fds"`
	// MaxMessageSize bounds one GossipSub message.
	MaxMessageSize units.Bytes `toml:"max_message_size"`
	// AllowPrivateAddrs lets the node dial private, loopback and link-local
	// addresses that it learned from other peers (DHT, identify, peer
	// exchange). Off on the internet: a peer could otherwise make us dial
	// services on our own LAN. Turn it on for a network that lives on one
	// LAN or one machine. Addresses the operator gives (p2p.bootstrap,
	// `vft swarm connect`) and peers found by mDNS are dialled either way.
	AllowPrivateAddrs bool `toml:"allow_private_addrs"`
	// MaxStreamsPerPeer caps the request/response streams (bids,
	// assignments, commits, reveals, escrow signatures) one peer may hold
	// open to us at once, per protocol; more are refused.
	MaxStreamsPerPeer int `toml:"max_streams_per_peer"`
	// GossipAuthorPerMinute and GossipAuthorBurst bound how many messages
	// one author may publish on one topic: a token bucket that refills at
	// the rate and holds up to the burst. A message beyond it is rejected
	// when the author sent it to us itself (its score falls) and dropped
	// without blame when a relay forwarded it.
	GossipAuthorPerMinute int `toml:"gossip_author_per_minute"`
	GossipAuthorBurst     int `toml:"gossip_author_burst"`
	// GossipPeerPerMinute and GossipPeerBurst bound what one connected peer
	// may relay to us on one topic, whoever wrote it; beyond that messages
	// are dropped without blame (a busy honest relay is not punished).
	GossipPeerPerMinute int `toml:"gossip_peer_per_minute"`
	GossipPeerBurst     int `toml:"gossip_peer_burst"`

	// Reachability is "auto" (AutoNAT asks other peers to dial us back and
	// decides), or "public" / "private" for an operator who knows: a
	// server with a public IP, or a rig that must never relay.
	Reachability string `toml:"reachability"`
	// RelayService lets a node that AutoNAT finds publicly reachable relay
	// control traffic (circuit relay v2) for nodes behind NAT; it starts and
	// stops with the node's reachability. The limits below keep a relay for
	// small messages: content waits for a direct connection.
	RelayService bool `toml:"relay_service"`
	// RelayMaxReservations is how many NAT'd nodes may hold a slot at once.
	RelayMaxReservations int `toml:"relay_max_reservations"`
	// RelayMaxCircuits is how many relayed connections one node may have
	// through us at once.
	RelayMaxCircuits int `toml:"relay_max_circuits"`
	// RelayCircuitBytes and RelayCircuitDuration end one relayed connection
	// after that many bytes each way or that long; the peers then open a new
	// one (or, better, a direct one by hole punching).
	RelayCircuitBytes    units.Bytes    `toml:"relay_circuit_bytes"`
	RelayCircuitDuration units.Duration `toml:"relay_circuit_duration"`
	// RelayContent lifts the per-connection limits of the relay service
	// (relay_circuit_bytes, relay_circuit_duration): connections through
	// this node are then not "limited", so content (modules, inputs,
	// results) may cross it. That is the fallback for two nodes both behind
	// symmetric NATs, where hole punching fails. It costs this node's
	// bandwidth: turn it on only on a relay that can give it.
	RelayContent bool `toml:"relay_content"`
	// StaticRelays are relays (multiaddrs ending in /p2p/<ID>) a node behind
	// NAT tries first; without them it uses the peers it knows that offer
	// the relay service (bootstrap nodes, DHT neighbours).
	StaticRelays []string `toml:"static_relays"`
	// HolePunching upgrades a relayed connection to a direct one (DCUtR)
	// when both ends sit behind NATs that allow it.
	HolePunching bool `toml:"hole_punching"`
	// BenchmarkRangePublic treats 198.18.0.0/15, the benchmarking range
	// (RFC 2544) that test networks use, as public internet, so reachability
	// checks, relays and hole punching work on a test network built of
	// network namespaces. Never set it on the internet. It changes a
	// process-wide table of go-multiaddr, so it applies to the whole process.
	BenchmarkRangePublic bool `toml:"benchmark_range_public"`
}

// Reachability settings (p2p.reachability).
const (
	ReachabilityAuto    = "auto"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
)

// DefaultConfig returns the settings a miner on a public host would use.
func DefaultConfig() Config {
	return Config{
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4101",
			"/ip4/0.0.0.0/udp/4101/quic-v1",
			"/ip6/::/tcp/4101",
			"/ip6/::/udp/4101/quic-v1",
		},
		Bootstrap:           []string{},
		MDNS:                true,
		NATPortMap:          true,
		Rendezvous:          "vft/1/mainnet",
		DiscoveryInterval:   units.Duration(60e9),
		BootstrapInterval:   units.Duration(300e9),
		RoutingTableRefresh: units.Duration(600e9),
		ConnLow:             64,
		ConnHigh:            256,
		ConnGrace:           units.Duration(30e9),
		MaxMessageSize:      1 << 20,
		MaxStreamsPerPeer:   16,
		// A submitter posting a batch of 30 jobs at once, then one a
		// second; heartbeats and verdicts are far rarer.
		GossipAuthorPerMinute: 600,
		GossipAuthorBurst:     120,
		GossipPeerPerMinute:   6000,
		GossipPeerBurst:       1500,
		Reachability:          ReachabilityAuto,
		RelayService:          true,
		// A relay carries bids, assignments and signatures: a few KiB per
		// job. 128 slots and 1 MiB per relayed connection cost a public
		// miner little; datasets never go through it.
		RelayMaxReservations: 128,
		RelayMaxCircuits:     16,
		RelayCircuitBytes:    1 << 20,
		RelayCircuitDuration: units.Duration(2 * time.Minute),
		StaticRelays:         []string{},
		HolePunching:         true,
	}
}

// Validate reports the first bad value, named as a user would write it.
func (c Config) Validate() error {
	if len(c.Listen) == 0 {
		return fmt.Errorf("p2p.listen is empty: give at least one multiaddr such as /ip4/0.0.0.0/tcp/4101")
	}
	for _, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return fmt.Errorf("p2p.listen: %q is not a valid multiaddr (%v): write it like /ip4/0.0.0.0/tcp/4101", s, err)
		}
	}
	if _, err := ParseBootstrap(c.Bootstrap); err != nil {
		return err
	}
	if strings.TrimSpace(c.Rendezvous) == "" {
		return fmt.Errorf("p2p.rendezvous is empty: every node of a network must share one namespace, such as vft/1/mainnet")
	}
	if c.DiscoveryInterval.Std() < 1e9 {
		return fmt.Errorf("p2p.discovery_interval %s is under 1s: it would flood the DHT", c.DiscoveryInterval)
	}
	if c.BootstrapInterval.Std() < 1e9 {
		return fmt.Errorf("p2p.bootstrap_interval %s is under 1s", c.BootstrapInterval)
	}
	if c.RoutingTableRefresh.Std() < 1e9 {
		return fmt.Errorf("p2p.routing_table_refresh %s is under 1s", c.RoutingTableRefresh)
	}
	if c.ConnLow < 1 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("p2p.conn_low %d and p2p.conn_high %d: need 1 <= conn_low <= conn_high", c.ConnLow, c.ConnHigh)
	}
	if c.MaxFDs < 0 {
		return fmt.Errorf("p2p.max_fds %d is negative", c.MaxFDs)
	}
	if c.MaxStreamsPerPeer < 1 || c.MaxStreamsPerPeer > 1024 {
		return fmt.Errorf("p2p.max_streams_per_peer %d is outside 1..1024: a peer needs a few streams at once per job it has with us", c.MaxStreamsPerPeer)
	}
	for _, r := range []struct {
		name  string
		value int
	}{
		{"p2p.gossip_author_per_minute", c.GossipAuthorPerMinute}, {"p2p.gossip_author_burst", c.GossipAuthorBurst},
		{"p2p.gossip_peer_per_minute", c.GossipPeerPerMinute}, {"p2p.gossip_peer_burst", c.GossipPeerBurst},
	} {
		if r.value < 1 || r.value > 1_000_000 {
			return fmt.Errorf("%s %d is outside 1..1000000: set a positive message count", r.name, r.value)
		}
	}
	if c.MaxMessageSize < 1<<10 || c.MaxMessageSize > 64<<20 {
		return fmt.Errorf("p2p.max_message_size %s is outside 1KiB..64MiB", c.MaxMessageSize)
	}
	return c.validateNAT()
}

func (c Config) validateNAT() error {
	switch c.Reachability {
	case ReachabilityAuto, ReachabilityPublic, ReachabilityPrivate:
	default:
		return fmt.Errorf("p2p.reachability %q is not auto, public or private: leave it auto unless you know the node's address is (or is not) reachable from the internet", c.Reachability)
	}
	if c.RelayMaxReservations < 1 || c.RelayMaxReservations > 100_000 {
		return fmt.Errorf("p2p.relay_max_reservations %d is outside 1..100000 (to relay for nobody, set p2p.relay_service = false)", c.RelayMaxReservations)
	}
	if c.RelayMaxCircuits < 1 || c.RelayMaxCircuits > 1024 {
		return fmt.Errorf("p2p.relay_max_circuits %d is outside 1..1024", c.RelayMaxCircuits)
	}
	if c.RelayCircuitBytes < 16<<10 || c.RelayCircuitBytes > 1<<30 {
		return fmt.Errorf("p2p.relay_circuit_bytes %s is outside 16KiB..1GiB: a relayed connection must carry a few control messages", c.RelayCircuitBytes)
	}
	if c.RelayCircuitDuration.Std() < 10*time.Second || c.RelayCircuitDuration.Std() > 24*time.Hour {
		return fmt.Errorf("p2p.relay_circuit_duration %s is outside 10s..24h", c.RelayCircuitDuration)
	}
	for _, s := range c.StaticRelays {
		if _, err := ParsePeerAddr(s); err != nil {
			return fmt.Errorf("p2p.static_relays: %w", err)
		}
	}
	return nil
}

// ParseBootstrap turns bootstrap multiaddrs into peer infos, merging several
// addresses of the same peer.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var maddrs []ma.Multiaddr
	for _, s := range addrs {
		info, err := ParsePeerAddr(s)
		if err != nil {
			return nil, fmt.Errorf("p2p.bootstrap: %w", err)
		}
		for _, a := range info.Addrs {
			maddrs = append(maddrs, a.Encapsulate(ma.StringCast("/p2p/"+info.ID.String())))
		}
	}
	infos, err := peer.AddrInfosFromP2pAddrs(maddrs...)
	if err != nil {
		return nil, fmt.Errorf("p2p.bootstrap: %w", err)
	}
	return infos, nil
}

// ParsePeerAddr reads a multiaddr that names a peer, like
// /ip4/1.2.3.4/tcp/4101/p2p/12D3KooW...
func ParsePeerAddr(s string) (peer.AddrInfo, error) {
	addr, err := ma.NewMultiaddr(strings.TrimSpace(s))
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%q is not a valid multiaddr (%v): write it like /ip4/1.2.3.4/tcp/4101/p2p/12D3KooW...", s, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%q does not end in /p2p/<peer ID>: add the peer ID that `vft id` prints on that node", s)
	}
	if len(info.Addrs) == 0 {
		return peer.AddrInfo{}, fmt.Errorf("%q has a peer ID but no address to dial: put the transport before /p2p/, like /ip4/1.2.3.4/tcp/4101/p2p/...", s)
	}
	return *info, nil
}
