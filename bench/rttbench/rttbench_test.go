// Package rttbench measures a node-to-node transfer over a link with a
// round-trip time (issue #18): `vft get` between two `vft daemon`s and
// `ipfs cat` between two kubo daemons, the same file, in the same run, on
// two hosts of a namespace test network (internal/netns) each of whose
// links delays what it sends. bench/transfer-rtt.sh runs it.
package rttbench

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/internal/netns"
)

// TestTransferRTT is a measurement, not a test: it asserts nothing about
// speed and runs only with VFT_RTT_BENCH=1. Settings (environment):
// VFT_BIN and VFT_IPFS_BIN (the binaries, built by the script),
// VFT_RTT_BENCH_MIB (file size, 256), VFT_RTT_BENCH_DELAY (each host's
// one-way delay, 10ms: a 20 ms round trip), VFT_RTT_BENCH_RUNS (fresh
// getters per side, alternating, 1), VFT_RTT_BENCH_OUT (a file for the
// table rows).
func TestTransferRTT(t *testing.T) {
	if os.Getenv("VFT_RTT_BENCH") == "" {
		t.Skip("a measurement: VFT_RTT_BENCH=1 (bench/transfer-rtt.sh)")
	}
	vftBin, ipfsBin := os.Getenv("VFT_BIN"), os.Getenv("VFT_IPFS_BIN")
	if vftBin == "" || ipfsBin == "" {
		t.Fatalf("VFT_BIN=%q and VFT_IPFS_BIN=%q: set both to the vft and ipfs binaries (bench/transfer-rtt.sh does)", vftBin, ipfsBin)
	}
	mib := envInt(t, "VFT_RTT_BENCH_MIB", 256)
	runs := envInt(t, "VFT_RTT_BENCH_RUNS", 1)
	delay := 10 * time.Millisecond
	if v := os.Getenv("VFT_RTT_BENCH_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			t.Fatalf("VFT_RTT_BENCH_DELAY=%q: want a duration such as 10ms", v)
		}
		delay = d
	}

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	writeRandom(t, data, int64(mib)<<20)

	n := netns.New(t)
	src, dst := n.Public("src"), n.Public("dst")
	src.Shape(netns.Shaping{Delay: delay})
	dst.Shape(netns.Shaping{Delay: delay})

	// vft: a provider that added the file, a fresh getter per run that
	// dials it and fetches.
	vsrc := startVFT(t, vftBin, src, filepath.Join(dir, "vft-src"))
	vcid := strings.TrimSpace(vsrc.run(t, "add", data))
	// kubo: the same with `ipfs add` through the daemon and `ipfs cat`.
	ksrc := startKubo(t, ipfsBin, src, filepath.Join(dir, "kubo-src"))
	kcid := strings.TrimSpace(ksrc.run(t, "add", "-Q", "--progress=false", data))
	if vcid != kcid {
		t.Fatalf("vft added %s, kubo %s: the settings differ (both should be CIDv1, raw leaves, 1 MiB chunks)", vcid, kcid)
	}
	t.Logf("%d MiB, %s, one-way delay %v on each host", mib, vcid, delay)

	var vSecs, kSecs []float64
	var vRSS, kRSS []int64
	for i := range runs {
		g := startVFT(t, vftBin, dst, filepath.Join(dir, fmt.Sprintf("vft-dst%d", i)))
		g.run(t, "swarm", "connect", vsrc.addr)
		start := time.Now()
		g.run(t, "get", vcid, "-o", filepath.Join(dir, fmt.Sprintf("out%d", i)))
		vSecs = append(vSecs, time.Since(start).Seconds())
		vRSS = append(vRSS, g.peakRSS(t))
		g.stop()
		os.Remove(filepath.Join(dir, fmt.Sprintf("out%d", i)))
		t.Logf("run %d: vft get %.2f s, getter daemon peak RSS %d MiB", i+1, vSecs[i], vRSS[i]>>20)

		k := startKubo(t, ipfsBin, dst, filepath.Join(dir, fmt.Sprintf("kubo-dst%d", i)))
		k.run(t, "swarm", "connect", ksrc.addr)
		start = time.Now()
		k.runTo(t, io.Discard, "cat", kcid)
		kSecs = append(kSecs, time.Since(start).Seconds())
		kRSS = append(kRSS, k.peakRSS(t))
		k.stop()
		t.Logf("run %d: ipfs cat %.2f s, getter daemon peak RSS %d MiB", i+1, kSecs[i], kRSS[i]>>20)
	}
	vm, km := median(vSecs), median(kSecs)
	rows := []string{
		fmt.Sprintf("| vft get (vft daemon → vft daemon) | %.2f s | %.0f MiB/s | %d MiB | %.2f× kubo | %s |", vm, float64(mib)/vm, median(vRSS)>>20, km/vm, list(vSecs)),
		fmt.Sprintf("| ipfs cat (kubo → kubo) | %.2f s | %.0f MiB/s | %d MiB | | %s |", km, float64(mib)/km, median(kRSS)>>20, list(kSecs)),
	}
	for _, r := range rows {
		t.Log(r)
	}
	if out := os.Getenv("VFT_RTT_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(strings.Join(rows, "\n")+"\n"), 0o644)
	}
}

// daemon is a vft or kubo daemon running in a namespace.
type daemon struct {
	host *netns.Host
	bin  string
	env  []string
	args []string // before every command: --repo DIR for vft
	cmd  *exec.Cmd
	addr string // its TCP multiaddr with peer ID
}

func (d *daemon) command(args ...string) *exec.Cmd {
	cmd := d.host.Command(d.bin, append(slices.Clone(d.args), args...)...)
	cmd.Env = d.env
	return cmd
}

func (d *daemon) run(t *testing.T, args ...string) string {
	t.Helper()
	var b strings.Builder
	d.runTo(t, &b, args...)
	return b.String()
}

func (d *daemon) runTo(t *testing.T, w io.Writer, args ...string) {
	t.Helper()
	cmd := d.command(args...)
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = w, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v in %s: %v: %s", filepath.Base(d.bin), args, d.host.Name, err, errb.String())
	}
}

// start starts the daemon and waits for the line that says it is ready.
func (d *daemon) start(t *testing.T, readyPrefix string, args ...string) {
	t.Helper()
	d.cmd = d.command(args...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), readyPrefix) {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s daemon in %s exited before it was ready: %s", filepath.Base(d.bin), d.host.Name, b)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s daemon in %s not ready after 2 minutes", filepath.Base(d.bin), d.host.Name)
	}
}

func (d *daemon) stop() {
	if d.cmd != nil && d.cmd.Process != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
	}
}

// peakRSS is the daemon's VmHWM (`ip netns exec` execs the daemon, so the
// PID is the daemon's own).
func (d *daemon) peakRSS(t *testing.T) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Logf("peak RSS: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startVFT inits a repo and runs `vft daemon` in h on TCP 4101 only (kubo
// runs on TCP too), with the benchmarking range counted as public.
func startVFT(t *testing.T, bin string, h *netns.Host, repo string) *daemon {
	t.Helper()
	d := &daemon{host: h, bin: bin, args: []string{"--repo", repo}, env: []string{
		"HOME=" + os.TempDir(),
		"PATH=" + os.Getenv("PATH"),
		"VFT_API_LISTEN=127.0.0.1:0",
		"VFT_P2P_LISTEN=/ip4/0.0.0.0/tcp/4101",
		"VFT_P2P_MDNS=false",
		"VFT_P2P_BENCHMARK_RANGE_PUBLIC=true",
		"VFT_P2P_NAT_PORTMAP=false",
		"VFT_CHAIN_SETTLE=false",
	}}
	d.run(t, "init", "--mode", "light")
	d.start(t, "daemon ready", "daemon")
	var id struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal([]byte(d.run(t, "id", "--json")), &id); err != nil || id.PeerID == "" {
		t.Fatalf("vft id --json in %s: %v", h.Name, err)
	}
	d.addr = fmt.Sprintf("/ip4/%s/tcp/4101/p2p/%s", h.IP, id.PeerID)
	return d
}

// startKubo inits a kubo repo (test profile: no bootstrap, no mDNS; plus
// unixfs-v1-2025: CIDv1, raw leaves, 1 MiB chunks, 1024 links, as vft)
// and runs its daemon in h on TCP 4001, with no routing (the getter is
// connected to the provider by hand) and no announcements.
func startKubo(t *testing.T, bin string, h *netns.Host, repo string) *daemon {
	t.Helper()
	d := &daemon{host: h, bin: bin, env: []string{
		"HOME=" + os.TempDir(),
		"PATH=" + os.Getenv("PATH"),
		"IPFS_PATH=" + repo,
		"IPFS_TELEMETRY=off",
		"DO_NOT_TRACK=1",
		"GOLOG_LOG_LEVEL=error",
	}}
	d.run(t, "init", "--empty-repo", "--profile=test,unixfs-v1-2025")
	for _, kv := range [][2]string{
		{"Addresses.Swarm", `["/ip4/0.0.0.0/tcp/4001"]`},
		{"Addresses.API", `"/ip4/127.0.0.1/tcp/5001"`},
		{"Addresses.Gateway", `"/ip4/127.0.0.1/tcp/8080"`},
		{"Routing.Type", `"none"`},
		{"Swarm.DisableNatPortMap", `true`},
		{"AutoTLS.Enabled", `false`},
		{"AutoConf.Enabled", `false`},
		{"Provide.Enabled", `false`},
		{"Plugins.Plugins.telemetry.Config.Mode", `"off"`},
	} {
		d.run(t, "config", "--json", kv[0], kv[1])
	}
	d.start(t, "Daemon is ready", "daemon")
	var id struct{ ID string }
	if err := json.Unmarshal([]byte(d.run(t, "id")), &id); err != nil || id.ID == "" {
		t.Fatalf("ipfs id in %s: %v", h.Name, err)
	}
	d.addr = fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", h.IP, id.ID)
	return d
}

func writeRandom(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

func median[T float64 | int64](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func list(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}
