package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gagliardetto/solana-go"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/config"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// How a worker looks for the payment of a job it finished: the submitter
// pays after the verdict, so the first look comes soon, then less often,
// and the search ends a day past the job's deadline (a submitter that has
// not paid by then is not going to).
const (
	earningsFirstWait = 2 * time.Second
	earningsMaxWait   = time.Minute
	earningsGiveUp    = 24 * time.Hour
	// earningsScan is how many of the wallet's newest transactions one
	// look reads: a busy miner is paid many times a minute, and one look
	// must stay one bounded request however the RPC server answers.
	earningsScan = 200
)

// noteNoPayment starts the history note of a job whose payment was never
// found; a restarted node does not look again for such a job.
const noteNoPayment = "no payment found on chain"

// earnings records on this worker's done jobs what it was paid: it finds
// the settlement or escrow release carrying the job's memo among its
// wallet's transactions and adds it to the record's payouts.
type earnings struct {
	book   *job.Book
	client *chain.Client
	wallet solana.PublicKey // where payouts to this node's peer ID go
	self   string           // this node's peer ID
	log    *slog.Logger
	now    func() time.Time

	kick chan string // jobs that just reached done

	mu      sync.Mutex
	pending map[string]*lookup
}

// lookup is one job's search: when to look next and when to give up.
type lookup struct {
	next, giveUp time.Time
	wait         time.Duration
}

// startEarnings watches this worker's done jobs for their payments. It runs
// only with chain.settle on (the chain client is the settlement's).
func (n *Node) startEarnings() {
	if n.settle == nil || n.cfg.Node.Mode == config.ModeLight {
		return
	}
	wallet, err := solana.PublicKeyFromBase58(n.key.WalletAddress())
	if err != nil {
		n.log.Warn("earnings not tracked: this node's wallet address does not parse", "err", err)
		return
	}
	e := &earnings{book: n.jobs, client: n.settle.client, wallet: wallet, self: n.key.PeerID().String(),
		log: n.log.With("component", "earnings"), now: time.Now, kick: make(chan string, 256), pending: map[string]*lookup{}}
	n.jobs.Watch(e.onJob)
	n.stops = append(n.stops, background(e.run))
}

// onJob is the book's watcher: a worker job that reached done without
// its payment on record is looked up. It never blocks: if the queue is
// full the job waits for the next restart's scan.
func (e *earnings) onJob(rec job.Record) {
	if !e.wanted(rec) {
		return
	}
	select {
	case e.kick <- rec.ID:
	default:
		e.log.Warn("too many jobs awaiting their payment lookup; this one is looked up after a restart", "job", rec.ID)
	}
}

// wanted: a done worker job with no payout to this node and no search
// given up.
func (e *earnings) wanted(rec job.Record) bool {
	if rec.Role != job.RoleWorker || rec.State != job.StateDone || rec.Result == "" {
		return false
	}
	for _, p := range rec.Payouts {
		if p.Recipient == e.wallet.String() && !p.Returned {
			return false
		}
	}
	for _, h := range rec.History {
		if strings.HasPrefix(h.Note, noteNoPayment) {
			return false
		}
	}
	return true
}

func (e *earnings) run(ctx context.Context) {
	// Resume what a restart interrupted.
	if all, err := e.book.List(ctx); err == nil {
		for _, rec := range all {
			if e.wanted(rec) {
				e.add(rec)
			}
		}
	} else if ctx.Err() == nil {
		e.log.Warn("cannot list jobs to resume payment lookups", "err", err)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-e.kick:
			if rec, err := e.book.Get(ctx, id); err == nil && e.wanted(rec) {
				e.add(rec)
			}
		case <-timer.C:
		}
		e.lookDue(ctx)
		timer.Reset(e.untilNext())
	}
}

// add starts a job's search, unless it is already under way.
func (e *earnings) add(rec job.Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pending[rec.ID]; ok {
		return
	}
	giveUp := e.now().Add(earningsGiveUp)
	if o, err := job.RecordedOffer(rec.Offer); err == nil {
		giveUp = time.UnixMilli(o.Spec.Deadline).Add(earningsGiveUp)
	}
	e.pending[rec.ID] = &lookup{next: e.now(), giveUp: giveUp, wait: earningsFirstWait}
}

func (e *earnings) untilNext() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := earningsMaxWait
	for _, l := range e.pending {
		next = min(next, max(0, l.next.Sub(e.now())))
	}
	return next
}

// lookDue looks up every job whose time has come.
func (e *earnings) lookDue(ctx context.Context) {
	e.mu.Lock()
	var due []string
	for id, l := range e.pending {
		if !e.now().Before(l.next) {
			due = append(due, id)
		}
	}
	e.mu.Unlock()
	for _, id := range due {
		if ctx.Err() != nil {
			return
		}
		done := e.look(ctx, id)
		e.mu.Lock()
		if l := e.pending[id]; done {
			delete(e.pending, id)
		} else if l != nil {
			l.next = e.now().Add(l.wait)
			l.wait = min(2*l.wait, earningsMaxWait)
		}
		e.mu.Unlock()
	}
}

// look searches the chain once for a job's payment; done is true when the
// search is over (found, given up, or the job is gone).
func (e *earnings) look(ctx context.Context, id string) (done bool) {
	rec, err := e.book.Get(ctx, id)
	if err != nil || !e.wanted(rec) {
		return true
	}
	o, err := job.RecordedOffer(rec.Offer)
	if err != nil {
		return true
	}
	var mint solana.PublicKey
	if o.Spec.Mint != "" {
		if mint, err = solana.PublicKeyFromBase58(o.Spec.Mint); err != nil {
			return true
		}
	}
	got, err := e.client.FindPayment(ctx, e.wallet, mint, rec.ID, rec.Result, earningsScan)
	if err == nil {
		return e.record(ctx, rec, o, got)
	}
	if !errors.Is(err, chain.ErrNoPayment) {
		e.log.Debug("payment lookup failed; trying again", "job", id, "err", err)
	}
	e.mu.Lock()
	l := e.pending[id]
	expired := l != nil && e.now().After(l.giveUp)
	e.mu.Unlock()
	if !expired {
		return false
	}
	note := fmt.Sprintf("%s for wallet %s by %s (a day past the deadline): %v", noteNoPayment, e.wallet, e.now().UTC().Format(time.DateTime), err)
	if _, err := e.book.Update(ctx, id, func(r *job.Record) {
		r.History = append(r.History, job.Change{State: r.State, At: e.now(), Note: note})
	}); err != nil {
		e.log.Warn("record the end of a payment lookup", "job", id, "err", err)
	}
	e.log.Warn("gave up looking for a job's payment", "job", id, "wallet", e.wallet)
	return true
}

// record adds the payment found to the job.
func (e *earnings) record(ctx context.Context, rec job.Record, o job.Offer, got chain.Received) bool {
	cur := units.SOL
	if o.Spec.Mint != "" {
		cur = currencyOf(ctx, e.client, o.Spec.Mint)
	}
	note := fmt.Sprintf("paid %s by tx %s", cur.Format(got.Amount), got.Signature)
	_, err := e.book.Update(ctx, rec.ID, func(r *job.Record) {
		r.Payouts = append(r.Payouts, job.Payout{Recipient: e.wallet.String(), Worker: e.self, Amount: got.Amount,
			Signature: got.Signature.String(), State: "confirmed"}) // found landed at the configured commitment
		r.History = append(r.History, job.Change{State: r.State, At: e.now(), Note: note})
	})
	if err != nil {
		e.log.Warn("record a job's payment", "job", rec.ID, "err", err)
		return false
	}
	e.log.Info("job paid", "job", rec.ID, "amount", got.Amount, "tx", got.Signature)
	return true
}

// currencyOf is how amounts of mint read; a mint whose decimals cannot be
// read now reads in base units.
func currencyOf(ctx context.Context, c *chain.Client, mint string) units.Currency {
	pk, err := solana.PublicKeyFromBase58(mint)
	if err != nil {
		return units.Token(mint, 0)
	}
	d, err := c.MintDecimals(ctx, pk)
	if err != nil {
		return units.Currency{Mint: mint, Unit: "base units of " + units.ShortMint(mint)}
	}
	return units.Token(mint, d)
}
