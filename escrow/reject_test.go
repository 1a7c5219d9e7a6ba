package escrow

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/wire"
)

// TestTamperedRequests: a worker takes every request apart before its
// node is asked, and signs nothing that differs from what was agreed.
func TestTamperedRequests(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	const job, other, result = "job-tamper", "job-foreign", "bafy-tamper"
	sub, a, b := nw.submitter, nw.workers[0], nw.workers[1]
	e, err := sub.s.Open(ctx, job, nw.workerKeys(), 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := sub.s.Open(ctx, other, nw.workerKeys(), 2, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, jobID := range []string{job, other} {
		if _, err := a.s.Check(ctx, nw.terms(jobID, 2, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	approvers := []solana.PublicKey{sub.pk, a.pk, b.pk}
	pay := []chain.Payout{{Recipient: a.pk, Amount: 500}, {Recipient: b.pk, Amount: 500}}

	// release builds a transaction with the submitter's client, as a
	// dishonest submitter could, and returns its message.
	release := func(e *chain.Escrow, tag string, payouts []chain.Payout) []byte {
		t.Helper()
		r, err := sub.c.ReleaseTx(ctx, e, tag, payouts, approvers)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := r.Tx.Message.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// build makes a message of hand-made instructions.
	build := func(payer solana.PublicKey, ixs ...solana.Instruction) []byte {
		t.Helper()
		bh, err := sub.c.RPC().GetLatestBlockhash(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		tx, err := solana.NewTransaction(ixs, bh.Value.Blockhash, solana.TransactionPayer(payer))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := tx.Message.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	memoIx := func(payer solana.PublicKey) solana.Instruction {
		return solana.NewInstruction(solana.MemoProgramID, solana.AccountMetaSlice{solana.Meta(payer).SIGNER()}, []byte(chain.Memo(job, result)))
	}
	transfer := func(amount uint64, mint, to solana.PublicKey) solana.Instruction {
		dest, _, _ := solana.FindAssociatedTokenAddress(to, mint)
		return token.NewTransferCheckedInstruction(amount, 6, e.Account, mint, dest, e.Multisig, approvers).Build()
	}
	withJob := func(e *chain.Escrow, jobID string) *chain.Escrow { c := *e; c.JobID = jobID; return &c }
	fakeMint := solana.NewWallet().PublicKey()

	for _, tc := range []struct {
		name string
		req  SignRequest
		want string // in the refusal; empty: signed
	}{
		{"extra transfer to the submitter", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: []chain.Payout{{Recipient: a.pk, Amount: 450}, {Recipient: b.pk, Amount: 450}},
			Tx: release(e, result, []chain.Payout{{Recipient: a.pk, Amount: 450}, {Recipient: b.pk, Amount: 450}, {Recipient: sub.pk, Amount: 100}})}, "not the token account of a payee"},
		{"wrong amount", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay,
			Tx: release(e, result, []chain.Payout{{Recipient: a.pk, Amount: 600}, {Recipient: b.pk, Amount: 400}})}, "the request says 500"},
		{"wrong memo", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay,
			Tx: release(e, "bafy-other", pay)}, `want "vft:1:job-tamper:bafy-tamper"`},
		{"foreign escrow account", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay,
			Tx: release(withJob(foreign, job), result, pay)}, "not this job's escrow account " + e.Account.String()},
		{"wrong mint", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay[:1],
			Tx: build(sub.pk, memoIx(sub.pk), transfer(500, fakeMint, a.pk))}, "transfer in mint " + fakeMint.String()},
		{"worker pays the fee", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay[:1],
			Tx: build(a.pk, memoIx(a.pk), transfer(500, nw.mint, a.pk))}, "makes this node (" + a.pk.String() + ") its fee payer"},
		{"extra instruction", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay[:1],
			Tx: build(sub.pk, memoIx(sub.pk), transfer(500, nw.mint, a.pk), system.NewTransferInstruction(1, sub.pk, sub.pk).Build())}, "calls program " + solana.SystemProgramID.String()},
		{"refund to a worker", SignRequest{Kind: KindRefund, Payouts: []chain.Payout{{Recipient: a.pk, Amount: 1000}},
			Tx: release(e, KindRefund, []chain.Payout{{Recipient: a.pk, Amount: 1000}})}, "must pay the submitter"},
		{"versioned message", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay,
			Tx: []byte{0x80, 1, 0, 0}}, "versioned"},
		{"unchecked job", SignRequest{Job: "job-unknown", Kind: KindRelease, ResultCID: result, Payouts: pay,
			Tx: release(e, result, pay)}, "has not checked an escrow for job job-unknown"},
		{"the agreed release", SignRequest{Kind: KindRelease, ResultCID: result, Payouts: pay, Tx: release(e, result, pay)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Job == "" {
				req.Job = job
			}
			sealed, err := wire.Seal(sub.key, KindSignRequest, time.Now(), req)
			if err != nil {
				t.Fatal(err)
			}
			before := a.asked()
			sig, err := sub.s.ask(ctx, a.pk, req.Job, sealed, req.Tx)
			if tc.want == "" {
				if err != nil || len(sig) != 64 {
					t.Fatalf("the agreed release was not signed: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("refusal = %v, want ErrRefused with %q", err, tc.want)
			}
			if sig != nil || a.asked() != before {
				t.Fatalf("tampered request got a signature (%x) or reached the node's approval", sig)
			}
			a.s.mu.Lock()
			_, signed := a.s.signed[req.Job]
			a.s.mu.Unlock()
			if signed {
				t.Fatal("the worker remembers signing a tampered request")
			}
		})
	}
}

// TestCheckEscrow: a worker refuses, before executing, an escrow that does
// not secure its job, and says what is wrong.
func TestCheckEscrow(t *testing.T) {
	ctx := t.Context()
	nw := newFixture(t, 3, 10_000)
	sub, a := nw.submitter, nw.workers[0]
	ws := nw.workerKeys()
	open := func(jobID string, signers []solana.PublicKey, m int) {
		t.Helper()
		if _, _, err := sub.c.OpenEscrow(ctx, jobID, signers, m, 100); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]solana.PublicKey{sub.pk}, ws...)
	open("job-ok", all, 3)
	open("job-th1", all, 1)
	open("job-th2", all, 2)
	open("job-th4", all, 4)
	open("job-dup", append([]solana.PublicKey{sub.pk}, all...), 3)

	with := func(jobID string, f func(*Terms)) Terms {
		tm := nw.terms(jobID, 2, 100)
		if f != nil {
			f(&tm)
		}
		return tm
	}
	for _, tc := range []struct {
		name  string
		terms Terms
		self  solana.PublicKey
		want  string // empty: accepted
	}{
		{"sound", with("job-ok", nil), a.pk, ""},
		{"under-funded", with("job-ok", func(t *Terms) { t.Amount = 300 }), a.pk, "escrow for job job-ok holds 100, the job pays 300"},
		{"not a signer", with("job-ok", nil), solana.NewWallet().PublicKey(), "does not list this node"},
		{"wrong mint", with("job-ok", func(t *Terms) { t.Mint = solana.NewWallet().PublicKey() }), a.pk, "no escrow for job job-ok in mint"},
		{"no escrow", with("job-none", nil), a.pk, "no escrow for job job-none"},
		{"threshold 1", with("job-th1", nil), a.pk, "escrow for job job-th1 has threshold 1, which lets the submitter alone take it back"},
		{"threshold below quorum", with("job-th2", nil), a.pk, "threshold 2, which lets the submitter with 1 workers take it back"},
		{"threshold above quorum", with("job-th4", nil), a.pk, "could not release it"},
		{"unassigned signer", with("job-ok", func(t *Terms) { t.Workers = ws[:2] }), a.pk, "neither the submitter nor an assigned worker"},
		{"submitter listed twice", with("job-dup", nil), a.pk, "lists signer " + sub.pk.String() + " twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := CheckEscrow(ctx, sub.c, tc.terms, tc.self)
			if tc.want == "" {
				if err != nil || e.Amount != 100 {
					t.Fatalf("CheckEscrow = %+v, %v; want the escrow of 100", e, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckEscrow = %v, want an error with %q", err, tc.want)
			}
			if !errors.Is(err, ErrBadEscrow) && !errors.Is(err, chain.ErrNoEscrow) {
				t.Fatalf("CheckEscrow error %v wraps neither ErrBadEscrow nor chain.ErrNoEscrow", err)
			}
		})
	}
}
