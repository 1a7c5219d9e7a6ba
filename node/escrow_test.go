package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/escrow"
	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/job"
)

func testCID(s string) string {
	h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h).String()
}

// approveEscrow is the node's say on what its escrow signer co-signs,
// from its own job record (issue #13, items 2 and 6): a worker of a 2-of-3
// escrowed job whose three workers agreed refuses a release that leaves
// one of them out or pays a stranger, and a refund on a rejection that
// proves nothing. On e5867cf it signed all three.
func TestApproveEscrow(t *testing.T) {
	ctx := t.Context()
	sub, self := newTestKey(t), newTestKey(t)
	var workers []peer.ID
	var keys []solana.PublicKey
	for _, k := range []*identity.Key{self, newTestKey(t), newTestKey(t)} {
		workers = append(workers, k.PeerID())
		keys = append(keys, solana.PublicKeyFromBytes(k.PublicKey()))
	}
	outsider := solana.PublicKeyFromBytes(newTestKey(t).PublicKey())
	subKey := solana.PublicKeyFromBytes(sub.PublicKey())
	const reward = 1000
	good := testCID("good")
	spec := job.Spec{Executor: job.ExecutorWASM, Module: testCID("module"),
		Needs:  job.Resources{MemoryBytes: 256 << 20, TimeoutMS: 60_000},
		Verify: job.VerificationPolicy{Mode: job.VerifyExact, Workers: 3, Quorum: 2},
		Reward: reward, Mint: solana.PublicKeyFromBytes(newTestKey(t).PublicKey()).String(), Escrow: true,
		Deadline: time.Now().Add(time.Hour).UnixMilli(), Nonce: []byte("0123456789abcdef")}
	offer, err := job.NewOffer(sub, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	client, err := chain.New(chain.DefaultConfig(), self, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	book := job.NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), nil)
	n := &Node{jobs: book, settle: &settlement{client: client}}

	names := func(ps []peer.ID) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	pay := func(to solana.PublicKey, amount uint64) chain.Payout {
		return chain.Payout{Recipient: to, Amount: amount}
	}
	cases := []struct {
		name    string
		verdict *job.VerdictRecord
		req     escrow.SignRequest
		wantErr string // empty: signed
	}{
		{"release paying the three agreeing workers",
			&job.VerdictRecord{Accepted: good, Agreed: names(workers), Author: sub.PeerID().String()},
			escrow.SignRequest{Kind: escrow.KindRelease, ResultCID: good, Payouts: []chain.Payout{pay(keys[0], reward), pay(keys[1], reward), pay(keys[2], reward)}}, ""},
		{"release leaving out an agreeing worker",
			&job.VerdictRecord{Accepted: good, Agreed: names(workers), Author: sub.PeerID().String()},
			escrow.SignRequest{Kind: escrow.KindRelease, ResultCID: good, Payouts: []chain.Payout{pay(keys[0], reward), pay(keys[1], reward), pay(subKey, reward)}}, "who agreed"},
		{"release paying a stranger",
			&job.VerdictRecord{Accepted: good, Agreed: names(workers[:2]), Author: sub.PeerID().String()},
			escrow.SignRequest{Kind: escrow.KindRelease, ResultCID: good, Payouts: []chain.Payout{pay(keys[0], reward), pay(keys[1], reward), pay(outsider, reward)}}, "not one of the job's"},
		{"refund on a rejection without reveals, after committing",
			&job.VerdictRecord{Author: sub.PeerID().String(), Dissented: names(workers)},
			escrow.SignRequest{Kind: escrow.KindRefund, Payouts: []chain.Payout{pay(subKey, 3*reward)}}, "could reach the quorum"},
		{"refund on a rejection whose reveals all differ",
			&job.VerdictRecord{Author: sub.PeerID().String(), Revealed: map[string]string{
				workers[0].String(): good, workers[1].String(): testCID("b"), workers[2].String(): testCID("c")}},
			escrow.SignRequest{Kind: escrow.KindRefund, Payouts: []chain.Payout{pay(subKey, 3*reward)}}, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := offer.ID.String() + "-" + string(rune('a'+i))
			if _, err := book.Create(ctx, id, job.RoleWorker, offer.Raw, job.StateVerifying, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := book.Update(ctx, id, func(r *job.Record) {
				r.Workers, r.Result, r.Salt, r.Verdict = workers, good, []byte("salt"), tc.verdict
			}); err != nil {
				t.Fatal(err)
			}
			err := n.approveEscrow(ctx, id, tc.req)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("approveEscrow = %v, want a refusal with %q", err, tc.wantErr)
			}
		})
	}
}

// newTestKey is a fresh node key.
func newTestKey(t *testing.T) *identity.Key {
	t.Helper()
	k, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
