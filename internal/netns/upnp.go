package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// UPnP is a UPnP IGD (and NAT-PMP) gateway, Debian's miniupnpd with its
// nftables backend, running on a home router. It maps ports for the hosts
// of the router's LAN (secure mode: each host only for itself) into the
// router's own nftables table, and logs every request to Log.
type UPnP struct {
	// Log is miniupnpd's output (it runs in the foreground, -d): one line
	// per AddPortMapping / NAT-PMP request among others.
	Log string
	// URL is the gateway's description on the router's LAN side, for
	// `upnpc -u URL` (upnpc's own discovery calls a gateway whose
	// external address is in a reserved range "not connected").
	URL string

	cmd    *exec.Cmd
	exited chan struct{} // closed when miniupnpd has ended
	stun   *net.UDPConn
	once   sync.Once
}

// upnpTable is the nftables table miniupnpd fills: a forward chain that
// accepts mapped connections and the DNAT (prerouting) and SNAT
// (postrouting) chains, each jumping to the chain miniupnpd manages.
const upnpTable = `table inet miniupnpd {
	chain forward {
		type filter hook forward priority filter - 1; policy accept;
		jump forward_miniupnpd
	}
	chain forward_miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump prerouting_miniupnpd
	}
	chain prerouting_miniupnpd {
	}
	chain postrouting {
		type nat hook postrouting priority srcnat - 1; policy accept;
		jump postrouting_miniupnpd
	}
	chain postrouting_miniupnpd {
	}
}
`

// stunPort is where the router's own STUN responder listens.
const stunPort = 3478

// StartUPnP starts miniupnpd on the router: external interface eth0 (the
// WAN side), listening on the LAN bridge, secure mode, mappings allowed
// for the LAN's hosts on ports 1024-65535, NAT-PMP/PCP leases of two to ten minutes. It is stopped, and its table removed, when the test ends.
// rules, when given, replace the default permission rule ("allow
// 1024-65535 <LAN> 1024-65535"), in miniupnpd's syntax, e.g. "allow 4101
// 198.19.2.0/24 4101"; anything they do not allow is denied. It skips the
// test when miniupnpd is not installed.
//
// miniupnpd refuses to map ports when its external address is reserved,
// and the test range (198.18.0.0/15, RFC 2544) is. It accepts one when a
// STUN server answering from the address it asked sees that address
// unchanged (no NAT upstream, "port forwarding is possible"), so the
// router answers STUN itself, on its public address: the test process
// holds that socket, made inside the router's namespace.
func (r *Router) StartUPnP(t testing.TB, rules ...string) *UPnP {
	t.Helper()
	bin, err := exec.LookPath("miniupnpd")
	if err != nil {
		t.Skip("netns: miniupnpd not installed (apt-get install miniupnpd-nftables)")
	}
	n := r.net
	// The router's own filter drops forwarded traffic from the internet
	// unless it answers a LAN host; mapped ports are let in by the
	// DNAT that made them, as real routers do.
	n.run("ip", "netns", "exec", r.Name, "nft", "insert", "rule", "ip", "vftnat", "forward", "ct", "status", "dnat", "accept")
	n.runInput(upnpTable, "ip", "netns", "exec", r.Name, "nft", "-f", "-")

	if len(rules) == 0 {
		rules = []string{fmt.Sprintf("allow 1024-65535 %s 1024-65535", r.lan)}
	}
	u := &UPnP{URL: "http://" + r.gateway().String() + ":5000/rootDesc.xml"}
	u.stun, err = listenUDPIn(r.Name, &net.UDPAddr{IP: r.IP.AsSlice(), Port: stunPort})
	if err != nil {
		t.Fatalf("netns: STUN responder on %s: %v", r.Name, err)
	}
	go serveSTUN(u.stun)

	dir := t.TempDir()
	u.Log = filepath.Join(dir, "miniupnpd.log")
	conf := fmt.Sprintf(`ext_ifname=eth0
listening_ip=lan
http_port=5000
enable_natpmp=yes
enable_upnp=yes
ipv6_disable=yes
secure_mode=yes
system_uptime=no
notify_interval=10
clean_ruleset_interval=60
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=%d
min_lifetime=120
max_lifetime=600
uuid=00000000-0000-0000-0000-%012d
upnp_table_name=miniupnpd
upnp_nat_table_name=miniupnpd
upnp_forward_chain=forward_miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
%s
deny 0-65535 0.0.0.0/0 0-65535
`, r.IP, stunPort, r.index, strings.Join(rules, "\n"))
	confPath := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(u.Log)
	if err != nil {
		t.Fatal(err)
	}
	u.cmd = r.Command(bin, "-d", "-f", confPath, "-P", filepath.Join(dir, "miniupnpd.pid"))
	u.cmd.Stdout, u.cmd.Stderr = logFile, logFile
	if err := u.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("netns: start miniupnpd on %s: %v", r.Name, err)
	}
	u.exited = make(chan struct{})
	go func() {
		u.cmd.Wait()
		close(u.exited)
	}()
	// Registered after New's cleanup, so it runs first: miniupnpd stops
	// (removing its rules) before its namespace goes.
	t.Cleanup(func() {
		u.Stop()
		logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(u.Log)
			t.Logf("miniupnpd on %s:\n%s", r.Name, out)
		}
	})
	// Ready once its STUN check has let it map ports; it exits at once
	// on a bad configuration.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(u.Printed(), "Port forwarding is now enabled") {
		select {
		case <-u.exited:
			t.Fatalf("netns: miniupnpd on %s exited at start:\n%s", r.Name, u.Printed())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("netns: miniupnpd on %s does not map ports after 15 s:\n%s", r.Name, u.Printed())
		}
	}
	return u
}

// Stop ends miniupnpd and the STUN responder; it is safe to call twice.
func (u *UPnP) Stop() {
	u.once.Do(func() {
		if u.cmd != nil && u.cmd.Process != nil {
			u.cmd.Process.Signal(unix.SIGTERM)
			select {
			case <-u.exited:
			case <-time.After(5 * time.Second):
				u.cmd.Process.Kill()
				<-u.exited
			}
		}
		if u.stun != nil {
			u.stun.Close()
		}
	})
}

// Printed is what miniupnpd has logged so far.
func (u *UPnP) Printed() string {
	out, _ := os.ReadFile(u.Log)
	return string(out)
}

// Requests counts the mapping requests miniupnpd has received so far
// (UPnP AddPortMapping / AddAnyPortMapping and NAT-PMP/PCP map requests).
func (u *UPnP) Requests() int {
	count := 0
	for _, line := range strings.Split(u.Printed(), "\n") {
		if strings.Contains(line, "AddPortMapping: ext port") || strings.Contains(line, "AddAnyPortMapping: ext port") ||
			strings.Contains(line, "NAT-PMP port mapping request") || strings.Contains(line, "PCP MAP: adding") {
			count++
		}
	}
	return count
}

// listenUDPIn opens a UDP socket in namespace ns: a socket stays in the
// namespace it was made in, so the test process can serve it from the
// root namespace without any address there.
func listenUDPIn(ns string, addr *net.UDPAddr) (*net.UDPConn, error) {
	var conn *net.UDPConn
	err := inNamespace(ns, func() (err error) {
		conn, err = net.ListenUDP("udp4", addr)
		return err
	})
	return conn, err
}

// ListenTCP opens a TCP listener inside the host's namespace, served by
// the test process (a socket stays in the namespace it was made in).
func (h *Host) ListenTCP(port int) (net.Listener, error) {
	var l net.Listener
	err := inNamespace(h.Name, func() (err error) {
		l, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: h.IP.AsSlice(), Port: port})
		return err
	})
	return l, err
}

// DialTCP connects from inside the host's namespace.
func (h *Host) DialTCP(addr string) (net.Conn, error) {
	var c net.Conn
	err := inNamespace(h.Name, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	return c, err
}

// inNamespace runs f on an OS thread of its own that has entered
// namespace ns, and returns that thread to the root namespace after.
func inNamespace(ns string, f func() error) error {
	done := make(chan error, 1)
	// A goroutine of its own, so that if returning to the root namespace
	// fails, its locked thread ends with it instead of running other code
	// in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		fErr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("return from namespace %s: %w (after: %v)", ns, err, fErr)
			return // the thread stays locked and ends here
		}
		runtime.UnlockOSThread()
		done <- fErr
	}()
	return <-done
}

// serveSTUN answers STUN binding requests (RFC 5389) with the address and
// port they came from, from the address they were sent to, whatever
// CHANGE-REQUEST asks: to miniupnpd's test that means no NAT and no
// filtering between it and the internet, which is true of the router.
func serveSTUN(conn *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		if n < 20 || buf[0] != 0x00 || buf[1] != 0x01 {
			continue // not a binding request
		}
		ip4 := from.IP.To4()
		if ip4 == nil {
			continue
		}
		resp := make([]byte, 20+12)
		binary.BigEndian.PutUint16(resp[0:], 0x0101)  // binding success response
		binary.BigEndian.PutUint16(resp[2:], 12)      // attributes' length
		copy(resp[4:20], buf[4:20])                   // magic cookie and transaction ID
		binary.BigEndian.PutUint16(resp[20:], 0x0001) // MAPPED-ADDRESS
		binary.BigEndian.PutUint16(resp[22:], 8)
		resp[24], resp[25] = 0, 1 // IPv4
		binary.BigEndian.PutUint16(resp[26:], uint16(from.Port))
		copy(resp[28:], ip4)
		conn.WriteToUDP(resp, from)
	}
}

// LAN is the router's home network, for permission rules.
func (r *Router) LAN() netip.Prefix { return r.lan }
