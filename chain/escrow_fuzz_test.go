package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/gagliardetto/solana-go"
)

func fuzzPubkey(name string) solana.PublicKey {
	h := sha256.Sum256([]byte(name))
	return solana.PublicKeyFromBytes(h[:])
}

// escrowAccounts lays out, as SPL Token stores them, a 3-of-4 multisig and
// its token account holding amount in mint: the bytes GetEscrow reads.
func escrowAccounts(e *Escrow, signers []solana.PublicKey, m int, amount uint64) (ms, tok []byte) {
	ms = make([]byte, multisigSize)
	ms[0], ms[1], ms[2] = byte(m), byte(len(signers)), 1
	for i, s := range signers {
		copy(ms[3+32*i:], s[:])
	}
	tok = make([]byte, tokenAccountSize)
	copy(tok[0:32], e.Mint[:])
	copy(tok[32:64], e.Multisig[:])
	binary.LittleEndian.PutUint64(tok[64:72], amount)
	tok[tokenAccountStateOffset] = tokenStateInitialized
	return ms, tok
}

// FuzzParseEscrow: a worker trusts what an RPC node says its escrow is
// before it runs a job. The parser must not panic on any account data, and
// what it accepts must be a multisig of at most 11 signers whose token
// account is in the escrow's mint and owned by its multisig.
func FuzzParseEscrow(f *testing.F) {
	base := Escrow{JobID: "job-fuzz", Mint: fuzzPubkey("mint"), Multisig: fuzzPubkey("multisig"), Account: fuzzPubkey("account")}
	signers := []solana.PublicKey{fuzzPubkey("submitter"), fuzzPubkey("a"), fuzzPubkey("b"), fuzzPubkey("c")}
	ms, tok := escrowAccounts(&base, signers, 3, 120_000)
	f.Add(ms, tok)
	f.Add(ms[:10], tok[:64])
	f.Fuzz(func(t *testing.T, ms, tok []byte) {
		e := base
		if err := parseMultisig(&e, solana.TokenProgramID, ms); err != nil {
			return
		}
		if len(e.Signers) > maxMultisigSigners {
			t.Fatalf("%d signers accepted", len(e.Signers))
		}
		if err := parseEscrowAccount(&e, solana.TokenProgramID, tok); err != nil {
			return
		}
		if solana.PublicKeyFromBytes(tok[0:32]) != e.Mint || solana.PublicKeyFromBytes(tok[32:64]) != e.Multisig {
			t.Fatalf("token account of another mint or owner accepted")
		}
	})
}

// The seed is what GetEscrow reads from a real escrow: parsed back, it is
// the escrow that was laid out.
func TestParseEscrowSeed(t *testing.T) {
	e := Escrow{JobID: "job-fuzz", Mint: fuzzPubkey("mint"), Multisig: fuzzPubkey("multisig"), Account: fuzzPubkey("account")}
	signers := []solana.PublicKey{fuzzPubkey("submitter"), fuzzPubkey("a"), fuzzPubkey("b"), fuzzPubkey("c")}
	ms, tok := escrowAccounts(&e, signers, 3, 120_000)
	if err := parseMultisig(&e, solana.TokenProgramID, ms); err != nil {
		t.Fatal(err)
	}
	if err := parseEscrowAccount(&e, solana.TokenProgramID, tok); err != nil {
		t.Fatal(err)
	}
	if e.M != 3 || len(e.Signers) != 4 || e.Signers[3] != signers[3] || e.Amount != 120_000 {
		t.Fatalf("parsed %+v", e)
	}
	if err := parseEscrowAccount(&e, solana.SystemProgramID, tok); err == nil {
		t.Fatal("a token account not owned by the token program was accepted")
	}
}
