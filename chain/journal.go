package chain

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
)

// State is where a settlement or one of its transactions stands.
type State string

const (
	// StatePending: written, maybe sent, not yet known to have landed.
	StatePending State = "pending"
	// StateDone: landed successfully at the configured commitment.
	StateDone State = "done"
	// StateFailed: rejected by the chain; nothing of it was paid.
	StateFailed State = "failed"
)

var (
	// ErrSettlementFailed is returned when a settlement's transaction was rejected.
	ErrSettlementFailed = errors.New("chain: settlement failed")
	// ErrConflict is returned when a job is settled again with other payouts.
	ErrConflict = errors.New("chain: job already settled with other payouts")
)

// journalPrefix is where settlements live in the datastore.
var journalPrefix = datastore.NewKey("/chain/settlements")

// Settlement is the journal's record of paying one job.
type Settlement struct {
	JobID     string     `json:"job_id"`
	ResultCID string     `json:"result_cid"`
	Mint      string     `json:"mint,omitempty"` // empty: SOL
	Payouts   []Payout   `json:"payouts"`        // normalized: one per recipient
	Txs       []TxRecord `json:"txs"`
	State     State      `json:"state"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
}

// TxRecord is one transaction of a settlement: its payouts and the exact
// signed bytes, so a resend after a crash is the same transaction.
type TxRecord struct {
	Payouts              []Payout         `json:"payouts"`
	Raw                  []byte           `json:"raw"`
	Signature            solana.Signature `json:"signature"`
	LastValidBlockHeight uint64           `json:"last_valid_block_height"`
	// Superseded are earlier signatures of this transaction: ones whose
	// blockhash expired while they were not on chain, and failed ones that
	// Retry replaced. A zero Signature (after Retry) is signed anew once
	// LastValidBlockHeight has passed.
	Superseded []solana.Signature `json:"superseded,omitempty"`
	State      State              `json:"state"`
	Slot       uint64             `json:"slot,omitempty"`
	Err        string             `json:"err,omitempty"`
}

// Signatures are the settlement's transactions' current signatures.
func (s *Settlement) Signatures() []solana.Signature {
	out := make([]solana.Signature, len(s.Txs))
	for i, tx := range s.Txs {
		out[i] = tx.Signature
	}
	return out
}

// Journal settles jobs crash-safely: every transaction is recorded, signed,
// before it is sent, and after a restart Reconcile finishes what was
// pending. It has no goroutines of its own.
type Journal struct {
	store datastore.Batching
	c     *Client
	log   *slog.Logger

	mu    sync.Mutex
	locks map[string]*jobLock

	// crash, when set (tests), is called after each step; an error stops
	// Settle there, as a crash would.
	crash func(step string) error
}

type jobLock struct {
	mu   sync.Mutex
	refs int
}

// NewJournal keeps its records in store and pays through c.
func NewJournal(store datastore.Batching, c *Client, log *slog.Logger) *Journal {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Journal{store: store, c: c, log: log.With("component", "chain/journal"), locks: map[string]*jobLock{}}
}

// Settle pays payouts for a job, with the memo vft:1:<jobID>:<resultCID> in
// every transaction, and returns the record with the signatures. It is
// idempotent by job ID: a job already settled returns its record (an error
// wrapping ErrSettlementFailed if it failed) and pays nothing; a pending one
// is driven to the end; other payouts for a known job are ErrConflict.
// Insufficient funds are reported before anything is written or sent.
func (j *Journal) Settle(ctx context.Context, jobID, resultCID string, payouts []Payout) (*Settlement, error) {
	if jobID == "" {
		return nil, errors.New("chain: settle: empty job ID")
	}
	norm, err := normalize(payouts)
	if err != nil {
		return nil, fmt.Errorf("settle %s: %w", jobID, err)
	}
	unlock := j.lock(jobID)
	defer unlock()

	rec, err := j.Get(ctx, jobID)
	switch {
	case err == nil:
		if rec.ResultCID != resultCID || !slices.Equal(rec.Payouts, norm) {
			return rec, fmt.Errorf("settle %s: %w", jobID, ErrConflict)
		}
		return j.finish(ctx, rec)
	case !errors.Is(err, datastore.ErrNotFound):
		return nil, err
	}

	batches, txs, err := j.c.prepare(ctx, Memo(jobID, resultCID), norm)
	if err != nil {
		return nil, fmt.Errorf("settle %s: %w", jobID, err)
	}
	now := time.Now().UTC()
	rec = &Settlement{JobID: jobID, ResultCID: resultCID, Payouts: norm, State: StatePending, Created: now}
	if !j.c.mint.IsZero() {
		rec.Mint = j.c.mint.String()
	}
	for i, b := range batches {
		rec.Txs = append(rec.Txs, TxRecord{
			Payouts: b.payouts, Raw: txs[i].raw, Signature: txs[i].sig,
			LastValidBlockHeight: txs[i].lastValid, State: StatePending,
		})
	}
	if err := j.put(ctx, rec); err != nil {
		return nil, fmt.Errorf("settle %s: record intent: %w", jobID, err)
	}
	j.log.Info("settlement recorded", "job", jobID, "payouts", len(norm), "transactions", len(rec.Txs))
	if err := j.step("intent"); err != nil {
		return rec, err
	}
	for i := range rec.Txs {
		if err := j.c.send(ctx, signed{raw: rec.Txs[i].Raw, sig: rec.Txs[i].Signature}); err != nil {
			var te *TxError
			if !errors.As(err, &te) {
				// The server did not answer: stays pending for Reconcile.
				return rec, fmt.Errorf("settle %s: %w", jobID, err)
			}
			// An answer (rejected in preflight, or a blockhash this RPC
			// node has not seen yet): drive finds out and records it.
		}
	}
	if err := j.step("send"); err != nil {
		return rec, err
	}
	return j.finish(ctx, rec)
}

// Reconcile drives every pending settlement to done or failed: a
// transaction on chain is recorded; one not on chain whose blockhash is
// still valid is resent as the same bytes; one whose blockhash expired is
// re-signed, recorded, then sent. Call it at start-up.
func (j *Journal) Reconcile(ctx context.Context) error {
	pending, err := j.Pending(ctx)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		j.log.Info("reconciling pending settlements", "count", len(pending))
	}
	var errs []error
	for _, rec := range pending {
		unlock := j.lock(rec.JobID)
		// Re-read under the lock: a concurrent Settle may have finished it.
		cur, err := j.Get(ctx, rec.JobID)
		if err == nil {
			_, err = j.finish(ctx, cur)
		}
		unlock()
		if errors.Is(err, ErrUnreachable) {
			// The rest would wait on the same server: leave them pending.
			return errors.Join(append(errs, err)...)
		}
		if err != nil && !errors.Is(err, ErrSettlementFailed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Get returns the journal's record of a job; datastore.ErrNotFound if none.
func (j *Journal) Get(ctx context.Context, jobID string) (*Settlement, error) {
	data, err := j.store.Get(ctx, jobKey(jobID))
	if err != nil {
		if errors.Is(err, datastore.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("journal: read %s: %w", jobID, err)
	}
	var rec Settlement
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("journal: record of %s is corrupt: %w", jobID, err)
	}
	return &rec, nil
}

// Pending lists the settlements not yet done or failed.
func (j *Journal) Pending(ctx context.Context) ([]*Settlement, error) {
	res, err := j.store.Query(ctx, query.Query{Prefix: journalPrefix.String()})
	if err != nil {
		return nil, fmt.Errorf("journal: list: %w", err)
	}
	defer res.Close()
	var out []*Settlement
	for r := range res.Next() {
		if r.Error != nil {
			return nil, fmt.Errorf("journal: list: %w", r.Error)
		}
		var rec Settlement
		if err := json.Unmarshal(r.Value, &rec); err != nil {
			return nil, fmt.Errorf("journal: record %s is corrupt: %w", r.Key, err)
		}
		if rec.State == StatePending {
			out = append(out, &rec)
		}
	}
	return out, nil
}

// finish drives a record's pending transactions and returns its final form.
func (j *Journal) finish(ctx context.Context, rec *Settlement) (*Settlement, error) {
	for i := range rec.Txs {
		tx := &rec.Txs[i]
		save := func(ctx context.Context) error { return j.put(ctx, rec) }
		renew := func(ctx context.Context) error { return j.resign(ctx, rec, tx) }
		if err := j.drive(ctx, tx, save, renew); err != nil {
			return rec, fmt.Errorf("settle %s: %w", rec.JobID, err)
		}
		if err := j.step("done"); err != nil {
			return rec, err
		}
	}
	if rec.State == StatePending {
		rec.State = StateDone
		for _, tx := range rec.Txs {
			if tx.State == StateFailed {
				rec.State = StateFailed
			}
		}
		if err := j.put(ctx, rec); err != nil {
			return rec, fmt.Errorf("settle %s: %w", rec.JobID, err)
		}
		j.log.Info("settlement finished", "job", rec.JobID, "state", rec.State, "transactions", len(rec.Txs))
	}
	if rec.State == StateFailed {
		for _, tx := range rec.Txs {
			if tx.State == StateFailed {
				return rec, fmt.Errorf("settle %s: %w: transaction %s: %s", rec.JobID, ErrSettlementFailed, tx.Signature, tx.Err)
			}
		}
	}
	return rec, nil
}

// A pending transaction not yet on chain has its blockhash checked every
// expiryEvery polls and, while valid, is resent every resendEvery polls
// (a multiple, so a resend always follows a fresh expiry check).
const (
	expiryEvery = 4
	resendEvery = 20
)

// drive brings one pending transaction to done or failed, recording each
// change with save. Once its blockhash has expired with none of its
// signatures on chain, renew replaces it (re-signs and records it, or
// marks it for new approvals by leaving it not pending), so a new
// transaction is never made while an older signature of it could still land.
func (j *Journal) drive(ctx context.Context, tx *TxRecord, save, renew func(context.Context) error) error {
	var sub *subscription
	var subSig solana.Signature
	defer func() { sub.close() }()
	for n := 0; tx.State == StatePending; n++ {
		sigs := tx.Superseded
		if !tx.Signature.IsZero() {
			sigs = slices.Concat([]solana.Signature{tx.Signature}, tx.Superseded)
		}
		o, err := j.lookup(ctx, tx, sigs)
		if err != nil {
			return err
		}
		switch {
		case o.success >= 0:
			tx.Signature, tx.Slot, tx.State, tx.Err = sigs[o.success], o.slot, StateDone, ""
			return save(ctx)
		case o.failed != nil:
			tx.Slot, tx.State, tx.Err = o.slot, StateFailed, j.c.txError(ctx, tx.Signature, o.failed).Error()
			return save(ctx)
		case o.inFlight:
			// On chain, not yet at the commitment: wait.
		default:
			if n%expiryEvery == 0 {
				expired, err := j.c.expired(ctx, tx.LastValidBlockHeight)
				if err != nil {
					return err
				}
				if expired {
					// It may have landed just before the expiry: look again,
					// now that it no longer can.
					if o, err := j.lookup(ctx, tx, sigs); err != nil {
						return err
					} else if o.success >= 0 || o.failed != nil || o.inFlight {
						continue
					}
					if err := renew(ctx); err != nil {
						return err
					}
					n = -1 // send at once
					continue
				}
			}
			if n%resendEvery == 0 && !tx.Signature.IsZero() {
				err := j.c.send(ctx, signed{raw: tx.Raw, sig: tx.Signature})
				var te *TxError
				if errors.As(err, &te) && !blockhashNotFound(err) {
					// Rejected by preflight, so not forwarded: record it.
					tx.State, tx.Err = StateFailed, te.Error()
					return save(ctx)
				}
				if err != nil && !blockhashNotFound(err) {
					return err
				}
			}
		}
		if subSig != tx.Signature && !tx.Signature.IsZero() {
			// Subscribed only once a wait is needed: most transactions
			// are found at the first look.
			sub.close()
			sub, subSig = j.c.subscribe(ctx, tx.Signature), tx.Signature
		}
		if err := j.c.await(ctx, sub, j.c.poll); err != nil {
			return fmt.Errorf("wait for %s: %w", tx.Signature, err)
		}
	}
	return nil
}

// outcome is what the chain says about a transaction's signatures.
type outcome struct {
	success  int    // index of a signature that landed without error, or -1
	slot     uint64 // of the success or of the current signature's failure
	failed   any    // the chain's error for the current signature
	inFlight bool   // some signature landed but is below the commitment
}

// lookup classifies the statuses of sigs (the current signature first, if
// any). An earlier signature that failed on chain is ignored: a failed
// transaction moves no funds, and Retry superseded it.
func (j *Journal) lookup(ctx context.Context, tx *TxRecord, sigs []solana.Signature) (outcome, error) {
	o := outcome{success: -1}
	if len(sigs) == 0 {
		return o, nil
	}
	sts, err := j.c.statuses(ctx, sigs)
	if err != nil {
		return o, err
	}
	for k, st := range sts {
		switch {
		case st == nil:
		case !reached(st.ConfirmationStatus, j.c.cfg.commitment()):
			o.inFlight = true
		case st.Err == nil:
			o.success, o.slot = k, st.Slot
			return o, nil
		case sigs[k] == tx.Signature:
			o.failed, o.slot = st.Err, st.Slot
		}
	}
	return o, nil
}

// resign gives an expired transaction a new blockhash and signature and
// records it before it is sent, like the first one.
func (j *Journal) resign(ctx context.Context, rec *Settlement, tx *TxRecord) error {
	s, err := j.c.resign(ctx, tx.Raw)
	if err != nil {
		return err
	}
	j.log.Warn("blockhash expired before the transaction landed; re-signed", "job", rec.JobID, "old", tx.Signature, "new", s.sig)
	if !tx.Signature.IsZero() {
		tx.Superseded = append(tx.Superseded, tx.Signature)
	}
	tx.Raw, tx.Signature, tx.LastValidBlockHeight = s.raw, s.sig, s.lastValid
	return j.put(ctx, rec)
}

// Retry tries a failed settlement again, for example after the wallet
// was funded or a frozen account thawed. Only its failed transactions are
// paid; each is re-signed once its old blockhash has expired, so that the
// rejected bytes can never land as well. A settlement that is not failed
// is returned as it is.
func (j *Journal) Retry(ctx context.Context, jobID string) (*Settlement, error) {
	unlock := j.lock(jobID)
	defer unlock()
	rec, err := j.Get(ctx, jobID)
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", jobID, err)
	}
	if rec.State != StateFailed {
		return j.finish(ctx, rec)
	}
	for i := range rec.Txs {
		if tx := &rec.Txs[i]; tx.State == StateFailed {
			tx.Superseded = append(tx.Superseded, tx.Signature)
			tx.Signature, tx.State, tx.Err, tx.Slot = solana.Signature{}, StatePending, "", 0
		}
	}
	rec.State = StatePending
	if err := j.put(ctx, rec); err != nil {
		return nil, fmt.Errorf("retry %s: %w", jobID, err)
	}
	j.log.Info("retrying failed settlement", "job", jobID)
	return j.finish(ctx, rec)
}

func (j *Journal) put(ctx context.Context, rec *Settlement) error {
	rec.Updated = time.Now().UTC()
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("journal: encode %s: %w", rec.JobID, err)
	}
	key := jobKey(rec.JobID)
	if err := j.store.Put(ctx, key, data); err != nil {
		return fmt.Errorf("journal: write %s: %w", rec.JobID, err)
	}
	// The record must be on disk before the transaction it describes is sent.
	if err := j.store.Sync(ctx, key); err != nil {
		return fmt.Errorf("journal: sync %s: %w", rec.JobID, err)
	}
	return nil
}

// CrashSteps are the points OnStep is called at: after the intent is on
// disk, after the transactions were sent, after one is recorded done.
var CrashSteps = []string{"intent", "send", "done"}

// OnStep sets a hook called after each step of a settlement (CrashSteps);
// an error stops it there, as a crash would. The daemon's
// VFT_DEBUG_CRASH_AT uses it to exit at a step, for crash-recovery tests.
func (j *Journal) OnStep(fn func(step string) error) { j.crash = fn }

func (j *Journal) step(name string) error {
	if j.crash == nil {
		return nil
	}
	return j.crash(name)
}

func (j *Journal) lock(jobID string) (unlock func()) {
	j.mu.Lock()
	l := j.locks[jobID]
	if l == nil {
		l = &jobLock{}
		j.locks[jobID] = l
	}
	l.refs++
	j.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		j.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(j.locks, jobID)
		}
		j.mu.Unlock()
	}
}

// jobKey escapes the job ID, which may hold any characters, into one key segment.
func jobKey(jobID string) datastore.Key {
	return journalPrefix.ChildString(base64.RawURLEncoding.EncodeToString([]byte(jobID)))
}
