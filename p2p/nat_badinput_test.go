package p2p

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// syncBuffer is a log destination the node's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A static relay that is wrong in one of the ways the issue names gives
// one clear log line naming it and what to do, and costs a bounded number
// of tries, not a retry storm: a relay nobody answers at, a relay that
// takes the connection and drops every reservation request, and a peer
// that does not relay at all. A working relay gives no line.
func TestStaticRelayProblemsLogged(t *testing.T) {
	for _, tc := range []struct {
		name string
		// relay starts the bad relay and returns its address and a count
		// of the tries it saw.
		relay   func(t *testing.T) (addr string, tries *atomic.Int64)
		want    string
		maxTrys int64
	}{
		{"unreachable", func(t *testing.T) (string, *atomic.Int64) {
			// Something listens and hangs up at once: every dial is seen
			// and fails.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			var tries atomic.Int64
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					tries.Add(1)
					c.Close()
				}
			}()
			const id = "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
			return "/ip4/127.0.0.1/tcp/" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/p2p/" + id, &tries
		}, "static relay unreachable", 4},
		{"drops reservations", func(t *testing.T) (string, *atomic.Int64) {
			h := rawHost(t)
			var tries atomic.Int64
			h.SetStreamHandler(relayHopProtocol, func(s network.Stream) {
				tries.Add(1)
				s.Reset()
			})
			return h.Addrs()[0].String() + "/p2p/" + h.ID().String(), &tries
		}, "static relay holds no reservation", 3},
		{"a working relay: no line", func(t *testing.T) (string, *atomic.Int64) {
			relay := startNetwork(t, func(c *Config) { c.AllowPrivateAddrs, c.Reachability = true, ReachabilityPublic }, Options{})
			return relay.Addrs()[0].String(), &atomic.Int64{}
		}, "", 0},
		{"not a relay", func(t *testing.T) (string, *atomic.Int64) {
			h := rawHost(t)
			return h.Addrs()[0].String() + "/p2p/" + h.ID().String(), &atomic.Int64{}
		}, "static relay does not offer circuit relay v2", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, tries := tc.relay(t)
			cfg := DefaultConfig()
			cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			cfg.MDNS, cfg.NATPortMap, cfg.AllowPrivateAddrs = false, false, true
			cfg.Reachability, cfg.StaticRelays = ReachabilityPrivate, []string{addr}
			key, _, _ := crypto.GenerateEd25519Key(nil)
			var logs syncBuffer
			n, err := New(cfg, key, Options{}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			// Check soon and often: a storm would show in the tries.
			n.staticRelayCheck.first, n.staticRelayCheck.every = 2*time.Second, time.Second
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			deadline := time.Now().Add(15 * time.Second)
			if tc.want == "" {
				deadline = time.Now().Add(3 * time.Second) // two checks
			}
			for (tc.want == "" || !strings.Contains(logs.String(), tc.want)) && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // a few more checks: no more lines, few tries
			var lines []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "static relay") {
					lines = append(lines, l)
				}
			}
			if tc.want == "" {
				if len(lines) > 0 {
					t.Fatalf("a working static relay gave warnings:\n%s", strings.Join(lines, "\n"))
				}
				info, _ := peer.AddrInfoFromString(addr)
				if r := n.Reachability(); r.Status != "private" || !n.Host().ConnManager().IsProtected(info.ID, autorelayTag) {
					t.Fatalf("the check ran without a reservation to look at: %+v", r)
				}
				return
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], addr) || !strings.Contains(lines[0], "level=WARN") {
				t.Fatalf("want one warning %q naming %s, got:\n%s", tc.want, addr, strings.Join(lines, "\n"))
			}
			if got := tries.Load(); got > tc.maxTrys {
				t.Errorf("the bad relay saw %d tries in about %s, want at most %d (no retry storm)", got, 5*time.Second, tc.maxTrys)
			}
			t.Logf("%s; tries seen by the relay: %d", lines[0], tries.Load())
		})
	}
}
