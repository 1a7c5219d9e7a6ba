package chain

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/programs/memo"
	"github.com/gagliardetto/solana-go/programs/system"
	"github.com/gagliardetto/solana-go/programs/token"
	"github.com/gagliardetto/solana-go/rpc"
)

// Planning a payment: payouts merged per recipient, then packed into as
// few transactions as fit Solana's packet limit, creating the token
// accounts payees lack. Sending them is payout.go; whether the payer can
// afford them is funds.go.

// normalize checks payouts and merges repeated recipients, so that a
// recipient gets one transfer; the order of first appearance is kept.
func normalize(payouts []Payout) ([]Payout, error) {
	if len(payouts) == 0 {
		return nil, errors.New("chain: no payouts")
	}
	idx := map[solana.PublicKey]int{}
	var out []Payout
	for i, p := range payouts {
		if p.Recipient.IsZero() {
			return nil, fmt.Errorf("chain: payout %d has no recipient", i)
		}
		if p.Amount == 0 {
			return nil, fmt.Errorf("chain: payout %d to %s is zero", i, p.Recipient)
		}
		if j, ok := idx[p.Recipient]; ok {
			if out[j].Amount+p.Amount < out[j].Amount {
				return nil, fmt.Errorf("chain: payouts to %s overflow", p.Recipient)
			}
			out[j].Amount += p.Amount
			continue
		}
		idx[p.Recipient] = len(out)
		out = append(out, p)
	}
	return out, nil
}

// batch is the payouts of one transaction and its instructions.
type batch struct {
	payouts []Payout
	creates int // new associated token accounts
	ixs     []solana.Instruction
}

// splInfo describes the mint of an SPL payout.
type splInfo struct {
	mint     solana.PublicKey
	decimals uint8
	source   solana.PublicKey // the wallet's associated token account
}

// plan turns payouts into transactions' instructions, filling each
// transaction with payees until the next would exceed MaxTxSize (measured
// on the serialized transaction), so equal-sized payees take the fewest
// transactions. missing says which recipients need a token account
// created (SPL only).
func (c *Client) plan(memoText string, payouts []Payout, spl *splInfo, missing map[solana.PublicKey]bool) ([]batch, error) {
	order := payouts
	if spl != nil {
		// Payees that need an account are bigger; packing them first keeps
		// the count of transactions minimal (first-fit decreasing).
		order = append([]Payout(nil), payouts...)
		sort.SliceStable(order, func(i, j int) bool { return missing[order[i].Recipient] && !missing[order[j].Recipient] })
	}
	memoIx := solana.NewInstruction(memo.ProgramID, solana.AccountMetaSlice{solana.Meta(c.Address()).SIGNER()}, []byte(memoText))
	var out []batch
	cur := batch{ixs: []solana.Instruction{memoIx}}
	for _, p := range order {
		ixs, create, err := c.payoutIxs(p, spl, missing[p.Recipient])
		if err != nil {
			return nil, err
		}
		try := append(append([]solana.Instruction(nil), cur.ixs...), ixs...)
		size, err := c.txSize(try)
		if err != nil {
			return nil, err
		}
		if size > MaxTxSize && len(cur.payouts) > 0 {
			out = append(out, cur)
			cur = batch{ixs: []solana.Instruction{memoIx}}
			try = append([]solana.Instruction{memoIx}, ixs...)
			if size, err = c.txSize(try); err != nil {
				return nil, err
			}
		}
		if size > MaxTxSize {
			return nil, fmt.Errorf("chain: one payout to %s needs %d bytes, over the %d-byte limit: shorten the job ID or result CID", p.Recipient, size, MaxTxSize)
		}
		cur.ixs = try
		cur.payouts = append(cur.payouts, p)
		if create {
			cur.creates++
		}
	}
	return append(out, cur), nil
}

func (c *Client) payoutIxs(p Payout, spl *splInfo, missing bool) ([]solana.Instruction, bool, error) {
	if spl == nil {
		ix, err := system.NewTransferInstruction(p.Amount, c.Address(), p.Recipient).ValidateAndBuild()
		if err != nil {
			return nil, false, fmt.Errorf("transfer to %s: %w", p.Recipient, err)
		}
		return []solana.Instruction{ix}, false, nil
	}
	dest, _, err := solana.FindAssociatedTokenAddress(p.Recipient, spl.mint)
	if err != nil {
		return nil, false, fmt.Errorf("token account of %s: %w", p.Recipient, err)
	}
	var ixs []solana.Instruction
	if missing {
		ixs = append(ixs, createATAIdempotent(c.FeePayer(), p.Recipient, spl.mint, dest))
	}
	ix, err := token.NewTransferCheckedInstruction(p.Amount, spl.decimals, spl.source, spl.mint, dest, c.Address(), nil).ValidateAndBuild()
	if err != nil {
		return nil, false, fmt.Errorf("token transfer to %s: %w", p.Recipient, err)
	}
	return append(ixs, ix), missing, nil
}

// createATAIdempotent is the Associated Token Account program's
// CreateIdempotent instruction (index 1), which solana-go v1.14 lacks: it
// succeeds when the account already exists, so a resent or re-signed
// transaction cannot fail because an earlier one created it.
func createATAIdempotent(payer, wallet, mint, ata solana.PublicKey) solana.Instruction {
	return solana.NewInstruction(solana.SPLAssociatedTokenAccountProgramID, solana.AccountMetaSlice{
		solana.Meta(payer).WRITE().SIGNER(),
		solana.Meta(ata).WRITE(),
		solana.Meta(wallet),
		solana.Meta(mint),
		solana.Meta(solana.SystemProgramID),
		solana.Meta(solana.TokenProgramID),
	}, []byte{1})
}

// txSize is the serialized size of a transaction of ixs: the message
// (whose size does not depend on the blockhash) plus its signatures.
func (c *Client) txSize(ixs []solana.Instruction) (int, error) {
	tx, err := solana.NewTransaction(ixs, solana.Hash{}, solana.TransactionPayer(c.FeePayer()))
	if err != nil {
		return 0, fmt.Errorf("build transaction: %w", err)
	}
	msg, err := tx.Message.MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("encode transaction: %w", err)
	}
	n := int(tx.Message.Header.NumRequiredSignatures)
	return len(msg) + shortvecLen(n) + 64*n, nil
}

func shortvecLen(n int) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], uint64(n))
}

// mintInfo reads the mint's decimals and checks it is an SPL Token mint.
func (c *Client) mintInfo(ctx context.Context, mint solana.PublicKey) (*splInfo, error) {
	acc, err := call(ctx, c, "getAccountInfo", func(ctx context.Context) (*rpc.GetAccountInfoResult, error) {
		return c.rpc.GetAccountInfoWithOpts(ctx, mint, &rpc.GetAccountInfoOpts{Commitment: c.cfg.commitment()})
	})
	if err != nil {
		if errors.Is(err, rpc.ErrNotFound) {
			return nil, fmt.Errorf("chain.mint %s: no such account on %s", mint, c.cfg.RPC)
		}
		return nil, fmt.Errorf("chain.mint %s: %w", mint, err)
	}
	data := acc.Value.Data.GetBinary()
	if acc.Value.Owner != solana.TokenProgramID || len(data) != 82 {
		return nil, fmt.Errorf("chain.mint %s is not an SPL Token mint (owner %s, %d bytes)", mint, acc.Value.Owner, len(data))
	}
	src, _, err := solana.FindAssociatedTokenAddress(c.Address(), mint)
	if err != nil {
		return nil, fmt.Errorf("token account of %s: %w", c.Address(), err)
	}
	return &splInfo{mint: mint, decimals: data[44], source: src}, nil
}

// missingAccounts returns the recipients without an associated token account.
func (c *Client) missingAccounts(ctx context.Context, spl *splInfo, payouts []Payout) (map[solana.PublicKey]bool, error) {
	missing := map[solana.PublicKey]bool{}
	for start := 0; start < len(payouts); start += 100 {
		chunk := payouts[start:min(start+100, len(payouts))]
		keys := make([]solana.PublicKey, len(chunk))
		for i, p := range chunk {
			ata, _, err := solana.FindAssociatedTokenAddress(p.Recipient, spl.mint)
			if err != nil {
				return nil, fmt.Errorf("token account of %s: %w", p.Recipient, err)
			}
			keys[i] = ata
		}
		out, err := call(ctx, c, "getMultipleAccounts", func(ctx context.Context) (*rpc.GetMultipleAccountsResult, error) {
			return c.rpc.GetMultipleAccountsWithOpts(ctx, keys, &rpc.GetMultipleAccountsOpts{Commitment: c.cfg.commitment()})
		})
		if err != nil {
			return nil, fmt.Errorf("look up token accounts: %w", err)
		}
		for i, acc := range out.Value {
			if acc == nil {
				missing[chunk[i].Recipient] = true
			}
		}
	}
	return missing, nil
}
