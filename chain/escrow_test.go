package chain

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
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

// TestReleaseJournal: a recorded release blocks any other while it can
// land; once its blockhash expired unsent it is replaced by a newly
// approved one, which pays once; after that, another is a conflict.
func TestReleaseJournal(t *testing.T) {
	ctx := t.Context()
	c, key := newClient(t, nil)
	airdrop(t, c, sol)
	mint, _ := testMint(t, c, 10_000)
	cfg := testConfig()
	cfg.Mint = mint.String()
	c = clientFor(t, cfg, key)
	j := NewJournal(dssync.MutexWrap(datastore.NewMapDatastore()), c, testLog(t))
	self, worker := solana.PrivateKey(key.PrivateKey()), newKey(t)
	e, _, err := c.OpenEscrow(ctx, "job-journal", []solana.PublicKey{self.PublicKey(), worker.PublicKey()}, 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetEscrow(ctx, "job-journal", c.FeePayer(), mint); err != nil || got.Multisig != e.Multisig || got.M != 2 || got.Amount != 1000 {
		t.Fatalf("GetEscrow = %+v, %v; want the opened escrow", got, err)
	}
	approved := func(pay []Payout) *Release {
		t.Helper()
		r, err := c.ReleaseTx(ctx, e, "res", pay, []solana.PublicKey{self.PublicKey(), worker.PublicKey()})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []solana.PrivateKey{self, worker} {
			if err := SignRelease(r, k); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	first := []Payout{{worker.PublicKey(), 1000}}
	second := []Payout{{worker.PublicKey(), 700}}

	rec, err := j.RecordRelease(ctx, e, "res", first, approved(first))
	if err != nil || rec.State != StatePending {
		t.Fatalf("RecordRelease = %+v, %v", rec, err)
	}
	if _, err := j.RecordRelease(ctx, e, "res", second, approved(second)); !errors.Is(err, ErrReleasePending) {
		t.Fatalf("a second release while the first can land = %v, want ErrReleasePending", err)
	}
	// The first is never sent (a crash, say) and its blockhash expires.
	waitExpired(t, c, rec.Tx.LastValidBlockHeight)
	if _, err := j.FinishRelease(ctx, "job-journal"); !errors.Is(err, ErrExpired) {
		t.Fatalf("FinishRelease of an expired release = %v, want ErrExpired", err)
	}
	if held, _ := c.TokenBalance(ctx, mint, worker.PublicKey()); held != 0 {
		t.Fatalf("the expired release paid %d", held)
	}
	rec2, err := j.RecordRelease(ctx, e, "res", second, approved(second))
	if err != nil || !slices.Contains(rec2.Tx.Superseded, rec.Tx.Signature) {
		t.Fatalf("RecordRelease after expiry = %+v, %v; want a new record superseding %s", rec2, err, rec.Tx.Signature)
	}
	if rec2, err = j.FinishRelease(ctx, "job-journal"); err != nil || rec2.State != StateDone {
		t.Fatalf("FinishRelease = %+v, %v", rec2, err)
	}
	checkPaid(t, c, mint, second)
	if _, err := j.RecordRelease(ctx, e, "res", first, approved(first)); !errors.Is(err, ErrConflict) {
		t.Fatalf("another release after one landed = %v, want ErrConflict", err)
	}
	if expired, err := j.ReconcileReleases(ctx); err != nil || len(expired) != 0 {
		t.Fatalf("ReconcileReleases = %v, %v; want nothing left", expired, err)
	}
}
