package netns

import (
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A LAN host asks the router's miniupnpd for a port mapping with upnpc
// (miniupnpc), sees it listed, and a host on the public segment reaches
// the LAN host's listener through the router's public address and the
// mapped port.
func TestUPnPMapsAPort(t *testing.T) {
	if _, err := exec.LookPath("upnpc"); err != nil {
		t.Skip("upnpc not installed (apt-get install miniupnpc)")
	}
	n := New(t)
	router := n.Router("router", EasyNAT)
	gw := router.StartUPnP(t)
	lanHost := router.Home("lan")
	outside := n.Public("outside")

	l, err := lanHost.ListenTCP(4101)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", lanHost.IP)
			c.Close()
		}
	}()

	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		// miniupnpd answers once its STUN check says its address is public.
		out, err = lanHost.Output("upnpc", "-u", gw.URL, "-e", "vft test", "-a", lanHost.IP.String(), "4101", "14101", "TCP", "120")
		if err == nil && strings.Contains(out, "is redirected to internal") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upnpc -a: %v\n%s\n--- miniupnpd:\n%s", err, out, gw.Printed())
		}
		time.Sleep(500 * time.Millisecond)
	}
	list, _ := lanHost.Output("upnpc", "-u", gw.URL, "-l")
	if !strings.Contains(list, "14101->"+lanHost.IP.String()+":4101") {
		t.Errorf("upnpc -l does not list the mapping 14101->%s:4101:\n%s", lanHost.IP, list)
	}
	if !strings.Contains(list, "ExternalIPAddress = "+router.IP.String()) {
		t.Errorf("the gateway does not give the router's public address %s:\n%s", router.IP, list)
	}
	if gw.Requests() != 1 {
		t.Errorf("miniupnpd logged %d mapping requests, want 1:\n%s", gw.Requests(), gw.Printed())
	}

	c, err := outside.DialTCP(fmt.Sprintf("%s:14101", router.IP))
	if err != nil {
		t.Fatalf("dial the mapped port from the public segment: %v\n--- nft:\n%s", err, nftRuleset(router))
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if want := fmt.Sprintf("hello from %s\n", lanHost.IP); string(got) != want {
		t.Errorf("through the mapping: got %q, want %q", got, want)
	}
}

func nftRuleset(h *Router) string {
	out, _ := h.Output("nft", "list", "ruleset")
	return out
}
