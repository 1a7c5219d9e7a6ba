package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vft-network/vft/internal/netns"
)

// TestNATBench measures hole punching and transfers on a namespace test
// network (internal/netns): DCUtR success over fresh connections per NAT
// pairing, and fetching the same bytes through the relay and directly.
// It is a measurement, not a test: it asserts nothing about speed and runs
// only with VFT_NAT_BENCH=1 (bench/nat-bench.sh).
func TestNATBench(t *testing.T) {
	if os.Getenv("VFT_NAT_BENCH") == "" {
		t.Skip("a measurement: VFT_NAT_BENCH=1 (bench/nat-bench.sh)")
	}
	attempts := envInt("VFT_NAT_BENCH_ATTEMPTS", 50)
	xferBytes := envInt("VFT_NAT_BENCH_BYTES", 256<<20)
	bin := filepath.Join(t.TempDir(), "natbench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build natbench: %v: %s", err, out)
	}
	net := netns.New(t)
	// VFT_NAT_BENCH_DELAY (e.g. 10ms) delays what every home router sends
	// to the public segment: twice that is the round trip between two
	// homes, direct or through the relay. Shape makes the delay in user
	// space, with or without sch_netem in the kernel.
	var delay time.Duration
	if v := os.Getenv("VFT_NAT_BENCH_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VFT_NAT_BENCH_DELAY=%q: %v (want a duration such as 10ms)", v, err)
		}
		delay = d
	}
	router := func(role string, nat netns.NAT) *netns.Router {
		r := net.Router(role, nat)
		if delay > 0 {
			r.Shape(netns.Shaping{Delay: delay})
		}
		return r
	}

	// The public side: a relay and three peers that observe the NAT'd
	// hosts' addresses.
	var public []string
	for i, role := range []string{"relay", "obs1", "obs2", "obs3"} {
		h := net.Public(role)
		args := []string{"public", "-ip", h.IP.String()}
		if i == 0 {
			args = append(args, "-relay")
		}
		lines := h.StartJSON(t, bin, args...)
		public = append(public, (<-lines)["addr"].(string))
	}
	pub := strings.Join(public, ",")

	var report []string
	pairings := []struct{ listener, dialer netns.NAT }{
		{netns.EasyNAT, netns.EasyNAT},
		{netns.EasyNAT, netns.SymmetricNAT},
		{netns.SymmetricNAT, netns.EasyNAT},
		{netns.SymmetricNAT, netns.SymmetricNAT},
	}
	// Each pairing's attempts run from dialerRouters routers at once, a
	// few fresh hosts behind each (a failed attempt takes up to 40 s, and
	// the public hosts take 8 connections per IP address).
	const dialerRouters, perRouter = 5, 5
	var easyTarget string
	var easyDialer *netns.Host
	for i, p := range pairings {
		if attempts == 0 && i > 0 {
			break // VFT_NAT_BENCH_ATTEMPTS=0: the transfers only
		}
		lh := router(fmt.Sprintf("rl%d", i), p.listener).Home(fmt.Sprintf("l%d", i))
		first := <-lh.StartJSON(t, bin, "listener", "-public", pub)
		target := first["relay_addr"].(string)
		t.Logf("listener behind %s NAT: reservation %.2fs after start", p.listener, first["reservation_s"])
		results := make(chan map[string]any, dialerRouters)
		var mu sync.Mutex
		var took []float64 // seconds from the relayed connection to a direct one
		noRound := 0       // failed attempts in which no DCUtR round ended
		for j := range dialerRouters {
			dh := router(fmt.Sprintf("rd%d-%d", i, j), p.dialer).Home(fmt.Sprintf("d%d-%d", i, j))
			if j == 0 && p.listener == netns.EasyNAT && p.dialer == netns.EasyNAT {
				easyTarget, easyDialer = target, dh
			}
			if attempts == 0 {
				continue
			}
			lines := dh.RunJSON(t, bin, "punch", "-public", pub, "-target", target,
				"-n", fmt.Sprint((attempts+dialerRouters-1)/dialerRouters), "-parallel", fmt.Sprint(perRouter))
			go func() {
				var last map[string]any
				for line := range lines {
					if _, ok := line["attempts"]; ok {
						last = line
					} else if line["direct"] == true {
						mu.Lock()
						took = append(took, line["s"].(float64))
						mu.Unlock()
					} else if line["direct"] == false {
						if line["dcutr_rounds"] == 0.0 {
							mu.Lock()
							noRound++
							mu.Unlock()
						}
						t.Logf("%s-%s attempt %v failed: %v DCUtR rounds, %.1f s", p.listener, p.dialer, line["attempt"], line["dcutr_rounds"], line["s"])
					} else if e, ok := line["error"]; ok {
						t.Logf("%s-%s attempt %v: %v", p.listener, p.dialer, line["attempt"], e)
					}
				}
				results <- last
			}()
		}
		var tried, ok int
		for range min(attempts, dialerRouters) {
			last := <-results
			if last == nil {
				continue
			}
			tried += int(last["attempts"].(float64))
			ok += int(last["successes"].(float64))
		}
		slices.Sort(took)
		med := "–"
		if len(took) > 0 {
			med = fmt.Sprintf("%.1f s", took[len(took)/2])
		}
		row := fmt.Sprintf("| %s (listener) – %s (dialer) | %d / %d | %s | %d |", p.listener, p.dialer, ok, tried, med, noRound)
		t.Log(row)
		report = append(report, row)
	}

	for line := range easyDialer.RunJSON(t, bin, "xfer", "-public", pub, "-target", easyTarget, "-bytes", fmt.Sprint(xferBytes)) {
		row := fmt.Sprintf("| %v | %.0f MiB | %.2f s | %.0f MiB/s | %v |", line["path"], line["bytes"].(float64)/(1<<20), line["s"], line["mib_s"], line["conn"])
		t.Log(row)
		report = append(report, row)
	}
	if out := os.Getenv("VFT_NAT_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(strings.Join(report, "\n")+"\n"), 0o644)
	}
}

func envInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv(name), &v); err != nil {
		return def
	}
	return v
}
