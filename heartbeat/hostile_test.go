package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/p2p"
)

// Signing times can be backdated, so a node could send a burst of
// heartbeats whose signed times are each half an interval apart. Arrival
// is what counts: after a small burst, the rest are rejected.
func TestValidateRateLimitsBackdatedBurst(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s := newService(t, &clock{t0})
	alice, _ := identity.Generate()
	accepted := 0
	for i := range 20 {
		signed := t0.Add(-time.Minute).Add(time.Duration(i) * 15 * time.Second) // 30 s interval, 15 s apart
		err := s.Validate(context.Background(), alice.PeerID(), seal(t, alice, signed, sample))
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, p2p.ErrIgnore):
			t.Fatalf("heartbeat %d ignored, want accepted or rejected: %v", i, err)
		}
	}
	if accepted > beatBurst {
		t.Fatalf("%d heartbeats arriving at once were accepted, want at most %d", accepted, beatBurst)
	}
}

// A full table takes newcomers only in place of other newcomers: the
// nodes it has known for a while stay, and the table stays bounded.
func TestTableCapKeepsEstablished(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := &clock{t0}
	key, _ := identity.Generate()
	s, err := New(Config{Interval: units.Duration(30 * time.Second), MaxNodes: 16}, key, nil, false, slog.New(slog.DiscardHandler), Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var honest []*identity.Key
	for range 10 {
		k, _ := identity.Generate()
		honest = append(honest, k)
		if err := s.Validate(ctx, k.PeerID(), seal(t, k, c.t, sample)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 3; i++ { // they keep beating for a few minutes
		c.t = t0.Add(time.Duration(i) * 30 * time.Second)
		for _, k := range honest {
			if err := s.Validate(ctx, k.PeerID(), seal(t, k, c.t, sample)); err != nil {
				t.Fatal(err)
			}
		}
	}
	liar := sample
	liar.NetworkSize = 1 << 30
	for range 100 {
		k, _ := identity.Generate()
		if err := s.Validate(ctx, k.PeerID(), seal(t, k, c.t, liar)); err != nil {
			t.Fatalf("a newcomer's heartbeat was refused (it should be relayed, at worst not recorded): %v", err)
		}
	}
	nodes := s.Nodes()
	if len(nodes) > 16 {
		t.Fatalf("table holds %d entries, cap 16", len(nodes))
	}
	in := map[peer.ID]bool{}
	for _, e := range nodes {
		in[e.Peer] = true
	}
	for _, k := range honest {
		if !in[k.PeerID()] {
			t.Fatalf("established node %s was evicted by newcomers", k.PeerID())
		}
	}
	if n := s.NetworkSize(); n != 10 {
		t.Fatalf("network size %d after 100 newcomers claiming 2^30, want the 10 established nodes", n)
	}
}

// 50 identities on real hosts flood a node with heartbeats claiming a
// huge network: the node's table stays within heartbeat.max_nodes, the
// honest node it has known for a while stays in it, and its estimate of
// the network's size stays what the honest nodes say.
func TestSybilHeartbeatFlood(t *testing.T) {
	// Both honest nodes' clocks can be moved ahead together, so that the
	// victim knows the honest node "for a while" without the test waiting.
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	victimNet, victim, _ := startBeater(t, nil, 16, Options{Now: clock})
	honestNet, honest, honestTopic := startBeater(t, victimNet, 16, Options{Now: clock})
	honest.cfg.Interval = units.Duration(30 * time.Second)
	waitFor(t, "the honest node in the victim's topic mesh", func() bool { return len(honestTopic.Peers()) > 0 })
	for beat := 1; beat <= 2; beat++ {
		// The first heartbeat can be published before the victim's side
		// of the mesh is ready; send again until it arrives.
		waitFor(t, fmt.Sprintf("honest heartbeat %d in the victim's table", beat), func() bool {
			if _, err := honest.beat(context.Background(), honestTopic); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				victim.mu.Lock()
				got := victim.table[honestNet.ID()].beats
				victim.mu.Unlock()
				if got == beat {
					return true
				}
				time.Sleep(20 * time.Millisecond)
			}
			return false
		})
		offset.Add(int64(31 * time.Second))
	}
	if n := victim.NetworkSize(); n != 1 {
		t.Fatalf("victim's network size %d before the flood, want 1 (the honest node; it does not beat itself)", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	liar := sample
	liar.IntervalSec, liar.NetworkSize = 5, 1<<30
	const sybils = 50
	for i := range sybils {
		key, _ := identity.Generate()
		h, err := libp2p.New(libp2p.Identity(key.LibP2P()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		ps, err := pubsub.NewGossipSub(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		topic, err := ps.Join(TopicName)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Connect(ctx, peer.AddrInfo{ID: victimNet.ID(), Addrs: victimNet.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("sybil %d in the topic mesh", i), func() bool { return len(topic.ListPeers()) > 0 })
		now := clock()
		for b := range 5 { // backdated, half an interval apart, sent at once
			if err := topic.Publish(ctx, seal(t, key, now.Add(-time.Minute+time.Duration(b)*2500*time.Millisecond), liar)); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "the flood to reach the victim's table", func() bool { return len(victim.Nodes()) >= 16 })
	time.Sleep(500 * time.Millisecond) // stragglers
	nodes := victim.Nodes()
	if len(nodes) > 16 {
		t.Fatalf("victim's table holds %d entries after %d sybils, cap 16", len(nodes), sybils)
	}
	found := false
	for _, e := range nodes {
		found = found || e.Peer == honestNet.ID()
	}
	if !found {
		t.Fatal("the honest node was pushed out of the table by sybils")
	}
	if n := victim.NetworkSize(); n > 2 {
		t.Fatalf("victim's network size %d after the flood, want what the honest nodes say (at most 2)", n)
	}
}

// startBeater starts a real Network on loopback with a heartbeat service
// on it (which beats only when the test calls beat), joined to via when
// given.
func startBeater(t *testing.T, via *p2p.Network, maxNodes int, opts Options) (*p2p.Network, *Service, *p2p.Topic) {
	t.Helper()
	key, _ := identity.Generate()
	cfg := p2p.DefaultConfig()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS, cfg.NATPortMap = false, false
	if via != nil {
		cfg.Bootstrap = []string{via.Addrs()[0].String()}
	}
	n, err := p2p.New(cfg, key.LibP2P(), p2p.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	caps := func(context.Context) Heartbeat { return sample }
	s, err := New(Config{Interval: units.Duration(MinInterval), MaxNodes: maxNodes}, key, caps, false, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := n.Join(TopicName, s.Validate)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(topic)
	t.Cleanup(func() { s.Close(); topic.Close() })
	return n, s, topic
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
