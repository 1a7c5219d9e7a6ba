package job

import (
	"bytes"
	"testing"
	"time"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// fuzzNow is the clock the fuzzers open messages at: the seeds are
// signed at it, so mutations reach past the freshness check.
var fuzzNow = time.Now()

// FuzzOpenOffer: any bytes gossiped on the offers topic are refused or
// give an offer whose spec is valid and whose ID is the CID of exactly
// those bytes; nothing panics.
func FuzzOpenOffer(f *testing.F) {
	key, _ := identity.Generate()
	spec := validSpec()
	spec.Deadline = fuzzNow.Add(time.Hour).UnixMilli()
	o, err := NewOffer(key, spec, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(o.Raw)
	cancel, _ := NewCancel(key, o.ID, "wrong input", fuzzNow)
	f.Add(cancel)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := OpenOffer(data, fuzzNow)
		if err != nil {
			return
		}
		if err := got.Spec.Validate(fuzzNow); err != nil {
			t.Fatalf("opened an offer whose spec is invalid: %v", err)
		}
		id, err := offerID(data)
		if err != nil || !id.Equals(got.ID) || !bytes.Equal(got.Raw, data) {
			t.Fatalf("offer ID %s is not the CID of its bytes (%s, %v)", got.ID, id, err)
		}
		if _, err := OpenCancel(cancel, got, fuzzNow); err == nil && got.Submitter != key.PeerID() {
			t.Fatal("a cancel opened against another author's offer")
		}
	})
}

// FuzzOpenDirect: every kind that arrives on a direct stream (bids,
// invitations, assignments, acks, commitments, reveals and their
// requests, started, progress) is refused or decoded, signed by the peer at the other end; nothing
// panics, whatever the bytes and whichever kind they claim.
func FuzzOpenDirect(f *testing.F) {
	key, _ := identity.Generate()
	spec := validSpec()
	spec.Deadline = fuzzNow.Add(time.Hour).UnixMilli()
	o, _ := NewOffer(key, spec, fuzzNow)
	id := o.ID.String()
	for _, m := range []struct {
		kind string
		body any
	}{
		{KindBid, BidMsg{Job: id, Price: 1000, FreeSlots: 2}},
		{KindInvite, InviteMsg{Offer: o.Raw}},
		{KindAssign, AssignMsg{Job: id, Offer: o.Raw, Workers: []string{key.PeerID().String()}}},
		{KindAck, AckMsg{Job: id, OK: true}},
		{KindCommit, CommitMsg{Job: id, Commitment: bytes.Repeat([]byte{7}, 32)}},
		{KindRevealRequest, RevealRequest{Job: id}},
		{KindReveal, RevealMsg{Job: id, Result: fakeCID("result"), Salt: bytes.Repeat([]byte{1}, 16)}},
		{KindStarted, StartedMsg{Job: id}},
		{KindProgress, ProgressMsg{Job: id, Stage: StageStaging, StagedBytes: 1 << 30}},
	} {
		raw, err := wire.Seal(key, m.kind, fuzzNow, m.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	from := key.PeerID()
	f.Fuzz(func(t *testing.T, data []byte) {
		var (
			bid    BidMsg
			invite InviteMsg
			assign AssignMsg
			ack    AckMsg
			commit CommitMsg
			req    RevealRequest
			reveal RevealMsg
			start  StartedMsg
			prog   ProgressMsg
		)
		opened := 0
		for kind, v := range map[string]any{KindBid: &bid, KindInvite: &invite, KindAssign: &assign, KindAck: &ack, KindCommit: &commit,
			KindRevealRequest: &req, KindReveal: &reveal, KindStarted: &start, KindProgress: &prog} {
			if openDirect(data, kind, from, fuzzNow, v) == nil {
				opened++
			}
		}
		if opened > 1 {
			t.Fatalf("one message opened as %d kinds", opened)
		}
		for _, nested := range [][]byte{assign.Offer, invite.Offer} {
			if nested != nil {
				OpenOffer(nested, fuzzNow) // the nested offer goes through the same checks
			}
		}
	})
}
