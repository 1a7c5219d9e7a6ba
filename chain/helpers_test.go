package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	ata "github.com/gagliardetto/solana-go/programs/associated-token-account"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	pebbleds "github.com/ipfs/go-ds-pebble"

	"github.com/vft-network/vft/chain/localnet"
	"github.com/vft-network/vft/identity"
)

const sol = solana.LAMPORTS_PER_SOL

// lnet is the localnet shared by the package's tests. Its slots are short
// so that blockhashes expire in a few seconds where a test needs that.
var lnet *localnet.Localnet

const slotInterval = 20 * time.Millisecond

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var err error
	lnet, err = localnet.Start(ctx, localnet.Options{SlotInterval: slotInterval})
	cancel()
	if err != nil {
		// Fail, never skip: the chain tests are the point of this package.
		fmt.Fprintln(os.Stderr, "chain tests need the localnet:", err)
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

// testConfig points at the shared localnet.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.RPC, cfg.WS = lnet.RPCURL(), lnet.WSURL()
	cfg.Timeout.UnmarshalText([]byte("10s"))
	return cfg
}

// newClient makes a client with a new identity; modify may change cfg.
func newClient(t testing.TB, modify func(*Config)) (*Client, *identity.Key) {
	t.Helper()
	key, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	if modify != nil {
		modify(&cfg)
	}
	return clientFor(t, cfg, key), key
}

func clientFor(t testing.TB, cfg Config, key *identity.Key) *Client {
	t.Helper()
	c, err := New(cfg, key, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	c.poll, c.backoff = 10*time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { c.Close() })
	return c
}

func airdrop(t testing.TB, c *Client, lamports uint64) {
	t.Helper()
	if _, err := c.Airdrop(context.Background(), lamports); err != nil {
		t.Fatal(err)
	}
}

func newKey(t testing.TB) solana.PrivateKey {
	t.Helper()
	k, err := solana.NewRandomPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// payees makes n payouts to new addresses, amounts base, base+1, ...
func payees(t testing.TB, n int, base uint64) []Payout {
	out := make([]Payout, n)
	for i := range out {
		out[i] = Payout{Recipient: newKey(t).PublicKey(), Amount: base + uint64(i)}
	}
	return out
}

// stores are the datastores the journal is tested on.
var stores = []struct {
	name string
	open func(t testing.TB, dir string) datastore.Batching
}{
	{"map", func(t testing.TB, _ string) datastore.Batching {
		return dssync.MutexWrap(datastore.NewMapDatastore())
	}},
	{"pebble", openPebble},
}

func openPebble(t testing.TB, dir string) datastore.Batching {
	t.Helper()
	ds, err := pebbleds.NewDatastore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	return ds
}

// testMint creates an SPL mint (6 decimals) and mints supply to c's
// wallet. It returns the mint and its mint and freeze authority.
func testMint(t testing.TB, c *Client, supply uint64) (solana.PublicKey, solana.PrivateKey) {
	t.Helper()
	ctx := context.Background()
	auth := newKey(t)
	fundKey(t, c, auth.PublicKey(), sol)
	mint := newKey(t)
	rent, err := c.rpc.GetMinimumBalanceForRentExemption(ctx, token.MINT_SIZE, "")
	if err != nil {
		t.Fatal(err)
	}
	walletATA, _, _ := solana.FindAssociatedTokenAddress(c.Address(), mint.PublicKey())
	sendIxs(t, c, auth, []solana.PrivateKey{mint},
		system.NewCreateAccountInstruction(rent, token.MINT_SIZE, solana.TokenProgramID, auth.PublicKey(), mint.PublicKey()).Build(),
		token.NewInitializeMint2Instruction(6, auth.PublicKey(), auth.PublicKey(), mint.PublicKey()).Build(),
		ata.NewCreateInstruction(auth.PublicKey(), c.Address(), mint.PublicKey()).Build(),
		token.NewMintToInstruction(supply, mint.PublicKey(), walletATA, auth.PublicKey(), nil).Build(),
	)
	return mint.PublicKey(), auth
}

// createATA makes owner's token account for mint, paid by a funded key.
func createATA(t testing.TB, c *Client, owner, mint solana.PublicKey) {
	t.Helper()
	payer := newKey(t)
	fundKey(t, c, payer.PublicKey(), sol)
	sendIxs(t, c, payer, nil, ata.NewCreateInstruction(payer.PublicKey(), owner, mint).Build())
}

func fundKey(t testing.TB, c *Client, who solana.PublicKey, lamports uint64) {
	t.Helper()
	sig, err := c.rpc.RequestAirdrop(context.Background(), who, lamports, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitConfirmed(context.Background(), sig, 0); err != nil {
		t.Fatal(err)
	}
}

func sendIxs(t testing.TB, c *Client, payer solana.PrivateKey, signers []solana.PrivateKey, ixs ...solana.Instruction) {
	t.Helper()
	ctx := context.Background()
	bh, err := c.rpc.GetLatestBlockhash(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(payer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Sign(KeyLookup(append([]solana.PrivateKey{payer}, signers...)...)); err != nil {
		t.Fatal(err)
	}
	sig, err := c.rpc.SendTransaction(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitConfirmed(ctx, sig, 0); err != nil {
		t.Fatal(err)
	}
}

func lamportsOf(t testing.TB, c *Client, who solana.PublicKey) uint64 {
	t.Helper()
	n, err := c.lamports(context.Background(), who)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkPaid asserts that every payee holds exactly its amount (so each was
// paid once), in lamports or in mint's base units.
func checkPaid(t testing.TB, c *Client, mint solana.PublicKey, payouts []Payout) {
	t.Helper()
	for _, p := range payouts {
		var got uint64
		if mint.IsZero() {
			got = lamportsOf(t, c, p.Recipient)
		} else {
			var err error
			if got, err = c.TokenBalance(context.Background(), mint, p.Recipient); err != nil {
				t.Fatal(err)
			}
		}
		if got != p.Amount {
			t.Errorf("%s holds %d, want exactly %d", p.Recipient, got, p.Amount)
		}
	}
}

// memoLogged asserts that a transaction's logs show the job's memo.
func memoLogged(t testing.TB, c *Client, sig solana.Signature, memo string) {
	t.Helper()
	got, err := c.rpc.GetTransaction(context.Background(), sig, &rpc.GetTransactionOpts{Commitment: rpc.CommitmentConfirmed})
	if err != nil {
		t.Fatalf("getTransaction %s: %v", sig, err)
	}
	if got.Meta == nil || got.Meta.Err != nil {
		t.Fatalf("transaction %s meta: %+v", sig, got.Meta)
	}
	for _, l := range got.Meta.LogMessages {
		if strings.Contains(l, memo) {
			return
		}
	}
	t.Errorf("memo %q not in the logs of %s: %q", memo, sig, got.Meta.LogMessages)
}

// waitExpired waits until a blockhash valid through lastValid has expired.
func waitExpired(t testing.TB, c *Client, lastValid uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := c.expired(context.Background(), lastValid)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("blockhash did not expire in 30s")
}

var errCrash = errors.New("simulated crash")
