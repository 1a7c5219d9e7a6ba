package job

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/p2p"
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
	// Addrs are where its heartbeat says it can be reached (its public
	// or relay addresses, as multiaddr strings): a submitter not
	// connected to it dials them to invite it (drawReachable).
	Addrs []string
}

// maxSeenOffers bounds the memory a worker spends remembering offers.
const maxSeenOffers = 100_000

// maxPassedBusy bounds the offers a busy worker keeps to bid on when a slot
// frees; beyond it, an offer waits for its next gossip.
const maxPassedBusy = 64

// Limits on what other peers can make this node spend. Each is far above
// what an honest network needs and low enough that a flood costs a
// bounded amount of memory and CPU.
const (
	// maxBidsPerJob caps the bids a submitter keeps for one open job: the
	// choice needs a handful, and a Sybil crowd must not grow the slice
	// without end.
	maxBidsPerJob = 256
	// maxDeclines is how many times one miner may decline a job's
	// assignment and be asked again as soon as it bids again; after that,
	// once per bid window. Each decline drops its bid and a new bid makes
	// it a candidate again (SlotFreed), so a miner that bids and declines
	// in a loop would otherwise hold the job. Honest miners decline too:
	// a freed slot draws bids on every job passed over while full, and
	// all but one of their assignments are declined.
	maxDeclines = 5
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
	// pools are the miners drawn for each open job's window (drawPool).
	pools map[string]map[peer.ID]bool
	// bidNews is closed, and replaced, when a bid arrives (awaitBids).
	bidNews chan struct{}
	// revealing holds the jobs whose reveal phase is running.
	revealing map[string]bool
	// assigning holds the workers whose assignment is in flight, per job:
	// a fast worker's commitment can arrive before its acceptance is
	// recorded. The value says whether the worker bid again meanwhile: if
	// it declines, that newer bid stands (endAssigning).
	assigning map[string]map[peer.ID]bool
	verdicts  Gossip
	seen      map[string]struct{} // worker: offers already considered
	// held are offers whose first gossip this worker holds for their
	// invitation (awaitsInvitation).
	held map[string]struct{}
	// invitesFrom limits the invitations each submitter may make this
	// worker answer (inviteRate).
	invitesFrom *p2p.Limiter
	// passedBusy are offers this worker did not bid on because it was
	// full (Decline.Busy), looked at again when a slot frees (SlotFreed).
	passedBusy map[string]Offer
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
	// offerSigs: each offer's signature is checked once (openOffer).
	offerSigs *wire.SigCache
	// progress is what the workers of this node's jobs said of their
	// staging (progress.go).
	progress *workerProgress
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
		bids: map[string][]Bid{}, pools: map[string]map[peer.ID]bool{}, bidNews: make(chan struct{}), seen: map[string]struct{}{}, held: map[string]struct{}{}, invitesFrom: p2p.NewLimiter(inviteRate, maxInvitesFrom), passedBusy: map[string]Offer{}, revealing: map[string]bool{}, assigning: map[string]map[peer.ID]bool{},
		openBids: newOpenBids(maxOpenBids), toBid: newBidQueue(), maxBids: maxBidsPerJob, progress: newWorkerProgress(),
		offerSigs: wire.NewSigCache(offerSigCacheSize)}
	m.checkedVerdicts.check = m.openSigned
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
		o, err := m.openOffer(data)
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

// offerSigCacheSize is how many offers' signatures a node remembers
// having checked: 64 bytes each, and enough for the offers of the jobs
// whose verdicts are still to come on a busy network.
const offerSigCacheSize = 1024

// openOffer checks an offer as OpenOffer does, but checks the signature
// of the same bytes only once: a node opens each offer as it is
// gossiped, as the market reads it and inside its verdict, and a worker
// also in its invitation and assignment. ed25519 checks were 13% of the
// CPU a job cost a 50-node network, a third of them offers checked again
// (docs/BENCHMARKS.md).
func (m *Market) openOffer(raw []byte) (Offer, error) {
	return openOffer(raw, m.now(), m.openSigned)
}

// openSigned is wire.Open, through the offer signature cache for offers:
// the other kinds a node opens reach it once each.
func (m *Market) openSigned(data []byte, kind string, lim wire.Limits, now time.Time) (wire.Opened, error) {
	if kind == KindOffer {
		return m.offerSigs.Open(data, kind, lim, now)
	}
	return wire.Open(data, kind, lim, now)
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
	o, err := m.openOffer(rec.Offer)
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
	// Served by every node, miner or not: serving it says this node
	// invites the pools of its own jobs (invite.go).
	m.streams.SetStreamHandler(ProtocolInvite, m.handleInvite)
	m.streams.SetStreamHandler(ProtocolCommit, m.handleCommit)
	m.streams.SetStreamHandler(ProtocolStarted, m.handleStarted)
	m.streams.SetStreamHandler(ProtocolProgress, m.handleProgress)
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
		m.streams.RemoveStreamHandler(ProtocolInvite)
		m.streams.RemoveStreamHandler(ProtocolCommit)
		m.streams.RemoveStreamHandler(ProtocolStarted)
		m.streams.RemoveStreamHandler(ProtocolProgress)
		m.streams.RemoveStreamHandler(ProtocolAssign)
		m.streams.RemoveStreamHandler(ProtocolVerdict)
		m.cancel()
		m.wg.Wait()
	})
	return nil
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
		o, err := m.openOffer(rec.Offer)
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
