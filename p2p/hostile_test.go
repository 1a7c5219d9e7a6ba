package p2p

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/vft-network/vft/p2p/reqresp"
)

// startNetwork starts a real Network on loopback.
func startNetwork(t *testing.T, edit func(*Config), opts Options) *Network {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS, cfg.NATPortMap = false, false
	if edit != nil {
		edit(&cfg)
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg, key, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// rawHost is a plain libp2p host, as an attacker would run one: none of
// our pacing or limits.
func rawHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addresses learned from other peers (the DHT, identify, peer exchange)
// that point into private or loopback ranges are not dialled: a peer could
// otherwise make us dial our own LAN. Addresses the operator gives are, and
// so is everything when the node is configured for a LAN.
func TestGaterRefusesLearnedPrivateAddrs(t *testing.T) {
	target := startNetwork(t, nil, Options{})
	ctx := context.Background()

	learned := func(n *Network) error {
		// What a DHT lookup does: addresses into the peerstore, then a dial.
		n.Host().Peerstore().AddAddrs(target.ID(), target.Host().Addrs(), peerstore.TempAddrTTL)
		return n.Host().Connect(ctx, peer.AddrInfo{ID: target.ID()})
	}

	wan := startNetwork(t, nil, Options{})
	err := learned(wan)
	if err == nil {
		t.Fatal("a node not configured for a LAN dialled a loopback address it learned from a peer")
	}
	if !errors.Is(err, swarm.ErrGaterDisallowedConnection) && !errors.Is(err, swarm.ErrNoGoodAddresses) {
		t.Fatalf("learned loopback dial failed for another reason: %v", err)
	}
	if _, err := wan.Connect(ctx, target.Addrs()[0].String()); err != nil {
		t.Fatalf("an address the operator gave (vft swarm connect) was refused: %v", err)
	}

	boot := startNetwork(t, func(c *Config) { c.Bootstrap = []string{target.Addrs()[0].String()} }, Options{})
	if !boot.IsConnected(target.ID()) {
		t.Fatal("a bootstrap peer on loopback was not dialled")
	}

	lan := startNetwork(t, func(c *Config) { c.AllowPrivateAddrs = true }, Options{})
	if err := learned(lan); err != nil {
		t.Fatalf("with p2p.allow_private_addrs a learned loopback address was refused: %v", err)
	}
}

func TestPrivateAddrs(t *testing.T) {
	for addr, want := range map[string]bool{
		"/ip4/127.0.0.1/tcp/1":       true,
		"/ip4/10.1.2.3/tcp/1":        true,
		"/ip4/192.168.1.1/udp/1":     true,
		"/ip4/172.16.0.1/tcp/1":      true,
		"/ip4/169.254.1.1/tcp/1":     true,
		"/ip4/100.64.0.1/tcp/1":      true,
		"/ip4/0.0.0.0/tcp/1":         true,
		"/ip6/::1/tcp/1":             true,
		"/ip6/fe80::1/tcp/1":         true,
		"/ip6/fd00::1/tcp/1":         true,
		"/ip4/8.8.8.8/tcp/1":         false,
		"/ip6/2001:4860::1/tcp/1":    false,
		"/ip4/1.2.3.4/udp/1/quic-v1": false,
	} {
		if got := private(mustAddr(t, addr)); got != want {
			t.Errorf("private(%s) = %v, want %v", addr, got, want)
		}
	}
}

// A peer that floods valid messages is throttled: beyond its bucket they
// are rejected before the topic's validator runs, and its GossipSub score
// falls below zero.
func TestGossipFloodThrottled(t *testing.T) {
	const topic = "/vft/test/flood"
	victim := startNetwork(t, func(c *Config) { c.GossipAuthorPerMinute, c.GossipAuthorBurst = 6, 10 },
		Options{ScoreInspectPeriod: 100 * time.Millisecond})
	var delivered atomic.Int64
	if _, err := victim.Join(topic, func(context.Context, peer.ID, []byte) error {
		delivered.Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	attacker := rawHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, attacker)
	if err != nil {
		t.Fatal(err)
	}
	at, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := attacker.Connect(ctx, peer.AddrInfo{ID: victim.ID(), Addrs: victim.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the victim in the attacker's topic mesh", func() bool { return len(at.ListPeers()) > 0 })
	const sent = 200
	for i := range sent {
		if err := at.Publish(ctx, []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the attacker's score below 0", func() bool {
		s, ok := victim.PeerScores()[attacker.ID()]
		return ok && s < 0
	})
	// 10 in the burst, plus one every 10 s while the test runs.
	if got := delivered.Load(); got > 14 {
		t.Fatalf("%d of %d flooded messages reached the validator, want about the burst of 10", got, sent)
	}
}

// A peer that opens many request streams and never finishes its request
// holds at most p2p.max_streams_per_peer of them at once, and each only
// until its deadline: it cannot pin our goroutines.
func TestDirectStreamsCappedPerPeer(t *testing.T) {
	const proto = protocol.ID("/vft/test/rr/1")
	victim := startNetwork(t, func(c *Config) { c.MaxStreamsPerPeer = 4 }, Options{DirectProtocols: []protocol.ID{proto}})
	var active, peak atomic.Int64
	var served sync.WaitGroup
	victim.Host().SetStreamHandler(proto, func(st network.Stream) {
		served.Add(1)
		defer served.Done()
		n := active.Add(1)
		defer active.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		reqresp.Serve(st, 64, 2*time.Second, func(peer.ID, []byte) ([]byte, error) { return nil, nil })
	})

	attacker := rawHost(t)
	ctx := context.Background()
	if err := attacker.Connect(ctx, peer.AddrInfo{ID: victim.ID(), Addrs: victim.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	var streams []network.Stream
	for range 40 {
		st, err := attacker.NewStream(ctx, victim.ID(), proto)
		if err != nil {
			continue
		}
		// Declare a 5-byte request and never send it.
		st.Write([]byte{5})
		streams = append(streams, st)
	}
	// Read on each: a refused stream is reset at once, an accepted one
	// when the server's deadline passes. Either way none hangs.
	for _, st := range streams {
		io.Copy(io.Discard, bufio.NewReader(st))
	}
	waitFor(t, "every stalled stream released", func() bool { return active.Load() == 0 })
	if p := peak.Load(); p > 4 {
		t.Fatalf("one peer held %d request streams at once, cap 4", p)
	}
	if peak.Load() == 0 {
		t.Fatal("no stream reached the handler: the test proves nothing")
	}
}

func mustAddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The application score the node hands in (its reputation of peers)
// reaches GossipSub's peer score.
func TestAppScoreReachesPeerScore(t *testing.T) {
	const topic = "/vft/test/app"
	other := startNetwork(t, nil, Options{})
	scored := startNetwork(t, func(c *Config) { c.Bootstrap = []string{other.Addrs()[0].String()} }, Options{
		ScoreInspectPeriod: 100 * time.Millisecond,
		AppScore: func(p peer.ID) float64 {
			if p == other.ID() {
				return -300
			}
			return 0
		},
	})
	for _, n := range []*Network{other, scored} {
		if _, err := n.Join(topic, func(context.Context, peer.ID, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the application score in GossipSub's peer score", func() bool {
		s, ok := scored.PeerScores()[other.ID()]
		return ok && s <= -300
	})
}

// A relay that forwards a flooder's messages is not blamed for them: the
// relay throttles the flooder (whose score falls there), and what gets
// through beyond the victim's own bucket for that author is dropped
// without counting against the relay.
func TestGossipFloodRelayNotBlamed(t *testing.T) {
	const topic = "/vft/test/relay"
	accept := func(context.Context, peer.ID, []byte) error { return nil }
	inspect := Options{ScoreInspectPeriod: 100 * time.Millisecond}
	relay := startNetwork(t, func(c *Config) { c.GossipAuthorPerMinute, c.GossipAuthorBurst = 6, 10 }, inspect)
	victim := startNetwork(t, func(c *Config) {
		c.GossipAuthorPerMinute, c.GossipAuthorBurst = 6, 4
		c.Bootstrap = []string{relay.Addrs()[0].String()}
	}, inspect)
	var delivered atomic.Int64
	if _, err := relay.Join(topic, accept); err != nil {
		t.Fatal(err)
	}
	vt, err := victim.Join(topic, func(context.Context, peer.ID, []byte) error { delivered.Add(1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay in the victim's topic mesh", func() bool { return len(vt.Peers()) > 0 })

	flooder := rawHost(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, flooder)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := flooder.Connect(ctx, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay in the flooder's topic mesh", func() bool { return len(ft.ListPeers()) > 0 })
	// The relay forwards to its mesh, which GossipSub grafts at its 1 s
	// heartbeat; before that the victim is only a topic peer, reached by
	// gossip that may never ask for a flooder's messages. Two heartbeats.
	time.Sleep(2 * time.Second)
	for i := range 100 {
		if err := ft.Publish(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the flooder's score at the relay below 0", func() bool {
		s, ok := relay.PeerScores()[flooder.ID()]
		return ok && s < 0
	})
	waitFor(t, "the relayed messages at the victim", func() bool { return delivered.Load() >= 4 })
	time.Sleep(300 * time.Millisecond) // a victim score refresh after the last delivery
	if s := victim.PeerScores()[relay.ID()]; s < 0 {
		t.Fatalf("the relay's score at the victim fell to %v for forwarding what it had accepted", s)
	}
	if got := delivered.Load(); got > 5 {
		t.Fatalf("%d of the flooder's messages reached the victim's validator, want its bucket of 4", got)
	}
}
