// Command natbench is the libp2p side of the NAT measurements
// (bench/nat-bench.sh, docs/BENCHMARKS.md): small programs run inside the
// network namespaces of internal/netns by natbench_test.go. It uses the
// same go-libp2p parts the daemon uses (circuit relay v2, AutoRelay with a
// static relay, DCUtR) without the rest of the node, so that one hole
// punch attempt is one fresh host and costs a fraction of a second.
//
//	natbench public   -ip 198.18.0.2 [-relay]          (-relay: a relay without per-connection limits)
//	natbench listener -public <addr>,...               (behind NAT: reservation, then serves /natbench/xfer)
//	natbench punch    -public <addr>,... -target <circuit addr> -n 50 -parallel 10
//	natbench xfer     -public <addr>,... -target <circuit addr> -bytes 268435456
//
// Each prints JSON lines on stdout.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const xferProtocol = "/natbench/xfer"

// unlimited turns go-libp2p's resource manager off: the attempts run many
// at once from behind the same few routers, and the default per-IP and
// per-peer limits would refuse some of them, which would be counted as
// failed hole punches.
var unlimited = libp2p.ResourceManager(&network.NullResourceManager{})

var started = time.Now()

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: natbench public|listener|punch|xfer [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	ip := fs.String("ip", "", "public: the address to listen on")
	relayService := fs.Bool("relay", false, "public: run a relay without per-connection limits")
	parallel := fs.Int("parallel", 10, "punch: attempts at once (fresh hosts each)")
	public := fs.String("public", "", "the public hosts' addresses (the first is the relay)")
	target := fs.String("target", "", "the listener's relay address")
	n := fs.Int("n", 50, "punch: attempts")
	wait := fs.Duration("wait", 30*time.Second, "punch: how long one attempt waits for a direct connection")
	size := fs.Int64("bytes", 256<<20, "xfer: bytes to move each way")
	fs.Parse(os.Args[2:])
	// The test network's addresses (198.18.0.0/15) count as public, as in
	// the daemon with p2p.benchmark_range_public.
	manet.Unroutable4 = slices.DeleteFunc(slices.Clone(manet.Unroutable4), func(n *net.IPNet) bool { return n.String() == "198.18.0.0/15" })

	var err error
	switch mode {
	case "public":
		err = runPublic(*ip, *relayService)
	case "listener":
		err = runListener(parseAddrs(*public))
	case "punch":
		err = runPunch(parseAddrs(*public), parseAddrs(*target)[0], *n, *parallel, *wait)
	case "xfer":
		err = runXfer(parseAddrs(*public), parseAddrs(*target)[0], *size)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		log.Fatalf("natbench %s: %v", mode, err)
	}
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func parseAddrs(s string) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		info, err := peer.AddrInfoFromString(f)
		if err != nil {
			log.Fatalf("bad address %q: %v", f, err)
		}
		out = append(out, *info)
	}
	return out
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	<-ch
}

// runPublic starts a public host: a relay without per-connection limits
// (so a relayed transfer can be measured), or a peer that only observes
// the NAT'd hosts' addresses, like the daemon's other public peers.
func runPublic(ip string, relayService bool) error {
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/4101", "/ip4/"+ip+"/udp/4101/quic-v1"),
		libp2p.ForceReachabilityPublic(),
		unlimited,
	}
	if relayService {
		res := relay.DefaultResources()
		res.Limit = nil
		res.MaxCircuits = 64
		res.MaxReservationsPerIP = 64
		res.MaxReservationsPerASN = 64
		opts = append(opts, libp2p.EnableRelayService(relay.WithResources(res)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return err
	}
	defer h.Close()
	emit(map[string]any{"addr": fmt.Sprintf("/ip4/%s/tcp/4101/p2p/%s", ip, h.ID())})
	waitSignal()
	return nil
}

// tracer counts finished hole punches.
type tracer struct {
	mu              sync.Mutex
	ends, successes int
}

func (t *tracer) Trace(evt *holepunch.Event) {
	if end, ok := evt.Evt.(*holepunch.EndHolePunchEvt); ok {
		t.mu.Lock()
		t.ends++
		if end.Success {
			t.successes++
		}
		t.mu.Unlock()
	}
}

func (t *tracer) counts() (int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ends, t.successes
}

// runListener is a host behind NAT: a reservation on the relay (it prints
// its relay address and how long that took), hole punching, and
// /natbench/xfer, which sends the number of bytes asked for.
func runListener(public []peer.AddrInfo) error {
	tr := &tracer{}
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"),
		libp2p.ForceReachabilityPrivate(),
		unlimited,
		libp2p.EnableRelay(),
		libp2p.EnableAutoRelayWithStaticRelays(public[:1], autorelay.WithBootDelay(0)),
		libp2p.EnableHolePunching(holepunch.WithTracer(tr)),
	)
	if err != nil {
		return err
	}
	defer h.Close()
	h.SetStreamHandler(xferProtocol, serveXfer)
	connectAll(h, public)
	for {
		for _, a := range h.Addrs() {
			if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil && strings.Contains(a.String(), "/tcp/") {
				emit(map[string]any{"relay_addr": a.String() + "/p2p/" + h.ID().String(), "reservation_s": time.Since(started).Seconds()})
				go func() {
					for range time.Tick(time.Second) {
						ends, ok := tr.counts()
						emit(map[string]any{"punch_ends": ends, "punch_successes": ok})
					}
				}()
				waitSignal()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func connectAll(h host.Host, public []peer.AddrInfo) {
	for _, p := range public {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.Connect(ctx, p); err != nil {
			log.Printf("connect %s: %v", p.ID, err)
		}
		cancel()
	}
}

func serveXfer(s network.Stream) {
	defer s.Close()
	var n int64
	if err := binary.Read(s, binary.BigEndian, &n); err != nil {
		s.Reset()
		return
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := s.Write(buf[:k]); err != nil {
			s.Reset()
			return
		}
		n -= k
	}
}

// newPeer is a fresh host (new identity, new ports, so new NAT mappings)
// that has been seen by the public hosts.
func newPeer(public []peer.AddrInfo, punch bool) (host.Host, *tracer, error) {
	tr := &tracer{}
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings("/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"),
		libp2p.EnableRelay(),
		unlimited,
	}
	if punch {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(tr)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	connectAll(h, public)
	return h, tr, nil
}

func direct(h host.Host, p peer.ID) network.Conn {
	for _, c := range h.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !isRelayed(c) {
			return c
		}
	}
	return nil
}

func isRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// runPunch makes n attempts, each from a fresh host (new identity, new
// ports, so new NAT mappings), parallel at a time (at most 8: the public
// hosts take 8 connections per IP address, go-libp2p's default): dial the listener
// through the relay and wait for DCUtR to leave a direct connection.
func runPunch(public []peer.AddrInfo, target peer.AddrInfo, n, parallel int, wait time.Duration) error {
	var (
		mu   sync.Mutex
		ok   int
		took []float64
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, tr, err := newPeer(public, true)
			if err != nil {
				emit(map[string]any{"attempt": i, "error": err.Error()})
				return
			}
			defer h.Close()
			ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(context.Background(), "hole punch"), 10*time.Second)
			err = h.Connect(ctx, target)
			cancel()
			if err != nil {
				emit(map[string]any{"attempt": i, "error": err.Error()})
				return
			}
			// The listener, which got the relayed connection, first dials
			// our addresses (10 s when the NAT drops it), then runs up to
			// three DCUtR rounds of up to 10 s each: the attempt has
			// failed after three failed rounds, or after wait.
			t0 := time.Now()
			for time.Since(t0) < wait {
				if ends, _ := tr.counts(); ends >= 3 {
					break
				}
				if c := direct(h, target.ID); c != nil {
					mu.Lock()
					ok++
					took = append(took, time.Since(t0).Seconds())
					mu.Unlock()
					emit(map[string]any{"attempt": i, "direct": true, "s": time.Since(t0).Seconds(), "conn": c.RemoteMultiaddr().String()})
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			ends, _ := tr.counts()
			emit(map[string]any{"attempt": i, "direct": false, "dcutr_rounds": ends, "s": time.Since(t0).Seconds()})
		}()
	}
	wg.Wait()
	slices.Sort(took)
	med := 0.0
	if len(took) > 0 {
		med = took[len(took)/2]
	}
	emit(map[string]any{"attempts": n, "successes": ok, "median_s": med})
	return nil
}

// runXfer fetches size bytes from the listener twice: through the relay
// (a host without DCUtR, so the connection stays relayed) and then
// directly (a host with DCUtR, once the hole punch left a direct
// connection).
func runXfer(public []peer.AddrInfo, target peer.AddrInfo, size int64) error {
	for _, path := range []string{"relayed", "direct"} {
		h, _, err := newPeer(public, path == "direct")
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(context.Background(), "xfer"), 10*time.Second)
		err = h.Connect(ctx, target)
		cancel()
		if err != nil {
			h.Close()
			return fmt.Errorf("%s: connect: %w", path, err)
		}
		ctx = context.Background()
		if path == "direct" {
			t0 := time.Now()
			for direct(h, target.ID) == nil {
				if time.Since(t0) > time.Minute {
					h.Close()
					return fmt.Errorf("no direct connection a minute after the relayed one")
				}
				time.Sleep(20 * time.Millisecond)
			}
		} else {
			ctx = network.WithAllowLimitedConn(ctx, "xfer")
		}
		s, err := h.NewStream(ctx, target.ID, xferProtocol)
		if err != nil {
			h.Close()
			return fmt.Errorf("%s: stream: %w", path, err)
		}
		t0 := time.Now()
		binary.Write(s, binary.BigEndian, size)
		got, err := io.Copy(io.Discard, s)
		secs := time.Since(t0).Seconds()
		if err != nil || got != size {
			h.Close()
			return fmt.Errorf("%s: got %d of %d bytes: %v", path, got, size, err)
		}
		emit(map[string]any{"path": path, "bytes": size, "s": secs, "mib_s": float64(size) / (1 << 20) / secs,
			"conn": s.Conn().RemoteMultiaddr().String()})
		s.Close()
		h.Close()
	}
	return nil
}
