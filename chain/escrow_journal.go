package chain

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// StateExpired: an escrow release whose blockhash expired with none of its
// signatures on chain. It can never land; moving the escrow needs a new
// transaction, approved again by the signers.
const StateExpired State = "expired"

// ErrReleasePending means a job's escrow release was recorded and may still
// land, so no other one may be recorded for it yet.
var ErrReleasePending = errors.New("chain: an escrow release is pending")

var escrowPrefix = datastore.NewKey("/chain/escrow")

// EscrowRelease is the journal's record of moving a job's escrow out: to
// the workers (Tag is the result CID) or back to the submitter (Tag is
// "refund"). Tx holds the fully signed bytes, written before they are sent.
type EscrowRelease struct {
	JobID     string             `json:"job_id"`
	Tag       string             `json:"tag"` // last part of the memo vft:1:<jobID>:<tag>
	Escrow    Escrow             `json:"escrow"`
	Payouts   []Payout           `json:"payouts"` // normalized
	Approvers []solana.PublicKey `json:"approvers"`
	Tx        TxRecord           `json:"tx"`
	State     State              `json:"state"`
	Created   time.Time          `json:"created"`
	Updated   time.Time          `json:"updated"`
}

// RecordRelease adds the fee payer's signature to r (which its approvers
// signed), checks every signature, and records the release before anything
// is sent; FinishRelease sends it. Per job, at most one release can be
// live: while a recorded one may still land, another is ErrReleasePending
// (the same one again returns the record); after it landed, another is
// ErrConflict. One that expired or failed is superseded: its signatures are
// kept and still looked up, so that if it did land after all it counts.
func (j *Journal) RecordRelease(ctx context.Context, e *Escrow, tag string, payouts []Payout, r *Release) (*EscrowRelease, error) {
	norm, err := normalize(payouts)
	if err != nil {
		return nil, fmt.Errorf("release of %s: %w", e.JobID, err)
	}
	unlock := j.lock(escrowLockName(e.JobID))
	defer unlock()
	old, err := j.GetRelease(ctx, e.JobID)
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return nil, err
	}
	same := old != nil && old.Tag == tag && slices.Equal(old.Payouts, norm)
	if old != nil {
		switch old.State {
		case StatePending:
			if same {
				return old, nil
			}
			return old, fmt.Errorf("release of %s: %w (%s, valid through block height %d)", e.JobID, ErrReleasePending, old.Tx.Signature, old.Tx.LastValidBlockHeight)
		case StateDone:
			if same {
				return old, nil
			}
			return old, fmt.Errorf("release of %s: %w (the escrow was released by %s)", e.JobID, ErrConflict, old.Tx.Signature)
		case StateFailed:
			// Rejected in preflight, the bytes were not forwarded but could
			// still be: wait until they cannot land.
			if old.Tx.Slot == 0 {
				expired, err := j.c.expired(ctx, old.Tx.LastValidBlockHeight)
				if err != nil {
					return nil, err
				}
				if !expired {
					return old, fmt.Errorf("release of %s: %w: rejected %s may be resent until block height %d", e.JobID, ErrReleasePending, old.Tx.Signature, old.Tx.LastValidBlockHeight)
				}
			}
		}
	}
	s, err := j.c.signRelease(r)
	if err != nil {
		return nil, fmt.Errorf("release of %s: %w", e.JobID, err)
	}
	now := time.Now().UTC()
	rec := &EscrowRelease{
		JobID: e.JobID, Tag: tag, Escrow: *e, Payouts: norm, Approvers: approversOf(r, e),
		Tx:      TxRecord{Payouts: norm, Raw: s.raw, Signature: s.sig, LastValidBlockHeight: s.lastValid, State: StatePending},
		State:   StatePending,
		Created: now,
	}
	if old != nil {
		rec.Created = old.Created
		rec.Tx.Superseded = slices.Concat(old.Tx.Superseded, []solana.Signature{old.Tx.Signature})
	}
	if err := j.putRelease(ctx, rec); err != nil {
		return nil, fmt.Errorf("release of %s: record intent: %w", e.JobID, err)
	}
	j.log.Info("escrow release recorded", "job", e.JobID, "tag", tag, "signature", s.sig, "payouts", len(norm))
	return rec, nil
}

// FinishRelease sends a recorded release (again: the same bytes) and waits
// until it is done, failed (an error wrapping ErrSettlementFailed) or
// expired (an error wrapping ErrExpired: record a newly approved one).
func (j *Journal) FinishRelease(ctx context.Context, jobID string) (*EscrowRelease, error) {
	unlock := j.lock(escrowLockName(jobID))
	defer unlock()
	rec, err := j.GetRelease(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("release of %s: %w", jobID, err)
	}
	if rec.State == StatePending {
		save := func(ctx context.Context) error {
			rec.State = rec.Tx.State
			return j.putRelease(ctx, rec)
		}
		expire := func(ctx context.Context) error {
			j.log.Warn("escrow release expired before it landed; it needs new approvals", "job", jobID, "signature", rec.Tx.Signature)
			rec.Tx.State = StateExpired
			return save(ctx)
		}
		if err := j.drive(ctx, &rec.Tx, save, expire); err != nil {
			return rec, fmt.Errorf("release of %s: %w", jobID, err)
		}
		j.log.Info("escrow release finished", "job", jobID, "state", rec.State, "signature", rec.Tx.Signature)
	}
	switch rec.State {
	case StateFailed:
		return rec, fmt.Errorf("release of %s: %w: transaction %s: %s", jobID, ErrSettlementFailed, rec.Tx.Signature, rec.Tx.Err)
	case StateExpired:
		return rec, fmt.Errorf("release of %s: %s: %w", jobID, rec.Tx.Signature, ErrExpired)
	}
	return rec, nil
}

// ReconcileReleases drives every pending escrow release (after a crash:
// resend the same bytes while they can land, record what landed) and
// returns the releases that expired, which need new approvals.
func (j *Journal) ReconcileReleases(ctx context.Context) ([]*EscrowRelease, error) {
	all, err := j.Releases(ctx)
	if err != nil {
		return nil, err
	}
	var expired []*EscrowRelease
	var errs []error
	for _, rec := range all {
		if rec.State != StatePending && rec.State != StateExpired {
			continue
		}
		cur, err := j.FinishRelease(ctx, rec.JobID)
		switch {
		case errors.Is(err, ErrExpired):
			expired = append(expired, cur)
		case errors.Is(err, ErrUnreachable):
			return expired, errors.Join(append(errs, err)...)
		case err != nil && !errors.Is(err, ErrSettlementFailed):
			errs = append(errs, err)
		}
	}
	return expired, errors.Join(errs...)
}

// GetRelease returns the journal's record of a job's escrow release;
// datastore.ErrNotFound if none.
func (j *Journal) GetRelease(ctx context.Context, jobID string) (*EscrowRelease, error) {
	data, err := j.store.Get(ctx, releaseKey(jobID))
	if err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("journal: read release of %s: %w", jobID, err)
	}
	var rec EscrowRelease
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("journal: release record of %s is corrupt: %w", jobID, err)
	}
	return &rec, nil
}

// Releases lists every recorded escrow release.
func (j *Journal) Releases(ctx context.Context) ([]*EscrowRelease, error) {
	res, err := j.store.Query(ctx, query.Query{Prefix: escrowPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("journal: list releases: %w", err)
	}
	defer res.Close()
	var out []*EscrowRelease
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("journal: list releases: %w", r.Error)
		}
		var rec EscrowRelease
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return nil, fmt.Errorf("journal: release record %s is corrupt: %w", r.Key, err)
		}
		out = append(out, &rec)
	}
	return out, nil
}

func (j *Journal) putRelease(ctx context.Context, rec *EscrowRelease) error {
	rec.Updated = time.Now().UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal: encode release of %s: %w", rec.JobID, err)
	}
	key := releaseKey(rec.JobID)
	if err := j.store.Put(ctx, key, data); err != nil {
		return fmt.Errorf("journal: write release of %s: %w", rec.JobID, err)
	}
	// On disk before the transaction it describes is sent.
	if err := j.store.Sync(ctx, key); err != nil {
		return fmt.Errorf("journal: sync release of %s: %w", rec.JobID, err)
	}
	return nil
}

func releaseKey(jobID string) datastore.Key {
	return escrowPrefix.ChildString(base64.RawURLEncoding.EncodeToString([]byte(jobID)))
}

// escrowLockName keeps a job's release and its settlement on separate locks.
func escrowLockName(jobID string) string { return "escrow\x00" + jobID }

// approversOf lists the escrow signers that sign r.
func approversOf(r *Release, e *Escrow) []solana.PublicKey {
	var out []solana.PublicKey
	for _, pk := range r.Tx.Message.Signers() {
		if slices.Contains(e.Signers, pk) {
			out = append(out, pk)
		}
	}
	return out
}

// signRelease adds the fee payer's signature to an approved release and
// returns its bytes; every signature must be there and valid.
func (c *Client) signRelease(r *Release) (signed, error) {
	if _, err := r.Tx.PartialSign(func(pk solana.PublicKey) *solana.PrivateKey {
		if pk == c.feePayer.PublicKey() {
			return &c.feePayer
		}
		return nil
	}); err != nil {
		return signed{}, fmt.Errorf("sign release: %w", err)
	}
	for i, pk := range r.Tx.Message.Signers() {
		if r.Tx.Signatures[i].IsZero() {
			return signed{}, fmt.Errorf("chain: release not signed by approver %s yet", pk)
		}
	}
	if err := r.Tx.VerifySignatures(); err != nil {
		return signed{}, fmt.Errorf("chain: release: %w", err)
	}
	raw, err := r.Tx.MarshalBinary()
	if err != nil {
		return signed{}, fmt.Errorf("encode release: %w", err)
	}
	if len(raw) > MaxTxSize {
		return signed{}, fmt.Errorf("chain: release is %d bytes, over the %d-byte limit", len(raw), MaxTxSize)
	}
	return signed{raw: raw, sig: r.Tx.Signatures[0], lastValid: r.LastValidBlockHeight}, nil
}
