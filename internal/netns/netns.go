// Package netns builds small test networks out of Linux network
// namespaces: a "public" segment (a bridge standing for the internet) and
// home routers that masquerade with nftables, either as an easy,
// endpoint-independent NAT or as a symmetric one. Real processes run
// inside a namespace through Host.Command (`ip netns exec`), so the kernel
// routes, translates and drops their packets as a router at home would.
//
// Every address is in 198.18.0.0/15, the benchmarking range (RFC 2544):
// the public segment is 198.18.0.0/24 and home network i is
// 198.19.i.0/24. Nothing is created in the root namespace: veth pairs are
// made inside the namespaces they join, and New checks beforehand that the
// root namespace has no address or route in that range. Everything is
// removed in t.Cleanup, even when the test fails; namespaces a crashed run
// left behind (their name carries the dead test process's PID) are removed
// by the next New.
//
// Delay and loss are made in user space (Host.Shape, taplink.go), so they
// need no sch_netem, only TAP devices (/dev/net/tun).
//
// It needs root, iproute2 and nftables; without them New skips the test.
// Router.StartUPnP (upnp.go) runs a UPnP/NAT-PMP gateway, miniupnpd, on a
// router; without miniupnpd it skips the test.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// prefix starts the name of every namespace this package makes; the PID
// of the test process follows, so stale ones can be told from live ones.
const prefix = "vftn-"

// TestRange holds every address of a test network.
var TestRange = netip.MustParsePrefix("198.18.0.0/15")

// NAT is how a home router translates.
type NAT int

const (
	// EasyNAT keeps a LAN host's source port where it can and maps one
	// internal endpoint to one external endpoint for every destination
	// (endpoint-independent mapping): hole punching works.
	EasyNAT NAT = iota
	// SymmetricNAT picks a random external port for every new connection
	// (endpoint-dependent mapping): the port a relay saw is not the port a
	// peer would reach, so hole punching fails.
	SymmetricNAT
)

func (n NAT) String() string {
	if n == SymmetricNAT {
		return "symmetric"
	}
	return "easy"
}

// Net is one test network.
type Net struct {
	t      testing.TB
	id     string // PID-based part of every name
	public string // the namespace holding the public bridge

	mu       sync.Mutex
	made     []string // namespaces, in creation order
	nextPub  int      // last octet of the next public address
	routers  int
	veths    int
	nextHost map[string]int
	links    []*tapLink // user-space links made by Shape, closed before the namespaces go
}

// Host is one machine of the network: a namespace with one interface,
// eth0, and a default route (behind a router) or none (on the public
// segment, which is all of "the internet" here).
type Host struct {
	Name string     // namespace name
	IP   netip.Addr // eth0's address
	net  *Net

	// Where eth0 is plugged, so that Shape can replace the link: the
	// namespace and bridge of the switch, and the default gateway (none on
	// the public segment).
	switchNS, bridge string
	gateway          netip.Addr
	link             *tapLink // set once Shape made eth0 a delayed TAP link
	rated            bool     // eth0 has a tbf from Shape
}

// Router is a home router: its WAN side is on the public segment, its LAN
// side a bridge with the hosts behind it.
type Router struct {
	Host  // the router's own namespace; IP is its public address
	NAT   NAT
	lan   netip.Prefix
	index int
}

// New builds the public segment. It skips the test when it cannot run
// (not root, no ip or nft), and fails it when the root namespace already
// uses the test range.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: needs root (network namespaces); CI runs as root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns: %s not installed (apt-get install iproute2 nftables)", tool)
		}
	}
	if err := checkRootClean(); err != nil {
		t.Fatal(err)
	}
	removeStale(t)
	n := &Net{t: t, id: strconv.Itoa(os.Getpid()), nextPub: 2, nextHost: map[string]int{}}
	t.Cleanup(n.close)
	n.public = n.name("pub")
	n.addNS(n.public)
	n.run("ip", "-n", n.public, "link", "add", "br0", "type", "bridge")
	n.run("ip", "-n", n.public, "link", "set", "br0", "up")
	return n
}

// name makes a namespace name unique to this test process.
func (n *Net) name(role string) string {
	return fmt.Sprintf("%s%s-%s", prefix, n.id, role)
}

// addNS creates a namespace with its loopback up and records it for
// cleanup.
func (n *Net) addNS(name string) {
	n.run("ip", "netns", "add", name)
	n.mu.Lock()
	n.made = append(n.made, name)
	n.mu.Unlock()
	n.run("ip", "-n", name, "link", "set", "lo", "up")
}

// Public adds a host on the public segment, like a server with a public IP.
func (n *Net) Public(role string) *Host {
	n.t.Helper()
	h := &Host{Name: n.name(role), net: n, switchNS: n.public, bridge: "br0"}
	n.addNS(h.Name)
	h.IP = n.nextPublicIP()
	n.plug(h.Name, "eth0", n.public, "br0", netip.PrefixFrom(h.IP, 24))
	return h
}

// Router adds a home router on the public segment with an empty LAN
// (198.19.i.0/24) behind it.
func (n *Net) Router(role string, nat NAT) *Router {
	n.t.Helper()
	n.mu.Lock()
	n.routers++
	index := n.routers
	n.mu.Unlock()
	r := &Router{Host: Host{Name: n.name(role), net: n, switchNS: n.public, bridge: "br0"}, NAT: nat, index: index,
		lan: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(index), 0}), 24)}
	n.addNS(r.Name)
	r.IP = n.nextPublicIP()
	n.plug(r.Name, "eth0", n.public, "br0", netip.PrefixFrom(r.IP, 24))
	n.run("ip", "-n", r.Name, "link", "add", "lan", "type", "bridge")
	n.run("ip", "-n", r.Name, "addr", "add", netip.PrefixFrom(r.gateway(), 24).String(), "dev", "lan")
	n.run("ip", "-n", r.Name, "link", "set", "lan", "up")
	n.run("ip", "netns", "exec", r.Name, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	masquerade := "masquerade"
	if nat == SymmetricNAT {
		masquerade = "masquerade random"
	}
	// A home router: LAN hosts reach out (translated); the internet gets
	// in only as replies to what they sent. Anything else from the internet
	// is dropped silently, as home routers do: a reset would abort the
	// simultaneous open of a hole punch whose first packet arrives before
	// the other side's has left.
	ruleset := fmt.Sprintf(`table ip vftnat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" ip saddr %s %s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "eth0" accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "eth0" ct state established,related accept
		iifname "eth0" drop
	}
}
`, r.lan, masquerade)
	n.runInput(ruleset, "ip", "netns", "exec", r.Name, "nft", "-f", "-")
	return r
}

func (r *Router) gateway() netip.Addr {
	return netip.AddrFrom4([4]byte{198, 19, byte(r.index), 1})
}

// Home adds a host on the router's LAN, with the router as its gateway.
func (r *Router) Home(role string) *Host {
	n := r.net
	n.t.Helper()
	h := &Host{Name: n.name(role), net: n, switchNS: r.Name, bridge: "lan", gateway: r.gateway()}
	n.addNS(h.Name)
	n.mu.Lock()
	n.nextHost[r.Name]++
	octet := 1 + n.nextHost[r.Name]
	n.mu.Unlock()
	h.IP = netip.AddrFrom4([4]byte{198, 19, byte(r.index), byte(octet)})
	n.plug(h.Name, "eth0", r.Name, "lan", netip.PrefixFrom(h.IP, 24))
	n.run("ip", "-n", h.Name, "route", "add", "default", "via", r.gateway().String())
	return h
}

// nextPublicIP hands out 198.18.0.2, .3, ...
func (n *Net) nextPublicIP() netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nextPub > 254 {
		n.t.Fatal("netns: the public segment is full (253 hosts)")
	}
	ip := netip.AddrFrom4([4]byte{198, 18, 0, byte(n.nextPub)})
	n.nextPub++
	return ip
}

// plug joins namespace ns to bridge in namespace switchNS with a veth pair
// made inside ns (the root namespace never holds either end), and gives
// ns's end the name ifname and the address addr.
func (n *Net) plug(ns, ifname, switchNS, bridge string, addr netip.Prefix) {
	n.mu.Lock()
	n.veths++
	peer := fmt.Sprintf("veth%d", n.veths)
	n.mu.Unlock()
	n.run("ip", "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", peer, "netns", switchNS)
	n.run("ip", "-n", switchNS, "link", "set", peer, "master", bridge)
	n.run("ip", "-n", switchNS, "link", "set", peer, "up")
	n.run("ip", "-n", ns, "addr", "add", addr.String(), "dev", ifname)
	n.run("ip", "-n", ns, "link", "set", ifname, "up")
}

// Command runs name with args inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Shaping is what Shape does to a host's outgoing traffic.
type Shaping struct {
	Delay       time.Duration
	LossPercent float64
	RateKbit    int // 0: no rate limit
}

// Shape slows the host's traffic out of eth0, like
// `tc qdisc replace dev eth0 root netem delay 10ms loss 1% rate 8000kbit`
// would, on any kernel with TAP devices (CONFIG_TUN), netem or not:
//   - Delay and LossPercent: the first time either is asked for, eth0
//     becomes a TAP device whose frames a forwarder in the test process
//     holds for Delay and drops LossPercent of (taplink.go) on their way
//     to the switch; what the host receives is not touched. Shaping a
//     host at both ends of a path with Delay d gives a round trip of 2d.
//     The address, MAC and default route stay as they were.
//   - RateKbit: tc tbf on eth0 (0: none).
//
// Each call replaces the previous shaping; Shaping{} takes it all away
// (the TAP link stays, passing frames at once). Call it before the
// host's connections matter: replacing the link drops what is in flight.
func (h *Host) Shape(s Shaping) {
	n := h.net
	n.t.Helper()
	if s.Delay < 0 || s.LossPercent < 0 || s.LossPercent > 100 || s.RateKbit < 0 {
		n.t.Fatalf("netns: Shape(%+v) on %s: want Delay ≥ 0, LossPercent in [0, 100] and RateKbit ≥ 0", s, h.Name)
	}
	if h.link == nil && (s.Delay > 0 || s.LossPercent > 0) {
		h.useTap()
	}
	if h.link != nil {
		h.link.set(s)
	}
	if s.RateKbit > 0 {
		n.run("tc", "-n", h.Name, "qdisc", "replace", "dev", "eth0", "root", "tbf",
			"rate", fmt.Sprintf("%dkbit", s.RateKbit), "burst", "64kb", "latency", "1s")
		h.rated = true
	} else if h.rated {
		n.run("tc", "-n", h.Name, "qdisc", "del", "dev", "eth0", "root")
		h.rated = false
	}
}

// useTap replaces the host's veth pair with two TAP devices joined by a
// forwarder: eth0 in the host's namespace (same MAC, address and route)
// and its bridge port in the switch's.
func (h *Host) useTap() {
	n := h.net
	n.t.Helper()
	info, err := showLink(h.Name, "eth0")
	if err != nil {
		n.t.Fatalf("netns: %v", err)
	}
	n.mu.Lock()
	n.veths++
	port := fmt.Sprintf("tap%d", n.veths)
	n.mu.Unlock()
	n.run("ip", "-n", h.Name, "link", "del", "eth0") // both ends of the veth pair
	hostEnd, err := openTap(h.Name, "eth0")
	if err != nil {
		n.t.Fatalf("netns: shaping %s: %v", h.Name, err)
	}
	switchEnd, err := openTap(h.switchNS, port)
	if err != nil {
		hostEnd.Close()
		n.t.Fatalf("netns: shaping %s: %v", h.Name, err)
	}
	l := &tapLink{host: hostEnd, sw: switchEnd, done: make(chan struct{})}
	n.mu.Lock()
	n.links = append(n.links, l)
	n.mu.Unlock()
	l.start()
	h.link = l
	n.run("ip", "-n", h.switchNS, "link", "set", port, "master", h.bridge)
	n.run("ip", "-n", h.switchNS, "link", "set", port, "up")
	n.run("ip", "-n", h.Name, "link", "set", "eth0", "address", info.Address)
	for _, a := range info.AddrInfo {
		if a.Family == "inet" {
			n.run("ip", "-n", h.Name, "addr", "add", fmt.Sprintf("%s/%d", a.Local, a.PrefixLen), "dev", "eth0")
		}
	}
	n.run("ip", "-n", h.Name, "link", "set", "eth0", "up")
	if h.gateway.IsValid() {
		n.run("ip", "-n", h.Name, "route", "add", "default", "via", h.gateway.String())
	}
}

// Cut takes the host's link down (a partition); Heal brings it back.
func (h *Host) Cut()  { h.net.run("ip", "-n", h.Name, "link", "set", "eth0", "down") }
func (h *Host) Heal() { h.net.run("ip", "-n", h.Name, "link", "set", "eth0", "up") }

// Output runs a command inside the host's namespace and returns its
// combined output.
func (h *Host) Output(name string, args ...string) (string, error) {
	out, err := h.Command(name, args...).CombinedOutput()
	return string(out), err
}

func (n *Net) run(name string, args ...string) {
	n.t.Helper()
	n.runInput("", name, args...)
}

func (n *Net) runInput(stdin, name string, args ...string) {
	n.t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("netns: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// close stops what still runs in the namespaces and deletes them, last
// made first.
func (n *Net) close() {
	n.mu.Lock()
	made := append([]string(nil), n.made...)
	links := n.links
	n.links = nil
	n.mu.Unlock()
	// The forwarders first: an open TAP device keeps its namespace alive
	// after `ip netns del`.
	for _, l := range links {
		l.close()
	}
	for i := len(made) - 1; i >= 0; i-- {
		if err := deleteNS(made[i]); err != nil {
			n.t.Errorf("netns: %v", err)
		}
	}
	if err := checkRootClean(); err != nil {
		n.t.Errorf("netns: after the test: %v", err)
	}
}

// deleteNS kills the processes left in ns (they can only have been
// started there by a test) and deletes it.
func deleteNS(ns string) error {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("delete namespace %s: %v: %s", ns, err, out)
	}
	return nil
}

// removeStale deletes namespaces of this package whose test process is
// gone: a run that crashed or was killed before its cleanup.
func removeStale(t testing.TB) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || processAlive(pid) {
			continue
		}
		if err := deleteNS(name); err != nil {
			t.Logf("netns: stale namespace: %v", err)
		} else {
			t.Logf("netns: removed %s, left by an earlier run (process %d is gone)", name, pid)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// checkRootClean fails if the root namespace has an address or a route in
// the test range: the test network would then touch the real one.
func checkRootClean() error {
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				p, err := netip.ParsePrefix(f)
				if err != nil {
					a, aerr := netip.ParseAddr(f)
					if aerr != nil {
						continue
					}
					p = netip.PrefixFrom(a, 32)
				}
				if p.Addr().Is4() && TestRange.Overlaps(p) {
					return fmt.Errorf("the root namespace already uses %s (%s): the test network would overlap it; remove it or run elsewhere", TestRange, bytes.TrimSpace([]byte(line)))
				}
			}
		}
	}
	return nil
}
