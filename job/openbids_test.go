package job

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A full table of open bids makes room from the submitter that holds the
// most, so an honest submitter's bid survives a flood of offers from one
// author or from many Sybils (fewer than the table has places: beyond
// that no table of bounded size can tell them apart); expired bids go
// first.
func TestOpenBidsSurviveAFlood(t *testing.T) {
	now := time.Now()
	later := now.Add(10 * time.Minute)
	cases := []struct {
		name  string
		flood func(b *openBids) // fills the table past its size
	}{
		{"one author floods", func(b *openBids) {
			for i := range 500 {
				b.add(fmt.Sprint("flood", i), openBid{submitter: "flooder", expires: later}, now)
			}
		}},
		{"Sybils flood", func(b *openBids) {
			for i := range 500 {
				b.add(fmt.Sprint("sybil", i), openBid{submitter: peer.ID(fmt.Sprint("sybil", i%20)), expires: later}, now)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newOpenBids(64)
			b.add("old", openBid{submitter: "honest", expires: now.Add(-time.Second)}, now) // expired
			b.add("honest", openBid{submitter: "honest", expires: later}, now)
			tc.flood(b)
			if _, ok := b.get("honest"); !ok {
				t.Fatal("the honest submitter's bid was forgotten in the flood")
			}
			if _, ok := b.get("old"); ok {
				t.Fatal("an expired bid was kept while live ones were dropped")
			}
			if len(b.byJob) > 64 {
				t.Fatalf("%d bids remembered, the cap is 64", len(b.byJob))
			}
			total := 0
			for _, ids := range b.bySubmitter {
				total += len(ids)
			}
			if total != len(b.byJob) {
				t.Fatalf("indexes disagree: %d by submitter, %d by job", total, len(b.byJob))
			}
			b.remove("honest")
			if _, ok := b.bySubmitter["honest"]; ok {
				t.Fatal("a submitter without bids is still indexed")
			}
		})
	}
}
