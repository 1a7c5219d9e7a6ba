package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// vftBin is the real binary, built once for the multi-process tests.
var vftBin string

func TestMain(m *testing.M) {
	if dir := os.Getenv("VFT_TEST_METRICS_OF"); dir != "" {
		// Run inside a namespace by relayedBytes (nat_test.go).
		if err := printMetrics(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "vft-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vftBin = filepath.Join(dir, "vft")
	build := exec.Command("go", "build", "-o", vftBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vft:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testEnv keeps test daemons on loopback, off multicast and off the router.
func testEnv(extra ...string) []string {
	env := []string{
		"HOME=" + os.TempDir(),
		"PATH=" + os.Getenv("PATH"),
		"VFT_API_LISTEN=127.0.0.1:0",
		"VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		"VFT_P2P_MDNS=false",
		"VFT_P2P_ALLOW_PRIVATE_ADDRS=true",
		"VFT_CHAIN_SETTLE=false",
		"VFT_P2P_NAT_PORTMAP=false",
		"VFT_P2P_RENDEZVOUS=vft/1/clitest",
		"VFT_P2P_DISCOVERY_INTERVAL=2s",
		"VFT_LOG_FORMAT=json",
	}
	return append(env, extra...)
}

// vft runs the binary to completion.
func vft(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, vftBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code == -1 {
		t.Fatalf("vft %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// daemon is a running `vft daemon` process.
type daemon struct {
	repo   string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	ready  string

	mu     sync.Mutex
	stdout []string // every line the daemon printed
}

// printed is everything the daemon wrote to stdout and stderr: what a
// systemd unit's journal would hold. Call it after stop.
func (d *daemon) printed() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.stdout, "\n") + "\n" + d.stderr.String()
}

// startDaemon starts a daemon and waits for its ready line.
func startDaemon(t *testing.T, repoDir string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(vftBin, append([]string{"--repo", repoDir, "daemon"}, args...)...)
	cmd.Env = env
	return startDaemonCmd(t, repoDir, cmd)
}

// startDaemonCmd starts cmd, a `vft daemon` command line, and waits for its
// ready line.
func startDaemonCmd(t *testing.T, repoDir string, cmd *exec.Cmd) *daemon {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{repo: repoDir, cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(t) })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.stdout = append(d.stdout, sc.Text())
			d.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "daemon ready") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("daemon %s exited before it was ready: %s", repoDir, d.stderr)
		}
		d.ready = line
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon %s not ready after 60s: %s", repoDir, d.stderr)
	}
	return d
}

// stop sends SIGTERM and checks the daemon exits cleanly and in time.
func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon %s did not exit cleanly: %v\n%s", d.repo, err, d.stderr)
		}
	case <-time.After(40 * time.Second):
		d.cmd.Process.Kill()
		t.Errorf("daemon %s did not stop within 40s of SIGTERM", d.repo)
	}
	if _, err := os.Stat(filepath.Join(d.repo, "api")); err == nil {
		t.Errorf("daemon %s left its api file behind", d.repo)
	}
}

func initRepo(t *testing.T, env []string, mode string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	if _, stderr, code := vft(t, env, "--repo", dir, "init", "--mode", mode); code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	return dir
}

func idOf(t *testing.T, env []string, repoDir string) (peerID string, addrs []string) {
	t.Helper()
	out, stderr, code := vft(t, env, "--repo", repoDir, "id", "--json")
	if code != 0 {
		t.Fatalf("id: %s", stderr)
	}
	var id struct {
		PeerID string   `json:"peer_id"`
		Addrs  []string `json:"addrs"`
	}
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("id --json: %v: %s", err, out)
	}
	return id.PeerID, id.Addrs
}

// Three daemons in separate processes: A starts the network, B and C know
// only A, and C finds B through the DHT.
func TestDaemonsDiscoverThroughDHT(t *testing.T) {
	env := testEnv()
	repoA, repoB, repoC := initRepo(t, env, "miner"), initRepo(t, env, "miner"), initRepo(t, env, "light")
	startDaemon(t, repoA, env)
	_, addrsA := idOf(t, env, repoA)
	if len(addrsA) == 0 {
		t.Fatal("node A reports no addresses")
	}
	viaA := testEnv("VFT_P2P_BOOTSTRAP=" + strings.Join(addrsA, ","))
	startDaemon(t, repoB, viaA)
	startDaemon(t, repoC, viaA)
	idB, _ := idOf(t, env, repoB)

	deadline := time.Now().Add(60 * time.Second)
	for {
		out, stderr, code := vft(t, env, "--repo", repoC, "peers", "--json")
		if code != 0 {
			t.Fatalf("peers: %s", stderr)
		}
		if strings.Contains(out, idB) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("C never listed B (%s) among its peers: %s", idB, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	out, _, _ := vft(t, env, "--repo", repoC, "peers")
	if !strings.Contains(out, idB) || !strings.Contains(out, "PEER") {
		t.Fatalf("text peers output lacks B or its header:\n%s", out)
	}
}

func TestSwarmConnectAndAPIToken(t *testing.T) {
	env := testEnv()
	repoA, repoB := initRepo(t, env, "miner"), initRepo(t, env, "miner")
	startDaemon(t, repoA, env)
	daemonB := startDaemon(t, repoB, env)
	idA, addrsA := idOf(t, env, repoA)

	out, stderr, code := vft(t, env, "--repo", repoB, "swarm", "connect", addrsA[0])
	if code != 0 || !strings.Contains(out, idA) {
		t.Fatalf("swarm connect: code %d, %s %s", code, out, stderr)
	}
	_, stderr, code = vft(t, env, "--repo", repoB, "swarm", "connect", "/ip4/127.0.0.1/tcp/notaport")
	if code == 0 || !strings.Contains(stderr, "/ip4/127.0.0.1/tcp/notaport") {
		t.Fatalf("malformed multiaddr: code %d, stderr %q", code, stderr)
	}

	// The API refuses a state-changing call without the token.
	addr, err := os.ReadFile(filepath.Join(repoB, "api"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.NewReader(`{"addr":"` + addrsA[0] + `"}`)
	resp, err := http.Post("http://"+strings.TrimSpace(string(addr))+"/api/v1/swarm/connect", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(msg), "api.token") {
		t.Fatalf("connect without token: %d %s", resp.StatusCode, msg)
	}

	// `vft dashboard` prints the page's URL with the token in its fragment.
	out, stderr, code = vft(t, env, "--repo", repoB, "dashboard", "--json")
	var dash struct{ URL string }
	if code != 0 || json.Unmarshal([]byte(out), &dash) != nil {
		t.Fatalf("dashboard: code %d, %s %s", code, out, stderr)
	}
	token, _ := os.ReadFile(filepath.Join(repoB, "api.token"))
	page, fragment, _ := strings.Cut(dash.URL, "#")
	if fragment != "token="+strings.TrimSpace(string(token)) {
		t.Fatalf("dashboard URL %s does not carry the API token", dash.URL)
	}
	resp, err = http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("dashboard page: %d", resp.StatusCode)
	}

	// Reads need the token too: another user of the machine must not see
	// the node's jobs, wallet or feed.
	resp, err = http.Get("http://" + strings.TrimSpace(string(addr)) + "/api/v1/id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/id without token: %d, want 401", resp.StatusCode)
	}

	// The daemon's output goes to the journal under systemd, which more
	// people may read than api.token: it names the dashboard without the
	// token, and says how to get it.
	daemonB.stop(t)
	printed := daemonB.printed()
	if strings.Contains(printed, strings.TrimSpace(string(token))) {
		t.Fatalf("the daemon printed its API token:\n%s", printed)
	}
	if !strings.Contains(printed, "vft dashboard") {
		t.Fatalf("the daemon does not say how to open its dashboard:\n%s", printed)
	}
}

// Each mistake gives one clear error naming the bad value and a non-zero
// exit status, and leaves nothing half-written.
func TestBadInput(t *testing.T) {
	env := testEnv()
	repoDir := initRepo(t, env, "miner")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	corrupt := initRepo(t, env, "miner")
	if err := os.WriteFile(filepath.Join(corrupt, "identity.key"), []byte("[1,2,3]"), 0o600); err != nil {
		t.Fatal(err)
	}
	unknownKey := initRepo(t, env, "miner")
	f, _ := os.OpenFile(filepath.Join(unknownKey, "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\n[p2p.extra]\nspeed = 11\n")
	f.Close()

	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"repo already initialised", env, []string{"--repo", repoDir, "init"}, "already exists"},
		{"bad mode", env, []string{"--repo", filepath.Join(t.TempDir(), "x"), "init", "--mode", "farmer"}, `"farmer"`},
		{"unknown config key in file", env, []string{"--repo", unknownKey, "daemon"}, "p2p.extra.speed"},
		{"unknown key in config set", env, []string{"--repo", repoDir, "config", "set", "p2p.speed", "1"}, `"p2p.speed"`},
		{"unknown devnet executor", env, []string{"devnet", "--executors", "wasm,docker"}, `"docker" is not one of wasm, native, oci`},
		{"empty devnet executors", env, []string{"devnet", "--executors", ","}, "names no executor kind"},
		{"too many devnet miners", env, []string{"devnet", "--miners", "65"}, "--miners 65 is outside 1..64"},
		{"malformed bootstrap multiaddr", testEnv("VFT_P2P_BOOTSTRAP=/ip4/300.1.1.1/tcp/1"), []string{"--repo", repoDir, "daemon"}, "/ip4/300.1.1.1/tcp/1"},
		{"unreachable bootstrap peer", testEnv("VFT_P2P_BOOTSTRAP=/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"), []string{"--repo", repoDir, "daemon"}, "12D3KooWGzBnhgBsqwoKfPi2bSC3cvpWLjdafvz2iMYSJC4yJpM4"},
		{"p2p port in use", testEnv(fmt.Sprintf("VFT_P2P_LISTEN=/ip4/127.0.0.1/tcp/%d", busyPort)), []string{"--repo", repoDir, "daemon"}, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", busyPort)},
		{"api port in use", testEnv(fmt.Sprintf("VFT_API_LISTEN=127.0.0.1:%d", busyPort)), []string{"--repo", repoDir, "daemon"}, fmt.Sprintf("127.0.0.1:%d", busyPort)},
		{"corrupt identity key", env, []string{"--repo", corrupt, "daemon"}, "identity.key"},
		{"no repo", env, []string{"--repo", filepath.Join(t.TempDir(), "none"), "peers"}, "vft init"},
		{"unknown command", env, []string{"frobnicate"}, `"frobnicate"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := vft(t, tc.env, tc.args...)
			if code == 0 {
				t.Fatalf("exit status 0, want failure")
			}
			// The error is the last line of stderr (a daemon may have
			// logged before failing), one sentence starting with "vft".
			last := lastLine(stderr)
			if !strings.HasPrefix(last, "vft") || !strings.Contains(last, tc.want) {
				t.Fatalf("last stderr line does not name %s:\n%s", tc.want, stderr)
			}
		})
	}
	// The failed daemons left no api file, and the repo still works.
	if _, err := os.Stat(filepath.Join(repoDir, "api")); err == nil {
		t.Fatal("a failed daemon left an api file")
	}
	startDaemon(t, repoDir, env)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func TestConfigShowAndSet(t *testing.T) {
	env := testEnv()
	repoDir := initRepo(t, env, "edge")
	if _, stderr, code := vft(t, env, "--repo", repoDir, "config", "set", "p2p.conn_high", "40"); code != 0 {
		t.Fatal(stderr)
	}
	out, _, code := vft(t, env, "--repo", repoDir, "config", "show", "--json")
	if code != 0 {
		t.Fatal("config show failed")
	}
	var values map[string]string
	if err := json.Unmarshal([]byte(out), &values); err != nil {
		t.Fatal(err)
	}
	if values["p2p.conn_high"] != "40" || values["node.mode"] != "edge" || values["p2p.mdns"] != "false" {
		t.Fatalf("config show: conn_high=%s mode=%s mdns=%s (mdns=false comes from the environment)", values["p2p.conn_high"], values["node.mode"], values["p2p.mdns"])
	}
	// The environment is shown but not written to the file.
	data, _ := os.ReadFile(filepath.Join(repoDir, "config.toml"))
	if !strings.Contains(string(data), "mdns = true") {
		t.Fatalf("config set wrote the environment's mdns=false into config.toml:\n%s", data)
	}
}

// `vft hw` works without a daemon or a repo; `vft doctor` reports the
// daemon's view (peers, clock skew, listening ports) once it runs, and
// `vft nodes` lists miners from their heartbeats.
func TestHardwareDoctorAndNodes(t *testing.T) {
	env := testEnv("VFT_HEARTBEAT_INTERVAL=5s")
	out, stderr, code := vft(t, env, "--repo", filepath.Join(t.TempDir(), "none"), "hw", "--json")
	if code != 0 {
		t.Fatalf("hw without a repo: %s", stderr)
	}
	var report struct {
		CPU struct {
			LogicalCores int `json:"logical_cores"`
		} `json:"cpu"`
		GPUs []json.RawMessage `json:"gpus"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || report.CPU.LogicalCores == 0 || report.GPUs == nil {
		t.Fatalf("hw --json: %v: %s", err, out)
	}
	// Before `vft init`: the disk the repo will be on, and what to run.
	out, stderr, code = vft(t, env, "--repo", filepath.Join(t.TempDir(), "none"), "hw")
	if code != 0 || strings.Contains(out, "0.0 GiB free of 0.0 GiB") || strings.Contains(out, "statfs") || !strings.Contains(out, "vft init") {
		t.Fatalf("hw without a repo: exit %d:\n%s%s", code, out, stderr)
	}

	repoA, repoB := initRepo(t, env, "miner"), initRepo(t, env, "miner")
	startDaemon(t, repoA, env)
	_, addrsA := idOf(t, env, repoA)
	startDaemon(t, repoB, testEnv("VFT_HEARTBEAT_INTERVAL=5s", "VFT_P2P_BOOTSTRAP="+strings.Join(addrsA, ",")))
	idA, _ := idOf(t, env, repoA)

	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ = vft(t, env, "--repo", repoB, "nodes", "--json")
		if strings.Contains(out, idA) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's network table never listed A: %s", out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	out, stderr, code = vft(t, env, "--repo", repoB, "doctor")
	if code != 0 {
		t.Fatalf("doctor failed with a healthy daemon: %s\n%s", out, stderr)
	}
	for _, want := range []string{"OK    peers", "clock skew", "accepts connections", "bwrap present", "cgroups for native jobs"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// SIGTERM at any moment of a daemon's start-up stops it: a service manager
// that stops what it just started must not wait for its kill timeout. (A
// signal that came while the node started cancelled the start, but a start
// that finished anyway left the daemon running and the signal spent.)
func TestDaemonStopsOnEarlySignal(t *testing.T) {
	env := testEnv()
	dir := initRepo(t, env, "light")
	for delay := time.Duration(0); delay <= 150*time.Millisecond; delay += 15 * time.Millisecond {
		cmd := exec.Command(vftBin, "--repo", dir, "daemon")
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("a daemon sent SIGTERM %v after it started was still running 20 s later", delay)
		}
	}
}
