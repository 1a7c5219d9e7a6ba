package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/job"
)

// startEscrow answers escrow signature requests (as a worker) and opens
// and releases escrows (as a submitter) when settlement is on.
func (n *Node) startEscrow() error {
	if n.settle == nil {
		return nil
	}
	svc, err := escrow.NewService(n.net.Streams(), n.key, n.settle.client, n.settle.journal, n.approveEscrow, n.log)
	if err != nil {
		return err
	}
	n.escrow = svc
	// Stopped before the service closes (stops run in reverse).
	n.stops = append(n.stops, svc.Close, background(func(ctx context.Context) {
		if err := svc.Reconcile(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("escrow releases not reconciled", "err", err)
		}
		n.recheckEscrows(ctx)
	}))
	return nil
}

// recheckEscrows checks again, after a restart, the escrows of the jobs
// this worker has committed to and not yet seen settled: the service
// signs releases only for escrows it has checked.
func (n *Node) recheckEscrows(ctx context.Context) {
	open, err := n.jobs.Unfinished(ctx)
	if err != nil {
		return
	}
	for _, rec := range open {
		o, err := job.RecordedOffer(rec.Offer)
		if err != nil || rec.Role != job.RoleWorker || rec.State != job.StateVerifying || !o.Spec.Escrow {
			continue
		}
		if err := n.checkEscrow(ctx, o, rec.Workers); err != nil {
			n.log.Warn("escrow of a committed job does not check out", "job", rec.ID, "err", err)
		}
	}
}

// escrowTerms is what an escrowed job promises its workers.
func escrowTerms(o job.Offer, workers []peer.ID) (escrow.Terms, error) {
	t := escrow.Terms{JobID: o.ID.String(), Quorum: int(o.Spec.Verify.Quorum),
		Reward: o.Spec.Reward, Amount: o.Spec.Reward * uint64(o.Spec.Verify.Workers)}
	var err error
	if t.Submitter, err = escrow.KeyOf(o.Submitter); err != nil {
		return t, err
	}
	if t.Mint, err = solana.PublicKeyFromBase58(o.Spec.Mint); err != nil {
		return t, fmt.Errorf("job mint %q: %w", o.Spec.Mint, err)
	}
	for _, w := range workers {
		k, err := escrow.KeyOf(w)
		if err != nil {
			return t, err
		}
		t.Workers = append(t.Workers, k)
	}
	return t, nil
}

// openEscrow is the market's OpenEscrow: reward × k for the assigned workers.
func (n *Node) openEscrow(ctx context.Context, rec job.Record) (string, error) {
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil {
		return "", err
	}
	t, err := escrowTerms(o, rec.Workers)
	if err != nil {
		return "", err
	}
	e, err := n.escrow.Open(ctx, rec.ID, t.Workers, t.Quorum, t.Amount)
	if err != nil {
		return "", err
	}
	return e.Account.String(), nil
}

// checkEscrow is the worker's check before it runs an escrowed job.
func (n *Node) checkEscrow(ctx context.Context, o job.Offer, workers []peer.ID) error {
	t, err := escrowTerms(o, workers)
	if err != nil {
		return err
	}
	_, err = n.escrow.Check(ctx, t)
	return err
}

// releaseEscrow pays an accepted escrowed job: the reward to each agreeing
// worker and what is left (the dissenters' share) back to the submitter,
// approved by the agreeing workers.
func (n *Node) releaseEscrow(ctx context.Context, rec job.Record, o job.Offer) ([]job.Payout, error) {
	agreed := make([]peer.ID, 0, len(rec.Verdict.Agreed))
	for _, w := range rec.Verdict.Agreed {
		id, err := peer.Decode(w)
		if err != nil {
			return nil, fmt.Errorf("%w: worker %q is not a peer ID", job.ErrWillNotPay, w)
		}
		agreed = append(agreed, id)
	}
	payouts, approvers, err := releaseSplit(o, rec.Workers, agreed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", job.ErrWillNotPay, err)
	}
	rel, err := n.escrow.Release(ctx, rec.ID, rec.Result, payouts, approvers)
	var rejected *chain.TxError
	switch {
	case errors.Is(err, escrow.ErrRefused), errors.As(err, &rejected), errors.Is(err, chain.ErrConflict):
		n.stats.settled("refused")
		return nil, fmt.Errorf("%w: %w", job.ErrWillNotPay, err)
	case err != nil:
		n.stats.settled("retry")
		return nil, err
	}
	n.stats.settled("confirmed")
	return jobPayouts(rel, o, agreed)
}

// releaseSplit is escrow.ReleasePayouts in the job's terms.
func releaseSplit(o job.Offer, workers, agreeing []peer.ID) ([]chain.Payout, []solana.PublicKey, error) {
	t, err := escrowTerms(o, workers)
	if err != nil {
		return nil, nil, err
	}
	keys := make([]solana.PublicKey, 0, len(agreeing))
	for _, w := range agreeing {
		k, err := escrow.KeyOf(w)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
	}
	return escrow.ReleasePayouts(t, keys)
}

// jobPayouts records a landed release in the job's terms, naming the
// agreeing worker each reward went to; what went to the submitter is
// marked returned.
func jobPayouts(rel *chain.EscrowRelease, o job.Offer, agreeing []peer.ID) ([]job.Payout, error) {
	submitter, err := escrow.KeyOf(o.Submitter)
	if err != nil {
		return nil, err
	}
	workerOf := map[solana.PublicKey]string{}
	for _, w := range agreeing {
		if k, err := escrow.KeyOf(w); err == nil {
			workerOf[k] = w.String()
		}
	}
	out := make([]job.Payout, 0, len(rel.Payouts))
	for _, p := range rel.Payouts {
		returned := p.Recipient == submitter
		worker := workerOf[p.Recipient]
		if returned {
			worker = ""
		}
		out = append(out, job.Payout{Recipient: p.Recipient.String(), Worker: worker, Amount: p.Amount, Signature: rel.Tx.Signature.String(),
			State: string(rel.State), Returned: returned})
	}
	return out, nil
}

// refundEscrow is the market's Refund: every worker is asked to approve.
func (n *Node) refundEscrow(ctx context.Context, rec job.Record) error {
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil {
		return err
	}
	t, err := escrowTerms(o, rec.Workers)
	if err != nil {
		return err
	}
	_, err = n.escrow.Refund(ctx, rec.ID, escrow.RefundApprovers(t))
	return err
}

// approveEscrow is this worker's say on a release or refund its submitter
// asks it to sign: it translates the job record into an escrow.Stake and
// escrow.Approve decides. An approved release is recorded on the job, so
// after a restart the worker still knows the emptied escrow paid it.
func (n *Node) approveEscrow(ctx context.Context, jobID string, req escrow.SignRequest) error {
	rec, err := n.jobs.Get(ctx, jobID)
	if err != nil || rec.Role != job.RoleWorker {
		return fmt.Errorf("job %s is not one this node worked on", jobID)
	}
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil {
		return err
	}
	if rec.Verdict == nil && rec.Result != "" {
		rec = n.awaitVerdict(ctx, rec)
	}
	stake, err := escrowStake(rec, o, n.settle.client.Address(), n.jobs.Now())
	if err != nil {
		return err
	}
	if err := escrow.Approve(stake, req); err != nil {
		return err
	}
	if req.Kind == escrow.KindRefund {
		return nil
	}
	if _, err := n.jobs.Update(ctx, jobID, func(r *job.Record) { r.ReleaseApproved = req.ResultCID }); err != nil {
		return fmt.Errorf("record the approval: %w", err)
	}
	return nil
}

// verdictWait is how long a worker that committed waits for its
// submitter's verdict when asked to sign without one: the submitter sends
// the verdict to its workers as it starts the release or refund, and the
// request may overtake it.
const verdictWait = 10 * time.Second

// awaitVerdict returns rec once it holds a verdict, or as it is after
// verdictWait.
func (n *Node) awaitVerdict(ctx context.Context, rec job.Record) job.Record {
	ctx, cancel := context.WithTimeout(ctx, verdictWait)
	defer cancel()
	for rec.Verdict == nil {
		select {
		case <-ctx.Done():
			return rec
		case <-time.After(100 * time.Millisecond):
		}
		if r, err := n.jobs.Get(ctx, rec.ID); err == nil {
			rec = r
		}
	}
	return rec
}

// escrowStake is what a worker's record of an escrowed job says, in the
// escrow package's terms. Only a verdict by the job's own submitter counts.
func escrowStake(rec job.Record, o job.Offer, self solana.PublicKey, now time.Time) (escrow.Stake, error) {
	t, err := escrowTerms(o, rec.Workers)
	if err != nil {
		return escrow.Stake{}, err
	}
	s := escrow.Stake{Terms: t, Self: self, Exact: o.Spec.Verify.ByCID(), Result: rec.Result,
		PastDeadline: !now.Before(time.UnixMilli(o.Spec.Deadline))}
	s.Ended = rec.State.Terminal() || s.PastDeadline
	if v := rec.Verdict; v != nil && v.Author == o.Submitter.String() {
		s.Verdict = &escrow.Verdict{Accepted: v.Accepted, Revealed: map[solana.PublicKey]string{}}
		for _, w := range v.Agreed {
			if k, err := keyOf(w); err == nil {
				s.Verdict.Agreed = append(s.Verdict.Agreed, k)
			}
		}
		for w, result := range v.Revealed {
			if k, err := keyOf(w); err == nil {
				s.Verdict.Revealed[k] = result
			}
		}
	}
	return s, nil
}

// keyOf is the Solana address of a peer ID in text.
func keyOf(s string) (solana.PublicKey, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return solana.PublicKey{}, fmt.Errorf("%q is not a peer ID", s)
	}
	return escrow.KeyOf(id)
}

// startRescue has the worker look, every so often, for escrowed jobs whose
// submitter went silent past the deadline (job.Worker.Rescue; the worker
// was built with escrowRescuer).
func (n *Node) startRescue() {
	after := n.opts.RescueAfter
	if after == 0 {
		after = job.RescueAfter
	}
	every := min(time.Minute, max(after/4, 200*time.Millisecond))
	n.stops = append(n.stops, background(func(ctx context.Context) {
		for {
			n.worker.Rescue(ctx)
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}))
}

// escrowRescuer is the worker's job.Rescuer: escrow releases sent or
// co-signed by the workers themselves.
type escrowRescuer struct{ n *Node }

// Release pays each agreeing worker the reward and the rest to the
// submitter; this node is the fee payer, so it needs SOL for the fee and
// for token accounts it creates.
func (r escrowRescuer) Release(ctx context.Context, rec job.Record, o job.Offer, agreeing []peer.ID) ([]job.Payout, error) {
	payouts, approvers, err := releaseSplit(o, rec.Workers, agreeing)
	if err != nil {
		return nil, err
	}
	rel, err := r.n.escrow.Release(ctx, rec.ID, rec.Result, payouts, approvers)
	if err != nil {
		return nil, err
	}
	return jobPayouts(rel, o, agreeing)
}

// WorkersToRelease: the escrow's threshold without the submitter.
func (r escrowRescuer) WorkersToRelease(o job.Offer) int {
	return escrow.WorkersToRescue(int(o.Spec.Verify.Quorum))
}

// rescueLamports is what a worker needs to send a release: the fee and up
// to three token accounts it may create for payees (about 0.002 SOL each).
const rescueLamports = 10_000_000

// CanPayFee: this node's fee payer holds rescueLamports.
func (r escrowRescuer) CanPayFee(ctx context.Context) error {
	c := r.n.settle.client
	bal, err := c.FeePayerBalance(ctx)
	if err != nil {
		return err
	}
	if bal < rescueLamports {
		return fmt.Errorf("the fee payer %s holds %d lamports, a release needs about %d (0.01 SOL): fund it", c.FeePayer(), bal, rescueLamports)
	}
	return nil
}

// Emptied: the escrow holds nothing, and whether this node co-signed a
// release of its result (the service remembers it until a restart, the
// job record for good).
func (r escrowRescuer) Emptied(ctx context.Context, rec job.Record) (bool, bool, error) {
	emptied, coSigned, err := r.n.escrow.Emptied(ctx, rec.ID, rec.Result)
	return emptied, coSigned || (rec.ReleaseApproved != "" && rec.ReleaseApproved == rec.Result), err
}
