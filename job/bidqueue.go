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
)

// bidQueue holds the offers a worker will consider, served round-robin
// by author: a crowd of flooding identities gets a turn each, and an
// honest submitter's offer waits for one turn of the crowd, not for all
// of its offers. An offer that finds no place is not lost for good: its
// submitter gossips it again while it is open.
type bidQueue struct {
	mu       sync.Mutex
	byAuthor map[peer.ID][]Offer
	turns    []peer.ID // authors with offers waiting, in serving order
	total    int
	ready    chan struct{} // a token while offers wait
}

func newBidQueue() *bidQueue {
	return &bidQueue{byAuthor: map[peer.ID][]Offer{}, ready: make(chan struct{}, 1)}
}

// push queues o and reports whether it found a place.
func (q *bidQueue) push(o Offer) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.byAuthor[o.Submitter]
	if q.total >= queuedOffers || len(waiting) >= queuedPerAuthor {
		return false
	}
	if len(waiting) == 0 {
		q.turns = append(q.turns, o.Submitter)
	}
	q.byAuthor[o.Submitter] = append(waiting, o)
	q.total++
	q.signal()
	return true
}

// pop waits for the next author's oldest offer; false when ctx ends.
func (q *bidQueue) pop(ctx context.Context) (Offer, bool) {
	for {
		q.mu.Lock()
		if len(q.turns) > 0 {
			author := q.turns[0]
			q.turns = q.turns[1:]
			waiting := q.byAuthor[author]
			o := waiting[0]
			if len(waiting) > 1 {
				q.byAuthor[author] = waiting[1:]
				q.turns = append(q.turns, author) // to the back of the line
			} else {
				delete(q.byAuthor, author)
			}
			q.total--
			if q.total > 0 {
				q.signal() // wake the next bidder
			}
			q.mu.Unlock()
			return o, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Offer{}, false
		case <-q.ready:
		}
	}
}

func (q *bidQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}
