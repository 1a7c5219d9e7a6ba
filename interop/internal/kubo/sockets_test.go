package kubo

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestNonLoopbackSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if bad, err := NonLoopbackSockets(os.Getpid()); err != nil || len(bad) != 0 {
		t.Fatalf("with a loopback listener only: %v, %v", bad, err)
	}
	// A socket bound to every interface (as mDNS would be) sends nothing
	// but is not loopback-only.
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bad, err := NonLoopbackSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || !strings.HasPrefix(bad[0], "udp 0.0.0.0 ") {
		t.Fatalf("NonLoopbackSockets = %v, want the udp socket on 0.0.0.0", bad)
	}
}
