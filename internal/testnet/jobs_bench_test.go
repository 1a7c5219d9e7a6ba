package testnet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/executor/wasm"
	"github.com/vft-network/vft/executor/wasm/wasmtest"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// BenchmarkJobLatency measures submit → accepted result for a trivial WASM
// job (wordcount over two small files) on a loopback network of
// VFT_BENCH_MINERS miners (default 4) and a submitter, with k = 1 and
// k = 3 workers, one job at a time, and jobs per second with 8 submitted
// at once:
//   - p50_ms / p99_ms: latency over the sequential jobs (commit–reveal and
//     the verdict included);
//   - assign_p50_ms / assign_p90_ms / assign_p99_ms: offer → the k workers
//     chosen and the first one's acceptance recorded (the job's history);
//   - jobs_per_s: throughput of the concurrent batch;
//   - cpu_ms_per_job: the process's CPU time (user + system, all nodes)
//     over the sequential jobs, divided by their number;
//   - gc_cycles: garbage collections during the sequential jobs. The
//     nodes share this process's heap; GOGC=off GOMEMLIMIT=8GiB keeps
//     collections out of the measured jobs (docs/BENCHMARKS.md);
//   - alloc_mb_per_job: heap allocated by all nodes over the sequential
//     jobs, divided by their number (what drives those collections).
//
// VFT_BENCH_TRANSPORT=tcp or quic listens on that transport only (the
// default is both, as a daemon). VFT_BENCH_CPUPROFILE=FILE writes a CPU
// profile of the measured jobs only (not the network's start, mesh and
// warm-up, which -cpuprofile includes). VFT_BENCH_HEAPPROFILE=FILE writes
// the nodes' live heap just before the measured jobs.
//
// Run: go test -run '^$' -bench JobLatency -benchtime 1x ./internal/testnet/
func BenchmarkJobLatency(b *testing.B) {
	miners := benchEnvInt("VFT_BENCH_MINERS", 4)
	sequential := benchEnvInt("VFT_BENCH_JOBS", 100)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, b, miners, func(i int, cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.Market.MaxJobs = 4
		// The daemon's default: testnet's 2 s (quick meshes for tests)
		// makes every node advertise and look up the rendezvous key on
		// the DHT every 2 s, which was the largest share of a 50-node
		// network's CPU in this benchmark.
		cfg.P2P.DiscoveryInterval = units.Duration(time.Minute)
		benchTransport(b, cfg)
	})
	submitter := nodes[miners]
	moduleCID := addModule(ctx, b, submitter, "../../examples/wordcount")
	// Every node has run the module once, as a miner has after its first
	// job with it: it holds the module's blocks and their compiled code.
	// The figures are the market's, not a cold compile (2–4 s of CPU for
	// this Go-built module) or the module's first fetch, which the fair
	// choice would otherwise hit on most jobs of a 50-node network.
	shareModule(ctx, b, nodes, "../../examples/wordcount", moduleCID)
	inputCID := addPath(ctx, b, submitter, "../../examples/wordcount/testdata/books")
	for _, k := range []int{1, 3} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			benchJobLatency(ctx, b, submitter, miners, moduleCID, inputCID, k, sequential)
		})
	}
}

func benchJobLatency(ctx context.Context, b *testing.B, submitter *node.Node, miners int, moduleCID, inputCID string, k, sequential int) {
	var assignMu sync.Mutex
	var assign []time.Duration
	ran := map[peer.ID]bool{} // miners that have worked on a job
	run := func() time.Duration {
		spec := wasmSpec(uint32(k), 5*time.Minute)
		spec.Module, spec.Needs.MemoryBytes = moduleCID, 128<<20
		spec.Inputs = []job.Input{{CID: inputCID}}
		start := time.Now()
		offer, err := submitter.Market().Submit(ctx, spec)
		if err != nil {
			b.Error(err)
			return 0
		}
		for {
			r, err := submitter.Jobs().Get(ctx, offer.ID.String())
			if err == nil && r.State.Terminal() {
				took := time.Since(start)
				if took > 500*time.Millisecond && os.Getenv("VFT_BENCH_DEBUG") != "" {
					for _, h := range r.History {
						b.Logf("slow job %s: %s %s %s", offer.ID, h.State, h.At.Sub(start), h.Note)
					}
				}
				if r.State != job.StateDone {
					b.Errorf("job %s %s: %s", offer.ID, r.State, r.Reason)
				}
				// The choice sends all k assignments at once; the first
				// acceptance moves the job to assigned.
				assignMu.Lock()
				for _, h := range r.History {
					if h.State == job.StateAssigned {
						assign = append(assign, h.At.Sub(r.History[0].At))
						break
					}
				}
				for _, w := range r.Workers {
					ran[w] = true
				}
				assignMu.Unlock()
				return took
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Warm every miner, as one that has run the module before is: its
	// first task loads the compiled code from its disk cache into memory
	// (10–20 ms of CPU for this module, a third of a job's CPU at 50
	// nodes), which a miner pays once per module, not once per job.
	// Batches of 8 at once until every miner has worked on a job.
	for batch := 0; batch < 50; batch++ {
		assignMu.Lock()
		warm := len(ran) >= miners
		assignMu.Unlock()
		if warm {
			break
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { run() })
		}
		wg.Wait()
	}
	if len(ran) < miners {
		b.Fatalf("after 400 warm-up jobs %d of %d miners have worked on one", len(ran), miners)
	}
	assign = assign[:0]
	writeHeapProfile(b, os.Getenv("VFT_BENCH_HEAPPROFILE"))
	stopProfile := startPhaseProfile(b, os.Getenv("VFT_BENCH_CPUPROFILE"))
	defer stopProfile()
	cpuStart := processCPU(b)
	// The 50 nodes share one heap, so a collection marks all of theirs
	// (about 330 MB live, 250–350 ms of wall on 2 cores) and a job that
	// overlaps one is slowed by it, where a node in its own process marks
	// its own few MB. How many ran says how many jobs could be.
	var gcBefore, gcAfter runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	lat := make([]time.Duration, 0, sequential)
	for range sequential {
		lat = append(lat, run())
	}
	runtime.ReadMemStats(&gcAfter)
	b.ReportMetric(float64((processCPU(b)-cpuStart).Milliseconds())/float64(sequential), "cpu_ms_per_job")
	b.ReportMetric(float64(gcAfter.NumGC-gcBefore.NumGC), "gc_cycles")
	b.ReportMetric(float64(gcAfter.TotalAlloc-gcBefore.TotalAlloc)/(1<<20)/float64(sequential), "alloc_mb_per_job")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ms")
	slices.Sort(assign)
	b.ReportMetric(float64(assign[len(assign)/2].Milliseconds()), "assign_p50_ms")
	b.ReportMetric(float64(assign[len(assign)*9/10].Milliseconds()), "assign_p90_ms")
	b.ReportMetric(float64(assign[len(assign)*99/100].Milliseconds()), "assign_p99_ms")

	const concurrent = 8
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrent {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	b.ReportMetric(concurrent/time.Since(start).Seconds(), "jobs_per_s")
}

// benchTransport keeps only one of the test network's two listeners
// (TCP and QUIC, as the daemon's default) when VFT_BENCH_TRANSPORT is
// "tcp" or "quic", to compare what each costs on loopback.
func benchTransport(tb testing.TB, cfg *config.Config) {
	tb.Helper()
	switch v := os.Getenv("VFT_BENCH_TRANSPORT"); v {
	case "":
	case "tcp":
		cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	case "quic":
		cfg.P2P.Listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
	default:
		tb.Fatalf("VFT_BENCH_TRANSPORT=%q: use tcp or quic (or leave it unset for both)", v)
	}
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startPhaseProfile writes a CPU profile to path until the returned
// function is called; with no path it does nothing.
func startPhaseProfile(tb testing.TB, path string) (stop func()) {
	tb.Helper()
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("VFT_BENCH_CPUPROFILE: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatalf("VFT_BENCH_CPUPROFILE %s: %v (is -cpuprofile set too?)", path, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}
}

// writeHeapProfile writes the live heap, after a collection, to path;
// with no path it does nothing. -memprofile is written only after the
// benchmark's nodes have closed, so it cannot show what they hold.
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	if path == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("VFT_BENCH_HEAPPROFILE: %v", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatalf("VFT_BENCH_HEAPPROFILE %s: %v", path, err)
	}
}

// BenchmarkIdleNetworkCPU measures what VFT_BENCH_MINERS miners (default
// 49) and a submitter cost while no job runs: the background work of a
// network at rest (timers, DHT upkeep, heartbeats, GossipSub, keep-alives),
// after the mesh has formed and a settling minute has passed:
//   - cpu_ms_per_node_s: the process's CPU time over VFT_BENCH_IDLE
//     (default 60 s), per node and second.
//
// VFT_BENCH_CPUPROFILE=FILE profiles the measured interval only.
//
// Run: go test -run '^$' -bench IdleNetworkCPU -benchtime 1x ./internal/testnet/
func BenchmarkIdleNetworkCPU(b *testing.B) {
	miners := benchEnvInt("VFT_BENCH_MINERS", 49)
	window := time.Minute
	if v, err := time.ParseDuration(os.Getenv("VFT_BENCH_IDLE")); err == nil && v > 0 {
		window = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, b, miners, func(i int, cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.P2P.DiscoveryInterval = units.Duration(time.Minute) // as BenchmarkJobLatency
		benchTransport(b, cfg)
	})
	// The start's discovery rounds back off to the interval and the
	// first heartbeats spread out.
	select {
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	case <-time.After(time.Minute):
	}
	stopProfile := startPhaseProfile(b, os.Getenv("VFT_BENCH_CPUPROFILE"))
	defer stopProfile()
	cpuStart, start := processCPU(b), time.Now()
	time.Sleep(window)
	used, took := processCPU(b)-cpuStart, time.Since(start)
	stopProfile()
	b.ReportMetric(float64(used.Milliseconds())/float64(len(nodes))/took.Seconds(), "cpu_ms_per_node_s")
}

// shareModule gives every node what a miner keeps after a job with the
// module built from pkg: its blocks in the store (the submitted
// moduleCID; the build is reproducible) and its compiled code, compiled
// once into a WASM code cache of the same settings the nodes use and
// copied into every node's repo, which each node then loads from disk
// on its first job.
func shareModule(ctx context.Context, b *testing.B, nodes []*node.Node, pkg, moduleCID string) {
	b.Helper()
	path, err := wasmtest.NewBuilder(b.TempDir()).Build(pkg)
	if err != nil {
		b.Fatal(err)
	}
	module, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	wc := nodes[0].Config().Executor.WASM
	ex, err := wasm.New(wasm.Config{CacheDir: cache, Runtime: wc.Runtime}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer ex.Close()
	if err := ex.Compile(ctx, module); err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		if err := os.CopyFS(n.RepoPath("wasm-cache"), os.DirFS(cache)); err != nil {
			b.Fatal(err)
		}
		if c := addPath(ctx, b, n, path); c != moduleCID {
			b.Fatalf("the module built again is %s, not the submitted %s", c, moduleCID)
		}
	}
}

// benchEnvInt is the positive integer environment variable name sets, or
// def.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
