package testnet

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/job"
)

// Paid work end to end on the real Solana runtime: the submitter's node
// refuses a job its wallet cannot pay (naming the amount missing), then,
// funded, runs one with exact verification in which a dishonest miner is
// caught, and pays exactly the agreeing workers, each transaction with the
// memo vft:1:<job>:<result>; the cheater gets nothing.
func TestSettlementPaysAgreeingWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lnet := startLocalnet(ctx, t)

	const miners, reward = 3, 2_000_000 // lamports: above a new account's rent minimum
	nodes := New(t, miners+1, Options{Faults: map[int]string{2: job.FaultWrongResult}, Configure: func(i int, cfg *config.Config) {
		if i == miners {
			cfg.Node.Mode = config.ModeLight
			settleOn(cfg, lnet)
		}
	}})
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[miners]
	dir := "../../examples/wordcount"
	spec := wasmSpec(3, 4*time.Minute)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, submitter, dir), 42, reward
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}

	// Unfunded: refused before anything is offered.
	_, err := submitter.Market().Submit(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), "6000000 missing") {
		t.Fatalf("unfunded submit: %v, want the 6000000 lamports missing named", err)
	}
	if jobs, _ := submitter.Jobs().List(ctx); len(jobs) != 0 {
		t.Fatalf("a refused job was recorded: %+v", jobs)
	}

	wallet, err := chain.New(submitter.Config().Chain, submitter.Key(), Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer wallet.Close()
	if _, err := wallet.Airdrop(ctx, 1_000_000_000); err != nil {
		t.Fatal(err)
	}
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	if len(rec.Verdict.Agreed) != 2 || len(rec.Verdict.Dissented) != 1 || rec.Verdict.Dissented[0] != nodes[2].Network().ID().String() {
		t.Fatalf("verdict %+v: want the two honest miners agreeing and miner 2 dissenting", rec.Verdict)
	}
	if len(rec.Payouts) != 2 {
		t.Fatalf("payouts %+v, want one per agreeing worker", rec.Payouts)
	}
	memo := chain.Memo(rec.ID, rec.Result)
	for i, nd := range nodes[:miners] {
		addr := nd.Key().WalletAddress()
		got := lamportsOf(ctx, t, wallet, nd.Key())
		paid := paidTo(rec.Payouts, addr)
		switch {
		case i == 2 && (got != 0 || paid != nil):
			t.Fatalf("the dishonest miner was paid: balance %d, payout %+v", got, paid)
		case i != 2 && (got != reward || paid == nil || paid.Amount != reward || paid.Signature == ""):
			t.Fatalf("honest miner %d: balance %d, payout %+v; want %d with a signature", i, got, paid, reward)
		case i != 2:
			checkMemo(ctx, t, wallet, paid.Signature, memo)
		}
	}
}

func paidTo(payouts []job.Payout, addr string) *job.Payout {
	for i := range payouts {
		if payouts[i].Recipient == addr {
			return &payouts[i]
		}
	}
	return nil
}

func lamportsOf(ctx context.Context, t *testing.T, c *chain.Client, key *identity.Key) uint64 {
	t.Helper()
	pk, err := chain.ParsePayout(key.WalletAddress(), 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.RPC().GetBalance(ctx, pk.Recipient, "confirmed")
	if err != nil {
		t.Fatal(err)
	}
	return info.Value
}

// checkMemo finds the memo in the transaction's logs on chain.
func checkMemo(ctx context.Context, t *testing.T, c *chain.Client, sig, memo string) {
	t.Helper()
	s, err := solana.SignatureFromBase58(sig)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := c.RPC().GetTransaction(ctx, s, &rpc.GetTransactionOpts{Commitment: rpc.CommitmentConfirmed})
	if err != nil || tx.Meta == nil || tx.Meta.Err != nil {
		t.Fatalf("transaction %s: %v, %+v", sig, err, tx)
	}
	logs := tx.Meta.LogMessages
	for _, l := range logs {
		if strings.Contains(l, memo) {
			return
		}
	}
	t.Fatal(errors.New("memo " + memo + " not in the logs of " + sig + ": " + strings.Join(logs, " | ")))
}

// startLocalnet starts the real Solana runtime (LiteSVM) for a test and
// stops it when the test ends.
func startLocalnet(ctx context.Context, t testing.TB) *localnet.Localnet {
	t.Helper()
	lnet, err := localnet.Start(ctx, localnet.Options{SlotInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("this test pays on the localnet, which needs its npm packages (make localnet-deps): %v", err)
	}
	t.Cleanup(func() { lnet.Close() })
	return lnet
}

// settleOn turns payment on in cfg, on lnet, polling it quickly.
func settleOn(cfg *config.Config, lnet *localnet.Localnet) {
	cfg.Chain.Settle = true
	cfg.Chain.RPC, cfg.Chain.WS = lnet.RPCURL(), lnet.WSURL()
	cfg.Chain.PollInterval.UnmarshalText([]byte("100ms"))
}
