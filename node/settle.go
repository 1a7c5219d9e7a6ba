package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// settlement pays the agreeing workers of this node's accepted jobs
// through the crash-safe chain journal.
type settlement struct {
	n       *Node
	client  *chain.Client
	journal *chain.Journal
}

// startSettlement connects the chain client and, in the background,
// reconciles whatever a crash left pending; an unreachable chain does not
// stop the node (jobs wait in settling until it answers).
func (n *Node) startSettlement() error {
	if !n.cfg.Chain.Settle {
		return nil
	}
	c, err := chain.New(n.cfg.Chain, n.key, n.log)
	if err != nil {
		return err
	}
	n.settle = &settlement{n: n, client: c, journal: chain.NewJournal(n.storage.Datastore(), c, n.log)}
	if at := n.opts.CrashAt; at != "" {
		n.settle.journal.OnStep(func(step string) error {
			if step != at {
				return nil
			}
			n.log.Error("VFT_DEBUG_CRASH_AT: crashing in the middle of a settlement", "step", step)
			if n.opts.Crash != nil {
				n.opts.Crash(step)
			}
			return fmt.Errorf("VFT_DEBUG_CRASH_AT: stopped after step %s", step)
		})
	}
	// Stopped before the client closes (stops run in reverse).
	n.stops = append(n.stops, c.Close, background(func(ctx context.Context) {
		for wait := time.Second; ctx.Err() == nil; wait = min(2*wait, time.Minute) {
			err := n.settle.journal.Reconcile(ctx)
			if err == nil {
				return
			}
			n.log.Warn("settlement journal not reconciled yet; retrying", "err", err, "in", wait)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}))
	return nil
}

// background runs fn in a goroutine; the returned stop cancels fn's
// context and waits for it to return.
func background(fn func(ctx context.Context)) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() error {
		cancel()
		<-done
		return nil
	}
}

// Pay is the market's Settle: it pays each agreeing worker the job's
// reward, with the memo vft:1:<jobID>:<resultCID>. The journal makes it
// idempotent by job ID, so a retry after a crash or an RPC error pays
// nobody twice.
func (s *settlement) Pay(ctx context.Context, rec job.Record) ([]job.Payout, error) {
	// Not OpenOffer: a payment retried after the job's deadline is still
	// owed, and the record is ours, checked when it was made.
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", job.ErrWillNotPay, err)
	}
	if rec.Verdict == nil || rec.Result == "" {
		return nil, fmt.Errorf("%w: job %s has no accepted result", job.ErrWillNotPay, rec.ID)
	}
	if o.Spec.Escrow {
		return s.n.releaseEscrow(ctx, rec, o)
	}
	var payouts []chain.Payout
	workerOf := map[string]string{} // wallet → peer ID, to name the worker in each payout
	for _, w := range rec.Verdict.Agreed {
		id, err := peer.Decode(w)
		if err != nil {
			return nil, fmt.Errorf("%w: worker %q is not a peer ID", job.ErrWillNotPay, w)
		}
		addr, err := identity.WalletAddressOf(id)
		if err != nil {
			return nil, fmt.Errorf("%w: worker %s has no wallet address: %v", job.ErrWillNotPay, w, err)
		}
		p, err := chain.ParsePayout(addr, o.Spec.Reward)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", job.ErrWillNotPay, err)
		}
		payouts = append(payouts, p)
		workerOf[addr] = w
	}
	st, err := s.journal.Settle(ctx, rec.ID, rec.Result, payouts)
	var insufficient *chain.InsufficientFundsError
	var rejected *chain.TxError
	switch {
	case errors.As(err, &insufficient), errors.As(err, &rejected), errors.Is(err, chain.ErrSettlementFailed), errors.Is(err, chain.ErrConflict),
		errors.Is(err, chain.ErrBelowRent):
		s.n.stats.settled("refused")
		return nil, fmt.Errorf("%w: %w", job.ErrWillNotPay, err)
	case err != nil:
		s.n.stats.settled("retry")
		return nil, err
	}
	s.n.stats.settled("confirmed")
	var out []job.Payout
	for _, tx := range st.Txs {
		for _, p := range tx.Payouts {
			out = append(out, job.Payout{Recipient: p.Recipient.String(), Worker: workerOf[p.Recipient.String()], Amount: p.Amount,
				Signature: tx.Signature.String(), State: string(tx.State)})
		}
	}
	return out, nil
}

// CheckFunds refuses a job the wallet cannot pay for all k workers, before
// it is offered, naming the amount missing.
func (s *settlement) CheckFunds(ctx context.Context, spec job.Spec) error {
	mint := s.client.Mint()
	if spec.Mint != "" && (mint.IsZero() || spec.Mint != mint.String()) {
		return fmt.Errorf("the job pays in mint %s but this node's chain.mint is %q: set chain.mint to the job's mint", spec.Mint, mint.String())
	}
	if spec.Mint == "" && !mint.IsZero() {
		return fmt.Errorf("the job pays in SOL but this node pays in mint %s: set the job's mint", mint)
	}
	if mint.IsZero() {
		// A SOL payout to a wallet that does not exist yet must leave it
		// rent-exempt, or the chain rejects the whole transaction; this
		// node cannot know which miners' wallets exist, so it refuses a
		// reward that could not open one.
		minimum, err := s.client.RentExemptMinimum(ctx, 0)
		if err != nil {
			return fmt.Errorf("cannot check the reward against the chain's rent-exempt minimum (chain.rpc %s): %w", s.n.cfg.Chain.RPC, err)
		}
		if spec.Reward < minimum {
			return fmt.Errorf("%w: a reward of %d lamports is below the %d lamports (%s SOL) a new wallet must hold, so paying a miner whose wallet is empty would be refused by the chain; pay at least %d lamports, or pay in a token (set chain.mint and the job's mint)",
				job.ErrRewardTooSmall, spec.Reward, minimum, units.FormatAmount(minimum, units.SOL.Decimals), minimum)
		}
	}
	workers := uint64(spec.Verify.WorkersToFund())
	need := spec.Reward * workers
	var have uint64
	var err error
	unit := "lamports"
	if mint.IsZero() {
		have, err = s.client.Balance(ctx)
	} else {
		have, err = s.client.TokenBalance(ctx, mint, s.client.Address())
		unit = "base units of " + mint.String()
	}
	if err != nil {
		return fmt.Errorf("cannot check the wallet's funds before offering the job (chain.rpc %s): %w", s.n.cfg.Chain.RPC, err)
	}
	if have < need {
		return fmt.Errorf("wallet %s holds %d %s, the job needs %d (reward %d × %d workers): %d missing",
			s.client.Address(), have, unit, need, spec.Reward, workers, need-have)
	}
	return nil
}

// settleFunc is the market's Settle, nil when settlement is off.
func (n *Node) settleFunc() func(context.Context, job.Record) ([]job.Payout, error) {
	if n.settle == nil {
		return nil
	}
	return n.settle.Pay
}

// checkFundsFunc is the market's CheckFunds, nil when settlement is off.
func (n *Node) checkFundsFunc() func(context.Context, job.Spec) error {
	if n.settle == nil {
		return nil
	}
	return n.settle.CheckFunds
}

// escrowFunc is the market's OpenEscrow, nil when settlement is off.
func (n *Node) escrowFunc() func(context.Context, job.Record) (string, error) {
	if n.escrow == nil {
		return nil
	}
	return n.openEscrow
}

// refundFunc is the market's Refund, nil when settlement is off.
func (n *Node) refundFunc() func(context.Context, job.Record) error {
	if n.escrow == nil {
		return nil
	}
	return n.refundEscrow
}
