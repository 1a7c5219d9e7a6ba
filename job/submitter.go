package job

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/wire"
)

// The submitter's side of the market: publish an offer, collect bids,
// choose and assign workers (verify.Choose), watch them report, replace
// the late, fund an escrow, and fail or cancel a job. The worker's side is
// bidding.go; commitments, reveals and verdicts are verifying.go.

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
	if _, err := m.book.Create(ctx, offer.ID.String(), RoleSubmitter, offer.Raw, StateOffered, nil); err != nil {
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
	k := o.Spec.Verify.K() // a spot check's verifier, if drawn, can wait for a miner
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
		delete(m.pools, id)
		m.mu.Unlock()
	}()
	k := int(o.Spec.Verify.Workers)
	deadline := time.UnixMilli(o.Spec.Deadline)
	missed := map[peer.ID]bool{}
	// declined are the bidders that refused an assignment of this job
	// (out of slots, say) or never answered it since its last window;
	// slow are those of them after whom the next window runs its whole
	// length: they never answered, or declined more than maxDeclines
	// times (declines counts each bidder's refusals over the job). pool
	// is the last window's choice, kept for replacements.
	declined, slow := map[peer.ID]bool{}, map[peer.ID]bool{}
	declines := map[peer.ID]int{}
	var pool []Bid
	windowed := false
	var waiting waitingNote
	for {
		rec, err := m.book.Get(m.ctx, id)
		if err != nil || rec.State.Terminal() {
			return
		}
		if need := rec.needed(k) - len(rec.Workers); need > 0 {
			taken := func(w peer.ID) bool {
				return missed[w] || declined[w] || slices.Contains(rec.Workers, w)
			}
			// A replacement (for a decline, a no-show, a missed report,
			// or an extra worker) comes at once from the bids in hand:
			// the window's choice first, then any other usable bid. A
			// new window opens only when none is left.
			var bids []Bid
			if windowed { // the first choice is always a window's: fair (drawPool)
				bids = m.bidsInHand(o, pool, need, len(rec.Workers) > 0, taken)
			}
			inHand := len(bids) > 0
			if !inHand {
				// A decliner lost its bid (endAssigning) and is asked again
				// only once it bids again, which it does when it has a
				// slot: the new window can close early. One that never
				// answered still holds its bid, so after that the window
				// runs its whole length before it is asked again: at once,
				// it would not answer again. So does one that declined
				// too often: asked at most once a window, it cannot hold
				// the job in a loop of bids and declines.
				early := len(slow) == 0
				clear(declined)
				clear(slow)
				var open bool
				if bids, open = m.awaitBids(o, need, taken, early); !open {
					return // the market is closing
				}
				pool, windowed = bids, true
			}
			// A job without workers is assigned only once all it needs
			// are found; replacements go as they are found.
			if chosen := m.choose(o, bids, min(need, len(bids))); len(chosen) == need || (inHand && len(chosen) > 0) {
				waiting.current = "" // assignment clears Record.Waiting
				refused, silent := m.assign(o, chosen)
				for _, w := range refused {
					declined[w] = true
					declines[w]++
					if declines[w] > maxDeclines {
						slow[w] = true
					}
				}
				for _, w := range silent {
					declined[w], slow[w] = true, true
				}
				if o.Spec.Escrow && !m.fundEscrow(o) {
					return
				}
				continue
			}
			why := Waiting(o, m.known(), len(rec.Workers), rec.needed(k), len(bids)) + failedRuns(rec)
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

// bidsInHand are the bids a job can take workers from without a new
// window: the last window's choice (pool) not yet taken, else every usable
// bid not taken. A job that has workers takes even one; one without needs
// them all at once. None: open a new window.
func (m *Market) bidsInHand(o Offer, pool []Bid, need int, hasWorkers bool, taken func(peer.ID) bool) []Bid {
	enough := func(b []Bid) bool { return len(b) >= need || (hasWorkers && len(b) > 0) }
	if b := remainingBids(pool, taken); enough(b) {
		return b
	}
	m.mu.Lock()
	b := usableBids(m.bids[o.ID.String()], o.Spec.Reward, m.opts.Reputation, taken)
	m.mu.Unlock()
	if enough(b) {
		return b
	}
	return nil
}

// failedRuns says, for a job that waits for a tie-breaker, which of its
// workers' runs failed and how (the first reason, cut short): when every
// miner fails the same way for a reason of its own (an image it cannot
// unpack), the user sees why no result comes, not only a count.
func failedRuns(rec Record) string {
	var failed []string
	for _, report := range rec.Reports {
		if reason, ok := strings.CutPrefix(report, "error: "); ok {
			failed = append(failed, reason)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	slices.Sort(failed)
	return fmt.Sprintf("; %d of its workers' runs failed (%s)", len(failed), verdictReason(failed[0]))
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

// awaitBids invites the pool it draws to bid and waits for bids on o
// until the window can close (bidWindow's rule: the drawn pool has
// answered, or enough of it has bid for its grace), or at the latest for
// the bid window; without early it waits the whole window, for a job
// whose last round was declined. Bids from workers taken says are
// out (the job's own, dropped ones) and neither count nor come back. It
// returns the bids to choose among, and false when the market is closing.
func (m *Market) awaitBids(o Offer, need int, taken func(peer.ID) bool, early bool) ([]Bid, bool) {
	id := o.ID.String()
	start := time.Now()
	windowEnd := time.After(m.opts.BidWindow)
	known := m.known()
	could := couldBid(o, known, m.key.PeerID(), taken)
	pool := m.drawReachable(could, known, poolSize(need), m.poolSecret(id))
	m.setPool(id, pool)
	w := newBidWindow(need, could, pool, start)
	answered := make(chan peer.ID, len(pool))
	m.invite(o, pool, answered)
	calledAll := false
	for {
		if m.ctx.Err() != nil {
			return nil, false
		}
		m.mu.Lock()
		usable := usableBids(m.bids[id], o.Spec.Reward, m.opts.Reputation, taken)
		news := m.bidNews
		m.mu.Unlock()
		if !calledAll && w.poolShort(usable) {
			// The pool cannot fill the job: every miner that held the
			// offer's gossip for an invitation bids on this one.
			calledAll = true
			if err := m.offers.Publish(m.ctx, o.Raw); err != nil && !errors.Is(err, context.Canceled) {
				m.log.Debug("re-gossip offer", "job", id, "err", err)
			}
		}
		choice, done, wake := w.decide(usable, time.Now())
		if early && done {
			m.log.Debug("bid window closed early", "job", id, "bids", len(usable), "pool", len(pool), "choice", len(choice), "need", need, "after", time.Since(start))
			return choice, true
		}
		var graceEnd <-chan time.Time
		if early && !wake.IsZero() {
			graceEnd = time.After(time.Until(wake))
		}
		select {
		case <-m.ctx.Done():
			return nil, false
		case <-windowEnd:
			m.mu.Lock()
			usable = usableBids(m.bids[id], o.Spec.Reward, m.opts.Reputation, taken)
			m.mu.Unlock()
			// At the end of the window, the pool's bids if they suffice,
			// else every usable one.
			if pool := w.poolBids(usable); len(pool) >= need {
				return pool, true
			}
			return usable, true
		case p := <-answered:
			w.answer(p)
		case <-news:
		case <-graceEnd:
		}
	}
}

// drawReachable draws the pool (drawPool) among the miners this node can
// reach: those it is connected to and those it has an address for, in
// its peerstore or in the miner's heartbeat (added to the peerstore for a
// drawn miner, so that its invitation can dial it). Only when they are
// too few is the pool topped up from the others, whose invitations fail
// at once. A drawn miner answers on the invitation's stream, so it needs
// no way to this node, and whom this node happens to be connected to
// (its DHT neighbourhood, its gossip mesh, whoever dialled it) plays no
// part in the draw: a miner that connects to a big submitter is drawn no
// more often for it, and a miner across the network as often as a
// neighbour. Its first invitation then costs the dial, a round trip or
// two. A Streams that cannot say (not a libp2p host) draws among all.
func (m *Market) drawReachable(could []peer.ID, known []KnownNode, size int, secret []byte) []peer.ID {
	h, ok := m.streams.(interface {
		Network() network.Network
		Peerstore() peerstore.Peerstore
	})
	if !ok {
		return drawPool(could, size, m.opts.Reputation, secret)
	}
	announced := map[peer.ID][]string{}
	for _, n := range known {
		if len(n.Addrs) > 0 {
			announced[n.Peer] = n.Addrs
		}
	}
	var reachable, unreachable []peer.ID
	for _, p := range could {
		if h.Network().Connectedness(p) == network.Connected || len(announced[p]) > 0 || len(h.Peerstore().Addrs(p)) > 0 {
			reachable = append(reachable, p)
		} else {
			unreachable = append(unreachable, p)
		}
	}
	pool := drawPool(reachable, size, m.opts.Reputation, secret)
	for _, p := range pool {
		if h.Network().Connectedness(p) != network.Connected {
			h.Peerstore().AddAddrs(p, multiaddrs(announced[p]), peerstore.TempAddrTTL)
		}
	}
	if len(pool) < size {
		pool = append(pool, drawPool(unreachable, size-len(pool), m.opts.Reputation, secret)...)
	}
	return pool
}

// multiaddrs parses the addresses a heartbeat announced (checked when it
// arrived: heartbeat.CheckOptional).
func multiaddrs(addrs []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if m, err := ma.NewMultiaddr(a); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// poolSecret keys a job's pool draw (drawPool) like its choice, under its
// own label.
func (m *Market) poolSecret(id string) []byte {
	return ed25519.Sign(m.key.PrivateKey(), []byte("vft/pool/"+id))
}

// setPool records the miners drawn for a job's open window: their bids
// are kept even when the job already has maxBids from others (handleBid).
func (m *Market) setPool(id string, pool []peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, open := m.bids[id]; !open {
		return
	}
	set := make(map[peer.ID]bool, len(pool))
	for _, p := range pool {
		set[p] = true
	}
	m.pools[id] = set
}

// watch waits until the job needs more workers (a spot check's verifier,
// a tie-breaker) or ends, and drops the workers that have not committed by
// their report deadline (recording them in missed) so collect replaces
// them. Each worker's deadline runs from this assignment, moved by what
// it says of its staging (progress.go). It returns false when there is
// nothing more to do.
func (m *Market) watch(o Offer, missed map[peer.ID]bool) bool {
	id := o.ID.String()
	k := int(o.Spec.Verify.Workers)
	timeout, grace := o.Spec.Needs.Timeout(), m.opts.ReportGrace
	assignedAt := m.now()
	var late []peer.ID
	for {
		rec, err := m.book.Get(m.ctx, id)
		if err != nil || rec.State.Terminal() {
			m.progress.forget(id)
			return false
		}
		if len(rec.Workers) < rec.needed(k) {
			return true
		}
		if committed(rec) {
			// Waiting for reveals, the decision or settlement, which
			// end the job or ask for more workers.
			assignedAt = m.now()
		} else if late = m.lateWorkers(rec, assignedAt, timeout, grace); len(late) > 0 {
			break
		}
		select {
		case <-m.ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	var dropped []peer.ID
	rec, err := m.book.Update(m.ctx, id, func(r *Record) {
		dropped = dropped[:0]
		r.Workers = slices.DeleteFunc(r.Workers, func(w peer.ID) bool {
			// A commitment or a failed run may have come in meanwhile.
			_, committed := r.Commits[w.String()]
			_, failed := r.Reports[w.String()]
			if committed || failed || !slices.Contains(late, w) {
				return false
			}
			dropped = append(dropped, w)
			return true
		})
		for _, w := range dropped {
			missed[w] = true
			r.Missed = append(r.Missed, w.String())
		}
		if len(dropped) > 0 {
			note := fmt.Sprintf("%d worker(s) missed the report deadline; reassigning", len(dropped))
			if o.Spec.Escrow && r.Escrow != "" {
				note = fmt.Sprintf("%d worker(s) missed the report deadline", len(dropped))
			}
			r.History = append(r.History, Change{State: r.State, At: m.now(), Note: note})
		}
	})
	late = dropped
	m.progress.forget(id, late...)
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

// lateWorkers are the job's workers that have neither committed nor
// reported a failed run by their report deadline.
func (m *Market) lateWorkers(rec Record, assignedAt time.Time, timeout, grace time.Duration) []peer.ID {
	now := m.now()
	var late []peer.ID
	for _, w := range rec.Workers {
		_, committed := rec.Commits[w.String()]
		_, failed := rec.Reports[w.String()]
		if !committed && !failed && now.After(m.progress.deadline(rec.ID, w, assignedAt, timeout, grace)) {
			late = append(late, w)
		}
	}
	return late
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

// assign sends the assignment to the chosen workers, all at once (the
// job waits for the slowest round trip, not their sum: a fair choice
// picks far workers too), adds those who accept to the job's workers and
// returns those who did not: refused, those who declined it, and silent,
// those whose assignment or reply was lost.
func (m *Market) assign(o Offer, workers []peer.ID) (refused, silent []peer.ID) {
	id := o.ID.String()
	names := make([]string, len(workers))
	for i, w := range workers {
		names[i] = w.String()
	}
	req, err := wire.Seal(m.key, KindAssign, m.now(), AssignMsg{Job: id, Offer: o.Raw, Workers: names})
	if err != nil {
		m.fail(id, err.Error())
		return nil, nil
	}
	m.startAssigning(id, workers)
	// All at once; each acceptance recorded as soon as those before it
	// in the order chosen are, which is the order the workers were told
	// (an escrow's signer set). A worker that commits before it is
	// recorded is waited for (awaitWorker).
	replies := make([]chan assignReply, len(workers))
	for i, w := range workers {
		replies[i] = make(chan assignReply, 1)
		go func() { replies[i] <- m.assignOne(id, w, req) }()
	}
	accepted := 0
	for i, w := range workers {
		reply := <-replies[i]
		if reply == assignAccepted {
			if err := m.addWorker(id, w, accepted == 0); err != nil {
				m.log.Warn("record assignment", "job", id, "err", err)
				reply = assignUnanswered
			}
		}
		switch reply {
		case assignAccepted:
			accepted++
		case assignDeclined:
			refused = append(refused, w)
		default:
			silent = append(silent, w)
		}
	}
	m.endAssigning(id, workers, refused)
	return refused, silent
}

// assignReply is how a worker answered its assignment.
type assignReply int

const (
	assignAccepted   assignReply = iota
	assignDeclined               // a signed no: out of slots since it bid, say
	assignUnanswered             // not delivered, or no valid answer
)

// assignOne sends one worker its assignment and says how it answered.
func (m *Market) assignOne(id string, w peer.ID, req []byte) assignReply {
	reply, err := exchange(m.ctx, m.streams, w, ProtocolAssign, req, 4<<10)
	if err != nil {
		m.log.Info("assignment not delivered", "job", id, "worker", w, "err", err)
		return assignUnanswered
	}
	var ack AckMsg
	if err := openDirect(reply, KindAck, w, m.now(), &ack); err != nil || ack.Job != id {
		m.log.Info("bad answer to an assignment", "job", id, "worker", w, "err", err)
		return assignUnanswered
	}
	if !ack.OK {
		m.log.Info("assignment declined", "job", id, "worker", w, "reason", ack.Reason)
		return assignDeclined
	}
	return assignAccepted
}

// startAssigning records the job's assignments in flight (awaitWorker).
func (m *Market) startAssigning(id string, workers []peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.assigning[id] == nil {
		m.assigning[id] = map[peer.ID]bool{}
	}
	for _, w := range workers {
		m.assigning[id][w] = false
	}
}

// endAssigning clears the job's assignments in flight. A worker that
// declined loses its bid: it bid while it had a slot, and only a new bid,
// sent when it has one again (SlotFreed), makes it a candidate again. A
// bid it sent while its assignment was in flight (handleBid) is that new
// bid, and stands.
func (m *Market) endAssigning(id string, workers, declined []peer.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if bids, open := m.bids[id]; open {
		for _, w := range declined {
			if !m.assigning[id][w] {
				bids = slices.DeleteFunc(bids, func(b Bid) bool { return b.Worker == w })
			}
		}
		m.bids[id] = bids
	}
	for _, w := range workers {
		delete(m.assigning[id], w)
	}
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
		_, inFlight := m.assigning[id][w]
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

// handleBid records a bid on one of our open offers.
func (m *Market) handleBid(st network.Stream) {
	serve(st, 4<<10, func(from peer.ID, req []byte) ([]byte, error) {
		var b BidMsg
		if err := openDirect(req, KindBid, from, m.now(), &b); err != nil {
			return nil, err
		}
		return wire.Seal(m.key, KindAck, m.now(), m.takeBid(from, b))
	})
}

// takeBid records from's bid, whether it came on its own (handleBid) or as
// the answer to an invitation (invite), and says whether it counts.
func (m *Market) takeBid(from peer.ID, b BidMsg) AckMsg {
	m.mu.Lock()
	bids, open := m.bids[b.Job]
	// A drawn miner's bid is kept past the cap: the nearest bidders
	// must not crowd the pool out (drawPool).
	full := open && len(bids) >= m.maxBids && !m.pools[b.Job][from]
	bid := Bid{Worker: from, Price: b.Price, FreeSlots: b.FreeSlots}
	switch known := slices.IndexFunc(bids, func(x Bid) bool { return x.Worker == from }); {
	case open && known >= 0:
		// A bid again: the first one still counts, unless this comes
		// while the bidder's assignment is in flight, from a slot
		// freed meanwhile: if it declines, this bid stands.
		if _, inFlight := m.assigning[b.Job][from]; inFlight {
			bids[known] = bid
			m.assigning[b.Job][from] = true
		}
	case open && !full:
		m.bids[b.Job] = append(bids, bid)
		close(m.bidNews) // wakes every awaitBids
		m.bidNews = make(chan struct{})
	}
	m.mu.Unlock()
	ack := AckMsg{Job: b.Job, OK: open && !full}
	switch {
	case !open:
		ack.Reason = "not an open job of this node"
	case full:
		ack.Reason = fmt.Sprintf("the job already has %d bids", m.maxBids)
	}
	return ack
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
