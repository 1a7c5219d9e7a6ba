package marketsim

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/vft-network/vft/identity"
)

// TestDelayedStreamPipelines checks the mocknet transport's link model in
// virtual time: a new connection waits two round trips, and writes made
// back to back all arrive one latency (plus their time on the uplink)
// after they were written, in order, not one latency after another as
// mocknet's own link latency delivers them.
func TestDelayedStreamPipelines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			oneWay    = 60 * time.Millisecond
			bandwidth = 8_000_000 // bits per second: 1 KiB takes 1.024 ms
			writes    = 10
		)
		n := newSimNet(bandwidth)
		defer n.Close()
		var hosts []*simHost
		for i, addr := range []string{"/ip4/10.0.0.1/tcp/1", "/ip4/10.0.0.2/tcp/1"} {
			key, err := identity.Generate()
			if err != nil {
				t.Fatal(err)
			}
			h, err := n.mn.AddPeer(key.LibP2P(), ma.StringCast(addr))
			if err != nil {
				t.Fatalf("host %d: %v", i, err)
			}
			n.half[h.ID()] = oneWay / 2
			hosts = append(hosts, &simHost{Host: h, net: n})
		}
		const proto protocol.ID = "/marketsim/test/1"
		type arrival struct {
			data []byte
			at   time.Time
		}
		got := make(chan arrival, writes)
		hosts[1].SetStreamHandler(proto, func(s network.Stream) {
			defer s.Close()
			for {
				buf := make([]byte, 1024)
				if _, err := io.ReadFull(s, buf); err != nil {
					close(got)
					return
				}
				got <- arrival{buf, time.Now()}
			}
		})

		start := time.Now()
		s, err := hosts[0].NewStream(context.Background(), hosts[1].ID(), proto)
		if err != nil {
			t.Fatal(err)
		}
		if opened, want := time.Since(start), 4*oneWay; opened != want {
			t.Errorf("new connection's stream opened after %s, want two round trips (%s)", opened, want)
		}
		written := time.Now()
		for i := range writes {
			msg := make([]byte, 1024)
			msg[0] = byte(i)
			if _, err := s.Write(msg); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		s.CloseWrite()
		i := 0
		for a := range got {
			if a.data[0] != byte(i) {
				t.Errorf("write %d arrived as number %d", a.data[0], i)
			}
			// Each write leaves the uplink 1.024 ms after the one
			// before it, then crosses the link.
			want := written.Add(time.Duration(i+1)*1024*time.Microsecond + oneWay)
			if !a.at.Equal(want) {
				t.Errorf("write %d arrived %s after it was written, want %s", i, a.at.Sub(written), want.Sub(written))
			}
			i++
		}
		if i != writes {
			t.Errorf("%d of %d writes arrived", i, writes)
		}
	})
}

func TestCheckTransport(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"", false}, {"simnet", false}, {"mocknet", false}, {"quic", true}, {"Mocknet", true},
	}
	for _, tt := range tests {
		err := checkTransport(tt.name)
		if (err != nil) != tt.wantErr {
			t.Errorf("checkTransport(%q) = %v, want error: %v", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.name)) {
			t.Errorf("checkTransport(%q) = %q, does not name the value", tt.name, err)
		}
	}
}
