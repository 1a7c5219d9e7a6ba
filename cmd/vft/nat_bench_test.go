package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vft-network/vft/internal/netns"
)

// TestNATBenchReachable measures how long a daemon takes from its start
// to reachable: behind an easy or a symmetric NAT, until it holds a relay
// reservation (AutoNAT's "private" verdict comes first); on the public
// segment, until AutoNAT says public. A measurement, not a test: it
// asserts nothing about time and runs only with VFT_NAT_BENCH=1
// (bench/nat-bench.sh); VFT_NAT_BENCH_RUNS sets the runs per kind (5).
func TestNATBenchReachable(t *testing.T) {
	if os.Getenv("VFT_NAT_BENCH") == "" {
		t.Skip("a measurement: VFT_NAT_BENCH=1 (bench/nat-bench.sh)")
	}
	runs := 5
	fmt.Sscan(os.Getenv("VFT_NAT_BENCH_RUNS"), &runs)
	net := netns.New(t)
	_, viaBoot := publicSide(t, net)
	var report []string
	for _, kind := range []string{"public", "easy", "symmetric"} {
		var took []time.Duration
		for i := range runs {
			var h *netns.Host
			switch kind {
			case "public":
				h = net.Public(fmt.Sprintf("p%d", i))
			case "easy":
				h = net.Router(fmt.Sprintf("re%d", i), netns.EasyNAT).Home(fmt.Sprintf("e%d", i))
			default:
				h = net.Router(fmt.Sprintf("rs%d", i), netns.SymmetricNAT).Home(fmt.Sprintf("s%d", i))
			}
			begin := time.Now()
			n := startNATNode(t, h, "miner", viaBoot(expensiveMiner))
			waitFor(t, 3*time.Minute, kind+" node reachable", func() (bool, string) {
				r := n.identity(t).Reachability
				if r == nil {
					return false, "no reachability"
				}
				if kind == "public" {
					return r.Status == "public", r.Status
				}
				return r.Status == "private" && len(r.Relays) > 0, r.Status
			}, n.d)
			took = append(took, time.Since(begin))
			n.d.stop(t)
		}
		slices.Sort(took)
		what := "relay reservation"
		if kind == "public" {
			what = "AutoNAT: public"
		}
		row := fmt.Sprintf("| %s | %s | %.1f s | %.1f s | %.1f s | %d |", kind, what,
			took[0].Seconds(), took[len(took)/2].Seconds(), took[len(took)-1].Seconds(), len(took))
		t.Log(row)
		report = append(report, row)
	}
	if out := os.Getenv("VFT_NAT_BENCH_OUT"); out != "" {
		os.WriteFile(out, []byte(strings.Join(report, "\n")+"\n"), 0o644)
	}
}
