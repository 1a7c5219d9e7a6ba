package testnet

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// A miner sees what it earned: after a paid job is done, each worker finds
// on chain the transaction that paid it (the memo names the job) and
// records it on its own job: its wallet, the amount credited, the
// signature, and a history note in SOL. The submitter's payouts name the
// worker (peer ID) each one paid, so the two sides match.
func TestWorkerRecordsItsSOLEarnings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lnet := startLocalnet(ctx, t)

	// Above a new wallet's rent-exempt minimum, as a SOL reward must be
	// (smaller ones are refused at submit: TestRewardBelowRentRefused).
	const miners, reward = 2, 1_250_000
	nodes := New(t, miners+1, Options{Configure: func(i int, cfg *config.Config) {
		settleOn(cfg, lnet)
		if i == miners {
			cfg.Node.Mode = config.ModeLight
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	airdropFees(ctx, t, nodes)
	submitter := nodes[miners]
	dir := "../../examples/wordcount"
	spec := wasmSpec(miners, 4*time.Minute)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, submitter, dir), 42, reward
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	paid := waitState(ctx, t, submitter, id, job.StateDone)
	for i, nd := range nodes[:miners] {
		sent := paidTo(paid.Payouts, nd.Key().WalletAddress())
		if sent == nil || sent.Worker != nd.Key().PeerID().String() {
			t.Fatalf("the submitter's payouts %+v do not name miner %d (%s) as the worker paid", paid.Payouts, i, nd.Key().PeerID())
		}
		checkEarned(ctx, t, nd, id, *sent, "paid 0.00125 SOL by tx "+sent.Signature)
	}
}

// The same for a token job paid by an escrow release the workers
// co-signed: the credit is read from the token balances of the worker's
// token account, and the note is in the mint's decimals (6 here).
func TestWorkerRecordsItsEscrowEarnings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const reward = 40_000
	en := startEscrowNetwork(ctx, t, Options{})
	spec := en.wordcountJob(ctx, t, 4*time.Minute, reward)
	offer, err := en.submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	paid := waitState(ctx, t, en.submitter, id, job.StateDone)
	short := en.mint.String()[:4] + "…" + en.mint.String()[len(en.mint.String())-4:]
	for i, nd := range en.nodes[:3] {
		sent := paidTo(paid.Payouts, nd.Key().WalletAddress())
		if sent == nil || sent.Worker != nd.Key().PeerID().String() || sent.Returned {
			t.Fatalf("the submitter's payouts %+v do not name miner %d (%s) as a worker paid", paid.Payouts, i, nd.Key().PeerID())
		}
		checkEarned(ctx, t, nd, id, *sent, "paid 0.04 "+short+" by tx "+sent.Signature)
	}
}

// checkEarned waits until the worker's own record of job id holds the
// payout the submitter sent it, and the history note.
func checkEarned(ctx context.Context, t *testing.T, nd *node.Node, id string, sent job.Payout, note string) {
	t.Helper()
	wallet := nd.Key().WalletAddress()
	for {
		rec, err := nd.Jobs().Get(ctx, id)
		if got := paidTo(rec.Payouts, wallet); err == nil && got != nil {
			want := job.Payout{Recipient: wallet, Worker: nd.Key().PeerID().String(), Amount: sent.Amount, Signature: sent.Signature, State: "confirmed"}
			if *got != want {
				t.Fatalf("worker %s recorded %+v, want %+v", nd.Key().PeerID(), *got, want)
			}
			for _, h := range rec.History {
				if h.Note == note {
					return
				}
			}
			t.Fatalf("worker %s: no history note %q in %+v", nd.Key().PeerID(), note, rec.History)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("worker %s never recorded its payment for job %s (record %+v, %v)", nd.Key().PeerID(), id, rec, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
