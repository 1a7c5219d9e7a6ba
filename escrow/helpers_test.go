package escrow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	ata "github.com/gagliardetto/solana-go/programs/associated-token-account"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
)

const sol = solana.LAMPORTS_PER_SOL

// lnet is the chain the package's tests share. Slots of 50ms let a
// blockhash live about 7.5s: plenty for one signature round on loopback.
var lnet *localnet.Localnet

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var err error
	lnet, err = localnet.Start(ctx, localnet.Options{SlotInterval: 50 * time.Millisecond})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "escrow tests need the localnet (npm ci --prefix chain/localnet):", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := lnet.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "localnet:", err)
		code = 1
	}
	os.Exit(code)
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// node is one test node: key, libp2p host, chain client, journal, service.
type node struct {
	key   *identity.Key
	pk    solana.PublicKey
	host  host.Host
	c     *chain.Client
	store datastore.Batching
	j     *chain.Journal
	s     *Service

	mu       sync.Mutex
	approve  func(jobID string, req SignRequest) error
	approved int // requests the node was asked to approve
}

func newNode(t *testing.T, mint solana.PublicKey) *node {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return newNodeWithKey(t, key, mint)
}

func newNodeWithKey(t *testing.T, key *identity.Key, mint solana.PublicKey) *node {
	t.Helper()
	var err error
	n := &node{key: key, pk: solana.PublicKeyFromBytes(key.PublicKey())}
	n.host, err = libp2p.New(libp2p.Identity(key.LibP2P()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.host.Close() })
	cfg := chain.DefaultConfig()
	cfg.RPC, cfg.WS = lnet.RPCURL(), lnet.WSURL()
	cfg.Timeout = units.Duration(10 * time.Second)
	cfg.PollInterval = units.Duration(10 * time.Millisecond)
	if !mint.IsZero() {
		cfg.Mint = mint.String()
	}
	if n.c, err = chain.New(cfg, key, testLog(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.c.Close() })
	n.store = dssync.MutexWrap(datastore.NewMapDatastore())
	n.j = chain.NewJournal(n.store, n.c, testLog(t))
	n.s = n.service(t)
	return n
}

// service starts a Service on the node, as a (re)started daemon would.
func (n *node) service(t *testing.T) *Service {
	t.Helper()
	s, err := NewService(n.host, n.key, n.c, n.j, func(_ context.Context, jobID string, req SignRequest) error {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.approved++
		if n.approve == nil {
			return nil
		}
		return n.approve(jobID, req)
	}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (n *node) asked() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.approved
}

func connect(t *testing.T, nodes ...*node) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := a.host.Connect(t.Context(), peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fixture is a submitter holding supply of a new mint and k workers, all
// connected, each with SOL for fees.
type fixture struct {
	mint      solana.PublicKey
	submitter *node
	workers   []*node
}

func newFixture(t *testing.T, k int, supply uint64) *fixture {
	t.Helper()
	setup := newNode(t, solana.PublicKey{})
	if _, err := setup.c.Airdrop(t.Context(), 10*sol); err != nil {
		t.Fatal(err)
	}
	nw := &fixture{}
	subKey, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	nw.mint = newMint(t, setup, solana.PublicKeyFromBytes(subKey.PublicKey()), supply)
	nw.submitter = newNodeWithKey(t, subKey, nw.mint)
	all := []*node{nw.submitter}
	for range k {
		w := newNode(t, nw.mint)
		nw.workers = append(nw.workers, w)
		all = append(all, w)
	}
	for _, n := range all {
		fund(t, setup, n.pk, sol)
	}
	connect(t, all...)
	return nw
}

func (nw *fixture) workerKeys() []solana.PublicKey {
	var out []solana.PublicKey
	for _, w := range nw.workers {
		out = append(out, w.pk)
	}
	return out
}

func (nw *fixture) terms(jobID string, quorum int, amount uint64) Terms {
	workers := nw.workerKeys()
	return Terms{JobID: jobID, Submitter: nw.submitter.pk, Workers: workers, Quorum: quorum,
		Reward: amount / uint64(len(workers)), Amount: amount, Mint: nw.mint}
}

// newMint creates an SPL mint (6 decimals) paid by setup and mints supply
// to holder's associated token account.
func newMint(t *testing.T, setup *node, holder solana.PublicKey, supply uint64) solana.PublicKey {
	t.Helper()
	auth := solana.PrivateKey(setup.key.PrivateKey())
	mint, err := solana.NewRandomPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	rent, err := setup.c.RPC().GetMinimumBalanceForRentExemption(t.Context(), token.MINT_SIZE, "")
	if err != nil {
		t.Fatal(err)
	}
	holderATA, _, _ := solana.FindAssociatedTokenAddress(holder, mint.PublicKey())
	sendIxs(t, setup.c, auth, []solana.PrivateKey{mint},
		system.NewCreateAccountInstruction(rent, token.MINT_SIZE, solana.TokenProgramID, auth.PublicKey(), mint.PublicKey()).Build(),
		token.NewInitializeMint2Instruction(6, auth.PublicKey(), auth.PublicKey(), mint.PublicKey()).Build(),
		ata.NewCreateInstruction(auth.PublicKey(), holder, mint.PublicKey()).Build(),
		token.NewMintToInstruction(supply, mint.PublicKey(), holderATA, auth.PublicKey(), nil).Build(),
	)
	return mint.PublicKey()
}

// fund moves lamports from setup's wallet to who.
func fund(t *testing.T, setup *node, who solana.PublicKey, lamports uint64) {
	t.Helper()
	payer := solana.PrivateKey(setup.key.PrivateKey())
	sendIxs(t, setup.c, payer, nil, system.NewTransferInstruction(lamports, payer.PublicKey(), who).Build())
}

func sendIxs(t *testing.T, c *chain.Client, payer solana.PrivateKey, signers []solana.PrivateKey, ixs ...solana.Instruction) {
	t.Helper()
	ctx := t.Context()
	bh, err := c.RPC().GetLatestBlockhash(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(payer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Sign(chain.KeyLookup(append([]solana.PrivateKey{payer}, signers...)...)); err != nil {
		t.Fatal(err)
	}
	sig, err := c.RPC().SendTransaction(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	waitLanded(t, c, sig)
}

func waitLanded(t *testing.T, c *chain.Client, sig solana.Signature) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := c.RPC().GetSignatureStatuses(t.Context(), true, sig)
		if err != nil {
			t.Fatal(err)
		}
		if st := out.Value[0]; st != nil && st.ConfirmationStatus != rpc.ConfirmationStatusProcessed {
			if st.Err != nil {
				t.Fatalf("transaction %s failed: %v", sig, st.Err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("transaction %s did not land in 30s", sig)
}

// balance is owner's balance of mint.
func balance(t *testing.T, c *chain.Client, mint, owner solana.PublicKey) uint64 {
	t.Helper()
	n, err := c.TokenBalance(t.Context(), mint, owner)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// memoLogged asserts that a transaction's logs show memo.
func memoLogged(t *testing.T, c *chain.Client, sig solana.Signature, memo string) {
	t.Helper()
	got, err := c.RPC().GetTransaction(t.Context(), sig, &rpc.GetTransactionOpts{Commitment: rpc.CommitmentConfirmed})
	if err != nil {
		t.Fatalf("getTransaction %s: %v", sig, err)
	}
	for _, l := range got.Meta.LogMessages {
		if strings.Contains(l, memo) {
			return
		}
	}
	t.Errorf("memo %q not in the logs of %s: %q", memo, sig, got.Meta.LogMessages)
}

var errCrash = errors.New("simulated crash")
