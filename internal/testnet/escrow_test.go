package testnet

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/job"
	"github.com/vft-network/vft/node"
)

// An escrowed job on the real Solana runtime, with miners that run only
// escrowed work: the submitter locks reward × 3 in an SPL multisig of
// itself and the three assigned miners; each miner checks it on chain
// before running; after the verdict the two honest miners co-sign, over
// libp2p, a release paying each of them the reward and the third miner's
// share back to the submitter. The escrow ends empty. The third miner
// either returns a wrong result or never reports: an escrowed job takes no
// replacement, so the two that committed must still reach the quorum. Or
// it is honest too: then all three are paid, and only three of the four
// signers (the submitter and two workers) sign the release.
func TestEscrowedJob(t *testing.T) {
	for _, fault := range []string{job.FaultWrongResult, job.FaultNoShow, ""} {
		name := fault
		if name == "" {
			name = "all-honest"
		}
		t.Run(name, func(t *testing.T) { escrowedJob(t, fault) })
	}
}

func escrowedJob(t *testing.T, fault string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const reward = 40_000
	en := startEscrowNetwork(ctx, t, Options{Faults: map[int]string{2: fault}})
	nodes, submitter, payer, mint, subWallet := en.nodes, en.submitter, en.payer, en.mint, en.subWallet
	const miners = 3

	dir := "../../examples/wordcount"
	spec := wasmSpec(3, 4*time.Minute)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, submitter, dir), 42, reward
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, submitter, filepath.Join(dir, "testdata"))}}
	spec.Mint, spec.Escrow = mint.String(), true
	// The no-show is given up on this + report_grace after assignment.
	// Three miners compile the module at once on two cores (Wasmtime:
	// about 4 s of CPU each for this 3 MB Go module), so 15 s was too
	// tight once the machine was busy.
	spec.Needs.TimeoutMS = 60_000
	offer, err := submitter.Market().Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := waitState(ctx, t, submitter, offer.ID.String(), job.StateDone)
	paid := 2 // workers paid; the third miner's share goes back
	if fault == "" {
		paid = 3
	}
	if rec.Escrow == "" || len(rec.Verdict.Agreed) != paid || len(rec.Verdict.Dissented) != miners-paid {
		t.Fatalf("escrow %q, verdict %+v: want an escrow and %d agreeing, %d dissenting", rec.Escrow, rec.Verdict, paid, miners-paid)
	}
	if fault == job.FaultNoShow && len(rec.Missed) != 1 {
		t.Fatalf("missed %v: want the no-show", rec.Missed)
	}
	returned := 0
	for _, p := range rec.Payouts {
		if p.Returned {
			returned++
		}
	}
	if len(rec.Payouts) != miners || returned != miners-paid {
		t.Fatalf("payouts %+v: want %d rewards and %d share(s) returned", rec.Payouts, paid, miners-paid)
	}
	for i, nd := range nodes[:miners] {
		w, _ := solana.PublicKeyFromBase58(nd.Key().WalletAddress())
		got, _ := payer.TokenBalance(ctx, mint, w)
		want := uint64(reward)
		if i == 2 && fault != "" {
			want = 0
		}
		if got != want {
			t.Fatalf("miner %d holds %d, want %d", i, got, want)
		}
	}
	// 500,000 minted, 3 × reward locked, the paid rewards out, the rest back.
	if got, want := func() uint64 { b, _ := payer.TokenBalance(ctx, mint, subWallet); return b }(), uint64(500_000-paid*reward); got != want {
		t.Fatalf("submitter holds %d, want %d", got, want)
	}
	escrowAccount, _ := solana.PublicKeyFromBase58(rec.Escrow)
	bal, err := payer.RPC().GetTokenAccountBalance(ctx, escrowAccount, "confirmed")
	if err != nil || bal.Value.Amount != "0" {
		t.Fatalf("escrow %s still holds %+v (%v)", rec.Escrow, bal, err)
	}
}

// escrowNetwork is a localnet with a VFT-like token, three miners that run
// only escrowed work and a submitter holding 500,000 tokens and 1 SOL.
type escrowNetwork struct {
	nodes     []*node.Node // the miners, then the submitter
	submitter *node.Node
	payer     *chain.Client // the submitter's chain client
	treasury  *chain.Client
	mint      solana.PublicKey
	subWallet solana.PublicKey
}

func startEscrowNetwork(ctx context.Context, t *testing.T, opts Options) escrowNetwork {
	t.Helper()
	lnet := startLocalnet(ctx, t)
	chainCfg := chain.DefaultConfig()
	chainCfg.RPC, chainCfg.WS = lnet.RPCURL(), lnet.WSURL()
	chainCfg.PollInterval.UnmarshalText([]byte("100ms"))

	// A token whose authority is a test treasury.
	treasuryKey, _ := identity.Generate()
	treasury, err := chain.New(chainCfg, treasuryKey, Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { treasury.Close() })
	if _, err := treasury.Airdrop(ctx, 10*solana.LAMPORTS_PER_SOL); err != nil {
		t.Fatal(err)
	}
	mint, _, err := treasury.CreateMint(ctx, 6, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}

	const miners = 3
	opts.Configure = func(i int, cfg *config.Config) {
		cfg.Chain = chainCfg
		cfg.Chain.Mint = mint.String()
		if i == miners {
			cfg.Node.Mode = config.ModeLight
			cfg.Chain.Escrow = true
			return
		}
		cfg.Market.Mint, cfg.Market.RequireEscrow = mint.String(), true
	}
	nodes := New(t, miners+1, opts)
	if _, err := WaitFullMesh(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	submitter := nodes[miners]
	subWallet, _ := solana.PublicKeyFromBase58(submitter.Key().WalletAddress())
	if _, err := treasury.MintTo(ctx, mint, subWallet, 500_000); err != nil {
		t.Fatal(err)
	}
	payer, err := chain.New(submitter.Config().Chain, submitter.Key(), Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { payer.Close() })
	if _, err := payer.Airdrop(ctx, solana.LAMPORTS_PER_SOL); err != nil {
		t.Fatal(err)
	}
	return escrowNetwork{nodes: nodes, submitter: submitter, payer: payer, treasury: treasury, mint: mint, subWallet: subWallet}
}

// A submitter that vanishes once the escrow is funded: its workers cannot
// deliver their commitments, keep their results, and after the deadline
// the three (m + 1 = 3 signatures of the 2-of-3 job's multisig) release
// the escrow themselves: the first of them by peer ID that can pay the fee
// sends the release (here the second: the first has no SOL), and the others
// co-sign it. Each is paid the reward, the escrow ends empty, and every
// worker's job ends done.
func TestEscrowReleasedWithoutSubmitter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const reward = 40_000
	en := startEscrowNetwork(ctx, t, Options{RescueAfter: time.Second})
	miners := en.nodes[:3]
	// The worker that sends the release pays its fee. The first by peer ID,
	// whose turn comes first, has no SOL: the second takes over.
	byID := slices.Clone(miners)
	slices.SortFunc(byID, func(a, b *node.Node) int { return strings.Compare(string(a.Key().PeerID()), string(b.Key().PeerID())) })
	airdropFees(ctx, t, byID[1:])
	offer, err := en.submitter.Market().Submit(ctx, rescuableJob(ctx, t, en, reward))
	if err != nil {
		t.Fatal(err)
	}
	id := offer.ID.String()
	for {
		rec, err := en.submitter.Jobs().Get(ctx, id)
		if err == nil && rec.Escrow != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the escrow was never opened (%+v, %v)", rec, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := en.submitter.Close(); err != nil {
		t.Fatal(err)
	}
	t.Log("the submitter is gone; waiting for the deadline and the workers' release")

	for i, nd := range miners {
		rec := waitState(ctx, t, nd, id, job.StateDone)
		if rec.Verdict == nil || len(rec.Verdict.Agreed) != 3 {
			t.Fatalf("miner %d: verdict %+v, want the three workers agreeing", i, rec.Verdict)
		}
		w, _ := solana.PublicKeyFromBase58(nd.Key().WalletAddress())
		if got, _ := en.payer.TokenBalance(ctx, en.mint, w); got != reward {
			t.Fatalf("miner %d holds %d, want the reward %d", i, got, reward)
		}
	}
	if got, _ := en.payer.TokenBalance(ctx, en.mint, en.subWallet); got != 500_000-3*reward {
		t.Fatalf("submitter holds %d, want %d", got, 500_000-3*reward)
	}
}

// airdropFees gives each node 0.1 SOL, enough to pay for the transactions
// a worker sends when it rescues an escrow.
func airdropFees(ctx context.Context, t *testing.T, nodes []*node.Node) {
	t.Helper()
	for _, nd := range nodes {
		c, err := chain.New(nd.Config().Chain, nd.Key(), Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Airdrop(ctx, solana.LAMPORTS_PER_SOL/10)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// rescuableJob is an escrowed wordcount job for the three miners, paid
// reward each, with a short deadline. The module and the input must
// outlive the submitter: as if they were pinned elsewhere too, each miner
// also holds them.
func rescuableJob(ctx context.Context, t *testing.T, en escrowNetwork, reward uint64) job.Spec {
	t.Helper()
	dir := "../../examples/wordcount"
	for _, nd := range en.nodes[:3] {
		addModule(ctx, t, nd, dir)
		addPath(ctx, t, nd, filepath.Join(dir, "testdata"))
	}
	spec := en.wordcountJob(ctx, t, 40*time.Second, reward)
	spec.Needs.TimeoutMS = 15_000
	return spec
}

// wordcountJob is the wordcount example for 3 workers, paid reward in the
// network's token from an escrow, due within deadline.
func (en *escrowNetwork) wordcountJob(ctx context.Context, t *testing.T, deadline time.Duration, reward uint64) job.Spec {
	t.Helper()
	dir := "../../examples/wordcount"
	spec := wasmSpec(3, deadline)
	spec.Module, spec.Seed, spec.Reward = addModule(ctx, t, en.submitter, dir), 42, reward
	spec.Inputs = []job.Input{{CID: addPath(ctx, t, en.submitter, filepath.Join(dir, "testdata"))}}
	spec.Mint, spec.Escrow = en.mint.String(), true
	return spec
}
