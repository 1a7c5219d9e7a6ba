package job

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// A flooding author fills only its own places in the queue, and the
// others' offers are served in turn, not behind the whole flood.
func TestBidQueueIsFairAcrossAuthors(t *testing.T) {
	q := newBidQueue()
	offer := func(author string, n int) Offer {
		return Offer{Submitter: peer.ID(author), Spec: Spec{Seed: uint64(n)}}
	}
	for i := range 100 {
		q.push(offer("flooder", i))
	}
	if !q.push(offer("honest", 0)) {
		t.Fatal("the honest author found no place after a flood")
	}
	ctx := context.Background()
	first, _ := q.pop(ctx)
	second, _ := q.pop(ctx)
	if first.Submitter != "flooder" || second.Submitter != "honest" {
		t.Fatalf("served %s then %s; the honest offer should come second", first.Submitter, second.Submitter)
	}
	served := 2
	for q.total > 0 {
		q.pop(ctx)
		served++
	}
	if served != queuedPerAuthor+1 {
		t.Fatalf("served %d offers; the flooder should have had %d places", served, queuedPerAuthor)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := q.pop(ctx); ok {
		t.Fatal("an empty queue served an offer")
	}
}

// A customer's offer is served before every stranger's, however many
// strangers wait.
func TestBidQueueServesCustomersFirst(t *testing.T) {
	q := newBidQueue()
	q.customer("regular")
	for i := range 3 {
		for _, s := range []string{"sybil-a", "sybil-b", "sybil-c"} {
			q.push(Offer{Submitter: peer.ID(s), Spec: Spec{Seed: uint64(i)}})
		}
	}
	q.push(Offer{Submitter: "regular"})
	if o, _ := q.pop(context.Background()); o.Submitter != "regular" {
		t.Fatalf("served %s before the customer", o.Submitter)
	}
}

// A submitter keeps at most maxBids bids for one job, however many peers
// bid: a Sybil crowd cannot grow its memory or its choice without end.
func TestBidsPerJobCapped(t *testing.T) {
	const jobID = "open-job"
	m, bid := bidTarget(t, jobID, 3)

	accepted := 0
	for range 5 {
		key, _ := identity.Generate()
		if ack := bid(key); ack.OK {
			accepted++
		} else if ack.Reason != "the job already has 3 bids" {
			t.Fatalf("refused with %q", ack.Reason)
		}
	}
	if accepted != 3 || len(m.bids[jobID]) != 3 {
		t.Fatalf("accepted %d bids, kept %d; want 3 of 5", accepted, len(m.bids[jobID]))
	}
}

// bidTarget is a submitter's market with jobID open for bids and at most
// maxBids kept, listening on loopback; bid sends it one signed bid from a
// new host with key and returns its answer.
func bidTarget(t *testing.T, jobID string, maxBids int) (*Market, func(key *identity.Key) AckMsg) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	subKey, _ := identity.Generate()
	sub := loopbackHost(t, subKey)
	book := NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), time.Now)
	m := NewMarket(subKey, sub, book, MarketOptions{}, slog.New(slog.DiscardHandler))
	m.maxBids = maxBids
	sub.SetStreamHandler(ProtocolBid, m.handleBid)
	m.bids[jobID] = nil
	return m, func(key *identity.Key) AckMsg {
		t.Helper()
		h := loopbackHost(t, key)
		h.Peerstore().AddAddrs(sub.ID(), sub.Addrs(), time.Minute)
		req, _ := wire.Seal(key, KindBid, time.Now(), BidMsg{Job: jobID, Price: 1, FreeSlots: 1})
		reply, err := exchange(ctx, h, sub.ID(), ProtocolBid, req, 4<<10)
		if err != nil {
			t.Fatal(err)
		}
		var ack AckMsg
		if err := openDirect(reply, KindAck, sub.ID(), time.Now(), &ack); err != nil {
			t.Fatal(err)
		}
		return ack
	}
}
