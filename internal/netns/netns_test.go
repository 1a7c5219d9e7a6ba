package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the program run inside namespaces:
// NETNS_HELPER=serve:ADDR answers each TCP connection with the address it
// came from (what a peer "observes"); NETNS_HELPER=dial:PORT:A,B dials each
// address from local port PORT and prints what it was told.
func TestMain(m *testing.M) {
	if mode := os.Getenv("NETNS_HELPER"); mode != "" {
		if err := helper(mode); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helper(mode string) error {
	kind, arg, _ := strings.Cut(mode, ":")
	switch kind {
	case "serve":
		var lns []net.Listener
		for _, addr := range strings.Split(arg, ",") {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			lns = append(lns, ln)
		}
		fmt.Println("ready")
		for _, ln := range lns[1:] {
			go serveObserved(ln)
		}
		serveObserved(lns[0])
	case "dial":
		port, addrs, _ := strings.Cut(arg, ":")
		for _, addr := range strings.Split(addrs, ",") {
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{Port: atoi(port)}, Control: reusePort}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				fmt.Println("error", err)
				continue
			}
			seen, _ := io.ReadAll(c)
			c.Close()
			fmt.Println(strings.TrimSpace(string(seen)))
		}
	case "rtt": // rtt:ADDR: the shortest of 5 TCP connects, in µs
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			c, err := net.DialTimeout("tcp", arg, 5*time.Second)
			if err != nil {
				return err
			}
			best = min(best, time.Since(start))
			io.ReadAll(c)
			c.Close()
		}
		fmt.Println(best.Microseconds())
	case "udpecho": // udpecho:ADDR: send every datagram back
		pc, err := net.ListenPacket("udp", arg)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return err
			}
			pc.WriteTo(buf[:n], from)
		}
	case "udpcount": // udpcount:ADDR:N: how many of N datagrams come back
		i := strings.LastIndex(arg, ":")
		addr, count := arg[:i], arg[i+1:]
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		back, buf := 0, make([]byte, 2048)
		for i := range atoi(count) {
			fmt.Fprintf(c, "%d", i)
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == fmt.Sprint(i) {
				back++
			}
		}
		fmt.Println(back)
	case "sink": // sink:ADDR: read every connection to its end
		ln, err := net.Listen("tcp", arg)
		if err != nil {
			return err
		}
		fmt.Println("ready")
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	case "send": // send:ADDR:MiB: seconds to send MiB mebibytes
		i := strings.LastIndex(arg, ":")
		addr, mib := arg[:i], arg[i+1:]
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		start := time.Now()
		for range atoi(mib) {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		c.(*net.TCPConn).CloseWrite()
		io.ReadAll(c) // the sink has read everything when it closes
		fmt.Printf("%.3f\n", time.Since(start).Seconds())
	}
	return nil
}

func serveObserved(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintln(c, c.RemoteAddr().String())
		c.Close()
	}
}

func reusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		if serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		}
	})
	return serr
}

func atoi(s string) int {
	var n int
	fmt.Sscanf(s, "%d", &n)
	return n
}

// helperCmd runs this test binary inside h as a helper.
func helperCmd(h *Host, mode string) *exec.Cmd {
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETNS_HELPER="+mode)
	return cmd
}

// The network behaves as the internet and home routers do: a home host
// reaches a public server, which sees the router's address; the easy NAT
// keeps one external port for one internal port whatever the destination,
// the symmetric one does not; nothing outside can open a connection to a
// home host; and nothing of it is left once the test ends.
func TestHomeRoutersTranslate(t *testing.T) {
	n := New(t)
	server := n.Public("server")
	easy, sym := n.Router("easy", EasyNAT), n.Router("sym", SymmetricNAT)
	behindEasy, behindSym := easy.Home("a"), sym.Home("b")

	srv := helperCmd(server, "serve:0.0.0.0:9000,0.0.0.0:9001")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("server did not start: %q", line)
	}

	observed := func(h *Host) []string {
		t.Helper()
		targets := fmt.Sprintf("%s:9000,%s:9001", server.IP, server.IP)
		got, err := helperCmd(h, "dial:40000:"+targets).Output()
		if err != nil {
			t.Fatalf("dial from %s: %v", h.Name, err)
		}
		return strings.Fields(string(got))
	}
	if got := observed(behindEasy); len(got) != 2 || got[0] != easy.IP.String()+":40000" || got[1] != got[0] {
		t.Errorf("behind the easy NAT the server saw %v, want %s:40000 twice", got, easy.IP)
	}
	got := observed(behindSym)
	if len(got) != 2 || !strings.HasPrefix(got[0], sym.IP.String()+":") || !strings.HasPrefix(got[1], sym.IP.String()+":") {
		t.Fatalf("behind the symmetric NAT the server saw %v, want %s with some port", got, sym.IP)
	}
	if got[0] == got[1] {
		t.Errorf("the symmetric NAT mapped one local port to one external port %s for two destinations", got[0])
	}

	// Unsolicited connections from the internet do not reach home hosts.
	for _, target := range []string{behindEasy.IP.String() + ":9000", easy.IP.String() + ":40000"} {
		res, _ := helperCmd(server, "dial:0:"+target).Output()
		if !strings.HasPrefix(string(res), "error") {
			t.Errorf("the public server reached %s: %s", target, res)
		}
		if target == easy.IP.String()+":40000" && !strings.Contains(string(res), "timeout") {
			t.Errorf("the router answered an unsolicited connection instead of dropping it: %s", res)
		}
	}
}

// A namespace left by a process that no longer runs is removed by the next
// New; the namespaces of a live process are not touched.
func TestStaleNamespacesRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// PID 1 always runs; a PID above pid_max never does.
	stale, live := prefix+"4194305-old", prefix+"1-live"
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("ip netns add: %v: %s", err, out)
		}
	}
	t.Cleanup(func() { deleteNS(live); deleteNS(stale) })
	New(t)
	list, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(list), stale) {
		t.Errorf("stale namespace %s still there:\n%s", stale, list)
	}
	if !strings.Contains(string(list), live) {
		t.Errorf("namespace %s of a live process was removed", live)
	}
}

// startHelper runs a helper that prints "ready" once it listens, and stops
// it when the test ends.
func startHelper(t *testing.T, h *Host, mode string) {
	t.Helper()
	cmd := helperCmd(h, mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper %s in %s did not start: %q", mode, h.Name, line)
	}
}

// helperOutput runs a helper to its end and returns what it printed.
func helperOutput(t *testing.T, h *Host, mode string) string {
	t.Helper()
	out, err := helperCmd(h, mode).CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s in %s: %v: %s", mode, h.Name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Delay and loss work without sch_netem: 10 ms on each end of a path make
// a TCP connect (one round trip) take at least 15 ms, even between a home
// host and a public one through a NAT router whose WAN side is shaped, and
// a lossy link loses datagrams. Only lower bounds: a loaded machine adds
// time, never removes it.
func TestShapeDelaysAndLoses(t *testing.T) {
	n := New(t)
	a, b := n.Public("a"), n.Public("b")
	startHelper(t, b, "serve:0.0.0.0:9000")
	startHelper(t, b, "udpecho:0.0.0.0:9001")
	target := fmt.Sprintf("%s:9000", b.IP)
	rtt := func(from *Host) time.Duration {
		t.Helper()
		us, err := strconv.Atoi(helperOutput(t, from, "rtt:"+target))
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(us) * time.Microsecond
	}
	t.Logf("connect before shaping: %v", rtt(a))

	a.Shape(Shaping{Delay: 10 * time.Millisecond})
	b.Shape(Shaping{Delay: 10 * time.Millisecond})
	if got := rtt(a); got < 15*time.Millisecond {
		t.Errorf("with 10 ms on both ends a TCP connect took %v, want ≥ 15 ms", got)
	} else {
		t.Logf("connect with 10 ms each way: %v", got)
	}

	// A router's WAN side, as bench/natbench shapes it: the home host's
	// round trip to b crosses the router's delay and b's.
	r := n.Router("r", EasyNAT)
	home := r.Home("home")
	r.Shape(Shaping{Delay: 10 * time.Millisecond})
	if got := rtt(home); got < 15*time.Millisecond {
		t.Errorf("through a shaped router a TCP connect took %v, want ≥ 15 ms", got)
	}

	// Loss on a's way out: about 30% of the datagrams (or their replies'
	// ARP) never come back. Any loss at all shows it works; none of 100
	// lost would happen with probability 0.7^100.
	a.Shape(Shaping{LossPercent: 30})
	back, err := strconv.Atoi(helperOutput(t, a, fmt.Sprintf("udpcount:%s:9001:100", b.IP)))
	if err != nil {
		t.Fatal(err)
	}
	if back >= 100 || back == 0 {
		t.Errorf("with 30%% loss %d of 100 datagrams came back, want some but not all", back)
	}
	t.Logf("30%% loss: %d of 100 datagrams came back", back)
	a.Shape(Shaping{})
	if got := helperOutput(t, a, fmt.Sprintf("udpcount:%s:9001:20", b.IP)); got != "20" {
		t.Errorf("after Shaping{} %s of 20 datagrams came back, want all", got)
	}

	// Cut and Heal work on a shaped link as on a veth pair.
	a.Cut()
	// (the send fails outright: with eth0 down b is unreachable)
	out, _ := helperCmd(a, fmt.Sprintf("udpcount:%s:9001:5", b.IP)).CombinedOutput()
	if back, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && back > 0 {
		t.Errorf("after Cut %d of 5 datagrams came back, want none", back)
	}
	a.Heal()
	if got := helperOutput(t, a, fmt.Sprintf("udpcount:%s:9001:20", b.IP)); got != "20" {
		t.Errorf("after Heal %s of 20 datagrams came back, want all", got)
	}
}

// Bad shaping is refused with the value named.
func TestShapeRejectsBadValues(t *testing.T) {
	for _, s := range []Shaping{{Delay: -time.Millisecond}, {LossPercent: 101}, {LossPercent: -1}, {RateKbit: -5}} {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			ft := &fatalRecorder{TB: t}
			h := &Host{Name: "x", net: &Net{t: ft}}
			func() {
				defer func() { recover() }()
				h.Shape(s)
			}()
			if !strings.Contains(ft.msg, "Shape(") || !strings.Contains(ft.msg, "want") {
				t.Errorf("Shape(%+v) failed with %q, want the value and what to use", s, ft.msg)
			}
		})
	}
}

type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

// TestShapedLinkThroughput measures what a link carries: the plain veth
// pair, the TAP link with no delay (the forwarder's own cost) and with
// 10 ms on each end. A measurement (VFT_NETNS_BENCH=1), not a test; the
// figures are in docs/BENCHMARKS.md.
func TestShapedLinkThroughput(t *testing.T) {
	if os.Getenv("VFT_NETNS_BENCH") == "" {
		t.Skip("a measurement: VFT_NETNS_BENCH=1")
	}
	mib := 256
	if v := os.Getenv("VFT_NETNS_BENCH_MIB"); v != "" {
		mib = atoi(v)
	}
	n := New(t)
	a, b := n.Public("a"), n.Public("b")
	startHelper(t, b, "sink:0.0.0.0:9000")
	send := func(label string) {
		t.Helper()
		secs, err := strconv.ParseFloat(helperOutput(t, a, fmt.Sprintf("send:%s:9000:%d", b.IP, mib)), 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-28s %d MiB in %.2f s: %.0f MiB/s", label, mib, secs, float64(mib)/secs)
	}
	send("veth pair")
	a.Shape(Shaping{})
	a.useTap()
	b.useTap()
	send("TAP link, no delay")
	a.Shape(Shaping{Delay: 10 * time.Millisecond})
	b.Shape(Shaping{Delay: 10 * time.Millisecond})
	send("TAP link, 10 ms each way")
}
