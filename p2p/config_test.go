package p2p

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/vft-network/vft/internal/units"
)

func TestParsePeerAddr(t *testing.T) {
	const id = "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
	cases := []struct {
		in      string
		wantErr string
	}{
		{"/ip4/1.2.3.4/tcp/4101/p2p/" + id, ""},
		{"/ip4/1.2.3.4/udp/4101/quic-v1/p2p/" + id, ""},
		{"/ip4/1.2.3.4/tcp/4101", "does not end in /p2p/"},
		{"/p2p/" + id, "no address to dial"},
		{"/ip4/1.2.3/tcp/1/p2p/" + id, "not a valid multiaddr"},
		{"hello", "not a valid multiaddr"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParsePeerAddr(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("ParsePeerAddr(%q) = %v, want an error naming it and saying %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

// Two addresses of one peer become one bootstrap entry.
func TestParseBootstrapMergesPeer(t *testing.T) {
	const id = "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
	infos, err := ParseBootstrap([]string{"/ip4/1.2.3.4/tcp/1/p2p/" + id, "/ip4/1.2.3.4/udp/1/quic-v1/p2p/" + id})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || len(infos[0].Addrs) != 2 {
		t.Fatalf("got %v, want one peer with two addresses", infos)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no listen", func(c *Config) { c.Listen = nil }, "p2p.listen is empty"},
		{"bad listen", func(c *Config) { c.Listen = []string{"/ip4/1.2.3/tcp/4101"} }, "/ip4/1.2.3/tcp/4101"},
		{"empty rendezvous", func(c *Config) { c.Rendezvous = " " }, "p2p.rendezvous"},
		{"watermarks", func(c *Config) { c.ConnLow = 0 }, "conn_low"},
		{"message size", func(c *Config) { c.MaxMessageSize = 10 }, "max_message_size"},
		{"reachability", func(c *Config) { c.Reachability = "maybe" }, `p2p.reachability "maybe"`},
		{"forced public", func(c *Config) { c.Reachability = ReachabilityPublic }, ""},
		{"no reservations", func(c *Config) { c.RelayMaxReservations = 0 }, "p2p.relay_max_reservations 0"},
		{"circuits", func(c *Config) { c.RelayMaxCircuits = 5000 }, "p2p.relay_max_circuits 5000"},
		{"circuit bytes", func(c *Config) { c.RelayCircuitBytes = 100 }, "p2p.relay_circuit_bytes 100 "},
		{"circuit duration", func(c *Config) { c.RelayCircuitDuration = units.Duration(time.Second) }, "p2p.relay_circuit_duration 1s"},
		{"static relay without ID", func(c *Config) { c.StaticRelays = []string{"/ip4/1.2.3.4/tcp/4101"} }, "p2p.static_relays: \"/ip4/1.2.3.4/tcp/4101\" does not end in /p2p/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestCheckPortsFree(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	busy := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
	if err := checkPortsFree([]string{busy}); err == nil || !strings.Contains(err.Error(), busy) {
		t.Fatalf("checkPortsFree(%s) = %v, want an error naming it", busy, err)
	}
	if err := checkPortsFree([]string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}); err != nil {
		t.Fatalf("port 0 reported busy: %v", err)
	}
}

// The score parameters are ours, not library defaults, and GossipSub
// accepts them: it refuses to start, or to set a topic's parameters, when
// they are invalid.
func TestScoreParamsAccepted(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithPeerScore(peerScoreParams(nil), peerScoreThresholds()))
	if err != nil {
		t.Fatalf("GossipSub rejected our score parameters: %v", err)
	}
	topic, err := ps.Join("/vft/1/x")
	if err != nil {
		t.Fatal(err)
	}
	if err := topic.SetScoreParams(topicScoreParams()); err != nil {
		t.Fatalf("GossipSub rejected our topic score parameters: %v", err)
	}
	if len(peerScoreParams(nil).IPColocationFactorWhitelist) != 2 {
		t.Fatal("loopback is not exempt from IP colocation")
	}
}
