package job

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/wire"
)

// A submitter that goes silent after its workers committed (it crashed for
// good, or walks away to keep the money) would leave an escrowed reward
// locked: SPL Token has no timelock. But the escrow's threshold is m + 1 of
// the submitter and the k workers, so m + 1 workers that computed the same
// result can release it without the submitter. Once the job's deadline has
// passed with no verdict, each worker asks the others for their reveals
// (commitments can no longer be sent, so nothing can be copied), and if
// enough agree, the first of them by peer ID sends a release paying each
// agreeing worker the reward and the rest back to the submitter (the next
// one takes over later if it cannot pay the fee); the others co-sign it
// (each checks it pays, for its own result, its own reward) and close
// their record once the escrow is empty.

// Rescuer moves a silent submitter's escrow; the node implements it with
// package escrow.
type Rescuer interface {
	// Release pays each of agreeing (this worker among them) the reward
	// from the job's escrow and the rest back to the submitter, with
	// their signatures; it returns the payouts made.
	Release(ctx context.Context, rec Record, o Offer, agreeing []peer.ID) ([]Payout, error)
	// Emptied tells whether the job's escrow holds nothing any more, and
	// whether this worker co-signed a release of rec's result (then that
	// release, or one like it, has paid it).
	Emptied(ctx context.Context, rec Record) (emptied, coSigned bool, err error)
	// CanPayFee tells whether this worker can pay a release's fee and the
	// token accounts it may create; nil means yes.
	CanPayFee(ctx context.Context) error
	// WorkersToRelease is how many agreeing workers can release o's
	// escrow without the submitter (the escrow's threshold).
	WorkersToRelease(o Offer) int
}

// RescueAfter is how long after an escrowed job's deadline its workers
// wait for a verdict before they release the escrow themselves.
const RescueAfter = 10 * time.Minute

// rescueGiveUp is how long after the deadline a worker keeps trying (too
// few workers reachable or agreeing, no SOL for the fee) before it records
// the job as failed with the reward locked.
const rescueGiveUp = 7 * 24 * time.Hour

// Rescue looks once at this worker's committed escrowed jobs and releases
// or closes those whose submitter went silent. The node calls it
// periodically.
func (w *Worker) Rescue(ctx context.Context) {
	if w.rescuer == nil {
		return
	}
	recs, err := w.book.Unfinished(ctx)
	if err != nil {
		return
	}
	for _, rec := range recs {
		if rec.Role != RoleWorker || rec.State != StateVerifying || rec.Verdict != nil || rec.Result == "" {
			continue
		}
		o, err := RecordedOffer(rec.Offer)
		if err != nil || !o.Spec.Escrow || w.now().Before(time.UnixMilli(o.Spec.Deadline).Add(w.rescueAfter)) {
			continue
		}
		w.rescue(ctx, rec, o)
	}
}

func (w *Worker) rescue(ctx context.Context, rec Record, o Offer) {
	emptied, coSigned, err := w.rescuer.Emptied(ctx, rec)
	if err != nil {
		w.log.Warn("escrow unreadable; retrying later", "job", rec.ID, "err", err)
		return
	}
	if emptied && !coSigned {
		w.finishRescue(ctx, rec, nil, nil, nil, StateFailed, "the escrow was paid out without this worker (its commitment did not count)")
		return
	}
	self := w.key.PeerID()
	agreeing := []peer.ID{self}
	var dissenting []string
	for _, p := range rec.Workers {
		if p == self {
			continue
		}
		r, err := w.askReveal(ctx, rec.ID, p)
		if err != nil || r.Result != rec.Result {
			dissenting = append(dissenting, p.String())
			continue
		}
		agreeing = append(agreeing, p)
	}
	slices.Sort(agreeing)
	switch need := w.rescuer.WorkersToRelease(o); {
	case emptied: // and co-signed
		w.finishRescue(ctx, rec, agreeing, dissenting, nil, StateDone, "the escrow was released by the agreeing workers (this one co-signed); the submitter gave no verdict")
	case len(agreeing) < need && w.now().After(time.UnixMilli(o.Spec.Deadline).Add(rescueGiveUp)):
		w.finishRescue(ctx, rec, nil, nil, nil, StateFailed, fmt.Sprintf(
			"the submitter gave no verdict, and a week after the deadline only %d of the %d workers needed to release the escrow agree: the reward stays locked", len(agreeing), need))
	case len(agreeing) < need:
		w.log.Warn("the submitter gave no verdict, and too few workers agree to release the escrow without it; retrying later",
			"job", rec.ID, "agreeing", len(agreeing), "needed", need)
	case w.myTurn(o, slices.Index(agreeing, self)):
		if err := w.rescuer.CanPayFee(ctx); err != nil {
			w.log.Warn("this worker would send the escrow release but cannot pay its fee; the next agreeing worker will", "job", rec.ID, "err", err)
			return
		}
		payouts, err := w.rescuer.Release(ctx, rec, o, agreeing)
		if err != nil {
			w.log.Warn("escrow release without the submitter failed; retrying later", "job", rec.ID, "err", err)
			return
		}
		w.finishRescue(ctx, rec, agreeing, dissenting, payouts, StateDone, "the submitter gave no verdict: the agreeing workers released the escrow")
	default:
		// An earlier agreeing worker sends the release; this one co-signs
		// it, and closes its record once the escrow is empty.
	}
}

// myTurn says whether the agreeing worker of this rank (by peer ID) sends
// the release now: the first at the deadline + rescueAfter, each next one
// 2 × rescueAfter later, in case those before it cannot (no SOL for the
// fee). A worker that cannot be reached does not count: it is not among
// the agreeing.
func (w *Worker) myTurn(o Offer, rank int) bool {
	return !w.now().Before(time.UnixMilli(o.Spec.Deadline).Add(w.rescueAfter * time.Duration(1+2*rank)))
}

func (w *Worker) finishRescue(ctx context.Context, rec Record, agreeing []peer.ID, dissenting []string, payouts []Payout, to State, note string) {
	_, err := w.book.Move(ctx, rec.ID, to, note, func(r *Record) {
		if to == StateFailed {
			r.Reason = note
			return
		}
		names := make([]string, len(agreeing))
		for i, p := range agreeing {
			names[i] = p.String()
		}
		r.Verdict = &VerdictRecord{Accepted: rec.Result, Agreed: names, Dissented: append([]string{}, dissenting...),
			Reason: note, Author: w.key.PeerID().String()}
		r.Payouts = payouts
	})
	if err != nil {
		w.log.Warn("record the escrow's end", "job", rec.ID, "err", err)
		return
	}
	w.log.Info("escrowed job closed without the submitter", "job", rec.ID, "state", to, "note", note)
}

// askReveal asks a co-worker of the job to open its commitment; it answers
// only once the job's deadline has passed (see handleReveal).
func (w *Worker) askReveal(ctx context.Context, jobID string, p peer.ID) (RevealMsg, error) {
	req, err := wire.Seal(w.key, KindRevealRequest, w.now(), RevealRequest{Job: jobID})
	if err != nil {
		return RevealMsg{}, err
	}
	reply, err := exchange(ctx, w.streams, p, ProtocolReveal, req, 2<<10)
	if err != nil {
		return RevealMsg{}, err
	}
	var r RevealMsg
	if err := openDirect(reply, KindReveal, p, w.now(), &r); err != nil {
		return RevealMsg{}, err
	}
	if r.Job != jobID {
		return RevealMsg{}, fmt.Errorf("reveal from %s is about job %s, not %s", p, r.Job, jobID)
	}
	return r, nil
}
