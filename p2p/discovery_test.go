package p2p

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A node at its low watermark does not look the rendezvous namespace up
// on the DHT: it would connect to none of the nodes found. Under the
// watermark it looks.
func TestRendezvousLookupOnlyUnderLowWatermark(t *testing.T) {
	boot := startNetwork(t, nil, Options{DHTServer: true})
	for _, tt := range []struct {
		name        string
		connLow     int
		wantLookups bool
	}{
		{"at the low watermark", 1, false},
		{"under it", 64, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var lookups atomic.Int32
			find := func(context.Context, string) (<-chan peer.AddrInfo, error) {
				lookups.Add(1)
				found := make(chan peer.AddrInfo)
				close(found)
				return found, nil
			}
			n := startNetwork(t, func(c *Config) {
				c.ConnLow = tt.connLow
				c.Bootstrap = []string{boot.Addrs()[0].String()}
			}, Options{FindRendezvous: find})
			waitFor(t, "the bootstrap connection", func() bool { return n.IsConnected(boot.ID()) })
			n.findPeers()
			if got := lookups.Load() > 0; got != tt.wantLookups {
				t.Errorf("with %d peer(s) and p2p.conn_low %d: looked up: %v, want %v",
					len(n.Host().Network().Peers()), tt.connLow, got, tt.wantLookups)
			}
		})
	}
}
