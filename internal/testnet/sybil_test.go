package testnet

// Sybil crowds: many free identities, each within every per-author rate,
// next to honest nodes (see hostile_test.go for the attacker node).

import (
	"context"
	"crypto/rand"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// startSybils joins n attacker identities to the network through boot.
func startSybils(t testing.TB, ctx context.Context, boot *node.Node, n int) []*attacker {
	t.Helper()
	sybils := make([]*attacker, n)
	for i := range sybils {
		sybils[i] = newAttacker(t, ctx, boot)
	}
	return sybils
}

// flood has every Sybil gossip valid offers at perSecond each until ctx
// ends; it returns how many were published.
func flood(ctx context.Context, sybils []*attacker, perSecond int) *atomic.Int64 {
	var sent atomic.Int64
	for _, s := range sybils {
		go func() {
			tick := time.NewTicker(time.Second / time.Duration(perSecond))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				o, err := job.NewOffer(s.key, wasmSpec(1, 10*time.Minute), time.Now())
				if err == nil && s.offers.Publish(ctx, o.Raw) == nil {
					sent.Add(1)
				}
			}
		}()
	}
	return &sent
}

// 50 Sybil identities flooding valid offers (2 a second each, within the
// per-author rates, so none is dropped) do not stop an honest job: it
// completes with the right output, and goroutines grow with the number of
// Sybils, not of offers. Faster floods are dropped per author (the gossip
// and market rate tests); on one 2-core machine the Sybils' own signing
// and gossip would starve every node alike, honest or not.
func TestSybilOfferFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, nil)
	submitter := nodes[2]
	sybils := startSybils(t, ctx, nodes[0], 50)
	spec := wordcountJob(ctx, t, submitter)
	// The flood shares these 2 cores with the honest miners: compiling
	// the module alone can take a minute here, so the honest job gets
	// room to run rather than a deadline the test machine sets.
	spec.Needs.TimeoutMS = uint64((3 * time.Minute).Milliseconds())
	spec.Deadline = time.Now().Add(7 * time.Minute).UnixMilli()
	baseline := runtime.NumGoroutine()

	floodCtx, stopFlood := context.WithCancel(ctx)
	sent := flood(floodCtx, sybils, 2)
	peak := baseline
	go func() {
		for floodCtx.Err() == nil {
			peak = max(peak, runtime.NumGoroutine())
			time.Sleep(10 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Second) // the flood is on before the job starts
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	stopFlood()
	checkOutput(ctx, t, submitter, rec.Result, "../../examples/wordcount/expected/texts")
	t.Logf("%d offers flooded; goroutines %d before, peak %d", sent.Load(), baseline, peak)
	// The process holds the Sybils too. What grows is a connection from
	// each miner to each Sybil it bids to (a few dozen goroutines each),
	// not a goroutine per flooded offer.
	if grown := peak - baseline; grown > 200*len(sybils) {
		t.Fatalf("goroutines grew by %d during a flood of %d offers from %d Sybils", grown, sent.Load(), len(sybils))
	}
}

// BenchmarkSybilFlood measures what a flood from 50 Sybil identities costs
// honest users, in one run: honest job latency (submit → accepted result,
// wordcount, k = 1, on 2 miners and a submitter) with the Sybils connected
// but quiet, then with each of them gossiping valid offers at 2 a second
// (within the per-author rates, so nothing is dropped for rate). The heap is the whole
// process's (honest nodes and Sybils alike): it bounds what the honest
// nodes hold.
//
//	go test -run '^$' -bench SybilFlood -benchtime 1x ./internal/testnet/
func BenchmarkSybilFlood(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, b, 2, func(_ int, cfg *config.Config) { cfg.Log.Level = "warn"; cfg.Market.MaxJobs = 2 })
	submitter := nodes[2]
	sybils := startSybils(b, ctx, nodes[0], 50)
	spec := wordcountJob(ctx, b, submitter)
	const jobs = 30
	measure := func() (p50, p99 time.Duration, heapMiB float64) {
		var peak uint64
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-done:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
		lat := make([]time.Duration, 0, jobs)
		for range jobs {
			s := spec
			s.Nonce = make([]byte, 16)
			rand.Read(s.Nonce)
			start := time.Now()
			o, err := submitter.Market().Submit(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			for {
				r, err := submitter.Jobs().Get(ctx, o.ID.String())
				if err == nil && r.State.Terminal() {
					if r.State != job.StateDone {
						b.Fatalf("job %s: %s", r.State, r.Reason)
					}
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
		close(done)
		slices.Sort(lat)
		return lat[len(lat)/2], lat[len(lat)*99/100], float64(peak) / (1 << 20)
	}
	quietP50, quietP99, quietHeap := measure()
	floodCtx, stopFlood := context.WithCancel(ctx)
	sent := flood(floodCtx, sybils, 2)
	start := time.Now()
	floodP50, floodP99, floodHeap := measure()
	rate := float64(sent.Load()) / time.Since(start).Seconds()
	stopFlood()
	b.ReportMetric(float64(quietP50.Milliseconds()), "quiet_p50_ms")
	b.ReportMetric(float64(quietP99.Milliseconds()), "quiet_p99_ms")
	b.ReportMetric(float64(floodP50.Milliseconds()), "flood_p50_ms")
	b.ReportMetric(float64(floodP99.Milliseconds()), "flood_p99_ms")
	b.ReportMetric(float64(floodP50)/float64(quietP50), "p50_ratio")
	b.ReportMetric(quietHeap, "quiet_heap_MiB")
	b.ReportMetric(floodHeap, "flood_heap_MiB")
	b.ReportMetric(rate, "flood_offers_per_s")
}
