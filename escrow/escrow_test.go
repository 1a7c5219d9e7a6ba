package escrow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"

	"github.com/vft-network/vft/chain"
)

func TestThreshold(t *testing.T) {
	for _, tc := range []struct {
		k, m, signers, threshold int
		err                      string
	}{
		{k: 3, m: 2, signers: 4, threshold: 3},
		{k: 1, m: 1, signers: 2, threshold: 2},
		{k: 10, m: 6, signers: 11, threshold: 7},
		{k: 11, m: 6, err: "11 workers"},
		{k: 0, m: 0, err: "0 workers"},
		{k: 3, m: 4, err: "quorum 4 of 3"},
		{k: 3, m: 0, err: "quorum 0 of 3"},
	} {
		t.Run(fmt.Sprintf("%dof%d", tc.m, tc.k), func(t *testing.T) {
			n, th, err := Threshold(tc.k, tc.m)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Threshold(%d, %d) = %v, want an error with %q", tc.k, tc.m, err, tc.err)
				}
				return
			}
			if err != nil || n != tc.signers || th != tc.threshold {
				t.Fatalf("Threshold(%d, %d) = %d, %d, %v; want %d, %d", tc.k, tc.m, n, th, err, tc.signers, tc.threshold)
			}
			// The argument, checked: the submitter with m-1 workers falls
			// short, the submitter with m workers suffices.
			if 1+tc.m-1 >= th || 1+tc.m < th {
				t.Fatalf("threshold %d does not separate m-1 from m workers with the submitter", th)
			}
		})
	}
}

// approveResult makes a worker sign only releases of its own result that
// pay it reward, and refunds only when it has none.
func approveResult(w *node, result string, reward uint64) func(string, SignRequest) error {
	return func(_ string, req SignRequest) error {
		if req.Kind == KindRefund {
			if result != "" {
				return fmt.Errorf("this node computed %s: no refund", result)
			}
			return nil
		}
		if req.ResultCID != result {
			return fmt.Errorf("result %s is not ours (%s)", req.ResultCID, result)
		}
		if !slices.Contains(req.Payouts, chain.Payout{Recipient: w.pk, Amount: reward}) {
			return fmt.Errorf("the release does not pay us %d", reward)
		}
		return nil
	}
}

// TestReleaseToAgreeingWorkers: 3 workers, 2 must agree; the two that
// agree sign over libp2p and are paid; the escrow is empty after.
func TestReleaseToAgreeingWorkers(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	const job, result = "job-release", "bafy-result"
	e, err := nw.submitter.s.Open(ctx, job, nw.workerKeys(), 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if e.M != 3 || len(e.Signers) != 4 {
		t.Fatalf("escrow is %d of %d, want 3 of 4", e.M, len(e.Signers))
	}
	for _, w := range nw.workers {
		if _, err := w.s.Check(ctx, nw.terms(job, 2, 1000)); err != nil {
			t.Fatalf("worker check: %v", err)
		}
	}
	a, b, dissenter := nw.workers[0], nw.workers[1], nw.workers[2]
	a.approve = approveResult(a, result, 500)
	b.approve = approveResult(b, result, 500)
	dissenter.approve = approveResult(dissenter, "bafy-other", 500)

	pay := []chain.Payout{{Recipient: a.pk, Amount: 500}, {Recipient: b.pk, Amount: 500}}
	rec, err := nw.submitter.s.Release(ctx, job, result, pay, []solana.PublicKey{a.pk, b.pk})
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != chain.StateDone {
		t.Fatalf("release is %s, want done", rec.State)
	}
	memoLogged(t, nw.submitter.c, rec.Tx.Signature, chain.Memo(job, result))
	for _, p := range pay {
		if got := balance(t, nw.submitter.c, nw.mint, p.Recipient); got != p.Amount {
			t.Errorf("%s holds %d, want %d", p.Recipient, got, p.Amount)
		}
	}
	if got := balance(t, nw.submitter.c, nw.mint, e.Multisig); got != 0 {
		t.Errorf("escrow holds %d after the release, want 0", got)
	}
	if dissenter.asked() != 0 {
		t.Errorf("the dissenting worker was asked %d times, want never", dissenter.asked())
	}

	// Again (a retry): the record, nothing paid twice; another release is a conflict.
	again, err := nw.submitter.s.Release(ctx, job, result, pay, []solana.PublicKey{a.pk, b.pk})
	if err != nil || again.Tx.Signature != rec.Tx.Signature {
		t.Fatalf("second Release = %v, %v; want the first record", again, err)
	}
	if _, err := nw.submitter.s.Release(ctx, job, result, pay[:1], []solana.PublicKey{a.pk, b.pk}); !errors.Is(err, chain.ErrConflict) {
		t.Fatalf("a different release after the first = %v, want ErrConflict", err)
	}
	if got := balance(t, nw.submitter.c, nw.mint, a.pk); got != 500 {
		t.Errorf("after retries %s holds %d, want 500", a.pk, got)
	}
}

// TestRefund: the job failed; the workers agree and the submitter gets
// its tokens back.
func TestRefund(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	const job = "job-refund"
	e, err := nw.submitter.s.Open(ctx, job, nw.workerKeys(), 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range nw.workers {
		if _, err := w.s.Check(ctx, nw.terms(job, 2, 1000)); err != nil {
			t.Fatal(err)
		}
		w.approve = approveResult(w, "", 0)
	}
	if got := balance(t, nw.submitter.c, nw.mint, nw.submitter.pk); got != 9000 {
		t.Fatalf("submitter holds %d after opening, want 9000", got)
	}
	rec, err := nw.submitter.s.Refund(ctx, job, []solana.PublicKey{nw.workers[1].pk, nw.workers[2].pk})
	if err != nil {
		t.Fatal(err)
	}
	memoLogged(t, nw.submitter.c, rec.Tx.Signature, chain.Memo(job, "refund"))
	if got := balance(t, nw.submitter.c, nw.mint, nw.submitter.pk); got != 10_000 {
		t.Errorf("submitter holds %d after the refund, want 10000", got)
	}
	if got := balance(t, nw.submitter.c, nw.mint, e.Multisig); got != 0 {
		t.Errorf("escrow holds %d after the refund, want 0", got)
	}
}

// TestApproverRefuses: a worker whose own result differs refuses; nothing
// is recorded or paid, and the error names it and why.
func TestApproverRefuses(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	const job = "job-disapproved"
	e, err := nw.submitter.s.Open(ctx, job, nw.workerKeys(), 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	a, b := nw.workers[0], nw.workers[1]
	for _, w := range nw.workers {
		if _, err := w.s.Check(ctx, nw.terms(job, 2, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	a.approve = approveResult(a, "bafy-good", 500)
	b.approve = approveResult(b, "bafy-different", 500)
	pay := []chain.Payout{{Recipient: a.pk, Amount: 500}, {Recipient: b.pk, Amount: 500}}
	_, err = nw.submitter.s.Release(ctx, job, "bafy-good", pay, []solana.PublicKey{a.pk, b.pk})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), b.pk.String()) || !strings.Contains(err.Error(), "is not ours") {
		t.Fatalf("Release with a disapproving worker = %v, want ErrRefused naming %s and its reason", err, b.pk)
	}
	if _, err := nw.submitter.j.GetRelease(ctx, job); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("a refused release was recorded: %v", err)
	}
	if got := balance(t, nw.submitter.c, nw.mint, e.Multisig); got != 1000 {
		t.Errorf("escrow holds %d, want 1000 untouched", got)
	}
}

// TestCrashAfterIntent: the submitter crashes after the signed release is
// journaled but before it is sent; after the restart Reconcile sends it,
// exactly once.
func TestCrashAfterIntent(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	const job, result = "job-crash", "bafy-crash"
	if _, err := nw.submitter.s.Open(ctx, job, nw.workerKeys(), 2, 1000); err != nil {
		t.Fatal(err)
	}
	for _, w := range nw.workers {
		if _, err := w.s.Check(ctx, nw.terms(job, 2, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := nw.workers[0], nw.workers[1]
	pay := []chain.Payout{{Recipient: a.pk, Amount: 600}, {Recipient: b.pk, Amount: 400}}
	nw.submitter.s.crash = func(step string) error {
		if step == "intent" {
			return errCrash
		}
		return nil
	}
	if _, err := nw.submitter.s.Release(ctx, job, result, pay, []solana.PublicKey{a.pk, b.pk}); !errors.Is(err, errCrash) {
		t.Fatalf("Release = %v, want the simulated crash", err)
	}
	rec, err := nw.submitter.j.GetRelease(ctx, job)
	if err != nil || rec.State != chain.StatePending || len(rec.Tx.Raw) == 0 {
		t.Fatalf("after the crash the journal has %+v, %v; want a pending release with its signed bytes", rec, err)
	}
	if got := balance(t, nw.submitter.c, nw.mint, a.pk); got != 0 {
		t.Fatalf("%s was paid %d before the release was sent", a.pk, got)
	}

	// Restart: a new service over the same journal.
	nw.submitter.s.Close()
	restarted := nw.submitter.service(t)
	if err := restarted.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	done, err := nw.submitter.j.GetRelease(ctx, job)
	if err != nil || done.State != chain.StateDone || done.Tx.Signature != rec.Tx.Signature {
		t.Fatalf("after Reconcile: %+v, %v; want the recorded transaction done", done, err)
	}
	// Both a second Reconcile and a retried Release pay nothing more.
	if err := restarted.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := restarted.Release(ctx, job, result, pay, []solana.PublicKey{a.pk, b.pk}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pay {
		if got := balance(t, nw.submitter.c, nw.mint, p.Recipient); got != p.Amount {
			t.Errorf("%s holds %d, want exactly %d", p.Recipient, got, p.Amount)
		}
	}
}
