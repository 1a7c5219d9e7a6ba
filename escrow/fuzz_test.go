package escrow

import (
	"crypto/sha256"
	"testing"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/token"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/wire"
)

// fuzzKey is a fixed key, so that seeds and fuzzed inputs name the same
// escrow on every run.
func fuzzKey(name string) solana.PublicKey {
	return solana.PublicKeyFromBytes(func() []byte { h := sha256.Sum256([]byte(name)); return h[:] }())
}

// fuzzEscrow is a 2-of-3 job's escrow (threshold 3 of submitter + 3
// workers) holding 3000; self is the first worker.
func fuzzEscrow() (e *chain.Escrow, submitter, self solana.PublicKey) {
	submitter, self = fuzzKey("submitter"), fuzzKey("worker-a")
	e = &chain.Escrow{JobID: "job-fuzz", Mint: fuzzKey("mint"), Multisig: fuzzKey("multisig"), Account: fuzzKey("account"),
		Signers: []solana.PublicKey{submitter, self, fuzzKey("worker-b"), fuzzKey("worker-c")}, M: 3, Amount: 3000}
	return e, submitter, self
}

// fuzzRelease builds, without a chain, the release ReleaseTx would: a memo,
// and a TransferChecked out of the escrow per payee, signed by approvers.
func fuzzRelease(tb testing.TB, e *chain.Escrow, tag string, payouts []chain.Payout, approvers []solana.PublicKey) []byte {
	tb.Helper()
	payer := fuzzKey("fee-payer")
	ixs := []solana.Instruction{solana.NewInstruction(solana.MemoProgramID, solana.AccountMetaSlice{solana.Meta(payer).SIGNER()}, []byte(chain.Memo(e.JobID, tag)))}
	for _, p := range payouts {
		dest, _, err := solana.FindAssociatedTokenAddress(p.Recipient, e.Mint)
		if err != nil {
			tb.Fatal(err)
		}
		ix, err := token.NewTransferCheckedInstruction(p.Amount, 6, e.Account, e.Mint, dest, e.Multisig, approvers).ValidateAndBuild()
		if err != nil {
			tb.Fatal(err)
		}
		ixs = append(ixs, ix)
	}
	tx, err := solana.NewTransaction(ixs, solana.Hash(fuzzKey("blockhash")), solana.TransactionPayer(payer))
	if err != nil {
		tb.Fatal(err)
	}
	msg, err := tx.Message.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return msg
}

// fuzzRequests are real requests, encoded: a release paying two workers
// and the rest back, and a refund.
func fuzzRequests(tb testing.TB) [][]byte {
	e, sub, self := fuzzEscrow()
	b := fuzzKey("worker-b")
	approvers := []solana.PublicKey{sub, self, b}
	pay := []chain.Payout{{Recipient: self, Amount: 1000}, {Recipient: b, Amount: 1000}, {Recipient: sub, Amount: 1000}}
	refund := []chain.Payout{{Recipient: sub, Amount: 3000}}
	var out [][]byte
	for _, req := range []SignRequest{
		{Job: e.JobID, Kind: KindRelease, ResultCID: "bafy-result", Payouts: pay, Tx: fuzzRelease(tb, e, "bafy-result", pay, approvers)},
		{Job: e.JobID, Kind: KindRefund, Payouts: refund, Tx: fuzzRelease(tb, e, KindRefund, refund, approvers)},
	} {
		raw, err := wire.Marshal(req)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// The seeds are what they claim: checkRequest signs both.
func TestFuzzSeedsAreValid(t *testing.T) {
	e, sub, self := fuzzEscrow()
	for _, raw := range fuzzRequests(t) {
		var req SignRequest
		if err := wire.Unmarshal(raw, &req); err != nil {
			t.Fatal(err)
		}
		if _, err := checkRequest(&req, e, sub, self); err != nil {
			t.Fatalf("seed %s refused: %v", req.Kind, err)
		}
	}
}

// FuzzSignRequest feeds a signer's whole judgement of a request body from
// the network (decoding, the transaction taken apart, the node's say): it
// must never panic, and what it signs must pay only what the request says
// out of this job's escrow.
func FuzzSignRequest(f *testing.F) {
	for _, raw := range fuzzRequests(f) {
		f.Add(raw)
	}
	e, sub, self := fuzzEscrow()
	stake := Stake{Terms: Terms{Submitter: sub, Workers: e.Signers[1:], Quorum: 2, Reward: 1000, Amount: 3000},
		Self: self, Exact: true, Result: "bafy-result", Ended: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req SignRequest
		if err := wire.Unmarshal(raw, &req); err != nil {
			return
		}
		msg, err := checkRequest(&req, e, sub, self)
		_ = Approve(stake, req)
		if err != nil {
			return
		}
		var total uint64
		for _, p := range req.Payouts {
			total += p.Amount
		}
		if total == 0 || msg == nil {
			t.Fatalf("signed a request paying %d with message %v", total, msg)
		}
	})
}

// FuzzDecodeMessage: the Solana transaction decoder a signer runs on
// bytes from the network. Accepted messages are canonical, and resolving
// their instructions never reads out of bounds.
func FuzzDecodeMessage(f *testing.F) {
	for _, raw := range fuzzRequests(f) {
		var req SignRequest
		if err := wire.Unmarshal(raw, &req); err != nil {
			f.Fatal(err)
		}
		f.Add(req.Tx)
	}
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, err := decodeMessage(raw)
		if err != nil {
			return
		}
		for _, ix := range msg.Instructions {
			if accs, err := resolve(msg, ix); err == nil && len(accs) != len(ix.Accounts) {
				t.Fatalf("resolved %d accounts of %d", len(accs), len(ix.Accounts))
			}
		}
		for i := range msg.AccountKeys {
			isWritable(msg, i)
		}
	})
}
