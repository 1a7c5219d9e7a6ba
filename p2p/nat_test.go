package p2p

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vft-network/vft/p2p/reqresp"
)

// Each reachability change is logged once: libp2p re-emits the same state
// (AutoNAT refreshes, relay reservations renewed), and an operator reading
// the journal wants one line per change, not a line per probe.
func TestReachabilityLogsOneLinePerChange(t *testing.T) {
	const relay = "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
	circuit := ma.StringCast("/ip4/198.18.0.2/tcp/4101/p2p/" + relay + "/p2p-circuit")
	var buf bytes.Buffer
	w := newReachWatcher(slog.New(slog.NewTextHandler(&buf, nil)))
	events := []any{
		event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityUnknown}, // no change from the start
		event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate},
		event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate},
		event.EvtAutoRelayAddrsUpdated{RelayAddrs: []ma.Multiaddr{circuit}},
		event.EvtAutoRelayAddrsUpdated{RelayAddrs: []ma.Multiaddr{circuit}},
		event.EvtNATDeviceTypeChanged{TransportProtocol: network.NATTransportTCP, NatDeviceType: network.NATDeviceTypeEndpointDependent},
		event.EvtNATDeviceTypeChanged{TransportProtocol: network.NATTransportTCP, NatDeviceType: network.NATDeviceTypeEndpointDependent},
	}
	for _, e := range events {
		w.apply(e)
	}
	w.Trace(&holepunch.Event{Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Success: true}})
	w.Trace(&holepunch.Event{Type: holepunch.EndHolePunchEvtT, Evt: &holepunch.EndHolePunchEvt{Error: "all retries failed"}})

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"reachability changed: private", "relay reservations", "NAT type", "hole punch succeeded", "hole punch failed"}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d (one per change):\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s, want %q", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[0], "forward TCP and UDP 4101") {
		t.Errorf("the private line lacks the fix: %s", lines[0])
	}
	got := w.snapshot()
	if got.Status != "private" || len(got.Relays) != 1 || got.Relays[0] != relay || got.NAT["tcp"] != "endpoint-dependent" ||
		got.HolePunches != 2 || got.HolePunchSuccesses != 1 {
		t.Errorf("snapshot = %+v", got)
	}
}

// The benchmarking range counts as public only when a node asks for it.
func TestBenchmarkRangePublic(t *testing.T) {
	addr := ma.StringCast("/ip4/198.18.1.2/tcp/4101")
	inRange := func() bool {
		for _, n := range manet.Unroutable4 {
			if n.Contains(net.ParseIP("198.18.1.2")) {
				return true
			}
		}
		return false
	}
	if !inRange() {
		t.Skip("another test of this process already made the benchmarking range public")
	}
	if manet.IsPublicAddr(addr) {
		t.Fatal("198.18.1.2 is public before the option")
	}
	treatBenchmarkRangeAsPublic()
	if !manet.IsPublicAddr(addr) {
		t.Fatal("198.18.1.2 is not public after the option")
	}
	if manet.IsPublicAddr(ma.StringCast("/ip4/192.168.1.2/tcp/4101")) || manet.IsPublicAddr(ma.StringCast("/ip4/203.0.113.1/tcp/4101")) {
		t.Fatal("the option made other private or unroutable ranges public")
	}
}

// A node behind NAT is reached through a relay: its relayed connection is
// limited (p2p.relay_circuit_bytes), and the job protocols' one request
// and one reply still cross it. Without the allow-limited flag in
// reqresp.Exchange libp2p refuses to open the stream.
func TestRequestReplyCrossesRelay(t *testing.T) {
	lan := func(c *Config) { c.AllowPrivateAddrs, c.HolePunching = true, false }
	relayNode := startNetwork(t, func(c *Config) { lan(c); c.Reachability = ReachabilityPublic }, Options{DHTServer: true})
	relayAddr := relayNode.Addrs()[0].String()
	// The private node and the other one refuse each other's loopback
	// addresses (only the relay, their bootstrap, is allowed): as behind
	// NAT, they meet only through the relay.
	private := startNetwork(t, func(c *Config) {
		c.HolePunching = false
		c.Reachability, c.StaticRelays, c.Bootstrap = ReachabilityPrivate, []string{relayAddr}, []string{relayAddr}
	}, Options{})
	const proto = "/vft/test-relay/1"
	private.Host().SetStreamHandler(proto, func(st network.Stream) {
		reqresp.Serve(st, 1<<10, 5*time.Second, func(_ peer.ID, req []byte) ([]byte, error) {
			return append([]byte("reply to "), req...), nil
		})
	})

	other := startNetwork(t, func(c *Config) { c.HolePunching = false; c.Bootstrap = []string{relayAddr} }, Options{})
	// The private node takes its reservation in the background (on
	// loopback the relay announces no addresses for it, so vft id would
	// show none): dial through the relay until the relay accepts.
	circuit := relayAddr + "/p2p-circuit/p2p/" + private.ID().String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := other.Connect(context.Background(), circuit)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection through the relay after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	relayedConn := false
	for _, p := range other.Peers() {
		relayedConn = relayedConn || (p.ID == private.ID() && p.Relayed)
	}
	if !relayedConn {
		t.Fatalf("no relayed connection to the private node: %+v", other.Peers())
	}
	reply, err := reqresp.Exchange(context.Background(), other.Host(), private.ID(), proto, []byte("bid"), 1<<10, 5*time.Second)
	if err != nil {
		t.Fatalf("request over the relayed connection: %v", err)
	}
	if string(reply) != "reply to bid" {
		t.Fatalf("reply %q", reply)
	}
}

// vft_p2p_connections counts direct and relayed connections apart.
func TestConnectionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := startNetwork(t, func(c *Config) { c.AllowPrivateAddrs = true }, Options{Registerer: reg})
	b := startNetwork(t, func(c *Config) { c.AllowPrivateAddrs = true }, Options{})
	if _, err := a.Connect(context.Background(), b.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "vft_p2p_connections" {
			continue
		}
		for _, m := range f.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if got["direct"] != 1 || got["relayed"] != 0 {
		t.Fatalf("vft_p2p_connections = %v, want direct 1, relayed 0", got)
	}
}

// A static relay that does not answer costs the node nothing but the
// relay: it starts, stays private, holds no reservation and keeps working.
func TestUnreachableStaticRelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	const id = "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
	n := startNetwork(t, func(c *Config) {
		c.AllowPrivateAddrs = true
		c.Reachability = ReachabilityPrivate
		c.StaticRelays = []string{"/ip4/127.0.0.1/tcp/" + strconv.Itoa(dead) + "/p2p/" + id}
	}, Options{})
	other := startNetwork(t, func(c *Config) { c.AllowPrivateAddrs = true }, Options{})
	if _, err := n.Connect(context.Background(), other.Addrs()[0].String()); err != nil {
		t.Fatalf("a node with a dead static relay cannot dial out: %v", err)
	}
	// The forced status reaches the watcher as an event: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	r := n.Reachability()
	for r.Status != "private" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		r = n.Reachability()
	}
	if r.Status != "private" || len(r.Relays) != 0 {
		t.Fatalf("reachability %+v, want private with no relay", r)
	}
}
