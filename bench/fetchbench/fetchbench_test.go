package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vft-network/vft/internal/netns"
)

// TestFetchBench measures one fetch from 1 and from 3 providers whose
// links are the limit: each provider is a process in its own network
// namespace (internal/netns) whose outgoing traffic tc tbf holds to
// VFT_FETCH_BENCH_MBIT (default 200 Mbit/s); the client's link is not
// limited. Each fetch is a fresh process and repo, with the default fetch
// (streams: /vft/car/1 from one provider, /vft/car/2 split over several)
// and with bitswap only. It is a measurement, not a test: it asserts
// nothing about speed and runs only with VFT_FETCH_BENCH=1
// (bench/fetch-bench.sh).
func TestFetchBench(t *testing.T) {
	if os.Getenv("VFT_FETCH_BENCH") == "" {
		t.Skip("a measurement: VFT_FETCH_BENCH=1 (bench/fetch-bench.sh)")
	}
	mib := envInt(t, "VFT_FETCH_BENCH_MB", 256)
	mbit := envInt(t, "VFT_FETCH_BENCH_MBIT", 200)
	runs := envInt(t, "VFT_FETCH_BENCH_RUNS", 1)
	dir := t.TempDir()
	bin := filepath.Join(dir, "fetchbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build fetchbench: %v: %s", err, out)
	}
	file := filepath.Join(dir, "model.bin")
	writeRandomFile(t, file, int64(mib)<<20)

	net := netns.New(t)
	var addrs []string
	root := ""
	for i := range 3 {
		h := net.Public(fmt.Sprintf("prov%d", i))
		h.Shape(netns.Shaping{RateKbit: mbit * 1000})
		line := <-h.StartJSON(t, bin, "provide", "-ip", h.IP.String(), "-repo", filepath.Join(dir, h.Name), "-file", file)
		if line == nil {
			t.Fatal("a provider exited before it served")
		}
		if root != "" && line["root"] != root {
			t.Fatalf("providers hold different roots %v and %s", line["root"], root)
		}
		root = line["root"].(string)
		addrs = append(addrs, line["addr"].(string))
		t.Logf("provider %d: %s imported in %.1f s", i, h.IP, line["import_s"])
	}
	client := net.Public("client")
	var report []string
	for _, mode := range []string{"stream", "bitswap"} {
		for _, peers := range []int{1, 3} {
			var secs []float64
			for r := range runs {
				repo := filepath.Join(dir, fmt.Sprintf("client-%s-%d-%d", mode, peers, r))
				args := []string{"fetch", "-ip", client.IP.String(), "-repo", repo, "-root", root, "-providers", strings.Join(addrs[:peers], ",")}
				if mode == "bitswap" {
					args = append(args, "-bitswap")
				}
				if d := os.Getenv("VFT_FETCH_BENCH_CPUPROFILE"); d != "" {
					// A directory: one CPU profile of the fetcher per fetch.
					args = append(args, "-cpuprofile", filepath.Join(d, fmt.Sprintf("%s-%d-%d.prof", mode, peers, r)))
				}
				if os.Getenv("VFT_FETCH_BENCH_DEBUG") != "" {
					args = append(args, "-debug") // the store's debug lines on stderr
				}
				var last map[string]any
				for line := range client.RunJSON(t, bin, args...) {
					last = line
				}
				if last == nil {
					t.Fatalf("fetch %s from %d: no result", mode, peers)
				}
				secs = append(secs, last["s"].(float64))
				t.Logf("%s from %d provider(s), run %d: %.2f s, %.0f MiB/s, client CPU %.1f s", mode, peers, r+1, last["s"], last["mib_s"], last["cpu_s"])
				os.RemoveAll(repo)
			}
			sort.Float64s(secs)
			med := secs[len(secs)/2]
			row := fmt.Sprintf("| %s | %d | %d MiB | %.2f s | %.1f MiB/s |", mode, peers, mib, med, float64(mib)/med)
			t.Log(row)
			report = append(report, row)
		}
	}
	if out := os.Getenv("VFT_FETCH_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(strings.Join(report, "\n")+"\n"), 0o644)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var n int
	if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// writeRandomFile writes size pseudo-random bytes to path without holding
// them in memory.
func writeRandomFile(t *testing.T, path string, size int64) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{9}), size); err != nil {
		t.Fatal(err)
	}
}
