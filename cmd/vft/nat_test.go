package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/internal/netns"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/repo"
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

// The NAT tests of the issue, on real kernel networking. A public segment
// holds the bootstrap node, which relays, and three more public miners
// standing for the rest of the internet (they ask more than the jobs pay,
// so only the miner behind NAT bids). Two home routers with easy NATs hold
// a miner and a submitter.
func TestNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six daemons in network namespaces")
	}
	net := netns.New(t)
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	boot, viaBoot := publicSide(t, net)
	homeA, homeB := net.Router("routerA", netns.EasyNAT), net.Router("routerB", netns.EasyNAT)
	debug := "GOLOG_LOG_LEVEL=" + os.Getenv("VFT_TEST_LIBP2P_LOG")
	miner := startNATNode(t, homeA.Home("miner"), "miner", viaBoot(debug))
	submitter := startNATNode(t, homeB.Home("submitter"), "light", viaBoot(debug))

	// 1. The miner behind NAT joins through the bootstrap relay, gets a
	// reservation, appears in the node table and runs a job submitted from
	// behind another NAT.
	t.Run("1 miner behind NAT joins and runs a job", func(t *testing.T) {
		waitFor(t, 90*time.Second, "the miner behind NAT is private with a reservation on the bootstrap relay", func() (bool, string) {
			r := miner.identity(t).Reachability
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
		doctor, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "doctor")
		if !hasCheck(doctor, "WARN", "reachability", "forward TCP and UDP 4101") || !hasCheck(doctor, "WARN", "reachability", boot.id) {
			t.Errorf("vft doctor behind NAT lacks the reachability warning naming the relay and the fix:\n%s", doctor)
		}
		if r := boot.identity(t).Reachability; r == nil || r.Status != "public" {
			t.Errorf("the bootstrap node is not public: %+v", r)
		}
		// Its heartbeats say it is private and reachable through the relay.
		waitFor(t, 60*time.Second, "the bootstrap node's network table lists the miner behind NAT as private, with its relay address", func() (bool, string) {
			out, _, _ := vftIn(t, boot.host, boot.env, "--repo", boot.repo, "nodes", "--json")
			var entries []api.NodeEntry
			json.Unmarshal([]byte(out), &entries)
			for _, e := range entries {
				if e.Peer.String() == miner.id && e.Heartbeat.Reachability == "private" &&
					slices.ContainsFunc(e.Heartbeat.Addrs, func(a string) bool { return strings.Contains(a, boot.id+"/p2p-circuit") }) {
					return true, out
				}
			}
			return false, out
		}, nil)

		runWordcountOn(t, submitter, miner, module, "job submitted from behind NAT")
	})

	// 2. Hole punching turned the relayed connection into a direct one, and
	// a job whose input is larger than a relayed connection may carry
	// (p2p.relay_circuit_bytes, 1 MiB) moves it directly: the relay
	// carried a small fraction of it.
	t.Run("2 hole punching moves content directly", func(t *testing.T) {
		peers, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "peers", "--json")
		var list []api.Peer
		json.Unmarshal([]byte(peers), &list)
		direct := false
		for _, p := range list {
			if p.ID == miner.id && !p.Relayed && strings.HasPrefix(p.Addr, "/ip4/"+homeA.IP.String()+"/") {
				direct = true
			}
		}
		if !direct {
			t.Errorf("the submitter has no direct connection to the miner through router A (%s):\n%s", homeA.IP, peers)
		}
		punched := miner.identity(t).Reachability.HolePunchSuccesses + submitter.identity(t).Reachability.HolePunchSuccesses
		if punched == 0 {
			t.Errorf("no hole punch succeeded on either side")
		}

		input := filepath.Join(t.TempDir(), "input")
		os.MkdirAll(input, 0o755)
		const size = 4 << 20
		os.WriteFile(filepath.Join(input, "big.txt"), bytes.Repeat([]byte("direct words move here\n"), size/23), 0o644)
		before := relayedBytes(t, boot)
		if before == 0 {
			// Identify and DCUtR ran over the relayed connection, so the
			// counter cannot be 0 unless we read the wrong one.
			t.Fatal("the relay's libp2p_relaysvc_data_transferred_bytes_total is 0 after relaying the first job's connection")
		}
		stdout, stderr, code := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "submit",
			"--wasm", module, "--input", input+"/",
			"--redundancy", "1", "--verify", "exact", "--timeout", "1m", "--reward", "5000",
			"--wait", "-o", filepath.Join(t.TempDir(), "result"))
		if code != 0 {
			t.Fatalf("job with a 4 MiB input failed:\n%s\n%s", stdout, stderr)
		}
		relayed := relayedBytes(t, boot) - before
		t.Logf("the relay carried %.0f bytes before the job, %.0f during it (input %d bytes)", before, relayed, size)
		if relayed > 256<<10 {
			t.Errorf("the relay carried %.0f bytes during a job with a %d-byte input: content went through it", relayed, size)
		}
	})

	// 4. The relay is killed: the miner finds another one. A second public
	// miner that relays joins; then the bootstrap node, the miner's relay,
	// goes away (stopped cleanly; TestNATRelayKilled kills both relays the
	// miner holds, and checks a job reaches it through a third).
	t.Run("4 the relay is killed and the miner finds another", func(t *testing.T) {
		relay2 := startNATNode(t, net.Public("relay2"), "miner", viaBoot(expensiveMiner, "VFT_P2P_REACHABILITY=public"))
		boot.d.stop(t)
		waitFor(t, 90*time.Second, "the miner holds a reservation on the second relay and none on the stopped one", func() (bool, string) {
			r := miner.identity(t).Reachability
			dump, _ := json.Marshal(r)
			return r.Status == "private" && slices.Contains(r.Relays, relay2.id) && !slices.Contains(r.Relays, boot.id), string(dump)
		}, miner.d)
		text, _, _ := vftIn(t, miner.host, miner.env, "--repo", miner.repo, "id")
		if !strings.Contains(text, "relay    /ip4/"+relay2.host.IP.String()) {
			t.Errorf("vft id does not show the new relay's address:\n%s", text)
		}
	})
}

// expensiveMiner asks more than the tests' jobs pay: such a miner never bids.
const expensiveMiner = "VFT_MARKET_MIN_PRICE=1000000000"

// publicSide starts the public part of a NAT test network: the bootstrap
// node, which relays (bootExtra adds to its environment), and three more
// public miners that do not, standing for the rest of the internet (a
// node learns its router's public address from the peers that observe
// it). None of them bids for the tests' jobs. viaBoot is the environment
// of a node that joins through the bootstrap node.
func publicSide(t *testing.T, net *netns.Net, bootExtra ...string) (boot *natNode, viaBoot func(extra ...string) []string) {
	t.Helper()
	boot = startNATNode(t, net.Public("boot"), "miner", natEnv(append([]string{expensiveMiner, "VFT_P2P_REACHABILITY=public"}, bootExtra...)...))
	viaBoot = func(extra ...string) []string {
		return natEnv(append([]string{"VFT_P2P_BOOTSTRAP=" + boot.addr()}, extra...)...)
	}
	for _, role := range []string{"pub1", "pub2", "pub3"} {
		startNATNode(t, net.Public(role), "miner", viaBoot(expensiveMiner, "VFT_P2P_RELAY_SERVICE=false"))
	}
	return boot, viaBoot
}

// 3. Both ends behind symmetric NATs: hole punching fails, and the
// documented fallback happens: the content crosses a relay whose operator
// gives the bandwidth (p2p.relay_content), and the job finishes.
func TestNATSymmetricFallsBackToContentRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six daemons in network namespaces")
	}
	net := netns.New(t)
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	boot, viaBoot := publicSide(t, net, "VFT_P2P_RELAY_CONTENT=true")
	homeA, homeB := net.Router("routerA", netns.SymmetricNAT), net.Router("routerB", netns.SymmetricNAT)
	miner := startNATNode(t, homeA.Home("miner"), "miner", viaBoot())
	submitter := startNATNode(t, homeB.Home("submitter"), "light", viaBoot())
	waitFor(t, 90*time.Second, "the miner behind a symmetric NAT is private with a reservation on the bootstrap relay", func() (bool, string) {
		r := miner.identity(t).Reachability
		dump, _ := json.Marshal(r)
		return r != nil && r.Status == "private" && slices.Contains(r.Relays, boot.id), string(dump)
	}, miner.d)

	input := filepath.Join(t.TempDir(), "input")
	os.MkdirAll(input, 0o755)
	const size = 2 << 20
	os.WriteFile(filepath.Join(input, "big.txt"), bytes.Repeat([]byte("relayed words move here\n"), size/24), 0o644)
	before := relayedBytes(t, boot)
	stdout, stderr, code := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "submit",
		"--wasm", module, "--input", input+"/",
		"--redundancy", "1", "--verify", "exact", "--timeout", "1m", "--reward", "5000",
		"--wait", "-o", filepath.Join(t.TempDir(), "result"))
	if code != 0 {
		t.Fatalf("job between two symmetric NATs failed:\n%s\n%s\n--- miner log:\n%s", stdout, stderr, tail(t, miner.d))
	}
	relayed := relayedBytes(t, boot) - before
	t.Logf("the relay carried %.0f bytes during the job (input %d bytes)", relayed, size)
	if relayed < size {
		t.Errorf("the relay carried %.0f bytes, less than the %d-byte input: where did the content go?", relayed, size)
	}
	peers, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "peers", "--json")
	var list []api.Peer
	json.Unmarshal([]byte(peers), &list)
	for _, p := range list {
		if p.ID == miner.id && !p.Relayed {
			t.Errorf("a direct connection through two symmetric NATs: %+v", p)
		}
	}
	if r := miner.identity(t).Reachability; r.HolePunchSuccesses+submitter.identity(t).Reachability.HolePunchSuccesses > 0 {
		t.Errorf("a hole punch succeeded through two symmetric NATs")
	}
}

// 5. A partition cuts the worker off mid-job (while it fetches the input):
// the submitter reassigns the job after the report deadline, and the other
// miner behind NAT finishes it.
func TestNATPartitionReassigns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts seven daemons in network namespaces")
	}
	net := netns.New(t)
	module, err := wasmtest.NewBuilder(t.TempDir()).Build("../../examples/wordcount")
	if err != nil {
		t.Fatal(err)
	}
	_, viaBoot := publicSide(t, net)
	miners := map[string]*natNode{}
	for _, name := range []string{"minerA", "minerB"} {
		m := startNATNode(t, net.Router("r"+name, netns.EasyNAT).Home(name), "miner", viaBoot())
		miners[m.id] = m
	}
	submitter := startNATNode(t, net.Router("rsub", netns.EasyNAT).Home("submitter"), "light", viaBoot("VFT_MARKET_REPORT_GRACE=2s"))
	for _, n := range append(slices.Collect(maps.Values(miners)), submitter) {
		waitFor(t, 90*time.Second, n.host.Name+" is private with a relay reservation", func() (bool, string) {
			r := n.identity(t).Reachability
			dump, _ := json.Marshal(r)
			return r != nil && r.Status == "private" && len(r.Relays) > 0, string(dump)
		}, n.d)
	}
	waitFor(t, 90*time.Second, "the submitter's network table lists both miners behind NAT", func() (bool, string) {
		out, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "nodes", "--json")
		for id := range miners {
			if !strings.Contains(out, id) {
				return false, out
			}
		}
		return true, out
	}, nil)

	// 8 MiB at 16 Mbit/s out of the submitter: the worker is still
	// fetching the input for about four seconds after its assignment.
	submitter.host.Shape(netns.Shaping{RateKbit: 16000})
	input := filepath.Join(t.TempDir(), "input")
	os.MkdirAll(input, 0o755)
	os.WriteFile(filepath.Join(input, "big.txt"), bytes.Repeat([]byte("words cut off mid-job\n"), (8<<20)/22), 0o644)
	stdout, stderr, code := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "submit",
		"--wasm", module, "--input", input+"/",
		"--redundancy", "1", "--verify", "exact", "--timeout", "20s", "--reward", "5000")
	if code != 0 {
		t.Fatalf("submit: %s %s", stdout, stderr)
	}
	jobID := strings.TrimSpace(stdout)
	status := func() job.Record {
		out, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "status", jobID, "--json")
		var rec job.Record
		json.Unmarshal([]byte(out), &rec)
		return rec
	}
	var first *natNode
	waitFor(t, 60*time.Second, "the job is assigned", func() (bool, string) {
		rec := status()
		if len(rec.Workers) > 0 {
			first = miners[rec.Workers[0].String()]
		}
		dump, _ := json.Marshal(rec.History)
		return first != nil, string(rec.State) + " " + string(dump)
	}, submitter.d)
	first.host.Cut()
	defer first.host.Heal() // so that its daemon stops cleanly
	var rec job.Record
	waitFor(t, 100*time.Second, "the job is reassigned and done", func() (bool, string) {
		rec = status()
		dump, _ := json.Marshal(rec.History)
		return rec.State.Terminal(), string(rec.State) + " " + string(dump)
	}, nil)
	if rec.State != job.StateDone {
		t.Fatalf("job ended %s: %s", rec.State, rec.Reason)
	}
	if len(rec.Workers) != 1 || rec.Workers[0].String() == first.id {
		t.Errorf("workers %v: want the other miner instead of the cut-off %s", rec.Workers, first.id)
	}
	if !slices.Contains(rec.Missed, first.id) {
		t.Errorf("the record does not name the cut-off worker as missed: %v", rec.Missed)
	}
}

// relayedBytes is what node's relay service has carried so far
// (libp2p_relaysvc_data_transferred_bytes_total on its /metrics).
func relayedBytes(t *testing.T, n *natNode) float64 {
	t.Helper()
	cmd := n.host.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VFT_TEST_METRICS_OF="+n.repo)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read metrics of %s: %v", n.repo, err)
	}
	var total float64
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "libp2p_relaysvc_data_transferred_bytes_total") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			total += v
		}
	}
	return total
}

// printMetrics is the test binary's helper mode that reads a daemon's
// /metrics from inside its namespace (its API listens on that
// namespace's loopback).
func printMetrics(repoDir string) error {
	r, err := repo.Open(repoDir)
	if err != nil {
		return err
	}
	addr, err := r.APIAddr()
	if err != nil {
		return err
	}
	token, err := r.APIToken()
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
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

// runWordcountOn submits the wordcount job from submitter with k = 1 and
// checks that it succeeds, that the result is the expected one and that
// miner ran it.
func runWordcountOn(t *testing.T, submitter, miner *natNode, module, what string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result")
	stdout, stderr, code := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "submit",
		"--wasm", module, "--input", "../../examples/wordcount/testdata/",
		"--redundancy", "1", "--verify", "exact", "--timeout", "1m", "--reward", "5000",
		"--wait", "-o", out)
	if code != 0 {
		t.Fatalf("%s failed:\n%s\n%s\n--- miner log:\n%s", what, stdout, stderr, tail(t, miner.d))
	}
	got, _ := os.ReadFile(filepath.Join(out, "counts.tsv"))
	want, _ := os.ReadFile("../../examples/wordcount/expected/texts/counts.tsv")
	if len(got) == 0 || !bytes.Equal(got, want) {
		t.Fatalf("%s: result counts.tsv differs from the expected output:\n%s", what, got)
	}
	list, _, _ := vftIn(t, submitter.host, submitter.env, "--repo", submitter.repo, "job", "list", "--json")
	if !strings.Contains(list, miner.id) {
		t.Errorf("%s: the job was not run by the miner behind NAT %s:\n%s", what, miner.id, list)
	}
}
