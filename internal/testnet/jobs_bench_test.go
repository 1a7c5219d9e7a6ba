package testnet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

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
//   - jobs_per_s: throughput of the concurrent batch.
//
// Run: go test -run '^$' -bench JobLatency -benchtime 1x ./internal/testnet/
func BenchmarkJobLatency(b *testing.B) {
	miners := 4
	if v, err := strconv.Atoi(os.Getenv("VFT_BENCH_MINERS")); err == nil && v > 0 {
		miners = v
	}
	sequential := 100
	if v, err := strconv.Atoi(os.Getenv("VFT_BENCH_JOBS")); err == nil && v > 0 {
		sequential = v
	}
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
	})
	submitter := nodes[miners]
	moduleCID := addModule(ctx, b, submitter, "../../examples/wordcount")
	// Every node has compiled the module once, as a miner has after its
	// first job with it: the figures are the market's, not a cold compile
	// (2–4 s of CPU for this Go-built module), which the fair choice would
	// otherwise hit on most jobs of a 50-node network.
	shareCompiledModule(ctx, b, nodes, "../../examples/wordcount")
	inputCID := addPath(ctx, b, submitter, "../../examples/wordcount/testdata/books")
	for _, k := range []int{1, 3} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			benchJobLatency(ctx, b, submitter, moduleCID, inputCID, k, sequential)
		})
	}
}

func benchJobLatency(ctx context.Context, b *testing.B, submitter *node.Node, moduleCID, inputCID string, k, sequential int) {
	var assignMu sync.Mutex
	var assign []time.Duration
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
				for _, h := range r.History {
					if h.State == job.StateAssigned {
						assignMu.Lock()
						assign = append(assign, h.At.Sub(r.History[0].At))
						assignMu.Unlock()
						break
					}
				}
				return took
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	run() // warm the miners' compilation caches
	assign = assign[:0]
	lat := make([]time.Duration, 0, sequential)
	for range sequential {
		lat = append(lat, run())
	}
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

// shareCompiledModule compiles the module built from pkg once, into a
// WASM code cache of the same settings the nodes use, and copies that
// cache into every node's repo: each node then loads the compiled code
// from disk on its first job, as after a first compile of its own.
func shareCompiledModule(ctx context.Context, b *testing.B, nodes []*node.Node, pkg string) {
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
	}
}
