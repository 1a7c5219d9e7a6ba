package job

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// openBid is a bid this worker sent and not yet seen assigned: the only
// assignments it accepts are for these, from the job's submitter.
type openBid struct {
	submitter peer.ID
	price     uint64
	expires   time.Time
}

// openBids are a worker's bids waiting for their assignment, at most max
// of them. When full, the oldest bid of the submitter holding the most is
// forgotten: a flood of offers (many from one author, or from many Sybil
// authors, as long as they are fewer than max) then costs its own bids
// their place, never the one or two of an honest submitter, whose
// assignment would otherwise be refused as unsolicited. The caller holds
// the lock that guards it.
type openBids struct {
	max         int
	byJob       map[string]openBid
	bySubmitter map[peer.ID][]string // job IDs, oldest first
}

func newOpenBids(max int) *openBids {
	return &openBids{max: max, byJob: map[string]openBid{}, bySubmitter: map[peer.ID][]string{}}
}

func (b *openBids) get(id string) (openBid, bool) {
	bid, ok := b.byJob[id]
	return bid, ok
}

// add remembers a bid, making room first if the table is full.
func (b *openBids) add(id string, bid openBid, now time.Time) {
	b.remove(id)
	if len(b.byJob) >= b.max {
		for id, old := range b.byJob {
			if now.After(old.expires) {
				b.remove(id)
			}
		}
	}
	if len(b.byJob) >= b.max {
		b.evictFromLargest()
	}
	b.byJob[id] = bid
	b.bySubmitter[bid.submitter] = append(b.bySubmitter[bid.submitter], id)
}

func (b *openBids) remove(id string) {
	bid, ok := b.byJob[id]
	if !ok {
		return
	}
	delete(b.byJob, id)
	ids := slices.DeleteFunc(b.bySubmitter[bid.submitter], func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(b.bySubmitter, bid.submitter)
	} else {
		b.bySubmitter[bid.submitter] = ids
	}
}

// evictFromLargest forgets the oldest bid of the submitter with the most.
func (b *openBids) evictFromLargest() {
	var largest peer.ID
	for s, ids := range b.bySubmitter {
		if n, m := len(ids), len(b.bySubmitter[largest]); n > m || (n == m && s < largest) {
			largest = s
		}
	}
	if ids := b.bySubmitter[largest]; len(ids) > 0 {
		b.remove(ids[0])
	}
}
