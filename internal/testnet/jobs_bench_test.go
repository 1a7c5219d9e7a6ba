package testnet

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
)

// BenchmarkJobLatency measures submit → accepted result for a trivial WASM
// job (wordcount over two small files, k = 1) on a 5-node loopback network
// (4 miners, 1 submitter), one job at a time, and jobs per second with 8
// submitted at once:
//   - p50_ms / p99_ms: latency over the sequential jobs (commit–reveal and
//     the verdict included);
//   - assign_p50_ms / assign_p99_ms: offer → worker assigned, from the
//     job's own history, over the same jobs;
//   - jobs_per_s: throughput of the concurrent batch.
//
// Run: go test -run '^$' -bench JobLatency -benchtime 1x ./internal/testnet/
func BenchmarkJobLatency(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, b, 4, func(i int, cfg *config.Config) {
		cfg.Log.Level = "warn"
		cfg.Market.MaxJobs = 4
	})
	submitter := nodes[4]
	moduleCID := addModule(ctx, b, submitter, "../../examples/wordcount")
	inputCID := addPath(ctx, b, submitter, "../../examples/wordcount/testdata/books")
	var assignMu sync.Mutex
	var assign []time.Duration
	run := func() time.Duration {
		spec := wasmSpec(1, 5*time.Minute)
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
	const sequential = 100
	lat := make([]time.Duration, 0, sequential)
	for range sequential {
		lat = append(lat, run())
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ms")
	slices.Sort(assign)
	b.ReportMetric(float64(assign[len(assign)/2].Milliseconds()), "assign_p50_ms")
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
