package chain

import (
	"errors"
	"testing"

	"github.com/gagliardetto/solana-go"
)

// FindPayment finds, among a payee's transactions, the settlement with the
// job's memo and the amount it credited: in SOL from the lamport
// balances, in a token from its token account's balances (an account the
// settlement created counts from zero). Another job, another result, or a
// payment older than the searched window is not found.
func TestFindPayment(t *testing.T) {
	ctx := t.Context()
	setup, key := newClient(t, nil)
	airdrop(t, setup, 2*sol)
	mint, _ := testMint(t, setup, 1_000_000)
	tokenCfg := testConfig()
	tokenCfg.Mint = mint.String()

	for _, tc := range []struct {
		name   string
		c      *Client
		mint   solana.PublicKey
		amount uint64
	}{
		{"SOL", setup, solana.PublicKey{}, sol / 100},
		{"token", clientFor(t, tokenCfg, key), mint, 12_010},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payee := newKey(t).PublicKey()
			j := NewJournal(openPebble(t, t.TempDir()), tc.c, testLog(t))
			other := Payout{Recipient: newKey(t).PublicKey(), Amount: tc.amount + 1}
			rec, err := j.Settle(ctx, "job-"+tc.name, "result", []Payout{{Recipient: payee, Amount: tc.amount}, other})
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.c.FindPayment(ctx, payee, tc.mint, "job-"+tc.name, "result", 10)
			if err != nil {
				t.Fatal(err)
			}
			if got.Amount != tc.amount || got.Signature != rec.Signatures()[0] || got.Slot == 0 {
				t.Fatalf("found %+v, want %d by %s", got, tc.amount, rec.Signatures()[0])
			}
			for _, miss := range []struct{ job, result string }{{"job-other", "result"}, {"job-" + tc.name, "other-result"}} {
				if _, err := tc.c.FindPayment(ctx, payee, tc.mint, miss.job, miss.result, 10); !errors.Is(err, ErrNoPayment) {
					t.Errorf("FindPayment(%s, %s) = %v, want ErrNoPayment", miss.job, miss.result, err)
				}
			}
			// A later payment for another job: a window of one transaction
			// no longer reaches the first.
			if _, err := j.Settle(ctx, "job-later-"+tc.name, "result", []Payout{{Recipient: payee, Amount: tc.amount}}); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.c.FindPayment(ctx, payee, tc.mint, "job-"+tc.name, "result", 1); !errors.Is(err, ErrNoPayment) {
				t.Errorf("FindPayment with a window of 1 = %v, want ErrNoPayment", err)
			}
			if got, err := tc.c.FindPayment(ctx, payee, tc.mint, "job-"+tc.name, "result", 2); err != nil || got.Amount != tc.amount {
				t.Errorf("FindPayment with a window of 2 = %+v, %v", got, err)
			}
		})
	}
}

// MintDecimals reads the mint once: the second answer comes from the
// cache even with the RPC server gone.
func TestMintDecimalsCached(t *testing.T) {
	ctx := t.Context()
	c, key := newClient(t, nil)
	airdrop(t, c, sol)
	mint, _ := testMint(t, c, 1)
	if d, err := c.MintDecimals(ctx, mint); err != nil || d != 6 {
		t.Fatalf("MintDecimals = %d, %v; want 6", d, err)
	}
	cfg := testConfig()
	cfg.RPC, cfg.MaxRetries = "http://127.0.0.1:9", 0
	gone := clientFor(t, cfg, key)
	gone.decimals = c.decimals
	if d, err := gone.MintDecimals(ctx, mint); err != nil || d != 6 {
		t.Fatalf("cached MintDecimals = %d, %v; want 6 without asking the chain", d, err)
	}
	if _, err := gone.MintDecimals(ctx, solana.SystemProgramID); err == nil {
		t.Fatal("an unread mint was answered without the chain")
	}
}
