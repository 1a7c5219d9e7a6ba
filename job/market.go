package job

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// Gossip is the offers topic as the market uses it.
type Gossip interface {
	Publish(ctx context.Context, data []byte) error
	Next(ctx context.Context) (from peer.ID, data []byte, err error)
}

// MarketOptions are the market's hooks into the rest of the node.
type MarketOptions struct {
	// Capacity is what this node can offer a job now (workers only).
	Capacity func(ctx context.Context) Capacity
	// Policy is this node's [market] terms.
	Policy Policy
	// Works is true on miners and edge nodes: they bid on offers.
	Works bool
	// Reputation is this node's view of a peer, 0..1.
	Reputation func(peer.ID) float64
	// Known lists the nodes from the heartbeat table, to say why a job
	// waits for workers.
	Known func() []KnownNode
	// KnownSettled is true once the heartbeat table has had time to hear
	// from every miner (a few heartbeat intervals after the node started):
	// only then does the market refuse a job that needs more workers than
	// the miners it knows.
	KnownSettled func() bool
	// BidWindow is how long a submitter collects bids before choosing.
	BidWindow time.Duration
	// ReportGrace is how long past a job's timeout a worker may take to
	// report (fetching inputs, importing output) before it is replaced.
	ReportGrace time.Duration
	// OnAssigned is called on a worker when it is assigned a job; it must
	// take the job's slot before it returns (the market checks the free
	// capacity and calls it under one lock).
	OnAssigned func(Record)
	// OnCancelled is called on a worker when the submitter cancels a job.
	OnCancelled func(id string)
	// Matcher compares results for the tolerance and custom modes (nil
	// for exact: equal CIDs agree).
	Matcher func(verify.Policy) (verify.Matcher, error)
	// OnVerdict receives every checked verdict, this node's own included,
	// for the reputation table.
	OnVerdict func(CheckedVerdict)
	// Penalize counts a protocol violation against a peer.
	Penalize func(p peer.ID, reason string)
	// CheckFunds refuses a job its submitter cannot pay, before it is offered.
	CheckFunds func(ctx context.Context, spec Spec) error
	// Settle pays an accepted job's agreeing workers; nil accepts jobs
	// without paying (a network with settlement turned off).
	Settle func(ctx context.Context, rec Record) ([]Payout, error)
	// OpenEscrow locks an escrowed job's reward for its assigned workers
	// and returns the escrow's address; Refund asks the workers to return
	// what a failed job's escrow holds.
	OpenEscrow func(ctx context.Context, rec Record) (string, error)
	Refund     func(ctx context.Context, rec Record) error
}

// KnownNode is a node seen in heartbeats with its capacity and terms.
type KnownNode struct {
	Peer     peer.ID
	Capacity Capacity
	Policy   Policy
}

// maxSeenOffers bounds the memory a worker spends remembering offers.
const maxSeenOffers = 100_000

// Limits on what other peers can make this node spend. Each is far above
// what an honest network needs and low enough that a flood costs a
// bounded amount of memory and CPU.
const (
	// maxBidsPerJob caps the bids a submitter keeps for one open job: the
	// choice needs a handful, and a Sybil crowd must not grow the slice
	// without end.
	maxBidsPerJob = 256
	// maxOpenBids caps the bids a worker remembers, waiting for their
	// assignment.
	maxOpenBids = 4096
	// bidders is how many offers are worked on at once (each checks the
	// capacity and opens a stream to the submitter); bidQueue holds the
	// rest.
	bidders = 4
)

// Market runs the offer → bid → assignment protocol for one node.
type Market struct {
	key     *identity.Key
	streams Streams
	book    *Book
	opts    MarketOptions
	log     *slog.Logger

	mu   sync.Mutex
	bids map[string][]Bid // submitter: bids per job ID
	// revealing holds the jobs whose reveal phase is running.
	revealing map[string]bool
	// assigning holds the workers whose assignment is in flight, per job:
	// a fast worker's commitment can arrive before its acceptance is
	// recorded.
	assigning map[string]map[peer.ID]bool
	verdicts  Gossip
	seen      map[string]struct{} // worker: offers already considered
	// openBids are this worker's bids waiting for an assignment.
	openBids *openBids
	// toBid queues considered offers for the bidders.
	toBid *bidQueue
	// maxBids caps the bids kept per open job (maxBidsPerJob).
	maxBids int
	// accepting serialises the check of free capacity and the reservation
	// of a slot, so that concurrent assignments cannot overbook.
	accepting sync.Mutex
	offers    Gossip
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closing   sync.Once

	// checkedVerdicts: each verdict is checked once (verifying.go).
	checkedVerdicts verdictCache
}

// now reads the book's clock (Book.Now), the one every decision reads.
func (m *Market) now() time.Time { return m.book.Now() }

// NewMarket builds the market; Start runs it.
func NewMarket(key *identity.Key, streams Streams, book *Book, opts MarketOptions, log *slog.Logger) *Market {
	if opts.BidWindow == 0 {
		opts.BidWindow = 2 * time.Second
	}
	if opts.ReportGrace == 0 {
		opts.ReportGrace = 2 * time.Minute
	}
	if opts.Reputation == nil {
		opts.Reputation = func(peer.ID) float64 { return 0.5 }
	}
	m := &Market{key: key, streams: streams, book: book, opts: opts, log: log.With("component", "market"),
		bids: map[string][]Bid{}, seen: map[string]struct{}{}, revealing: map[string]bool{}, assigning: map[string]map[peer.ID]bool{},
		openBids: newOpenBids(maxOpenBids), toBid: newBidQueue(), maxBids: maxBidsPerJob}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if book != nil {
		// A submitter that accepted this worker's result is a customer:
		// its offers go ahead of strangers' (bidQueue).
		book.Watch(func(r Record) {
			if r.Role == RoleWorker && r.State == StateDone {
				if o, err := RecordedOffer(r.Offer); err == nil {
					m.toBid.customer(o.Submitter)
				}
			}
		})
	}
	return m
}

// ValidateOffer is the GossipSub validator of the offers topic, which
// carries offers and cancels: an offer must be well-formed, validly signed
// by its author, and its spec valid; a cancel must be validly signed by its
// author (whether that author submitted the job is checked by each node
// that holds the offer).
func (m *Market) ValidateOffer(_ context.Context, from peer.ID, data []byte) error {
	kind, err := wire.KindOf(data)
	if err != nil {
		return err
	}
	switch kind {
	case KindOffer:
		o, err := OpenOffer(data, m.now())
		if err != nil {
			return err
		}
		if o.Submitter != from {
			return fmt.Errorf("offer signed by %s but published by %s", o.Submitter, from)
		}
		return nil
	case KindCancel:
		msg, err := wire.Open(data, KindCancel, cancelLimits, m.now())
		if err != nil {
			return err
		}
		if msg.Signer != from {
			return fmt.Errorf("cancel signed by %s but published by %s", msg.Signer, from)
		}
		return nil
	}
	return fmt.Errorf("%w: %q on the offers topic", wire.ErrWrongKind, kind)
}

// Cancel withdraws one of this node's jobs: it is recorded cancelled and a
// signed cancel is gossiped so its workers stop.
func (m *Market) Cancel(ctx context.Context, id, reason string) error {
	rec, err := m.book.Get(ctx, id)
	if err != nil {
		return err
	}
	if rec.Role != RoleSubmitter {
		return fmt.Errorf("job %s was submitted by another node: only its submitter can cancel it", id)
	}
	if rec.State.Terminal() {
		return fmt.Errorf("job %s is already %s", id, rec.State)
	}
	o, err := OpenOffer(rec.Offer, m.now())
	if err != nil {
		return err
	}
	raw, err := NewCancel(m.key, o.ID, reason, m.now())
	if err != nil {
		return err
	}
	note := reason
	if rec.State == StateSettling {
		// The result was accepted: cancelling now withdraws its workers'
		// pay, and says so. An escrow's workers refuse to refund an
		// accepted job; they release it themselves after the deadline.
		note = reason + "; the accepted result's workers are not paid by this node"
	}
	cancelled, err := m.book.Move(ctx, id, StateCancelled, note, func(r *Record) { r.Reason = "cancelled: " + note })
	if err != nil {
		return err
	}
	m.refund(cancelled)
	return m.offers.Publish(ctx, raw)
}

// cancelled handles a gossiped cancel: a worker of that job stops it.
func (m *Market) cancelled(data []byte) {
	kind, _ := wire.KindOf(data)
	if kind != KindCancel {
		return
	}
	var c Cancel
	msg, err := wire.Open(data, KindCancel, cancelLimits, m.now())
	if err != nil || wire.Unmarshal(msg.Body, &c) != nil {
		return
	}
	rec, err := m.book.Get(m.ctx, c.Job)
	if err != nil || rec.Role != RoleWorker || rec.State.Terminal() {
		return
	}
	// Not OpenOffer: a job that failed at its deadline is withdrawn
	// after it, and the record was checked when it was made.
	o, err := RecordedOffer(rec.Offer)
	if err != nil {
		return
	}
	if _, err := OpenCancel(data, o, m.now()); err != nil {
		m.log.Info("cancel refused", "job", c.Job, "err", err)
		return
	}
	if rec.State == StateVerifying && o.Spec.Escrow {
		// Committed to a result the escrow still owes for: the worker
		// keeps waiting for a verdict, and after the deadline the
		// workers release the escrow themselves (rescue.go).
		m.log.Info("cancel of a committed escrowed job; waiting for its verdict or deadline", "job", c.Job)
		return
	}
	if m.opts.OnCancelled != nil {
		m.opts.OnCancelled(c.Job)
	}
	m.book.Move(m.ctx, c.Job, StateCancelled, c.Reason, func(r *Record) { r.Reason = "cancelled by the submitter: " + c.Reason })
}

// Start handles offers and verdicts from gossip, and bids, assignments and
// commitments from streams.
func (m *Market) Start(offers, verdicts Gossip) {
	m.offers, m.verdicts = offers, verdicts
	m.streams.SetStreamHandler(ProtocolBid, m.handleBid)
	m.streams.SetStreamHandler(ProtocolCommit, m.handleCommit)
	m.streams.SetStreamHandler(ProtocolStarted, m.handleStarted)
	if m.opts.Works {
		m.streams.SetStreamHandler(ProtocolAssign, m.handleAssign)
		m.streams.SetStreamHandler(ProtocolVerdict, m.handleVerdict)
	}
	m.wg.Add(2)
	go m.readOffers()
	go m.readVerdicts()
	if m.opts.Works {
		for range bidders {
			m.wg.Add(1)
			go m.bidder()
		}
	}
}

// Close stops the market; safe to call twice.
func (m *Market) Close() error {
	m.closing.Do(func() {
		m.streams.RemoveStreamHandler(ProtocolBid)
		m.streams.RemoveStreamHandler(ProtocolCommit)
		m.streams.RemoveStreamHandler(ProtocolStarted)
		m.streams.RemoveStreamHandler(ProtocolAssign)
		m.streams.RemoveStreamHandler(ProtocolVerdict)
		m.cancel()
		m.wg.Wait()
	})
	return nil
}

// Submit signs and publishes an offer, records it, and in the background
// collects bids and assigns workers.
func (m *Market) Submit(ctx context.Context, spec Spec) (Offer, error) {
	offer, err := NewOffer(m.key, spec, m.now())
	if err != nil {
		return Offer{}, err
	}
	if err := m.checkServed(offer); err != nil {
		return Offer{}, err
	}
	if m.opts.CheckFunds != nil && spec.Reward > 0 {
		if err := m.opts.CheckFunds(ctx, spec); err != nil {
			return Offer{}, err
		}
	}
	if _, err := m.book.Create(ctx, offer.ID.String(), RoleSubmitter, offer.Raw, StateOffered); err != nil {
		return Offer{}, err
	}
	m.mu.Lock()
	m.bids[offer.ID.String()] = nil
	m.mu.Unlock()
	if err := m.offers.Publish(ctx, offer.Raw); err != nil {
		return Offer{}, err
	}
	m.wg.Add(1)
	go m.collect(offer)
	return offer, nil
}

// checkServed refuses, before it is offered, a job that needs more
// workers than the known miners that run its executor and are paid in its
// mint: it could only wait for its deadline.
func (m *Market) checkServed(o Offer) error {
	if m.opts.KnownSettled == nil || !m.opts.KnownSettled() {
		return nil // the table may not have heard from every miner yet
	}
	k := int(o.Spec.Verify.Workers)
	if o.Spec.Verify.Mode == VerifySpot {
		k = 1 // the verifier, if drawn, is a second worker
	}
	known := m.known()
	if serving := Serving(o, known); serving < k {
		return fmt.Errorf("%w: it needs %d workers, but only %d of the %d miners this node knows run %s jobs paid in %s: lower the redundancy (--redundancy %d), or wait for more miners and submit again",
			ErrTooFewMiners, k, serving, len(known), o.Spec.Executor, mintName(o.Spec.Mint), max(serving, 1))
	}
	return nil
}

// ErrTooFewMiners marks a job refused before it was offered because the
// known miners could never run it.
var ErrTooFewMiners = errors.New("too few miners for this job")

// collect waits for bids, re-gossiping the offer, until k workers are
// assigned; then it watches them, and a worker that has not reported by
// the job's timeout plus the report grace is replaced by a new bidder.
// It ends when every worker has reported, the job ends, or its deadline
// passes.
func (m *Market) collect(o Offer) {
	defer m.wg.Done()
	id := o.ID.String()
	defer func() {
		m.mu.Lock()
		delete(m.bids, id) // later bids for it are answered "not open"
		m.mu.Unlock()
	}()
	k := int(o.Spec.Verify.Workers)
	deadline := time.UnixMilli(o.Spec.Deadline)
	missed := map[peer.ID]bool{}
	var waiting waitingNote
	for {
		rec, err := m.book.Get(m.ctx, id)
		if err != nil || rec.State.Terminal() {
			return
		}
		if need := rec.needed(k) - len(rec.Workers); need > 0 {
			taken := func(w peer.ID) bool { return missed[w] || slices.Contains(rec.Workers, w) }
			bids, open := m.awaitBids(id, 2*need, taken)
			if !open {
				return // the market is closing
			}
			if chosen := m.choose(o, bids, need); len(chosen) == need {
				waiting.current = "" // assignment clears Record.Waiting
				m.assign(o, chosen)
				if o.Spec.Escrow && !m.fundEscrow(o) {
					return
				}
				continue
			}
			why := Waiting(o, m.known(), len(rec.Workers), rec.needed(k), len(bids))
			if m.now().After(deadline) {
				m.fail(id, fmt.Sprintf("deadline passed with %d of %d workers: %s", len(rec.Workers), rec.needed(k), why))
				return
			}
			// Said while still waiting, and kept current: the user can
			// still lower the redundancy, raise the reward or cancel.
			waiting.update(m, id, why)
			if err := m.offers.Publish(m.ctx, o.Raw); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Debug("re-gossip offer", "job", id, "err", err)
			}
			continue
		}
		// All assigned: wait for their commitments and the decision.
		if !m.watch(o, missed) {
			return
		}
	}
}

// choose picks need workers from the bids with verify.Choose, the code
// the simulator (verify/sim) runs too.
func (m *Market) choose(o Offer, bids []Bid, need int) []peer.ID {
	return verify.Choose(bids, need, o.Spec.Reward, m.chooseSecret(o.ID.String()), verify.ChooseFloor)
}

// chooseSecret keys a job's worker choice: our signature over the job ID,
// fixed for the job and unknowable to workers.
func (m *Market) chooseSecret(id string) []byte {
	return ed25519.Sign(m.key.PrivateKey(), []byte("vft/choose/"+id))
}

// spotSecret keys a job's spot draw the same way, under its own label:
// the worker cannot tell whether it will be checked.
func (m *Market) spotSecret(id string) []byte {
	return ed25519.Sign(m.key.PrivateKey(), []byte("vft/spot/"+id))
}

// awaitBids waits for a bid window, or less once there are enough bids to
// choose well among (on a busy network that takes milliseconds). Bids
// from workers taken says are out (the job's own, dropped ones) neither
// count nor come back: a job that lost a worker waits a whole window for
// a new bid instead of spinning on the old ones. It returns false when
// the market is closing.
func (m *Market) awaitBids(id string, enough int, taken func(peer.ID) bool) ([]Bid, bool) {
	usable := func() []Bid {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.DeleteFunc(slices.Clone(m.bids[id]), func(b Bid) bool { return taken(b.Worker) })
	}
	windowEnd := time.After(m.opts.BidWindow)
	for {
		select {
		case <-m.ctx.Done():
			return nil, false
		case <-windowEnd:
		case <-time.After(20 * time.Millisecond):
			if len(usable()) < enough {
				continue
			}
		}
		bids := usable()
		for i := range bids {
			bids[i].Reputation = m.opts.Reputation(bids[i].Worker)
		}
		return bids, true
	}
}

// watch waits until the job needs more workers (a spot check's verifier,
// a tie-breaker) or ends, and drops the workers that have not committed by
// the report deadline (recording them in missed) so collect replaces them.
// It returns false when there is nothing more to do.
func (m *Market) watch(o Offer, missed map[peer.ID]bool) bool {
	id := o.ID.String()
	k := int(o.Spec.Verify.Workers)
	reportBy := m.now().Add(o.Spec.Needs.Timeout() + m.opts.ReportGrace)
	for {
		rec, err := m.book.Get(m.ctx, id)
		if err != nil || rec.State.Terminal() {
			return false
		}
		if len(rec.Workers) < rec.needed(k) {
			return true
		}
		if committed(rec) {
			// Waiting for reveals, the decision or settlement, which
			// end the job or ask for more workers.
			reportBy = m.now().Add(o.Spec.Needs.Timeout() + m.opts.ReportGrace)
		} else if m.now().After(reportBy) {
			break
		}
		select {
		case <-m.ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	var late []peer.ID
	rec, err := m.book.Update(m.ctx, id, func(r *Record) {
		kept := r.Workers[:0]
		for _, w := range r.Workers {
			if _, ok := r.Commits[w.String()]; ok {
				kept = append(kept, w)
				continue
			}
			if _, ok := r.Reports[w.String()]; ok { // its run failed
				kept = append(kept, w)
				continue
			}
			late = append(late, w)
			missed[w] = true
			r.Missed = append(r.Missed, w.String())
		}
		r.Workers = kept
		if len(late) > 0 {
			note := fmt.Sprintf("%d worker(s) missed the report deadline; reassigning", len(late))
			if o.Spec.Escrow && r.Escrow != "" {
				note = fmt.Sprintf("%d worker(s) missed the report deadline", len(late))
			}
			r.History = append(r.History, Change{State: r.State, At: m.now(), Note: note})
		}
	})
	if err != nil || rec.State.Terminal() {
		return false
	}
	for _, w := range late {
		// Not a penalty: an honest miner may have crashed. The verdict
		// names it, and the reputation table weighs that.
		m.log.Info("worker missed its report deadline", "job", id, "worker", w)
	}
	if len(late) > 0 && o.Spec.Escrow && rec.Escrow != "" {
		return m.continueEscrowed(rec, o, len(late))
	}
	return len(late) > 0
}

// continueEscrowed goes on with the workers that committed when some of an
// escrowed job's workers missed the deadline. Only the assigned workers
// sign its escrow, so it takes no replacements; the quorum can still be
// reached by the rest (the release then returns the missing workers'
// shares to the submitter), otherwise the job fails and is refunded.
func (m *Market) continueEscrowed(rec Record, o Offer, late int) bool {
	quorum := int(o.Spec.Verify.Quorum)
	if len(rec.Workers) < quorum {
		m.fail(rec.ID, fmt.Sprintf("%d worker(s) missed the report deadline and %d remain, fewer than the quorum of %d; an escrowed job takes no replacements (only the assigned workers sign its escrow)",
			late, len(rec.Workers), quorum))
		return false
	}
	rec, err := m.book.Update(m.ctx, rec.ID, func(r *Record) {
		r.Needed = len(r.Workers)
		r.History = append(r.History, Change{State: r.State, At: m.now(),
			Note: fmt.Sprintf("going on with the %d workers that committed: an escrowed job takes no replacements", len(r.Workers))})
	})
	if err != nil {
		m.log.Warn("record the remaining workers", "job", rec.ID, "err", err)
		return false
	}
	m.maybeReveal(rec)
	return true
}

// assign sends the assignment to the chosen workers and adds those who
// accept to the job's workers.
func (m *Market) assign(o Offer, workers []peer.ID) {
	id := o.ID.String()
	names := make([]string, len(workers))
	for i, w := range workers {
		names[i] = w.String()
	}
	req, err := wire.Seal(m.key, KindAssign, m.now(), AssignMsg{Job: id, Offer: o.Raw, Workers: names})
	if err != nil {
		m.fail(id, err.Error())
		return
	}
	accepted := 0
	for _, w := range workers {
		m.setAssigning(id, w, true)
		reply, err := exchange(m.ctx, m.streams, w, ProtocolAssign, req, 4<<10)
		if err != nil {
			m.log.Info("assignment not delivered", "job", id, "worker", w, "err", err)
			continue
		}
		var ack AckMsg
		if err := openDirect(reply, KindAck, w, m.now(), &ack); err != nil || !ack.OK || ack.Job != id {
			m.log.Info("assignment declined", "job", id, "worker", w, "reason", ack.Reason, "err", err)
			continue
		}
		// Recorded at once: the worker may finish and commit before the
		// other assignments are out.
		if err := m.addWorker(id, w, accepted == 0); err != nil {
			m.log.Warn("record assignment", "job", id, "err", err)
			continue
		}
		accepted++
	}
	for _, w := range workers {
		m.setAssigning(id, w, false)
	}
}

func (m *Market) setAssigning(id string, w peer.ID, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		if m.assigning[id] == nil {
			m.assigning[id] = map[peer.ID]bool{}
		}
		m.assigning[id][w] = true
		return
	}
	delete(m.assigning[id], w)
	if len(m.assigning[id]) == 0 {
		delete(m.assigning, id)
	}
}

// awaitWorker waits, briefly, for an assignment in flight to w to be
// recorded, and returns the job's record then.
func (m *Market) awaitWorker(id string, w peer.ID) (Record, error) {
	for deadline := m.now().Add(streamTimeout); ; {
		rec, err := m.book.Get(m.ctx, id)
		m.mu.Lock()
		inFlight := m.assigning[id][w]
		m.mu.Unlock()
		if err != nil || slices.Contains(rec.Workers, w) || !inFlight || m.now().After(deadline) {
			return rec, err
		}
		select {
		case <-m.ctx.Done():
			return rec, m.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// addWorker records one accepted assignment; the first one of a new job
// moves it to assigned.
func (m *Market) addWorker(id string, w peer.ID, first bool) error {
	add := func(r *Record) {
		if !slices.Contains(r.Workers, w) {
			r.Workers = append(r.Workers, w)
		}
		r.Waiting = ""
	}
	rec, err := m.book.Get(m.ctx, id)
	if err != nil {
		return err
	}
	if rec.State == StateOffered {
		_, err = m.book.Move(m.ctx, id, StateAssigned, "workers chosen", add)
		return err
	}
	_, err = m.book.Update(m.ctx, id, func(r *Record) {
		add(r)
		if first && len(r.Workers) > 1 {
			r.History = append(r.History, Change{State: r.State, At: m.now(), Note: "replacement or extra worker assigned"})
		}
	})
	return err
}

// maxCancelReason bounds the reason a failed job's cancel carries.
const maxCancelReason = 1 << 10

// fail ends a job without a result. A submitter's failed job with
// workers is also withdrawn from them with a signed cancel: no verdict
// will come, and a worker must not go on running it, or wait for one.
func (m *Market) fail(id, reason string) {
	rec, err := m.book.Move(m.ctx, id, StateFailed, reason, func(r *Record) { r.Reason = reason })
	if err != nil {
		m.log.Warn("record failure", "job", id, "err", err)
		return
	}
	m.refund(rec)
	if rec.Role != RoleSubmitter || len(rec.Workers) == 0 || m.offers == nil {
		return
	}
	o, err := RecordedOffer(rec.Offer)
	if err != nil {
		return
	}
	why := "the job failed: " + reason
	if len(why) > maxCancelReason { // a cancel is at most 4 KiB
		why = strings.ToValidUTF8(why[:maxCancelReason], "") + "…"
	}
	raw, err := NewCancel(m.key, o.ID, why, m.now())
	if err == nil {
		err = m.offers.Publish(m.ctx, raw)
	}
	if err != nil {
		m.log.Info("failed job not withdrawn from its workers", "job", id, "err", err)
	}
}

// waitingNote keeps a waiting job's reason current in its record
// (Record.Waiting), and adds it to the job's history when it changes, at
// most once a minute so that a reason that flickers with the miners'
// load does not flood the history.
type waitingNote struct {
	current, inHistory string
	noted              time.Time
}

// waitingNoteEvery bounds how often a changed reason is added to the
// history; Record.Waiting is always current.
const waitingNoteEvery = time.Minute

func (w *waitingNote) update(m *Market, id, why string) {
	setWaiting := why != w.current
	addNote := why != w.inHistory && m.now().Sub(w.noted) >= waitingNoteEvery
	if !setWaiting && !addNote {
		return
	}
	_, err := m.book.Update(m.ctx, id, func(r *Record) {
		if r.State.Terminal() {
			return
		}
		r.Waiting = why
		if addNote {
			r.History = append(r.History, Change{State: r.State, At: m.now(), Note: "waiting for workers: " + why})
		}
	})
	if err != nil {
		m.log.Debug("record why the job waits", "job", id, "err", err)
		return
	}
	w.current = why
	if addNote {
		w.inHistory, w.noted = why, m.now()
		m.log.Info("job waiting for workers", "job", id, "why", why)
	}
}

// known is the heartbeat table as the market sees it (nil without one).
func (m *Market) known() []KnownNode {
	if m.opts.Known == nil {
		return nil
	}
	return m.opts.Known()
}

// readOffers considers each validated offer once and queues it for a
// bidder. How many offers one author may send is the topic's rate limit
// (p2p: rejected before its signature is checked); a full queue leaves the
// offer unmarked, and if it is still open its submitter gossips it again.
func (m *Market) readOffers() {
	defer m.wg.Done()
	for {
		from, data, err := m.offers.Next(m.ctx)
		if err != nil {
			return
		}
		if !m.opts.Works {
			continue
		}
		if kind, _ := wire.KindOf(data); kind == KindCancel {
			m.cancelled(data)
			continue
		}
		o, err := OpenOffer(data, m.now())
		if err != nil || o.Submitter != from {
			continue // the validator already refused it; nothing to do
		}
		id := o.ID.String()
		m.mu.Lock()
		_, dup := m.seen[id]
		m.mu.Unlock()
		if dup {
			continue
		}
		if !m.toBid.push(o) {
			m.log.Debug("bid queue full; offer left for its next gossip", "job", id)
			continue
		}
		m.mu.Lock()
		if len(m.seen) >= maxSeenOffers {
			// Offers are re-gossiped only while open; forgetting old ones
			// costs at most a repeated CanRun check.
			clear(m.seen)
		}
		m.seen[id] = struct{}{}
		m.mu.Unlock()
	}
}

// bidder works through the queued offers.
func (m *Market) bidder() {
	defer m.wg.Done()
	for {
		o, ok := m.toBid.pop(m.ctx)
		if !ok {
			return
		}
		m.bid(o)
	}
}

func (m *Market) bid(o Offer) {
	c := m.opts.Capacity(m.ctx)
	if d := CanRun(o, c, m.opts.Policy); d != nil {
		m.log.Debug("not bidding", "job", o.ID, "why", d.Reason)
		return
	}
	price := m.opts.Policy.MinPrice
	req, err := wire.Seal(m.key, KindBid, m.now(), BidMsg{Job: o.ID.String(), Price: price, FreeSlots: c.FreeSlots})
	if err != nil {
		return
	}
	// Remembered before it leaves: the assignment can come back before
	// the bid's reply does.
	m.rememberBid(o, price)
	reply, err := exchange(m.ctx, m.streams, o.Submitter, ProtocolBid, req, 4<<10)
	if err != nil {
		m.forgetBid(o.ID.String())
		m.log.Debug("bid not delivered", "job", o.ID, "err", err)
		return
	}
	var ack AckMsg
	if err := openDirect(reply, KindAck, o.Submitter, m.now(), &ack); err != nil {
		m.log.Debug("bad bid reply", "job", o.ID, "err", err)
	}
}

// rememberBid records a bid this worker sends, until the offer's deadline.
func (m *Market) rememberBid(o Offer, price uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.openBids.add(o.ID.String(), openBid{submitter: o.Submitter, price: price, expires: time.UnixMilli(o.Spec.Deadline)}, m.now())
}

func (m *Market) forgetBid(id string) {
	m.mu.Lock()
	m.openBids.remove(id)
	m.mu.Unlock()
}

// bidFor reports whether this worker bid on job id, to submitter, at a
// price the offer pays, and the bid has not expired.
func (m *Market) bidFor(o Offer) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.openBids.get(o.ID.String())
	return ok && b.submitter == o.Submitter && b.price <= o.Spec.Reward && !m.now().After(b.expires)
}

// handleBid records a bid on one of our open offers.
func (m *Market) handleBid(st network.Stream) {
	serve(st, 4<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var b BidMsg
		if err := openDirect(req, KindBid, from, m.now(), &b); err != nil {
			return nil, err
		}
		m.mu.Lock()
		bids, open := m.bids[b.Job]
		full := open && len(bids) >= m.maxBids
		if open && !full && !slices.ContainsFunc(bids, func(x Bid) bool { return x.Worker == from }) {
			m.bids[b.Job] = append(bids, Bid{Worker: from, Price: b.Price, FreeSlots: b.FreeSlots})
		}
		m.mu.Unlock()
		ack := AckMsg{Job: b.Job, OK: open && !full}
		switch {
		case !open:
			ack.Reason = "not an open job of this node"
		case full:
			ack.Reason = fmt.Sprintf("the job already has %d bids", m.maxBids)
		}
		return wire.Seal(m.key, KindAck, m.now(), ack)
	})
}

// handleAssign accepts an assignment only for a job this node bid on,
// from its submitter, while it can still run it; the slot is taken before
// the reply, so concurrent assignments cannot overbook the node.
func (m *Market) handleAssign(st network.Stream) {
	serve(st, MaxOfferSize+8<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var a AssignMsg
		if err := openDirect(req, KindAssign, from, m.now(), &a); err != nil {
			return nil, err
		}
		ack := AckMsg{Job: a.Job}
		o, err := OpenOffer(a.Offer, m.now())
		switch {
		case err != nil:
			ack.Reason = "offer invalid: " + err.Error()
		case o.Submitter != from || o.ID.String() != a.Job:
			ack.Reason = "assignment does not match its offer"
		case !slices.Contains(a.Workers, m.key.PeerID().String()):
			ack.Reason = "this node is not among the assigned workers"
		case m.holds(o):
			// Assigned again: the submitter did not get our first answer
			// (a lost reply). Saying yes again lets it count the run
			// already under way instead of refusing its commitment.
			ack.OK = true
		case m.ended(o):
			// Too late for that: not an attack, no penalty.
			ack.Reason = "this node already ended job " + a.Job
		case !m.bidFor(o):
			// Unsolicited: nobody asked for this job, so nobody may make
			// this node fetch and run it.
			ack.Reason = "this node did not bid on job " + a.Job
			m.penalize(from, "sent an assignment for job "+a.Job+" this node did not bid on")
		default:
			m.accept(o, a, &ack)
		}
		return wire.Seal(m.key, KindAck, m.now(), ack)
	})
}

// holds reports whether this worker already has job o from its
// submitter, unfinished; ended, whether it had it and it is over.
func (m *Market) holds(o Offer) bool {
	rec, ok := m.workerRecord(o)
	return ok && !rec.State.Terminal()
}

func (m *Market) ended(o Offer) bool {
	rec, ok := m.workerRecord(o)
	return ok && rec.State.Terminal()
}

func (m *Market) workerRecord(o Offer) (Record, bool) {
	rec, err := m.book.Get(m.ctx, o.ID.String())
	return rec, err == nil && rec.Role == RoleWorker && string(rec.Offer) == string(o.Raw)
}

// accept records an assignment and hands it to the worker, which takes
// its slot at once (OnAssigned): the capacity check and the reservation
// happen under one lock.
func (m *Market) accept(o Offer, a AssignMsg, ack *AckMsg) {
	m.accepting.Lock()
	defer m.accepting.Unlock()
	if d := CanRun(o, m.opts.Capacity(m.ctx), m.opts.Policy); d != nil {
		ack.Reason = d.Reason
		return
	}
	rec, err := m.book.Create(m.ctx, a.Job, RoleWorker, a.Offer, StateAssigned)
	if err != nil {
		ack.Reason = err.Error()
		return
	}
	// The co-workers, for an escrow's signer set.
	if rec, err = m.book.Update(m.ctx, a.Job, func(r *Record) { r.Workers = decodePeers(a.Workers) }); err != nil {
		ack.Reason = err.Error()
		return
	}
	m.forgetBid(a.Job)
	ack.OK = true
	if m.opts.OnAssigned != nil {
		m.opts.OnAssigned(rec)
	}
}

// Resume picks up this node's unfinished jobs after a restart: a
// submitter's jobs go back to collecting bids, watching their workers or
// settling (commitments and reveals already received are on disk); a
// worker's assigned or running jobs run again from the start (runs are
// deterministic, so a re-run gives the same result), and its committed
// ones wait for their reveal and verdict.
func (m *Market) Resume(ctx context.Context) error {
	open, err := m.book.Unfinished(ctx)
	if err != nil {
		return err
	}
	for _, rec := range open {
		o, err := OpenOffer(rec.Offer, m.now())
		if err != nil {
			m.fail(rec.ID, "offer expired while the node was down: "+err.Error())
			continue
		}
		switch {
		case rec.Role == RoleSubmitter && rec.State == StateSettling:
			m.wg.Add(1)
			go m.settle(rec.ID)
		case rec.Role == RoleSubmitter:
			// Pick up the commitments and reveals already on disk, then go
			// on collecting bids or watching the workers.
			m.maybeReveal(rec)
			m.mu.Lock()
			m.bids[rec.ID] = nil
			m.mu.Unlock()
			m.wg.Add(1)
			go m.collect(o)
		case rec.Role == RoleWorker && rec.State == StateVerifying:
			// Committed: it waits for the reveal request and the verdict.
		case rec.Role == RoleWorker && m.opts.OnAssigned != nil:
			m.opts.OnAssigned(rec)
		default:
			m.fail(rec.ID, "this node no longer runs jobs")
		}
	}
	return nil
}

// fundEscrow locks an escrowed job's reward once its workers are known,
// before they start (each checks it on chain first). Without an escrow the
// job cannot go on: it fails and its workers are told to stop. It returns
// false when the job ended.
func (m *Market) fundEscrow(o Offer) bool {
	id := o.ID.String()
	rec, err := m.book.Get(m.ctx, id)
	if err != nil || rec.State.Terminal() {
		return false
	}
	if rec.Escrow != "" || len(rec.Workers) < int(o.Spec.Verify.Workers) || m.opts.OpenEscrow == nil {
		return true
	}
	account, err := m.opts.OpenEscrow(m.ctx, rec)
	if err != nil {
		m.fail(id, "escrow not funded: "+err.Error()) // and withdrawn from its workers
		return false
	}
	_, err = m.book.Update(m.ctx, id, func(r *Record) {
		r.Escrow = account
		r.History = append(r.History, Change{State: r.State, At: m.now(),
			Note: fmt.Sprintf("escrow %s holds %d for %d workers", account, o.Spec.Reward*uint64(o.Spec.Verify.Workers), len(r.Workers))})
	})
	return err == nil
}

// refund asks, in the background, for what a failed job's escrow holds.
// It may not succeed (the workers must agree, see docs/PROTOCOL.md); the
// job's history says how it went.
func (m *Market) refund(rec Record) {
	if rec.Escrow == "" || rec.Role != RoleSubmitter || m.opts.Refund == nil {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		note := "escrow refunded"
		if err := m.opts.Refund(m.ctx, rec); err != nil {
			note = "escrow not refunded: " + err.Error()
			m.log.Warn("escrow refund", "job", rec.ID, "err", err)
		}
		m.book.Update(m.ctx, rec.ID, func(r *Record) {
			r.History = append(r.History, Change{State: r.State, At: m.now(), Note: note})
		})
	}()
}
