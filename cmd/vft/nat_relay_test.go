package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/internal/netns"
)

// 4. The relay is killed: the miner finds another one. The miner behind
// NAT keeps reservations on two relays (the bootstrap node and relay2);
// once it holds both, a third public relay joins, and the processes of
// both relays the miner holds are killed (SIGKILL: no goodbye). The miner,
// its bootstrap node gone, must find the third relay among the peers it
// still knows and take a reservation there; it is then reachable through
// it: a submitter behind another NAT that joins through the third relay
// (it never knew the dead ones) gets a job done by the miner.
func TestNATRelayKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight daemons in network namespaces")
	}
	net := netns.New(t)
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	boot, viaBoot := publicSide(t, net)
	relay2 := startNATNode(t, net.Public("relay2"), "miner", viaBoot(expensiveMiner, "VFT_P2P_REACHABILITY=public"))
	miner := startNATNode(t, net.Router("routerA", netns.EasyNAT).Home("miner"), "miner", viaBoot())
	waitFor(t, 90*time.Second, "the miner behind NAT is private with reservations on the bootstrap relay and relay2", func() (bool, string) {
		r := miner.identity(t).Reachability
		dump, _ := json.Marshal(r)
		return r != nil && r.Status == "private" && slices.Contains(r.Relays, boot.id) && slices.Contains(r.Relays, relay2.id), string(dump)
	}, miner.d)
	relay3 := startNATNode(t, net.Public("relay3"), "miner", natEnv(expensiveMiner, "VFT_P2P_REACHABILITY=public", "VFT_P2P_BOOTSTRAP="+relay2.addr()))
	waitFor(t, 60*time.Second, "the miner is connected to relay3", func() (bool, string) {
		out, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "peers", "--json")
		return strings.Contains(out, relay3.id), out
	}, nil)

	killed := time.Now()
	for _, n := range []*natNode{boot, relay2} {
		n.d.cmd.Process.Kill()
		n.d.cmd.Wait()
	}
	var r = miner.identity(t).Reachability
	waitFor(t, 90*time.Second, "the miner holds a reservation on relay3 and none on the killed relays", func() (bool, string) {
		r = miner.identity(t).Reachability
		dump, _ := json.Marshal(r)
		return r.Status == "private" && slices.Contains(r.Relays, relay3.id) && !slices.Contains(r.Relays, boot.id) && !slices.Contains(r.Relays, relay2.id), string(dump)
	}, miner.d)
	t.Logf("reservations %v %s after the relays were killed", r.Relays, time.Since(killed).Round(time.Second))
	text, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "id")
	if !strings.Contains(text, "relay    /ip4/"+relay3.host.IP.String()) {
		t.Errorf("vft id does not show the new relay's address:\n%s", text)
	}

	// Reachable through the new relay: a new submitter behind another NAT
	// knows only relay3.
	submitter := startNATNode(t, net.Router("routerB", netns.EasyNAT).Home("submitter"), "light", natEnv("VFT_P2P_BOOTSTRAP="+relay3.addr()))
	waitFor(t, 90*time.Second, "the new submitter's network table lists the miner behind NAT", func() (bool, string) {
		out, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "nodes", "--json")
		return strings.Contains(out, miner.id), out
	}, nil)
	runWordcountOn(t, submitter, miner, module, "job submitted after the relays were killed")
}

// A static relay nobody answers at (p2p.static_relays naming an address
// with no host behind it) costs the miner behind NAT nothing but one clear
// warning naming it: it takes its reservation on the working relay, and a
// working static relay gets no warning.
func TestNATDeadStaticRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five daemons in network namespaces")
	}
	net := netns.New(t)
	boot, viaBoot := publicSide(t, net)
	dead := "/ip4/198.18.0.250/tcp/4101/p2p/12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"
	started := time.Now()
	miner := startNATNode(t, net.Router("routerA", netns.EasyNAT).Home("miner"), "miner",
		viaBoot("VFT_P2P_STATIC_RELAYS="+dead+","+boot.addr()))
	waitFor(t, 90*time.Second, "the miner behind NAT is private with a reservation on the working relay", func() (bool, string) {
		r := miner.identity(t).Reachability
		dump, _ := json.Marshal(r)
		return r != nil && r.Status == "private" && slices.Contains(r.Relays, boot.id), string(dump)
	}, miner.d)
	// The static relays are first checked 30 s after the start.
	time.Sleep(time.Until(started.Add(40 * time.Second)))
	miner.d.stop(t)
	var warnings []string
	for _, line := range strings.Split(miner.d.printed(), "\n") {
		if strings.Contains(line, "static relay") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "static relay unreachable") || !strings.Contains(warnings[0], dead) {
		t.Fatalf("want one warning naming the dead static relay %s, got:\n%s", dead, strings.Join(warnings, "\n"))
	}
}
