package marketsim

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestMarketSmall runs 12 jobs (8 one after the other, 4 at once) on 20
// simulated nodes, over each transport, and checks each ends done with k
// distinct workers. It checks correctness only: the times it logs are
// virtual.
func TestMarketSmall(t *testing.T) {
	for _, transport := range []string{transportSimnet, transportMocknet} {
		t.Run(transport, func(t *testing.T) {
			cfg := config{Nodes: 20, Degree: 6, K: 3, Sequential: 8, Concurrent: 4, Seed: 1,
				MinLatency: 20 * time.Millisecond, MaxLatency: 100 * time.Millisecond, Bandwidth: 50_000_000, MaxJobs: 4,
				Transport: transport}
			res := simulate(t, cfg)
			if len(res.Jobs) != cfg.Sequential+cfg.Concurrent {
				t.Errorf("%d of %d jobs measured", len(res.Jobs), cfg.Sequential+cfg.Concurrent)
			}
		})
	}
}

// TestMarketAtScale is the measurement, for as many nodes as
// VFT_SIM_NODES says (skipped without it); VFT_SIM_JOBS and
// VFT_SIM_CONCURRENT set the workload (default 50 in a row, then 8 at
// once); VFT_SIM_REACH_ALL=1 gives every miner the submitter's address
// (config.ReachAll); VFT_SIM_MIN_LATENCY_US and VFT_SIM_MAX_LATENCY_US
// bound a link's one-way latency (default 20,000 and 100,000: 20–100 ms;
// 50 and 200 stand for loopback); VFT_SIM_STAGGER_MS spreads the miners'
// first heartbeats over that many virtual milliseconds (config.Stagger,
// default 0); VFT_SIM_DIRECT_BEATS=1 fills the submitter's heartbeat
// table without heartbeat gossip (config.DirectBeats);
// VFT_SIM_TRANSPORT=mocknet runs the hosts on go-libp2p's mocknet in
// place of QUIC over simnet (config.Transport). See docs/BENCHMARKS.md.
func TestMarketAtScale(t *testing.T) {
	nodes := envInt(t, "VFT_SIM_NODES", 0)
	if nodes == 0 {
		t.Skip("set VFT_SIM_NODES (e.g. 1000) to simulate a network of that many nodes")
	}
	if nodes < 5 {
		t.Fatalf("VFT_SIM_NODES=%d: the market needs a submitter and at least 4 miners for k=3; set 5 or more", nodes)
	}
	cfg := config{Nodes: nodes, Degree: envInt(t, "VFT_SIM_DEGREE", 8), K: 3,
		Sequential: envInt(t, "VFT_SIM_JOBS", 50), Concurrent: envInt(t, "VFT_SIM_CONCURRENT", 8), Seed: 1,
		MinLatency: time.Duration(envInt(t, "VFT_SIM_MIN_LATENCY_US", 20_000)) * time.Microsecond,
		MaxLatency: time.Duration(envInt(t, "VFT_SIM_MAX_LATENCY_US", 100_000)) * time.Microsecond, Bandwidth: 50_000_000, MaxJobs: 4,
		ReachAll:    envInt(t, "VFT_SIM_REACH_ALL", 0) == 1,
		Stagger:     time.Duration(envInt(t, "VFT_SIM_STAGGER_MS", 0)) * time.Millisecond,
		DirectBeats: envInt(t, "VFT_SIM_DIRECT_BEATS", 0) == 1,
		Transport:   os.Getenv("VFT_SIM_TRANSPORT")}
	if err := checkTransport(cfg.Transport); err != nil {
		t.Fatalf("VFT_SIM_TRANSPORT: %v", err)
	}
	simulate(t, cfg)
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		t.Fatalf("%s=%q is not a count: set a whole number such as 1000", name, s)
	}
	return v
}

// simulate runs cfg in a synctest bubble, fails the test for every job
// that did not end done with k distinct workers, and logs the figures.
func simulate(t *testing.T, cfg config) result {
	t.Helper()
	var res result
	synctest.Test(t, func(t *testing.T) {
		var err error
		res, err = run(cfg, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
	})
	for _, f := range res.Failures {
		t.Error(f)
	}
	t.Log(report(cfg, res))
	return res
}

func report(cfg config, res result) string {
	var b strings.Builder
	transport := cfg.Transport
	if transport == "" {
		transport = transportSimnet
	}
	fmt.Fprintf(&b, "transport %s; ", transport)
	fmt.Fprintf(&b, "%d nodes (1 submitter, %d miners), %d dials each, links %s–%s one way, %d Mbit/s per node, k=%d, every miner has the submitter's address: %v\n",
		cfg.Nodes, cfg.Nodes-1, cfg.Degree, cfg.MinLatency, cfg.MaxLatency, cfg.Bandwidth/1_000_000, cfg.K, cfg.ReachAll)
	fmt.Fprintf(&b, "heartbeat interval %s (heartbeat.ScaledInterval for %d nodes), miners' first heartbeats spread over %s, handed to the submitter without gossip: %v\n",
		heartbeatInterval(cfg.Nodes), cfg.Nodes, cfg.Stagger, cfg.DirectBeats)
	fmt.Fprintf(&b, "virtual: dials %s, offers mesh formed %s after joining, submitter's heartbeat table %d of %d miners %s after joining, %d peers connected to it then\n",
		res.Connect.Round(time.Millisecond), res.MeshFormed.Round(time.Millisecond), res.Known, cfg.Nodes-1, res.Settled.Round(time.Millisecond), res.Connected)
	for _, group := range []struct {
		name       string
		concurrent bool
	}{{fmt.Sprintf("%d in a row", cfg.Sequential), false}, {fmt.Sprintf("%d at once", cfg.Concurrent), true}} {
		var assigned, done []time.Duration
		for _, j := range res.Jobs {
			if j.Concurrent == group.concurrent {
				assigned, done = append(assigned, j.Assigned), append(done, j.Done)
			}
		}
		if len(done) == 0 {
			continue
		}
		slices.Sort(assigned)
		slices.Sort(done)
		fmt.Fprintf(&b, "%s: offer → %d assigned p50 %s p90 %s p99 %s; offer → done p50 %s p90 %s p99 %s", group.name, cfg.K,
			ms(percentile(assigned, .5)), ms(percentile(assigned, .9)), ms(percentile(assigned, .99)),
			ms(percentile(done, .5)), ms(percentile(done, .9)), ms(percentile(done, .99)))
		if group.concurrent {
			// Submitted at one instant: the batch took its slowest job.
			fmt.Fprintf(&b, "; %.1f jobs/s", float64(len(done))/done[len(done)-1].Seconds())
		}
		b.WriteString("\n")
	}
	// Who won: with the window closing at 2k bids, the nearest miners bid
	// first and are the only ones chosen from.
	jobsOf := map[string]int{}
	for _, j := range res.Jobs {
		for _, w := range j.Workers {
			jobsOf[w.String()]++
		}
	}
	busiest := 0
	for _, c := range jobsOf {
		busiest = max(busiest, c)
	}
	fmt.Fprintf(&b, "workers: %d distinct of %d miners ran the %d jobs, the busiest %d of them\n", len(jobsOf), cfg.Nodes-1, len(res.Jobs), busiest)
	f := fairnessOf(jobsOf, cfg.Nodes-1)
	u := uniformFairness(cfg.Nodes-1, len(res.Jobs), cfg.K)
	fmt.Fprintf(&b, "fairness: %.0f%% of miners ran ≥1 job, the busiest ran %.1f%% of all runs (equal shares: %.1f%%), Gini %.2f over all %d miners (0 equal, 1 one miner ran everything); a uniform draw of k per job would give %.0f%%, %.1f%%, Gini %.2f\n",
		100*f.ranAny, 100*f.maxShare, 100/float64(cfg.Nodes-1), f.gini, cfg.Nodes-1, 100*u.ranAny, 100*u.maxShare, u.gini)
	perNode := func(v int64) string { return fmt.Sprintf("%.1f KiB", float64(v)/float64(cfg.Nodes)/1024) }
	fmt.Fprintf(&b, "gossip sent per node: %s in all over %s virtual (%s from mesh formed to last job, %s); published message bytes per node by topic:",
		perNode(res.BytesSent), res.Virtual.Round(time.Second), perNode(res.SpanBytesSent), res.MeasuredSpan.Round(time.Second))
	topics := make([]string, 0, len(res.TopicBytes))
	for t := range res.TopicBytes {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		fmt.Fprintf(&b, " %s %s", t, perNode(res.TopicBytes[t]))
	}
	fmt.Fprintf(&b, "\nGossipSub RPCs dropped for a full peer queue: %d (all nodes)", res.DroppedRPCs)
	fmt.Fprintf(&b, "\nreal CPU: %.1f s (user+system, whole process)\n", res.CPU.Seconds())
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

// fairness sums up who earned: the share of miners that ran at least one
// job, the busiest miner's share of all runs, and the Gini coefficient of
// runs per miner over every miner, those that ran none included.
type fairness struct {
	ranAny, maxShare, gini float64
}

// fairnessOf measures runs per miner (jobsOf, by miner; absent miners ran
// none) over a network of miners miners.
func fairnessOf(jobsOf map[string]int, miners int) fairness {
	counts := make([]float64, miners)
	i, total := 0, 0.0
	for _, c := range jobsOf {
		if i < miners {
			counts[i] = float64(c)
			i++
		}
		total += float64(c)
	}
	if miners == 0 || total == 0 {
		return fairness{}
	}
	slices.Sort(counts)
	// Gini from the sorted counts: Σ (2i − n − 1)·x_i / (n·Σx), i from 1.
	var weighted float64
	for i, x := range counts {
		weighted += float64(2*(i+1)-miners-1) * x
	}
	return fairness{
		ranAny:   float64(len(jobsOf)) / float64(miners),
		maxShare: counts[miners-1] / total,
		gini:     weighted / (float64(miners) * total),
	}
}

// uniformFairness is what a perfectly fair market would measure over as
// few jobs: each job's k workers drawn uniformly from all miners, the
// mean of 200 such runs (a fixed seed). Over a few dozen jobs even a
// fair draw leaves miners without a job and a Gini well above 0.
func uniformFairness(miners, jobs, k int) fairness {
	if miners < k || jobs == 0 {
		return fairness{}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	const runs = 200
	var sum fairness
	for range runs {
		jobsOf := map[string]int{}
		for range jobs {
			for _, m := range rng.Perm(miners)[:k] {
				jobsOf[strconv.Itoa(m)]++
			}
		}
		f := fairnessOf(jobsOf, miners)
		sum.ranAny += f.ranAny / runs
		sum.maxShare += f.maxShare / runs
		sum.gini += f.gini / runs
	}
	return sum
}
