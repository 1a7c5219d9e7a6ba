package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// relayHopProtocol is what a peer offering circuit relay v2 speaks.
const relayHopProtocol = "/libp2p/circuit/relay/0.2.0/hop"

// Relay selection: a node behind NAT keeps reservations on two relays, so
// losing one leaves it reachable; a relay that refused or failed is not
// asked again for relayBackoff (no retry storm).
const (
	relayCount        = 2
	relayMinInterval  = 15 * time.Second
	relayBackoff      = 5 * time.Minute
	relayMaxCandidate = 8
)

// autorelayTag is the tag AutoRelay protects a relay's connection with
// while the relay holds a reservation for us.
const autorelayTag = "autorelay"

// staticRelayFirstCheck is how long after start watchStaticRelays first
// looks at the static relays: AutoRelay has had time to reserve a slot.
const staticRelayFirstCheck = 30 * time.Second

// benchmarkRange is RFC 2544's range, the one test networks use.
const benchmarkRange = "198.18.0.0/15"

var benchmarkRangeOnce sync.Once

// treatBenchmarkRangeAsPublic removes 198.18.0.0/15 from go-multiaddr's
// unroutable table, which AutoNAT, the relay service, AutoRelay and hole
// punching all consult (manet.IsPublicAddr). It is process-wide and done
// once, before a host exists.
func treatBenchmarkRangeAsPublic() {
	benchmarkRangeOnce.Do(func() {
		manet.Unroutable4 = slices.DeleteFunc(slices.Clone(manet.Unroutable4), func(n *net.IPNet) bool {
			return n.String() == benchmarkRange
		})
	})
}

// natOptions are the libp2p options for reachability: AutoNAT v1 and v2
// (client and rate-limited server), the relay service, AutoRelay and
// hole punching.
func (n *Network) natOptions() ([]libp2p.Option, error) {
	static, err := ParseBootstrap(n.cfg.StaticRelays)
	if err != nil {
		return nil, fmt.Errorf("p2p.static_relays: %w", err)
	}
	for _, info := range static {
		n.gater.allow(info.ID, info.Addrs...)
	}
	opts := []libp2p.Option{
		libp2p.EnableAutoNATv2(),
		// The v1 service answers dial-back requests, at most 30 a minute
		// and 3 per peer: a reachable node helps others find out whether
		// they are, without becoming a dialling amplifier.
		libp2p.EnableNATService(),
		libp2p.AutoNATServiceRateLimit(30, 3, time.Minute),
		// Every node can use a relay (dialling a relayed address, or
		// holding a reservation when behind NAT).
		libp2p.EnableRelay(),
		libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates(static),
			autorelay.WithNumRelays(relayCount),
			autorelay.WithMinCandidates(1),
			autorelay.WithMaxCandidates(relayMaxCandidate),
			autorelay.WithBootDelay(0),
			autorelay.WithMinInterval(relayMinInterval),
			autorelay.WithBackoff(relayBackoff),
		),
	}
	switch n.cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if n.cfg.RelayService {
		res := relay.DefaultResources()
		res.MaxReservations = n.cfg.RelayMaxReservations
		res.MaxCircuits = n.cfg.RelayMaxCircuits
		res.Limit = &relay.RelayLimit{Duration: n.cfg.RelayCircuitDuration.Std(), Data: int64(n.cfg.RelayCircuitBytes)}
		if n.cfg.RelayContent {
			// No limit: libp2p does not mark the relayed connections
			// limited, so bitswap uses them.
			res.Limit = nil
		}
		// libp2p runs the service only while AutoNAT says we are public.
		opts = append(opts, libp2p.EnableRelayService(relay.WithResources(res)))
	}
	if n.cfg.HolePunching {
		hp := holepunch.WithTracer(n.reach)
		if n.opts.Registerer != nil {
			hp = holepunch.WithMetricsAndEventTracer(
				holepunch.NewMetricsTracer(holepunch.WithRegisterer(n.opts.Registerer)), n.reach)
		}
		opts = append(opts, libp2p.EnableHolePunching(hp))
	}
	return opts, nil
}

// relayCandidates is AutoRelay's source of relays: the static ones, then
// connected peers that offer the relay service (bootstrap nodes first, as
// they were dialled first), then other peers we know from the DHT. AutoRelay
// checks each candidate's protocols itself before asking for a slot.
func (n *Network) relayCandidates(static []peer.AddrInfo) autorelay.PeerSource {
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, num)
		h, dhtPeers := n.relayView()
		go func() {
			defer close(out)
			seen := map[peer.ID]bool{}
			send := func(info peer.AddrInfo) bool {
				if seen[info.ID] || len(info.Addrs) == 0 || (h != nil && info.ID == h.ID()) {
					return true
				}
				seen[info.ID] = true
				select {
				case out <- info:
					return len(seen) < num
				case <-ctx.Done():
					return false
				}
			}
			for _, info := range static {
				if !send(info) {
					return
				}
			}
			if h == nil {
				return
			}
			var ids, others []peer.ID
			for _, id := range append(h.Network().Peers(), dhtPeers...) {
				if ok, _ := h.Peerstore().SupportsProtocols(id, relayHopProtocol); len(ok) > 0 {
					ids = append(ids, id)
				} else {
					others = append(others, id)
				}
			}
			for _, id := range append(ids, others...) {
				if !send(peer.AddrInfo{ID: id, Addrs: h.Peerstore().Addrs(id)}) {
					return
				}
			}
		}()
		return out
	}
}

// watchStaticRelays tells the operator what is wrong with a static relay
// (p2p.static_relays), which AutoRelay alone would only retry silently:
// one line when a relay becomes unreachable, turns out not to relay, or
// holds no reservation for this private node (it refused or dropped it),
// and one when it is fine again. It looks once a reservation had time,
// then every relayBackoff, with one dial per relay at most: a dead relay
// costs a dial every five minutes, not a retry storm.
func (n *Network) watchStaticRelays() {
	defer n.wg.Done()
	static, err := ParseBootstrap(n.cfg.StaticRelays)
	if err != nil {
		return // New and natOptions refused it already
	}
	last := map[peer.ID]string{}
	timer := time.NewTimer(n.staticRelayCheck.first)
	defer timer.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-timer.C:
		}
		for _, info := range static {
			problem, detail := n.checkStaticRelay(info)
			if problem == last[info.ID] {
				continue
			}
			last[info.ID] = problem
			addr := staticRelayAddr(info)
			switch problem {
			case "":
				n.log.Info("static relay fine again", "relay", addr)
			case "unreachable":
				n.log.Warn("static relay unreachable: check this p2p.static_relays entry, or that the relay runs; retrying in "+n.staticRelayCheck.every.String(),
					"relay", addr, "err", detail)
			case "not a relay":
				n.log.Warn("static relay does not offer circuit relay v2 (relay_service off, or not publicly reachable): remove it from p2p.static_relays or turn its relay service on",
					"relay", addr)
			case "no reservation":
				n.log.Warn("static relay holds no reservation for this node (it refused or dropped it, e.g. its relay_max_reservations is reached); AutoRelay retries it after its backoff and uses other relays meanwhile",
					"relay", addr, "retry_in", relayBackoff.String())
			}
		}
		timer.Reset(n.staticRelayCheck.every)
	}
}

// checkStaticRelay dials info if the node is not connected to it, and
// says what is wrong with it, if anything.
func (n *Network) checkStaticRelay(info peer.AddrInfo) (problem, detail string) {
	h := n.host
	if h.Network().Connectedness(info.ID) != network.Connected {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := h.Connect(ctx, info)
		cancel()
		if err != nil {
			return "unreachable", err.Error()
		}
		// Identify, which runs right after the connection, tells us
		// its protocols.
		time.Sleep(time.Second)
	}
	if ok, _ := h.Peerstore().SupportsProtocols(info.ID, relayHopProtocol); len(ok) == 0 {
		return "not a relay", ""
	}
	// AutoRelay protects the connection to each relay holding a slot for
	// us (the reservation's relay addresses would do too, but a relay on a
	// LAN or loopback announces none).
	if n.reach.snapshot().Status == "private" && !h.ConnManager().IsProtected(info.ID, autorelayTag) {
		return "no reservation", ""
	}
	return "", ""
}

func staticRelayAddr(info peer.AddrInfo) string {
	if len(info.Addrs) == 0 {
		return info.ID.String()
	}
	return info.Addrs[0].String() + "/p2p/" + info.ID.String()
}

// relayView returns the host and the DHT's peers once Start has built
// them; AutoRelay may ask for candidates before that.
func (n *Network) relayView() (host.Host, []peer.ID) {
	n.startedMu.RLock()
	defer n.startedMu.RUnlock()
	if n.host == nil {
		return nil, nil
	}
	var dhtPeers []peer.ID
	if n.dht != nil {
		dhtPeers = n.dht.RoutingTable().ListPeers()
	}
	return n.host, dhtPeers
}

// Reachability is what the node knows about being dialable from the
// internet.
type Reachability struct {
	// Status is public, private or unknown (AutoNAT's verdict, or
	// p2p.reachability when forced).
	Status string `json:"status"`
	// Reachable, Unreachable and Unknown are the node's public address
	// candidates (listen addresses, port mappings and addresses other
	// peers observed) as AutoNAT v2 found them.
	Reachable   []string `json:"reachable"`
	Unreachable []string `json:"unreachable"`
	Unknown     []string `json:"unknown"`
	// RelayAddrs are the addresses through relays holding a reservation for
	// us; Relays are those relays' peer IDs.
	RelayAddrs []string `json:"relay_addrs"`
	Relays     []string `json:"relays"`
	// NAT is the router's behaviour per transport, once peers observed
	// enough: "endpoint-independent" (hole punching works) or
	// "endpoint-dependent" (symmetric: it does not).
	NAT map[string]string `json:"nat,omitempty"`
	// HolePunches and HolePunchSuccesses count DCUtR attempts to upgrade a
	// relayed connection to a direct one.
	HolePunches        int `json:"hole_punches"`
	HolePunchSuccesses int `json:"hole_punch_successes"`
}

// reachWatcher follows the host's reachability events, logs each change
// once and keeps the latest state for `vft id` and `vft doctor`.
type reachWatcher struct {
	log *slog.Logger

	mu    sync.Mutex
	state Reachability
}

func newReachWatcher(log *slog.Logger) *reachWatcher {
	return &reachWatcher{log: log, state: Reachability{Status: "unknown", NAT: map[string]string{}}}
}

func (w *reachWatcher) snapshot() Reachability {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.state
	s.Reachable = slices.Clone(s.Reachable)
	s.Unreachable = slices.Clone(s.Unreachable)
	s.Unknown = slices.Clone(s.Unknown)
	s.RelayAddrs = slices.Clone(s.RelayAddrs)
	s.Relays = slices.Clone(s.Relays)
	s.NAT = make(map[string]string, len(w.state.NAT))
	for k, v := range w.state.NAT {
		s.NAT[k] = v
	}
	return s
}

// watchReachability runs until ctx ends. libp2p emits the current state to
// a new subscriber (stateful emitters), so nothing is missed at start.
func (n *Network) watchReachability(ctx context.Context, h host.Host) error {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
		new(event.EvtAutoRelayAddrsUpdated),
		new(event.EvtNATDeviceTypeChanged),
	}, eventbus.Name("vft reachability"))
	if err != nil {
		return fmt.Errorf("watch reachability: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				n.reach.apply(e)
			}
		}
	}()
	return nil
}

// NATFix is what the operator of a node behind NAT can do about it.
const NATFix = "forward TCP and UDP 4101 to this machine, or enable UPnP on the router"

// apply records one event and logs it if something changed.
func (w *reachWatcher) apply(e any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch evt := e.(type) {
	case event.EvtLocalReachabilityChanged:
		status := reachabilityName(evt.Reachability)
		if status == w.state.Status {
			return
		}
		w.state.Status = status
		switch evt.Reachability {
		case network.ReachabilityPrivate:
			w.log.Warn("reachability changed: private (behind NAT or a firewall); using relays and hole punching", "fix", NATFix)
		case network.ReachabilityPublic:
			w.log.Info("reachability changed: public (other peers can dial this node)")
		default:
			w.log.Info("reachability changed: unknown")
		}
	case event.EvtHostReachableAddrsChanged:
		r, u, k := addrStrings(evt.Reachable), addrStrings(evt.Unreachable), addrStrings(evt.Unknown)
		if slices.Equal(r, w.state.Reachable) && slices.Equal(u, w.state.Unreachable) && slices.Equal(k, w.state.Unknown) {
			return
		}
		w.state.Reachable, w.state.Unreachable, w.state.Unknown = r, u, k
		w.log.Info("public addresses checked", "reachable", r, "unreachable", u, "unknown", k)
	case event.EvtAutoRelayAddrsUpdated:
		addrs := addrStrings(evt.RelayAddrs)
		if slices.Equal(addrs, w.state.RelayAddrs) {
			return
		}
		w.state.RelayAddrs = addrs
		w.state.Relays = relayPeers(evt.RelayAddrs)
		if len(addrs) == 0 {
			w.log.Warn("no relay reservation: peers behind NAT cannot reach this node until one is found")
		} else {
			w.log.Info("relay reservations", "relays", w.state.Relays, "addrs", addrs)
		}
	case event.EvtNATDeviceTypeChanged:
		kind := "endpoint-independent"
		if evt.NatDeviceType == network.NATDeviceTypeEndpointDependent {
			kind = "endpoint-dependent"
		}
		proto := "tcp"
		if evt.TransportProtocol == network.NATTransportUDP {
			proto = "udp"
		}
		if w.state.NAT[proto] == kind {
			return
		}
		w.state.NAT[proto] = kind
		w.log.Info("NAT type", "transport", proto, "type", kind)
	}
}

// Trace is hole punching's event tracer: one line per finished attempt.
func (w *reachWatcher) Trace(evt *holepunch.Event) {
	end, ok := evt.Evt.(*holepunch.EndHolePunchEvt)
	if !ok {
		return
	}
	w.mu.Lock()
	w.state.HolePunches++
	if end.Success {
		w.state.HolePunchSuccesses++
	}
	w.mu.Unlock()
	if end.Success {
		w.log.Info("hole punch succeeded: direct connection", "peer", evt.Remote, "took", end.EllapsedTime)
	} else {
		w.log.Info("hole punch failed: staying on the relay", "peer", evt.Remote, "took", end.EllapsedTime, "err", end.Error)
	}
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	default:
		return "unknown"
	}
}

func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// relayPeers names the relays in circuit addresses
// (/ip4/.../p2p/<relay>/p2p-circuit).
func relayPeers(addrs []ma.Multiaddr) []string {
	var out []string
	for _, a := range addrs {
		relayPart, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		if id, err := peer.IDFromP2PAddr(relayPart); err == nil {
			out = append(out, id.String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Reachability is the node's current view of its own reachability.
func (n *Network) Reachability() Reachability {
	return n.reach.snapshot()
}

// registerConnMetrics exports vft_p2p_connections{path="direct"|"relayed"},
// counted when scraped: how many of this node's connections a relay
// carries. (Hole punches are libp2p_holepunch_*, bytes a relay carried
// libp2p_relaysvc_data_transferred_bytes_total.)
func (n *Network) registerConnMetrics(reg prometheus.Registerer) error {
	count := func(wantRelayed bool) func() float64 {
		return func() float64 {
			total := 0
			for _, c := range n.host.Network().Conns() {
				if relayed(c) == wantRelayed {
					total++
				}
			}
			return float64(total)
		}
	}
	for _, path := range []string{"direct", "relayed"} {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "vft_p2p_connections",
			Help:        "Open connections, direct or through a relay.",
			ConstLabels: prometheus.Labels{"path": path},
		}, count(path == "relayed"))
		if err := reg.Register(g); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			return fmt.Errorf("register connection metrics: %w", err)
		}
	}
	return nil
}

// Port mapping checks: go-libp2p's NAT manager finds the router within
// 10 s and renews its mappings every 20 s, logging each failure at debug
// or warn level without saying what to do; portMapWatcher looks after it
// has had time and tells the operator once per change.
const (
	portMapFirstCheck = 30 * time.Second
	portMapCheckEvery = 20 * time.Second
)

// portMapWatcher is go-libp2p's NAT manager with one log line per change
// of what the router does for us: it maps the listen ports, or it was
// found but refuses them (another device may hold the port, or its rules
// deny it), which libp2p alone reports only as a warning every 20 s.
type portMapWatcher struct {
	basichost.NATManager
	net  network.Network
	log  *slog.Logger
	done chan struct{}
	once sync.Once
}

// natPortMapOption is libp2p.NATPortMap with the watcher around it.
func (n *Network) natPortMapOption() libp2p.Option {
	return libp2p.NATManager(func(nw network.Network) basichost.NATManager {
		w := &portMapWatcher{NATManager: basichost.NewNATManager(nw), net: nw, log: n.log, done: make(chan struct{})}
		go w.watch(portMapFirstCheck, portMapCheckEvery)
		return w
	})
}

func (w *portMapWatcher) Close() error {
	w.once.Do(func() { close(w.done) })
	return w.NATManager.Close()
}

func (w *portMapWatcher) watch(first, every time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	last := ""
	for {
		select {
		case <-w.done:
			return
		case <-timer.C:
		}
		state, mapped, refused := w.check()
		if state != last {
			last = state
			switch state {
			case "mapped":
				w.log.Info("the router maps the listen ports (UPnP/NAT-PMP)", "mapped", mapped)
			case "partly":
				w.log.Warn("the router maps some listen ports but refuses others (UPnP/NAT-PMP): another device may hold the port, or the router's rules deny it; libp2p retries every 20 s",
					"mapped", mapped, "refused", refused, "fix", portMapFix)
			case "refused":
				w.log.Warn("the router refuses to map the listen ports (UPnP/NAT-PMP): another device may hold the port, or the router's rules deny it; libp2p retries every 20 s and the node uses relays meanwhile",
					"refused", refused, "fix", portMapFix)
			case "no gateway":
				w.log.Info("no UPnP/NAT-PMP gateway answered on the LAN: no port mapping (p2p.nat_portmap)")
			}
		}
		timer.Reset(every)
	}
}

// portMapFix is what to do when the router refuses a mapping.
const portMapFix = "allow UPnP mappings for this machine on the router or remove the mapping that holds the port, or forward TCP and UDP 4101 by hand and set p2p.nat_portmap = false"

// check says what the router does for the node's IPv4 TCP and UDP listen
// ports: "mapped", "partly", "refused" or "no gateway".
func (w *portMapWatcher) check() (state string, mapped, refused []string) {
	if !w.HasDiscoveredNAT() {
		return "no gateway", nil, nil
	}
	for _, a := range w.net.ListenAddresses() {
		if ip, err := manet.ToIP(a); err != nil || ip.To4() == nil || ip.IsLoopback() {
			continue
		}
		if ext := w.GetMapping(a); ext != nil {
			mapped = append(mapped, a.String()+" -> "+ext.String())
		} else {
			refused = append(refused, a.String())
		}
	}
	switch {
	case len(refused) == 0 && len(mapped) > 0:
		return "mapped", mapped, nil
	case len(refused) > 0 && len(mapped) > 0:
		return "partly", mapped, refused
	case len(refused) > 0:
		return "refused", nil, refused
	}
	return "", nil, nil
}
