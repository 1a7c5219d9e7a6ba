package job

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/wire"
)

// The worker's side of the market: read offers, bid on those this node
// can run (CanRun), and accept or refuse an assignment. Running the job is
// worker.go.

// readOffers considers each validated offer once and queues it for a
// bidder; once more at a later gossip if this node was too busy to bid or
// could not reach the submitter. The first gossip of an offer whose
// submitter invites its pool is held (awaitsInvitation): this node bids
// when invited, or at the next gossip. How many offers one author may
// send is the topic's rate limit (p2p: rejected before its signature is
// checked); a full queue leaves the offer unmarked, and if it is still
// open its submitter gossips it again.
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
		o, err := m.openOffer(data)
		if err != nil || o.Submitter != from {
			continue // the validator already refused it; nothing to do
		}
		id := o.ID.String()
		inviting := m.invites(o.Submitter)
		// Marked before it is queued: the bidder may unmark it (busy)
		// before this loop would get to it.
		m.mu.Lock()
		_, dup := m.seen[id]
		held := !dup && m.awaitsInvitation(id, inviting)
		if !dup && !held {
			m.markSeen(id)
		}
		m.mu.Unlock()
		if dup || held {
			continue
		}
		if !m.toBid.push(o) {
			m.unsee(id)
			m.log.Debug("bid queue full; offer left for its next gossip", "job", id)
		}
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
	req, declined := m.sealBid(o)
	if declined != nil {
		return
	}
	reply, err := exchange(m.ctx, m.streams, o.Submitter, ProtocolBid, req, 4<<10)
	if err != nil {
		m.forgetBid(o.ID.String())
		m.unsee(o.ID.String()) // the submitter may be reachable at its next gossip
		m.log.Debug("bid not delivered", "job", o.ID, "err", err)
		return
	}
	var ack AckMsg
	if err := openDirect(reply, KindAck, o.Submitter, m.now(), &ack); err != nil {
		m.log.Debug("bad bid reply", "job", o.ID, "err", err)
	}
}

// sealBid signs this worker's bid on o and remembers it, or says why it
// does not bid: o is not a job this node can run now. A node too busy for
// it keeps it for SlotFreed.
func (m *Market) sealBid(o Offer) ([]byte, *Decline) {
	c := m.opts.Capacity(m.ctx)
	if d := CanRun(o, c, m.opts.Policy); d != nil {
		m.log.Debug("not bidding", "job", o.ID, "why", d.Reason)
		if d.Busy {
			// Full now, free later: looked at again when a slot frees, or
			// at the offer's next gossip. Kept as seen, a miner busy when
			// a job was offered never bid on it, and a job offered while
			// every miner was busy waited for its deadline.
			m.passBusy(o)
		}
		return nil, d
	}
	price := m.opts.Policy.MinPrice
	req, err := wire.Seal(m.key, KindBid, m.now(), BidMsg{Job: o.ID.String(), Price: price, FreeSlots: c.FreeSlots})
	if err != nil {
		return nil, &Decline{Reason: "bid not signed: " + err.Error()}
	}
	// Remembered before it leaves: the assignment can come back before
	// the bid's reply does.
	m.rememberBid(o, price)
	return req, nil
}

// passBusy keeps an offer this worker was too busy to bid on, for
// SlotFreed, and lets its next gossip be considered again.
func (m *Market) passBusy(o Offer) {
	id := o.ID.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, id)
	if len(m.passedBusy) < maxPassedBusy {
		m.passedBusy[id] = o
	}
}

// SlotFreed tells the market that a job slot came free: the offers it
// passed over while busy, still open, are considered again at once rather
// than at their next gossip (up to a bid window later).
func (m *Market) SlotFreed() {
	m.mu.Lock()
	var retry []Offer
	for id, o := range m.passedBusy {
		delete(m.passedBusy, id)
		if _, queued := m.seen[id]; queued || m.now().After(time.UnixMilli(o.Spec.Deadline)) {
			continue // its gossip came first, or it is over
		}
		m.seen[id] = struct{}{}
		retry = append(retry, o)
	}
	m.mu.Unlock()
	for _, o := range retry {
		if !m.toBid.push(o) {
			// No place now: at most queuedPerAuthor of one submitter's
			// offers wait at once. Kept for the next freed slot; dropped,
			// it waited for its next gossip, a whole bid window later.
			m.passBusy(o)
		}
	}
}

// markSeen records that offer id was considered. Called with m.mu held.
func (m *Market) markSeen(id string) {
	if len(m.seen) >= maxSeenOffers {
		// Offers are re-gossiped only while open; forgetting old ones
		// costs at most a repeated CanRun check.
		clear(m.seen)
	}
	m.seen[id] = struct{}{}
}

// unsee forgets that offer id was considered, so that its next gossip is.
func (m *Market) unsee(id string) {
	m.mu.Lock()
	delete(m.seen, id)
	m.mu.Unlock()
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
		o, err := m.openOffer(a.Offer)
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
		if d.Busy {
			// Taken by another job since the bid: bid again when a slot
			// frees (SlotFreed), and the submitter takes the new bid.
			m.passBusy(o)
		}
		return
	}
	// With the co-workers, for an escrow's signer set: one synced write
	// before the answer, which the submitter waits for.
	rec, err := m.book.Create(m.ctx, a.Job, RoleWorker, a.Offer, StateAssigned, func(r *Record) { r.Workers = decodePeers(a.Workers) })
	if err != nil {
		ack.Reason = err.Error()
		return
	}
	m.forgetBid(a.Job)
	ack.OK = true
	if m.opts.OnAssigned != nil {
		m.opts.OnAssigned(rec)
	}
}
