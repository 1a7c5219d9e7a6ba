package job

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/vft-network/vft/p2p"
	"github.com/vft-network/vft/wire"
)

// Invitations: a submitter asks the miners it drew for a job's pool
// (drawPool) to bid, on a stream of their own, instead of every miner that
// sees the offer's gossip bidding at once. Only the pool's bids count
// (bidWindow), yet at 50 nodes 45–49 miners bid on each job: their
// streams reached the submitter one after another over 50–100 ms, and the
// window waited for the pool's bids spread through that burst. An invited
// miner answers on the invitation's stream, with its bid or with why it
// does not bid, so the window also knows when the whole pool has answered.
//
// A miner holds the first gossip of an offer whose submitter serves
// ProtocolInvite (identify says so): it bids when invited, or at the
// offer's next gossip. The submitter publishes that at once when its pool
// cannot fill the job (too small, or too many of it declined), and every
// bid window while the job waits, as before. A node that does not serve
// ProtocolInvite is an older one: its offers are bid on at first gossip,
// and as a miner it bids on gossip and is never asked.

// Invitations one submitter may make this node answer: as many as its
// offers on gossip (p2p.gossip_author_per_minute and _burst, defaults),
// since an honest submitter invites a miner once per offer and window.
// Over it, the stream is reset: the submitter counts this miner out of
// that window.
var inviteRate = p2p.PerMinute(600, 120)

// maxInvitesFrom is how many submitters the invitation limiter tracks.
const maxInvitesFrom = 4096

// maxHeldOffers bounds the offers a worker holds for their invitation
// (awaitsInvitation). Forgetting one costs at most a bid window: its next
// gossip is held again.
const maxHeldOffers = 10_000

// invite asks each miner of a job's pool to bid (ProtocolInvite), all at
// once, and sends on answered each whose invitation is over: it answered
// with a bid, taken like any other (takeBid), or with why it does not bid,
// or it could not be asked (unreachable, or an older miner that does not
// serve invitations and bids on the gossip). Either way no bid is coming
// on the invitation, so a pool that cannot fill the job is known as soon
// as it is (bidWindow.poolShort), not at the end of the window. answered
// must have room for the whole pool.
func (m *Market) invite(o Offer, pool []peer.ID, answered chan<- peer.ID) {
	if len(pool) == 0 {
		return
	}
	req, err := wire.Seal(m.key, KindInvite, m.now(), InviteMsg{Offer: o.Raw})
	if err != nil {
		m.log.Warn("invitation not signed; the pool bids on gossip", "job", o.ID, "err", err)
		return
	}
	for _, p := range pool {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.askToBid(o, p, req)
			answered <- p
		}()
	}
}

// askToBid sends one invitation and takes its answer.
func (m *Market) askToBid(o Offer, p peer.ID, req []byte) {
	id := o.ID.String()
	reply, err := exchange(m.ctx, m.streams, p, ProtocolInvite, req, 4<<10)
	if err != nil {
		m.log.Debug("invitation not answered", "job", id, "miner", p, "err", err)
		return
	}
	var b BidMsg
	var ack AckMsg
	if kind, _ := wire.KindOf(reply); kind == KindBid {
		err = openDirect(reply, KindBid, p, m.now(), &b)
		if err == nil && b.Job == id {
			m.takeBid(p, b)
			return
		}
	} else if err = openDirect(reply, KindAck, p, m.now(), &ack); err == nil && ack.Job == id {
		m.log.Debug("invited miner does not bid", "job", id, "miner", p, "why", ack.Reason)
		return
	}
	m.log.Debug("bad answer to an invitation", "job", id, "miner", p, "err", err)
}

// handleInvite answers a submitter's invitation to bid on one of its
// offers: with this worker's bid, or with an ack that says why it does not
// bid. The offer's gossip, before or after, is not bid on again.
func (m *Market) handleInvite(st network.Stream) {
	serve(st, MaxOfferSize+8<<10, func(from peer.ID, req []byte) ([]byte, error) {
		if !m.invitesFrom.Allow(from, m.now()) {
			return nil, fmt.Errorf("invitations from %s over their rate", from)
		}
		var inv InviteMsg
		if err := openDirect(req, KindInvite, from, m.now(), &inv); err != nil {
			return nil, err
		}
		o, err := m.openOffer(inv.Offer)
		if err != nil {
			return nil, err
		}
		if o.Submitter != from {
			return nil, fmt.Errorf("invitation to bid on %s's offer sent by %s", o.Submitter, from)
		}
		decline := func(reason string) ([]byte, error) {
			return wire.Seal(m.key, KindAck, m.now(), AckMsg{Job: o.ID.String(), Reason: reason})
		}
		if !m.opts.Works {
			return decline("this node does not run jobs")
		}
		m.considered(o.ID.String())
		bid, declined := m.sealBid(o)
		if declined != nil {
			return decline(declined.Reason)
		}
		return bid, nil
	})
}

// considered marks offer id as handled here: its gossip is not bid on
// again (readOffers), nor held for an invitation.
func (m *Market) considered(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.markSeen(id)
	delete(m.held, id)
}

// awaitsInvitation says whether this worker holds the gossip of offer id
// from a submitter that invites (inviting): the first one seen is held,
// the next is bid on. Called with m.mu held.
func (m *Market) awaitsInvitation(id string, inviting bool) bool {
	if !inviting {
		return false
	}
	if _, again := m.held[id]; again {
		delete(m.held, id)
		return false
	}
	if len(m.held) >= maxHeldOffers {
		clear(m.held)
	}
	m.held[id] = struct{}{}
	return true
}

// invites says whether p serves ProtocolInvite, as identify reported it:
// a node that does invites the pools of its jobs. Unknown (no identify
// yet, or streams that are not a libp2p host) counts as no.
func (m *Market) invites(p peer.ID) bool {
	h, ok := m.streams.(interface{ Peerstore() peerstore.Peerstore })
	if !ok {
		return false
	}
	speaks, err := h.Peerstore().SupportsProtocols(p, ProtocolInvite)
	return err == nil && len(speaks) > 0
}
