package testnet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// A program that fails the same way on every worker is the submitter's to
// fix, not dissent: with redundancy 3, a module that exits 3 ends the job
// failed with its exit code and stderr, no tie-breaker is recruited, every
// worker ends failed with the same reason, and no reputation changes.
func TestAgreedFailureEndsJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 3, nil)
	submitter := nodes[3]
	before := reputations(ctx, t, nodes)

	spec := wasmSpec(3, 10*time.Minute)
	spec.Module, spec.Args, spec.Needs.MemoryBytes = addModule(ctx, t, submitter, "../../executor/wasm/testdata/badguest"), []string{"exit", "3"}, 128<<20
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	rec := waitEnd(ctx, t, submitter, id)
	if rec.State != job.StateFailed {
		t.Fatalf("job ended %s, want failed: %s", rec.State, rec.Reason)
	}
	for _, want := range []string{"failed the same way on 3 of 3 workers", "exit code 3", "leaving with 3"} {
		if !strings.Contains(rec.Reason, want) {
			t.Fatalf("reason %q does not say %q", rec.Reason, want)
		}
	}
	if len(rec.Workers) != 3 || rec.Needed > 3 {
		t.Fatalf("workers %v, needed %d: a tie-breaker was recruited for an agreed failure", rec.Workers, rec.Needed)
	}
	if v := rec.Verdict; v == nil || len(v.Dissented) != 0 || len(v.Agreed) != 0 {
		t.Fatalf("verdict %+v: nobody agreed with a result, nobody dissented", rec.Verdict)
	}
	for _, miner := range nodes[:3] {
		w := waitEnd(ctx, t, miner, id)
		if w.State != job.StateFailed || !strings.Contains(w.Reason, "exit code 3") {
			t.Fatalf("worker %s: %s %q", miner.Network().ID(), w.State, w.Reason)
		}
	}
	// The verdict has been gossiped and observed by every node by the time
	// the workers recorded it; a verdict that blamed them would show now.
	time.Sleep(time.Second)
	after := reputations(ctx, t, nodes)
	for viewer, scores := range before {
		for p, s := range scores {
			if after[viewer][p] != s {
				t.Errorf("%s's view of %s went from %.3f to %.3f after an agreed failure", viewer, p, s, after[viewer][p])
			}
		}
	}
}

// reputations reads every node's view of the miners, through the API.
func reputations(ctx context.Context, t *testing.T, nodes []*node.Node) map[peer.ID]map[peer.ID]float64 {
	t.Helper()
	out := map[peer.ID]map[peer.ID]float64{}
	for _, nd := range nodes {
		entries, err := apiClient(t, nd).Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		view := map[peer.ID]float64{}
		for _, e := range entries {
			view[e.Peer] = e.Reputation
		}
		out[nd.Network().ID()] = view
	}
	return out
}

// A job that cannot get its k workers says why while it waits, and keeps
// saying it as the network changes: redundancy 3 on a 2-miner network
// names the shortfall, what to change and when the job gives up, once the
// miners' heartbeats are in (never the stale "no miners known"). Cancel
// then ends it.
func TestWaitingJobSaysWhy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, func(i int, cfg *config.Config) {
		if i == 2 {
			// The submitter's table never counts as settled here: the
			// job is offered, not refused (TestTooFewMinersRefused).
			cfg.Heartbeat.Interval.UnmarshalText([]byte("30m"))
		}
	})
	submitter := nodes[2]
	spec := wasmSpec(3, 30*time.Minute)
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	want := []string{"needs 3 worker(s)", "2 of 2 known miner(s) could run it now", "lower the redundancy", "gives up at " + time.UnixMilli(spec.Deadline).UTC().Format("2006-01-02 15:04:05 UTC")}
	var rec job.Record
	for {
		if rec, err = submitter.Jobs().Get(ctx, id); err != nil {
			t.Fatal(err)
		}
		if containsAll(rec.Waiting, want) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s waits in %s saying %q, want it to say %q", id, rec.State, rec.Waiting, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
	noted := false
	for _, h := range rec.History {
		noted = noted || strings.HasPrefix(h.Note, "waiting for workers: needs 3 worker(s)")
	}
	if rec.State != job.StateOffered || !noted {
		t.Fatalf("state %s, history %+v: want offered with the reason in its history", rec.State, rec.History)
	}
	if err := submitter.Market().Cancel(ctx, id, "not enough miners"); err != nil {
		t.Fatal(err)
	}
	if rec, _ = submitter.Jobs().Get(ctx, id); rec.State != job.StateCancelled || rec.Waiting != "" {
		t.Fatalf("after cancel: %s, waiting %q", rec.State, rec.Waiting)
	}
}

// Once the submitter's heartbeat table has had time to hear from every
// miner, a job that needs more workers than the miners that serve it is
// refused before it is offered, naming the numbers and the fix.
func TestTooFewMinersRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := jobNetwork(ctx, t, 2, func(i int, cfg *config.Config) {
		cfg.Heartbeat.Interval.UnmarshalText([]byte("5s")) // settled after 15 s
	})
	submitter := nodes[2]
	for len(submitter.Heartbeats().Nodes()) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no heartbeats")
		case <-time.After(100 * time.Millisecond):
		}
	}
	spec := wasmSpec(3, 10*time.Minute)
	for {
		_, err := submitter.Market().Submit(ctx, spec)
		if errors.Is(err, job.ErrTooFewMiners) {
			if !strings.Contains(err.Error(), "needs 3 workers, but only 2 of the 2 miners") || !strings.Contains(err.Error(), "--redundancy 2") {
				t.Fatalf("refusal %q does not name the numbers and the fix", err)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		// Offered: the table was not settled yet. Withdraw it and try
		// again with a fresh nonce.
		jobs, _ := submitter.Jobs().List(ctx)
		for _, r := range jobs {
			if !r.State.Terminal() {
				submitter.Market().Cancel(ctx, r.ID, "retry")
			}
		}
		spec = wasmSpec(3, 10*time.Minute)
		select {
		case <-ctx.Done():
			t.Fatal("a job for 3 workers was never refused on a 2-miner network")
		case <-time.After(time.Second):
		}
	}
	// k = 2 fits the network and is offered.
	if _, err := submitter.Market().Submit(ctx, wasmSpec(2, 10*time.Minute)); err != nil {
		t.Fatalf("a job the network can serve was refused: %v", err)
	}
}

// A job can be cancelled in every state that is not final: here one
// whose result was accepted and whose payment cannot reach the chain
// (the RPC is down), which used to be stuck in settling, retrying.
func TestCancelWhileSettling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lnet := startLocalnet(ctx, t)
	nodes := jobNetwork(ctx, t, 1, func(i int, cfg *config.Config) {
		if i == 1 {
			settleOn(cfg, lnet)
		}
	})
	submitter := nodes[1]
	wallet, err := chain.New(submitter.Config().Chain, submitter.Key(), Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer wallet.Close()
	if _, err := wallet.Airdrop(ctx, 1_000_000_000); err != nil {
		t.Fatal(err)
	}
	dir := "../../examples/wordcount"
	spec := wasmSpec(1, 10*time.Minute)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, submitter, dir), 42, 2_000_000
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	lnet.Close() // the payment will not get through
	id := offer.ID.String()
	waitState(ctx, t, submitter, id, job.StateSettling)
	if err := submitter.Market().Cancel(ctx, id, "giving up on the payment"); err != nil {
		t.Fatalf("cancel while settling: %v", err)
	}
	rec, _ := submitter.Jobs().Get(ctx, id)
	if rec.State != job.StateCancelled || !strings.Contains(rec.Reason, "not paid") {
		t.Fatalf("after cancel: %s %q", rec.State, rec.Reason)
	}
}

// A SOL reward below the chain's rent-exempt minimum would be refused at
// payment time for any miner whose wallet is still empty: it is refused
// before the job is offered, naming the minimum and the way out.
func TestRewardBelowRentRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lnet := startLocalnet(ctx, t)
	cfg := Config(config.ModeLight)
	cfg.Chain.Settle = true
	cfg.Chain.RPC, cfg.Chain.WS = lnet.RPCURL(), lnet.WSURL()
	submitter := Start(t, cfg, "submitter", node.Options{})
	wallet, err := chain.New(submitter.Config().Chain, submitter.Key(), Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer wallet.Close()
	if _, err := wallet.Airdrop(ctx, 1_000_000_000); err != nil {
		t.Fatal(err)
	}
	minimum, err := wallet.RentExemptMinimum(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	spec := wasmSpec(1, 10*time.Minute) // reward 5000 lamports, as the examples pay
	_, err = submitter.Market().Submit(ctx, spec)
	if !errors.Is(err, job.ErrRewardTooSmall) || !strings.Contains(err.Error(), fmt.Sprint(minimum)) || !strings.Contains(err.Error(), "token") {
		t.Fatalf("Submit(reward 5000 lamports) = %v, want a refusal naming the %d-lamport minimum and the token alternative", err, minimum)
	}
	if jobs, _ := submitter.Jobs().List(ctx); len(jobs) != 0 {
		t.Fatalf("a refused job was recorded: %+v", jobs)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// A job that fails while a worker holds it withdraws it from that worker:
// here k = 2, one worker never reports and no replacement comes before the
// deadline, and the honest worker, committed and waiting for a verdict
// that will never come, is told (a signed cancel) instead of waiting
// forever in verifying.
func TestFailedJobReleasesItsWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes := New(t, 3, Options{Faults: map[int]string{1: job.FaultNoShow}, Configure: func(i int, cfg *config.Config) {
		if i == 2 {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	honest, submitter := nodes[0], nodes[2]
	spec := wordcountJob(ctx, t, submitter)
	spec.Verify.Workers, spec.Verify.Quorum = 2, 2
	// The submitter's report deadline (timeout + report_grace) must leave
	// room for the honest miner's cold Wasmtime compile of the module on
	// two busy cores: 5 s was too little in CI.
	spec.Needs.TimeoutMS = 30_000
	spec.Deadline = time.Now().Add(45 * time.Second).UnixMilli()
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	waitState(ctx, t, honest, id, job.StateVerifying) // committed
	rec := waitEnd(ctx, t, submitter, id)
	if rec.State != job.StateFailed || !strings.Contains(rec.Reason, "deadline passed") {
		t.Fatalf("job ended %s %q, want failed at its deadline", rec.State, rec.Reason)
	}
	w := waitEnd(ctx, t, honest, id)
	if w.State != job.StateCancelled || !strings.Contains(w.Reason, "the job failed: deadline passed") {
		t.Fatalf("honest worker ended %s %q, want cancelled with the job's failure", w.State, w.Reason)
	}
}
