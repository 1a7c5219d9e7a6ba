package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"
)

// TestEscrow: a submitter locks a job's reward under a 2-of-3 multisig;
// one approval is not enough, two release it to the payees.
func TestEscrow(t *testing.T) {
	ctx := t.Context()
	c, key := newClient(t, nil)
	airdrop(t, c, sol)
	mint, _ := testMint(t, c, 10_000)
	cfg := testConfig()
	cfg.Mint = mint.String()
	c = clientFor(t, cfg, key)

	a, b, v := newKey(t), newKey(t), newKey(t) // two workers and a verifier
	signers := []solana.PublicKey{a.PublicKey(), b.PublicKey(), v.PublicKey()}
	if _, _, err := c.OpenEscrow(ctx, "job-escrow", signers, 4, 1000); err == nil {
		t.Fatal("OpenEscrow with m > signers succeeded")
	}
	e, sig, err := c.OpenEscrow(ctx, "job-escrow", signers, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	memoLogged(t, c, sig, Memo("job-escrow", "escrow"))
	if held, err := c.TokenBalance(ctx, mint, e.Multisig); err != nil || held != 1000 {
		t.Fatalf("escrow holds %d, %v; want 1000", held, err)
	}
	if left, _ := c.TokenBalance(ctx, mint, c.Address()); left != 9000 {
		t.Fatalf("wallet holds %d, want 9000", left)
	}

	// Opening it again (a retry after a crash) returns it and moves nothing.
	again, sig2, err := c.OpenEscrow(ctx, "job-escrow", signers, 2, 1000)
	if err != nil || again.Multisig != e.Multisig || again.Amount != 1000 || !sig2.IsZero() {
		t.Fatalf("second OpenEscrow = %+v, %s, %v; want the existing escrow", again, sig2, err)
	}
	if left, _ := c.TokenBalance(ctx, mint, c.Address()); left != 9000 {
		t.Fatalf("wallet holds %d after the second OpenEscrow, want 9000", left)
	}
	if _, _, err := c.OpenEscrow(ctx, "job-escrow", signers[:2], 2, 1000); !errors.Is(err, ErrConflict) {
		t.Fatalf("OpenEscrow with other signers = %v, want ErrConflict", err)
	}

	pay := []Payout{{a.PublicKey(), 600}, {b.PublicKey(), 400}}
	if _, err := c.ReleaseTx(ctx, e, "res", pay, []solana.PublicKey{a.PublicKey(), newKey(t).PublicKey()}); err == nil {
		t.Fatal("release approved by an outsider was built")
	}
	r, err := c.ReleaseTx(ctx, e, "res", pay, []solana.PublicKey{a.PublicKey(), v.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	if err := SignRelease(r, b); err == nil {
		t.Fatal("a signer who is not an approver of this release signed it")
	}
	if err := SignRelease(r, a); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubmitRelease(ctx, r); err == nil || !strings.Contains(err.Error(), "not signed by approver "+v.PublicKey().String()) {
		t.Fatalf("SubmitRelease with one of two approvals = %v", err)
	}
	if err := SignRelease(r, v); err != nil {
		t.Fatal(err)
	}
	sig, err = c.SubmitRelease(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	memoLogged(t, c, sig, Memo("job-escrow", "res"))
	checkPaid(t, c, mint, pay)
	if held, _ := c.TokenBalance(ctx, mint, e.Multisig); held != 0 {
		t.Errorf("escrow holds %d after the release, want 0", held)
	}
}
