package chain

import (
	"context"
	"fmt"
	"math"

	"github.com/gagliardetto/solana-go"
	"github.com/gagliardetto/solana-go/rpc"
)

// Whether a payment can be afforded, checked before anything is sent:
// the payer's tokens and SOL for fees, rent of new accounts, and the
// rent-exempt minimum a SOL payee must reach.

// checkFunds refuses a payout the wallet (or fee payer) cannot cover:
// amounts, every transaction's fee and the rent of new token accounts.
func (c *Client) checkFunds(ctx context.Context, spl *splInfo, batches []batch, txs []*solana.Transaction) error {
	var fees, creates, amount uint64
	payees := 0
	for i, tx := range txs {
		fee, err := c.fee(ctx, tx)
		if err != nil {
			return err
		}
		fees += fee
		creates += uint64(batches[i].creates)
		for _, p := range batches[i].payouts {
			if amount+p.Amount < amount {
				return fmt.Errorf("chain: payouts add up to more than %d", uint64(math.MaxUint64))
			}
			amount += p.Amount
			payees++
		}
	}
	var rent uint64
	if creates > 0 {
		per, err := c.rent(ctx, tokenAccountSize)
		if err != nil {
			return err
		}
		rent = per * creates
	}
	// A system account must end with zero or at least this many lamports.
	minBalance, err := c.rent(ctx, 0)
	if err != nil {
		return err
	}
	payerNeeds, detail := fees+rent, fmt.Sprintf("%d fees + %d rent for %d new token accounts", fees, rent, creates)
	if spl == nil {
		if err := c.checkNewAccounts(ctx, batches, minBalance); err != nil {
			return err
		}
		if c.FeePayer() == c.Address() {
			payerNeeds += amount
			detail = fmt.Sprintf("%d payouts + %d fees", amount, fees)
		} else if err := c.needLamports(ctx, c.Address(), amount, fmt.Sprintf("%d payouts", amount), minBalance); err != nil {
			return err
		}
	} else {
		have, err := c.TokenBalance(ctx, spl.mint, c.Address())
		if err != nil {
			return err
		}
		if have < amount {
			return &InsufficientFundsError{Account: c.Address(), Unit: "base units of " + spl.mint.String(),
				Have: have, Need: amount, Detail: fmt.Sprintf("%d payees", payees)}
		}
	}
	return c.needLamports(ctx, c.FeePayer(), payerNeeds, detail, minBalance)
}

// fee is what the cluster charges for tx's message.
func (c *Client) fee(ctx context.Context, tx *solana.Transaction) (uint64, error) {
	out, err := call(ctx, c, "getFeeForMessage", func(ctx context.Context) (*rpc.GetFeeForMessageResult, error) {
		return c.rpc.GetFeeForMessage(ctx, tx.Message.ToBase64(), c.cfg.commitment())
	})
	if err != nil {
		return 0, fmt.Errorf("fee for transaction: %w", err)
	}
	if out.Value == nil {
		return 0, fmt.Errorf("fee for transaction: blockhash unknown to %s", c.cfg.RPC)
	}
	return *out.Value, nil
}

// RentExemptMinimum is the least balance the chain lets an account of
// size bytes hold (0 bytes: a plain wallet, which a SOL payout may open).
func (c *Client) RentExemptMinimum(ctx context.Context, size uint64) (uint64, error) {
	return c.rent(ctx, size)
}

func (c *Client) rent(ctx context.Context, size uint64) (uint64, error) {
	n, err := call(ctx, c, "getMinimumBalanceForRentExemption", func(ctx context.Context) (uint64, error) {
		return c.rpc.GetMinimumBalanceForRentExemption(ctx, size, c.cfg.commitment())
	})
	if err != nil {
		return 0, fmt.Errorf("rent-exempt minimum for %d bytes: %w", size, err)
	}
	return n, nil
}

// checkNewAccounts refuses SOL payouts that would open a recipient account
// below the rent-exempt minimum: the whole transaction would be rejected.
func (c *Client) checkNewAccounts(ctx context.Context, batches []batch, minBalance uint64) error {
	var small []Payout
	for _, b := range batches {
		for _, p := range b.payouts {
			if p.Amount < minBalance {
				small = append(small, p)
			}
		}
	}
	for start := 0; start < len(small); start += 100 {
		chunk := small[start:min(start+100, len(small))]
		keys := make([]solana.PublicKey, len(chunk))
		for i, p := range chunk {
			keys[i] = p.Recipient
		}
		out, err := call(ctx, c, "getMultipleAccounts", func(ctx context.Context) (*rpc.GetMultipleAccountsResult, error) {
			return c.rpc.GetMultipleAccountsWithOpts(ctx, keys, &rpc.GetMultipleAccountsOpts{Commitment: c.cfg.commitment()})
		})
		if err != nil {
			return fmt.Errorf("look up recipients: %w", err)
		}
		for i, acc := range out.Value {
			if acc == nil || acc.Lamports+chunk[i].Amount < minBalance {
				return fmt.Errorf("%w: %d lamports to %s would leave it with less than %d lamports, which the chain rejects; pay at least that much or pay in a token",
					ErrBelowRent, chunk[i].Amount, chunk[i].Recipient, minBalance)
			}
		}
	}
	return nil
}

// needLamports checks that who can spend need lamports and be left with
// zero or at least minBalance, as the runtime requires.
func (c *Client) needLamports(ctx context.Context, who solana.PublicKey, need uint64, detail string, minBalance uint64) error {
	have, err := c.lamports(ctx, who)
	if err != nil {
		return err
	}
	if have < need {
		return &InsufficientFundsError{Account: who, Unit: "lamports", Have: have, Need: need, Detail: detail}
	}
	if left := have - need; left > 0 && left < minBalance {
		return &InsufficientFundsError{Account: who, Unit: "lamports", Have: have, Need: need + minBalance,
			Detail: fmt.Sprintf("%s + %d to stay rent-exempt", detail, minBalance)}
	}
	return nil
}
