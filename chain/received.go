package chain

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/rpc"
)

// Received is one payment found on chain: what a transaction carrying a
// job's memo credited to one wallet.
type Received struct {
	Signature solana.Signature
	Amount    uint64 // lamports, or base units of the mint
	Slot      uint64
	BlockTime time.Time // zero when the RPC server did not say
}

// maxSignatureScan bounds one FindPayment: however many transactions the
// RPC server claims the account has, one search reads at most this many
// signatures and fetches only the transactions whose memo names the job.
const maxSignatureScan = 1000

// ErrNoPayment means no transaction among the ones searched paid the job.
var ErrNoPayment = errors.New("chain: no payment for the job found")

// FindPayment looks for the transaction that paid owner for a job: one
// whose memo is Memo(jobID, resultCID) and which credited owner's wallet
// (mint zero: SOL) or owner's associated token account of mint. Plain
// settlements and escrow releases both carry that memo. It reads at most
// limit (capped at maxSignatureScan) of the account's newest signatures,
// so a hostile or huge history costs one bounded request, and returns
// ErrNoPayment when none of them is the payment.
func (c *Client) FindPayment(ctx context.Context, owner, mint solana.PublicKey, jobID, resultCID string, limit int) (Received, error) {
	account := owner
	if !mint.IsZero() {
		ata, _, err := solana.FindAssociatedTokenAddress(owner, mint)
		if err != nil {
			return Received{}, fmt.Errorf("token account of %s: %w", owner, err)
		}
		account = ata
	}
	limit = max(1, min(limit, maxSignatureScan))
	sigs, err := call(ctx, c, "getSignaturesForAddress", func(ctx context.Context) ([]*rpc.TransactionSignature, error) {
		return c.rpc.GetSignaturesForAddressWithOpts(ctx, account, &rpc.GetSignaturesForAddressOpts{Limit: &limit, Commitment: c.historyCommitment()})
	})
	if err != nil {
		return Received{}, fmt.Errorf("transactions of %s: %w", account, err)
	}
	want := Memo(jobID, resultCID)
	for i, s := range sigs {
		if i >= limit {
			break // a server that sends more than asked gets no more work
		}
		// The summary's memo reads "[len] text"; it only picks candidates,
		// the transaction itself is checked below.
		if s == nil || s.Err != nil || s.Memo == nil || !strings.Contains(*s.Memo, want) {
			continue
		}
		got, ok, err := c.credited(ctx, s.Signature, account, owner, mint, want)
		if err != nil {
			return Received{}, err
		}
		if ok {
			return got, nil
		}
	}
	return Received{}, fmt.Errorf("%w: %s among the %d newest transactions of %s", ErrNoPayment, want, len(sigs), account)
}

// credited reads one transaction and says how much it credited: account
// (owner's wallet for SOL) or, for a token, owner's token account of mint.
// ok is false when the transaction failed, lacks the memo, or credited
// nothing.
func (c *Client) credited(ctx context.Context, sig solana.Signature, account, owner, mint solana.PublicKey, wantMemo string) (Received, bool, error) {
	var version uint64
	out, err := call(ctx, c, "getTransaction", func(ctx context.Context) (*rpc.GetTransactionResult, error) {
		return c.rpc.GetTransaction(ctx, sig, &rpc.GetTransactionOpts{Encoding: solana.EncodingBase64,
			Commitment: c.historyCommitment(), MaxSupportedTransactionVersion: &version})
	})
	if errors.Is(err, rpc.ErrNotFound) {
		return Received{}, false, nil
	}
	if err != nil {
		return Received{}, false, fmt.Errorf("transaction %s: %w", sig, err)
	}
	if out == nil || out.Meta == nil || out.Meta.Err != nil || out.Transaction == nil {
		return Received{}, false, nil
	}
	tx, err := out.Transaction.GetTransaction()
	if err != nil {
		return Received{}, false, fmt.Errorf("transaction %s: %w", sig, err)
	}
	keys := append(append(append(solana.PublicKeySlice{}, tx.Message.AccountKeys...),
		out.Meta.LoadedAddresses.Writable...), out.Meta.LoadedAddresses.ReadOnly...)
	if !hasMemo(tx, keys, wantMemo) {
		return Received{}, false, nil
	}
	got := Received{Signature: sig, Slot: out.Slot}
	if out.BlockTime != nil {
		got.BlockTime = out.BlockTime.Time()
	}
	if mint.IsZero() {
		for i, k := range keys {
			if k == account && i < len(out.Meta.PreBalances) && i < len(out.Meta.PostBalances) &&
				out.Meta.PostBalances[i] > out.Meta.PreBalances[i] {
				got.Amount = out.Meta.PostBalances[i] - out.Meta.PreBalances[i]
				return got, true, nil
			}
		}
		return Received{}, false, nil
	}
	index := -1
	for i, k := range keys {
		if k == account {
			index = i
		}
	}
	if index < 0 {
		return Received{}, false, nil
	}
	post, okPost := tokenAmount(out.Meta.PostTokenBalances, index, owner, mint)
	pre, _ := tokenAmount(out.Meta.PreTokenBalances, index, owner, mint) // absent: the account was created here
	if !okPost || post <= pre {
		return Received{}, false, nil
	}
	got.Amount = post - pre
	return got, true, nil
}

// hasMemo reports whether tx carries a memo instruction with exactly text.
func hasMemo(tx *solana.Transaction, keys solana.PublicKeySlice, text string) bool {
	for _, ix := range tx.Message.Instructions {
		if int(ix.ProgramIDIndex) < len(keys) && keys[ix.ProgramIDIndex] == memo.ProgramID && string(ix.Data) == text {
			return true
		}
	}
	return false
}

// tokenAmount is the balance of the token account at index, if the
// meta lists it with the expected owner and mint.
func tokenAmount(list []rpc.TokenBalance, index int, owner, mint solana.PublicKey) (uint64, bool) {
	for _, b := range list {
		if int(b.AccountIndex) != index || b.Mint != mint || b.UiTokenAmount == nil {
			continue
		}
		if b.Owner != nil && *b.Owner != owner {
			return 0, false
		}
		v, err := strconv.ParseUint(b.UiTokenAmount.Amount, 10, 64)
		if err != nil {
			return 0, false
		}
		return v, true
	}
	return 0, false
}

// historyCommitment is the configured commitment for reading history:
// Solana's RPC refuses "processed" for getSignaturesForAddress and
// getTransaction, so that reads as "confirmed".
func (c *Client) historyCommitment() rpc.CommitmentType {
	if c.cfg.commitment() == rpc.CommitmentProcessed {
		return rpc.CommitmentConfirmed
	}
	return c.cfg.commitment()
}

// MintDecimals is how many decimals mint's amounts have. A mint's
// decimals never change, so each mint is read from the chain once.
func (c *Client) MintDecimals(ctx context.Context, mint solana.PublicKey) (uint8, error) {
	c.decimalsMu.Lock()
	d, ok := c.decimals[mint]
	c.decimalsMu.Unlock()
	if ok {
		return d, nil
	}
	info, err := c.mintInfo(ctx, mint)
	if err != nil {
		return 0, err
	}
	c.decimalsMu.Lock()
	if c.decimals == nil {
		c.decimals = map[solana.PublicKey]uint8{}
	}
	c.decimals[mint] = info.decimals
	c.decimalsMu.Unlock()
	return info.decimals, nil
}
