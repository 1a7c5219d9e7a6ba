package netns

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
