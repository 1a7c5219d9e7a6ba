package escrow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/identity"
)

// ErrClosed means the service was used after Close.
var ErrClosed = errors.New("escrow: service closed")

// maxAttempts bounds how often one Release or Refund collects approvals
// again because the previous transaction's blockhash expired.
const maxAttempts = 3

// Approver is the node's own say on a request that passed every check of
// the transaction: nil to sign. The node translates its job record into a
// Stake and asks Approve.
type Approver func(ctx context.Context, jobID string, req SignRequest) error

// Service is one node's side of escrow: as a submitter it opens escrows
// and collects releases and refunds; as a worker it checks escrows and
// answers signature requests on Protocol.
type Service struct {
	h       Host
	key     *identity.Key
	self    solana.PublicKey
	priv    solana.PrivateKey
	c       *chain.Client
	j       *chain.Journal
	approve Approver
	log     *slog.Logger
	now     func() time.Time

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	checked map[string]checkedJob // worker side: escrows this node checked
	signed  map[string]signedReq  // worker side: what this node signed, per job

	// crash, when set (tests), is called after each step of a release;
	// an error stops it there, as a crash would.
	crash func(step string) error
}

type checkedJob struct {
	terms  Terms
	escrow *chain.Escrow
}

type signedReq struct {
	tag       string
	payouts   []chain.Payout
	blockhash solana.Hash
}

// NewService answers signature requests on h with approve as the node's
// say, and moves escrows through c and journal. It does no network I/O.
func NewService(h Host, key *identity.Key, c *chain.Client, journal *chain.Journal, approve Approver, log *slog.Logger) (*Service, error) {
	if h == nil || key == nil || c == nil || journal == nil || approve == nil {
		return nil, errors.New("escrow: NewService needs a host, a key, a chain client, a journal and an approver")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		h: h, key: key, c: c, j: journal, approve: approve,
		self: solana.PublicKeyFromBytes(key.PublicKey()), priv: solana.PrivateKey(key.PrivateKey()),
		log: log.With("component", "escrow"), now: time.Now, ctx: ctx, cancel: cancel,
		checked: map[string]checkedJob{}, signed: map[string]signedReq{},
	}
	h.SetStreamHandler(Protocol, s.handle)
	return s, nil
}

// Close stops answering requests and waits for those being answered. It
// is safe to call twice.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.h.RemoveStreamHandler(Protocol)
	s.cancel()
	s.wg.Wait()
	return nil
}

// Open locks amount for jobID under a multisig of this node (the
// submitter) and workers, quorum of whom must agree: Threshold's choice.
// It is idempotent per job (chain.OpenEscrow).
func (s *Service) Open(ctx context.Context, jobID string, workers []solana.PublicKey, quorum int, amount uint64) (*chain.Escrow, error) {
	_, m, err := Threshold(len(workers), quorum)
	if err != nil {
		return nil, fmt.Errorf("escrow for job %s: %w", jobID, err)
	}
	signers := append([]solana.PublicKey{s.self}, workers...)
	e, _, err := s.c.OpenEscrow(ctx, jobID, signers, m, amount)
	return e, err
}

// Check is CheckEscrow for this node; an escrow that passes is remembered,
// so that this node answers signature requests for the job. After a
// restart the node checks its running jobs again before they settle.
func (s *Service) Check(ctx context.Context, t Terms) (*chain.Escrow, error) {
	e, err := CheckEscrow(ctx, s.c, t, s.self)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.checked[t.JobID] = checkedJob{terms: t, escrow: e}
	s.mu.Unlock()
	return e, nil
}

// Forget drops what the node remembers of a job once it is settled.
func (s *Service) Forget(jobID string) {
	s.mu.Lock()
	delete(s.checked, jobID)
	delete(s.signed, jobID)
	s.mu.Unlock()
}

// Release pays payouts out of the escrow this node opened for jobID (or,
// as one of its workers, checked: see escrowOf), with
// the memo vft:1:<jobID>:<resultCID>, approved by approvers (the agreeing
// workers; this node signs as well when it is a signer): it asks each over
// libp2p, records the signed transaction in the journal, sends it and
// waits. It is idempotent: a release already recorded is finished, not
// replaced, and another one for the job is chain.ErrConflict once one
// landed. A refusal wraps ErrRefused and names the signer and its reason.
func (s *Service) Release(ctx context.Context, jobID, resultCID string, payouts []chain.Payout, approvers []solana.PublicKey) (*chain.EscrowRelease, error) {
	if resultCID == "" || resultCID == KindRefund {
		return nil, fmt.Errorf("escrow: release of %s: result CID %q", jobID, resultCID)
	}
	return s.move(ctx, jobID, KindRelease, resultCID, payouts, approvers)
}

// Refund pays what the escrow of jobID holds back to this node, approved
// by approvers (workers that agree the job failed or never ran), with the
// memo vft:1:<jobID>:refund. Like Release it is journaled and idempotent.
func (s *Service) Refund(ctx context.Context, jobID string, approvers []solana.PublicKey) (*chain.EscrowRelease, error) {
	if rec, err := s.j.GetRelease(ctx, jobID); err == nil && rec.Tag == KindRefund {
		return s.move(ctx, jobID, KindRefund, "", rec.Payouts, approvers)
	}
	e, err := s.escrowOf(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if e.Amount == 0 {
		return nil, fmt.Errorf("escrow: refund of %s: the escrow %s holds nothing", jobID, e.Account)
	}
	return s.move(ctx, jobID, KindRefund, "", []chain.Payout{{Recipient: s.self, Amount: e.Amount}}, approvers)
}

// Reconcile finishes, after a restart, the releases and refunds a crash
// left pending: the recorded bytes are sent again while they can land, and
// those whose blockhash expired are approved again by the same signers.
func (s *Service) Reconcile(ctx context.Context) error {
	expired, err := s.j.ReconcileReleases(ctx)
	errs := []error{err}
	for _, rec := range expired {
		kind, result := KindRelease, rec.Tag
		if rec.Tag == KindRefund {
			kind, result = KindRefund, ""
		}
		if _, err := s.move(ctx, rec.JobID, kind, result, rec.Payouts, rec.Approvers); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// move drives one job's escrow release or refund to the end. A recorded
// one that may still land is finished first; only once it expired are new
// approvals collected, so two different transactions never compete.
func (s *Service) move(ctx context.Context, jobID, kind, result string, payouts []chain.Payout, approvers []solana.PublicKey) (*chain.EscrowRelease, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	tag := result
	if kind == KindRefund {
		tag = KindRefund
	}
	for attempt := 1; ; attempt++ {
		rec, err := s.j.GetRelease(ctx, jobID)
		switch {
		case errors.Is(err, datastore.ErrNotFound):
		case err != nil:
			return nil, err
		case rec.State == chain.StatePending:
			if rec, err = s.j.FinishRelease(ctx, jobID); err != nil && !errors.Is(err, chain.ErrExpired) {
				return rec, err
			}
			if rec.State == chain.StateDone {
				continue // compared with this request below
			}
		case rec.State == chain.StateDone:
			if rec.Tag != tag || !samePayouts(rec.Payouts, payouts) {
				return rec, fmt.Errorf("escrow: %s of %s: %w (already moved by %s with memo tag %q)", kind, jobID, chain.ErrConflict, rec.Tx.Signature, rec.Tag)
			}
			return rec, nil
		}
		if attempt > maxAttempts {
			return rec, fmt.Errorf("escrow: %s of %s: approvals collected %d times, each expired before it landed", kind, jobID, maxAttempts)
		}
		e, err := s.escrowOf(ctx, jobID)
		if err != nil {
			return nil, err
		}
		r, err := s.collect(ctx, e, kind, result, payouts, approvers)
		if err != nil {
			return nil, err
		}
		if _, err := s.j.RecordRelease(ctx, e, tag, payouts, r); err != nil {
			return nil, err
		}
		if err := s.step("intent"); err != nil {
			return nil, err
		}
		rec, err = s.j.FinishRelease(ctx, jobID)
		if !errors.Is(err, chain.ErrExpired) {
			return rec, err
		}
		s.log.Warn("escrow transaction expired before it landed; collecting approvals again", "job", jobID, "kind", kind, "attempt", attempt)
	}
}

// escrowOf reads the escrow of jobID: the one this node checked as a
// worker of the job (a worker moves it when the submitter went silent), or
// else the one it opened as the submitter.
func (s *Service) escrowOf(ctx context.Context, jobID string) (*chain.Escrow, error) {
	payer, mint := s.c.FeePayer(), s.c.Mint()
	s.mu.Lock()
	if j, ok := s.checked[jobID]; ok {
		payer, mint = j.terms.payer(), j.escrow.Mint
	}
	s.mu.Unlock()
	e, err := s.c.GetEscrow(ctx, jobID, payer, mint)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return e, nil
}

// Emptied tells whether the escrow of jobID, which this node checked as a
// worker, holds nothing any more, and whether this node signed a release
// of resultCID for it (so that release, or one like it, paid it).
func (s *Service) Emptied(ctx context.Context, jobID, resultCID string) (emptied, coSigned bool, err error) {
	s.mu.Lock()
	signed, ok := s.signed[jobID]
	_, checked := s.checked[jobID]
	s.mu.Unlock()
	if !checked {
		return false, false, fmt.Errorf("escrow: this node has not checked an escrow for job %s", jobID)
	}
	e, err := s.escrowOf(ctx, jobID)
	if err != nil {
		return false, false, err
	}
	return e.Amount == 0, ok && signed.tag == resultCID, nil
}

// samePayouts compares what two payout lists pay each recipient.
func samePayouts(a, b []chain.Payout) bool {
	ta, tb := totals(a), totals(b)
	return maps.Equal(ta, tb)
}

func totals(ps []chain.Payout) map[solana.PublicKey]uint64 {
	out := map[solana.PublicKey]uint64{}
	for _, p := range ps {
		out[p.Recipient] += p.Amount
	}
	return out
}

func (s *Service) alive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *Service) step(name string) error {
	if s.crash == nil {
		return nil
	}
	return s.crash(name)
}
