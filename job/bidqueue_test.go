package job

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
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
