package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/internal/netns"
)

// upnpMapping is one line of `upnpc -l`: "0 TCP 23456->198.19.1.2:4101 'libp2p' ” 60".
var upnpMapping = regexp.MustCompile(`(?m)^\s*\d+\s+(TCP|UDP)\s+(\d+)->([0-9.]+):(\d+)\s+'([^']*)'`)

type portMapping struct {
	proto       string
	external    int
	internalIP  string
	internal    int
	description string
}

// upnpMappings lists the gateway's mappings, as a LAN host sees them.
func upnpMappings(t *testing.T, lanHost *netns.Host, gw *netns.UPnP) ([]portMapping, string) {
	t.Helper()
	out, _ := lanHost.Output("upnpc", "-u", gw.URL, "-l")
	var list []portMapping
	for _, m := range upnpMapping.FindAllStringSubmatch(out, -1) {
		ext, _ := strconv.Atoi(m[2])
		in, _ := strconv.Atoi(m[4])
		list = append(list, portMapping{proto: m[1], external: ext, internalIP: m[3], internal: in, description: m[5]})
	}
	return list, out
}

// Port mapping on a real UPnP gateway (miniupnpd on a home router,
// p2p.nat_portmap on):
//
//  1. a miner behind the router gets a mapping for its port, is public
//     on the mapped address, and a public node that never met it dials it
//     there directly;
//  2. "a port already mapped": another LAN host holds external port 4101,
//     the miner's own port. libp2p never asks for the listen port as the
//     external one (go-libp2p's NAT manager picks a random external port
//     in 10000-65535 and keeps it), so there is no conflict to report: the
//     miner maps another port and is public on it, and its renewals stay
//     bounded (one request per transport every 20 s);
//  3. a router whose gateway refuses every mapping (it only allows
//     external port 4101, which another LAN host holds): the miner logs
//     one warning naming the refused ports and the fix, its requests stay
//     bounded, and it works through a relay.
func TestNATUPnP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight daemons in network namespaces")
	}
	net := netns.New(t)
	_, viaBoot := publicSide(t, net)
	router := net.Router("routerU", netns.EasyNAT)
	gw := router.StartUPnP(t)

	// The other LAN host takes external port 4101 for TCP and UDP before
	// the miner starts.
	squatter := router.Home("squatter")
	for _, proto := range []string{"TCP", "UDP"} {
		out, err := squatter.Output("upnpc", "-u", gw.URL, "-e", "someone else", "-a", squatter.IP.String(), "4101", "4101", proto, "600")
		if err != nil || !strings.Contains(out, "is redirected to internal") {
			t.Fatalf("the other LAN host cannot map %s 4101: %v\n%s", proto, err, out)
		}
	}
	before := gw.Requests()

	// A second router whose gateway only maps external port 4101, which
	// another LAN host holds already: it refuses everything the miner
	// behind it asks for.
	strict := net.Router("routerS", netns.EasyNAT)
	strictGW := strict.StartUPnP(t, fmt.Sprintf("allow 4101 %s 4101", strict.LAN()))
	holder := strict.Home("holder")
	for _, proto := range []string{"TCP", "UDP"} {
		out, err := holder.Output("upnpc", "-u", strictGW.URL, "-e", "someone else", "-a", holder.IP.String(), "4101", "4101", proto, "600")
		if err != nil || !strings.Contains(out, "is redirected to internal") {
			t.Fatalf("the other LAN host cannot map %s 4101 on the strict router: %v\n%s", proto, err, out)
		}
	}
	strictBefore := strictGW.Requests()

	started := time.Now()
	miner := startNATNode(t, router.Home("miner"), "miner", viaBoot("VFT_P2P_NAT_PORTMAP=true"))
	refusedMiner := startNATNode(t, strict.Home("refused"), "miner", viaBoot("VFT_P2P_NAT_PORTMAP=true"))

	var tcpPort int
	t.Run("1 the miner maps its port and is public on it", func(t *testing.T) {
		waitFor(t, 60*time.Second, "the gateway maps TCP and UDP for the miner's port 4101", func() (bool, string) {
			list, out := upnpMappings(t, miner.host, gw)
			var tcp, udp bool
			for _, m := range list {
				if m.internalIP == miner.host.IP.String() && m.internal == 4101 {
					tcp = tcp || m.proto == "TCP"
					udp = udp || m.proto == "UDP"
					if m.proto == "TCP" {
						tcpPort = m.external
					}
				}
			}
			return tcp && udp, out
		}, miner.d)
		if tcpPort == 4101 {
			t.Fatalf("the miner got external port 4101, which the other LAN host holds")
		}
		mapped := fmt.Sprintf("/ip4/%s/tcp/%d", router.IP, tcpPort)
		// A public node that has never met the miner dials the mapped
		// address: the router forwards it, no relay involved.
		probe := startNATNode(t, net.Public("probe"), "miner", natEnv(expensiveMiner, "VFT_P2P_RELAY_SERVICE=false"))
		target := mapped + "/p2p/" + miner.id
		if out, stderr, code := vftIn(t, probe.host, probe.env, "--repo", probe.repo, "swarm", "connect", target); code != 0 {
			t.Fatalf("a public node cannot dial the miner at %s: %s %s", target, out, stderr)
		}
		peers, _, _ := vftIn(t, probe.host, probe.env, "--repo", probe.repo, "peers", "--json")
		var list []api.Peer
		json.Unmarshal([]byte(peers), &list)
		direct := slices.ContainsFunc(list, func(p api.Peer) bool {
			return p.ID == miner.id && !p.Relayed && strings.HasPrefix(p.Addr, mapped) && strings.EqualFold(p.Direction, "outbound")
		})
		if !direct {
			t.Errorf("the public node has no direct outbound connection to the miner on %s:\n%s", mapped, peers)
		}
		// AutoNAT (v1) finds the node public. The mapped address is one of
		// its public address candidates; AutoNAT v2, which checks them one
		// by one, left it "unknown" in every run here (150 s), so either
		// list will do.
		waitFor(t, 150*time.Second, "the miner is public, with the mapped address "+mapped+" among its public addresses", func() (bool, string) {
			r := miner.identity(t).Reachability
			dump, _ := json.Marshal(r)
			return r != nil && r.Status == "public" && (slices.Contains(r.Reachable, mapped) || slices.Contains(r.Unknown, mapped)), string(dump)
		}, miner.d)
		t.Logf("public through UPnP %.1f s after the daemon started", time.Since(started).Seconds())
		text, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "id")
		if !strings.Contains(text, "reach    public") || !strings.Contains(text, mapped) {
			t.Errorf("vft id does not show the miner public on %s:\n%s", mapped, text)
		}
		doctor, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "doctor")
		if !hasCheck(doctor, "OK", "reachability", "public") {
			t.Errorf("vft doctor does not report the miner public:\n%s", doctor)
		}

	})

	// 2. The held port: no conflict, no storm, no crash. miniupnpd logs
	// every mapping request; over a minute and more, the miner asks for
	// at most its first mappings plus one renewal per transport every
	// 20 s (and a retry of each without a lease, for routers that refuse
	// leases, which this one does not).
	t.Run("2 a port already mapped", func(t *testing.T) {
		if wait := time.Until(started.Add(70 * time.Second)); wait > 0 {
			time.Sleep(wait)
		}
		elapsed := time.Since(started)
		requests := gw.Requests() - before
		renewals := int(elapsed/(20*time.Second)) + 1
		limit := 2 * renewals * 2
		t.Logf("the miner sent %d mapping requests in %.0f s (limit %d)", requests, elapsed.Seconds(), limit)
		if requests > limit {
			t.Errorf("%d mapping requests in %s: more than %d, a retry storm:\n%s", requests, elapsed, limit, gw.Printed())
		}
		list, out := upnpMappings(t, miner.host, gw)
		held := 0
		for _, m := range list {
			if m.external == 4101 && m.internalIP == squatter.IP.String() {
				held++
			}
		}
		if held != 2 {
			t.Errorf("the other LAN host lost its mappings of port 4101:\n%s", out)
		}
		// Still dialable directly on its mapped port, by a public node
		// that never met it. (Its AutoNAT verdict may have turned private
		// meanwhile: see docs/OPERATIONS.md, "UPnP port mapping".)
		r := miner.identity(t).Reachability
		t.Logf("the miner's reachability after %.0f s: %s", elapsed.Seconds(), r.Status)
		probe := startNATNode(t, net.Public("probe2"), "miner", natEnv(expensiveMiner, "VFT_P2P_RELAY_SERVICE=false"))
		target := fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", router.IP, tcpPort, miner.id)
		if out, stderr, code := vftIn(t, probe.host, probe.env, "--repo", probe.repo, "swarm", "connect", target); code != 0 {
			t.Errorf("a public node cannot dial the miner at %s after %s: %s %s", target, elapsed, out, stderr)
		}
		// Nothing to warn about: the miner never asked for port 4101. It
		// says once that the router maps its ports.
		log := miner.d.printed()
		if strings.Contains(log, "panic") || strings.Contains(log, "NAT port mapping failed") || strings.Contains(log, "refuses to map") {
			t.Errorf("the miner's log has a panic or a failed mapping:\n%s", log)
		}
		if n := strings.Count(log, "the router maps the listen ports"); n != 1 {
			t.Errorf("the miner logged %d times that the router maps its ports, want once:\n%s", n, log)
		}
	})

	// 3. The router refuses every mapping: one warning naming the refused
	// ports and the fix, not one per retry; requests bounded; the miner
	// runs on, private, through a relay.
	t.Run("3 the router refuses the mapping", func(t *testing.T) {
		if wait := time.Until(started.Add(70 * time.Second)); wait > 0 {
			time.Sleep(wait)
		}
		elapsed := time.Since(started)
		const line = "the router refuses to map the listen ports"
		log := refusedMiner.d.printed()
		if n := strings.Count(log, line); n != 1 {
			t.Errorf("the miner behind the refusing router logged %q %d times in %.0f s, want once:\n%s", line, n, elapsed.Seconds(), log)
		}
		if !strings.Contains(log, "p2p.nat_portmap = false") || !strings.Contains(log, "/ip4/0.0.0.0/tcp/4101") {
			t.Errorf("the refusal line does not name the port and the fix:\n%s", log)
		}
		requests := strictGW.Requests() - strictBefore
		// Each renewal (every 20 s) tries the kept port, or 3 random
		// ones, with a lease and again without: at most 8 per transport.
		limit := 8 * 2 * (int(elapsed/(20*time.Second)) + 1)
		t.Logf("the refused miner sent %d mapping requests in %.0f s (limit %d)", requests, elapsed.Seconds(), limit)
		if requests > limit {
			t.Errorf("%d mapping requests in %s: more than %d, a retry storm", requests, elapsed, limit)
		}
		waitFor(t, 60*time.Second, "the refused miner is private with a relay reservation", func() (bool, string) {
			r := refusedMiner.identity(t).Reachability
			dump, _ := json.Marshal(r)
			return r != nil && r.Status == "private" && len(r.Relays) > 0, string(dump)
		}, refusedMiner.d)
	})
}
