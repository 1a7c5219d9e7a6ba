package job

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Limits of the worker's queue of offers to consider.
const (
	// queuedOffers is how many offers may wait for a bidder in all.
	queuedOffers = 256
	// queuedPerAuthor is how many of one author's offers may wait: a
	// flooding author fills its own few places, not the queue.
	queuedPerAuthor = 4
	// maxCustomers bounds the submitters remembered as customers.
	maxCustomers = 10_000
)

// bidQueue holds the offers a worker will consider. Offers from customers
// (submitters that accepted a result of this worker: with settlement on,
// that paid it) are served before strangers' offers, so a crowd of fresh
// identities cannot delay the people who pay; within each lane authors take turns, so a flooding
// identity gets one turn like everyone else, and an offer waits for one
// turn of the crowd, not for all of its offers. An offer that finds no
// place is not lost for good: its submitter gossips it again while it is
// open.
type bidQueue struct {
	mu        sync.Mutex
	customers map[peer.ID]struct{}
	lanes     [2]lane // 0: customers, 1: strangers
	total     int
	ready     chan struct{} // a token while offers wait
}

// lane is a round-robin of authors, each with its offers in order.
type lane struct {
	byAuthor map[peer.ID][]Offer
	turns    []peer.ID // authors with offers waiting, in serving order
}

func newBidQueue() *bidQueue {
	q := &bidQueue{customers: map[peer.ID]struct{}{}, ready: make(chan struct{}, 1)}
	for i := range q.lanes {
		q.lanes[i].byAuthor = map[peer.ID][]Offer{}
	}
	return q
}

// customer records that submitter accepted a result of this worker.
func (q *bidQueue) customer(submitter peer.ID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.customers) >= maxCustomers {
		clear(q.customers) // they earn their place back with their next job
	}
	q.customers[submitter] = struct{}{}
}

// push queues o and reports whether it found a place.
func (q *bidQueue) push(o Offer) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := &q.lanes[1]
	if _, ok := q.customers[o.Submitter]; ok {
		l = &q.lanes[0]
	}
	waiting := l.byAuthor[o.Submitter]
	if q.total >= queuedOffers || len(waiting) >= queuedPerAuthor {
		return false
	}
	if len(waiting) == 0 {
		l.turns = append(l.turns, o.Submitter)
	}
	l.byAuthor[o.Submitter] = append(waiting, o)
	q.total++
	q.signal()
	return true
}

// pop waits for the next offer; false when ctx ends.
func (q *bidQueue) pop(ctx context.Context) (Offer, bool) {
	for {
		q.mu.Lock()
		for i := range q.lanes {
			if o, ok := q.lanes[i].next(); ok {
				q.total--
				if q.total > 0 {
					q.signal() // wake the next bidder
				}
				q.mu.Unlock()
				return o, true
			}
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Offer{}, false
		case <-q.ready:
		}
	}
}

// next takes the oldest offer of the author whose turn it is.
func (l *lane) next() (Offer, bool) {
	if len(l.turns) == 0 {
		return Offer{}, false
	}
	author := l.turns[0]
	l.turns = l.turns[1:]
	waiting := l.byAuthor[author]
	o := waiting[0]
	if len(waiting) > 1 {
		l.byAuthor[author] = waiting[1:]
		l.turns = append(l.turns, author) // to the back of the line
	} else {
		delete(l.byAuthor, author)
	}
	return o, true
}

func (q *bidQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
