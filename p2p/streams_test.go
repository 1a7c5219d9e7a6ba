package p2p

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/vft-network/vft/p2p/reqresp"
)

// TestStreamsFindPeersInTheDHT: a worker whose submitter it holds no
// connection to and no address of (the submitter restarted, or sits
// behind NAT) must still deliver its commitment. Streams dials such a peer
// at the addresses the DHT finds. (Found by the independent client of
// issue #21, for bids; bids stay on the plain host, see node.Start.)
func TestStreamsFindPeersInTheDHT(t *testing.T) {
	// One machine is a LAN: loopback addresses learned from peers are
	// dialled (p2p.allow_private_addrs).
	lan := func(c *Config) { c.AllowPrivateAddrs = true }
	hub := startNetwork(t, lan, Options{DHTServer: true})
	viaHub := func(c *Config) { lan(c); c.Bootstrap = []string{hub.Addrs()[0].String()} }
	submitter := startNetwork(t, viaHub, Options{DHTServer: true})
	worker := startNetwork(t, viaHub, Options{DHTServer: true})

	const proto = "/vft/test-commit/1"
	submitter.Host().SetStreamHandler(proto, func(st network.Stream) {
		defer st.Close()
		if _, err := reqresp.Read(bufio.NewReader(st), 64); err == nil {
			reqresp.Write(st, []byte("commitment received"))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Wait until the submitter is in the hub's routing table, then make
	// sure the worker has neither a connection nor an address of it.
	for hub.DHT().RoutingTable().Find(submitter.ID()) == "" || worker.DHT().RoutingTable().Find(hub.ID()) == "" {
		if ctx.Err() != nil {
			t.Fatal("the DHT did not learn of the submitter and the hub")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// As on a network too big for everyone to know everyone: the worker
	// forgets the submitter entirely, and the submitter the worker (or
	// it could dial back in).
	for _, pair := range [][2]*Network{{worker, submitter}, {submitter, worker}} {
		a, b := pair[0], pair[1]
		a.DHT().RoutingTable().RemovePeer(b.ID())
		a.Host().Network().ClosePeer(b.ID())
		a.Host().Peerstore().ClearAddrs(b.ID())
	}

	// Tries a second apart for up to 15 s: a dial that fails during the
	// forced disconnect above (one side's connection closing under it)
	// puts the address in the swarm's dial backoff, 5 s at first
	// (swarm.BackoffBase); three tries in 3 s once failed in CI.
	var reply []byte
	var err error
	for giveUp := time.Now().Add(15 * time.Second); ; {
		if reply, err = reqresp.Exchange(ctx, worker.Streams(), submitter.ID(), proto, []byte("commitment"), 64, 10*time.Second); err == nil || time.Now().After(giveUp) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil || string(reply) != "commitment received" {
		t.Fatalf("Exchange through Streams = %q, %v; want the submitter found through the DHT", reply, err)
	}
}
