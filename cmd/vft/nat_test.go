package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/internal/netns"
)

// natEnv is a daemon's environment on a namespace test network: the real
// port 4101, no private addresses learned from peers (as on the internet),
// and the benchmarking range counted as public.
func natEnv(extra ...string) []string {
	env := []string{
		"HOME=" + os.TempDir(),
		"PATH=" + os.Getenv("PATH"),
		"VFT_API_LISTEN=127.0.0.1:0",
		"VFT_P2P_LISTEN=/ip4/0.0.0.0/tcp/4101,/ip4/0.0.0.0/udp/4101/quic-v1",
		"VFT_P2P_MDNS=false",
		"VFT_P2P_ALLOW_PRIVATE_ADDRS=false",
		"VFT_P2P_BENCHMARK_RANGE_PUBLIC=true",
		"VFT_P2P_NAT_PORTMAP=false",
		"VFT_CHAIN_SETTLE=false",
		"VFT_P2P_RENDEZVOUS=vft/1/nattest",
		"VFT_P2P_DISCOVERY_INTERVAL=2s",
		"VFT_HEARTBEAT_INTERVAL=5s",
		"VFT_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

// vftIn runs the binary inside a namespace (the daemon's API listens on
// that namespace's loopback).
func vftIn(t *testing.T, h *netns.Host, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := h.Command(vftBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("vft %v in %s: %v", args, h.Name, err)
	}
	// `job submit --wait` waits as long as the job lives: bound it here.
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code == -1 {
		t.Fatalf("vft %v in %s: %v", args, h.Name, err)
	}
	return out.String(), errb.String(), code
}

// natNode is a daemon running in a namespace.
type natNode struct {
	host *netns.Host
	repo string
	env  []string
	id   string
	d    *daemon
}

func startNATNode(t *testing.T, h *netns.Host, mode string, env []string) *natNode {
	t.Helper()
	n := &natNode{host: h, env: env, repo: filepath.Join(t.TempDir(), "repo")}
	if _, stderr, code := vftIn(t, h, env, "--repo", n.repo, "init", "--mode", mode); code != 0 {
		t.Fatalf("init in %s: %s", h.Name, stderr)
	}
	cmd := h.Command(vftBin, "--repo", n.repo, "daemon")
	cmd.Env = env
	n.d = startDaemonCmd(t, n.repo, cmd)
	n.id = n.identity(t).PeerID
	return n
}

func (n *natNode) identity(t *testing.T) api.Identity {
	t.Helper()
	out, stderr, code := vftIn(t, n.host, n.env, "--repo", n.repo, "id", "--json")
	if code != 0 {
		t.Fatalf("id in %s: %s", n.host.Name, stderr)
	}
	var id api.Identity
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("id --json: %v: %s", err, out)
	}
	return id
}

// addr is the node's public TCP address as its operator would give it.
func (n *natNode) addr() string {
	return "/ip4/" + n.host.IP.String() + "/tcp/4101/p2p/" + n.id
}

// waitFor polls cond every half second until it holds or the deadline
// passes; what describes the wait in the failure, with the end of log's
// output when given.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string), log *daemon) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if log != nil {
				state += "\n--- log:\n" + tail(t, log)
			}
			t.Fatalf("%s: not after %s; last state:\n%s", what, limit, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Test 1 of the NAT issue, on real kernel networking: a miner behind a
// home router joins through the public bootstrap node (which relays),
// finds out it is private, holds a relay reservation, shows up in the
// network table, and runs a job submitted from behind another home router.
// Three more public nodes stand for the rest of the internet: a node learns
// its router's public address once several peers have seen it, which hole
// punching needs. The public nodes ask more than the job pays, so only the
// miner behind NAT bids.
func TestNATMinerJoinsThroughRelayAndRunsJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six daemons in network namespaces")
	}
	net := netns.New(t)
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	expensive := "VFT_MARKET_MIN_PRICE=1000000000"
	boot := startNATNode(t, net.Public("boot"), "miner", natEnv(expensive, "VFT_P2P_REACHABILITY=public"))
	viaBoot := func(extra ...string) []string {
		return natEnv(append([]string{"VFT_P2P_BOOTSTRAP=" + boot.addr()}, extra...)...)
	}
	for _, role := range []string{"pub1", "pub2", "pub3"} {
		startNATNode(t, net.Public(role), "miner", viaBoot(expensive, "VFT_P2P_RELAY_SERVICE=false"))
	}
	homeA, homeB := net.Router("routerA", netns.EasyNAT), net.Router("routerB", netns.EasyNAT)
	debug := "GOLOG_LOG_LEVEL=" + os.Getenv("VFT_TEST_LIBP2P_LOG")
	miner := startNATNode(t, homeA.Home("miner"), "miner", viaBoot(debug))
	submitter := startNATNode(t, homeB.Home("submitter"), "light", viaBoot(debug))

	// The miner finds out it is behind NAT and takes a slot on the relay.
	waitFor(t, 90*time.Second, "the miner behind NAT is private with a reservation on the bootstrap relay", func() (bool, string) {
		id := miner.identity(t)
		r := id.Reachability
		if r == nil {
			return false, "no reachability in vft id"
		}
		dump, _ := json.Marshal(r)
		return r.Status == "private" && slices.Contains(r.Relays, boot.id), string(dump)
	}, miner.d)
	text, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "id")
	for _, want := range []string{"reach    private", "relay    /ip4/" + boot.host.IP.String(), "forward TCP and UDP 4101"} {
		if !strings.Contains(text, want) {
			t.Errorf("vft id behind NAT lacks %q:\n%s", want, text)
		}
	}
	if bootID := boot.identity(t); bootID.Reachability == nil || bootID.Reachability.Status != "public" {
		t.Errorf("the bootstrap node is not public: %+v", bootID.Reachability)
	}

	// The network table of the public node lists the miner behind NAT.
	waitFor(t, 60*time.Second, "the bootstrap node's network table lists the miner behind NAT", func() (bool, string) {
		out, _, _ := vftIn(t, boot.host, boot.env, "--repo", boot.repo, "nodes", "--json")
		return strings.Contains(out, miner.id), out
	}, nil)

	out := filepath.Join(t.TempDir(), "result")
	stdout, stderr, code := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "submit",
		"--wasm", module, "--input", "../../examples/wordcount/testdata/",
		"--redundancy", "1", "--verify", "exact", "--timeout", "1m", "--reward", "5000",
		"--wait", "-o", out)
	if code != 0 {
		t.Fatalf("job submitted from behind NAT failed:\n%s\n%s\n--- miner log:\n%s", stdout, stderr, tail(t, miner.d))
	}
	got, _ := os.ReadFile(filepath.Join(out, "counts.tsv"))
	want, _ := os.ReadFile("../../examples/wordcount/expected/texts/counts.tsv")
	if len(got) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("result counts.tsv differs from the expected output:\n%s", got)
	}
	show, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "list", "--json")
	if !strings.Contains(show, miner.id) {
		t.Errorf("the job was not run by the miner behind NAT %s:\n%s", miner.id, show)
	}
}

// tail stops the daemon and returns the end of what it printed.
func tail(t *testing.T, d *daemon) string {
	d.stop(t)
	s := d.printed()
	if len(s) > 12000 {
		s = s[len(s)-12000:]
	}
	return s
}
