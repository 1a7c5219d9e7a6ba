package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gagliardetto/solana-go"
	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/vft-network/vft/api"
	"github.com/vft-network/vft/chain"
	"github.com/vft-network/vft/internal/units"
	"github.com/vft-network/vft/job"
)

// summarize counts what the node's own wallet was paid as a worker (not
// the other workers' payouts a rescued job records, nor what went back to
// a submitter) and what it paid as a submitter, per currency.
func TestSummarize(t *testing.T) {
	const self, other, mint = "SELFwallet", "OTHERwallet", "Gh9ZwEmdLJ8DscKNTkTqPbNwLNNBjuSzaG9Vp2KGtKJr"
	token := units.Token(mint, 6)
	now := time.Now()
	recs := []job.Record{ // newest first, as Book.List gives them
		{ID: "rescued", Role: job.RoleWorker, UpdatedAt: now, Payouts: []job.Payout{
			{Recipient: self, Amount: 40_000}, {Recipient: other, Amount: 40_000}, {Recipient: other, Amount: 40_000, Returned: true}}},
		{ID: "submitted", Role: job.RoleSubmitter, UpdatedAt: now.Add(-time.Minute), Payouts: []job.Payout{
			{Recipient: other, Amount: 5000}, {Recipient: self, Amount: 5000, Returned: true}}},
		{ID: "no payouts", Role: job.RoleWorker, UpdatedAt: now.Add(-2 * time.Minute)},
		{ID: "worked", Role: job.RoleWorker, UpdatedAt: now.Add(-3 * time.Minute), Payouts: []job.Payout{{Recipient: self, Amount: 5000}}},
		{ID: "worked earlier", Role: job.RoleWorker, UpdatedAt: now.Add(-4 * time.Minute), Payouts: []job.Payout{{Recipient: self, Amount: 7000}}},
	}
	currency := func(rec job.Record) units.Currency {
		if rec.ID == "rescued" {
			return token
		}
		return units.SOL
	}
	got := summarize(recs, self, currency, 3)
	wantEarned := []api.Total{{Currency: units.SOL, Amount: 12_000, Jobs: 2}, {Currency: token, Amount: 40_000, Jobs: 1}}
	if len(got.Earned) != 2 || got.Earned[0] != wantEarned[0] || got.Earned[1] != wantEarned[1] {
		t.Fatalf("earned %+v, want %+v", got.Earned, wantEarned)
	}
	if len(got.Paid) != 1 || got.Paid[0] != (api.Total{Currency: units.SOL, Amount: 5000, Jobs: 1}) {
		t.Fatalf("paid %+v, want 5000 lamports over one job", got.Paid)
	}
	var ids []string
	for _, j := range got.Jobs {
		ids = append(ids, j.Job)
	}
	if strings.Join(ids, ",") != "rescued,submitted,worked" || got.Jobs[0].Earned != 40_000 || got.Jobs[1].Paid != 5000 {
		t.Fatalf("jobs %+v, want the 3 newest with payouts", got.Jobs)
	}
}

// A worker whose payment never shows up stops looking a day past the
// job's deadline and says so in the job's history, so a restart does not
// look again; before that it only waits longer between looks.
func TestEarningsGiveUp(t *testing.T) {
	ctx := t.Context()
	sub, self := newTestKey(t), newTestKey(t)
	cfg := chain.DefaultConfig()
	cfg.RPC, cfg.MaxRetries = "http://127.0.0.1:9", 0 // nothing answers
	client, err := chain.New(cfg, self, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	book := job.NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), nil)
	now := time.Now()
	doneJob := func(id string, deadline time.Time) job.Record {
		spec := job.Spec{Executor: job.ExecutorWASM, Module: testCID("module"),
			Needs:  job.Resources{MemoryBytes: 256 << 20, TimeoutMS: 60_000},
			Verify: job.VerificationPolicy{Mode: job.VerifyExact, Workers: 1, Quorum: 1},
			Reward: 5000, Deadline: deadline.UnixMilli(), Nonce: []byte("0123456789abcdef")}
		offer, err := job.NewOffer(sub, spec, deadline.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := book.Create(ctx, id, job.RoleWorker, offer.Raw, job.StateDone, nil); err != nil {
			t.Fatal(err)
		}
		rec, err := book.Update(ctx, id, func(r *job.Record) { r.Result = testCID("result") })
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	wallet := solana.PublicKeyFromBytes(self.PublicKey())
	e := &earnings{book: book, client: client, wallet: wallet, self: self.PeerID().String(),
		log: slog.New(slog.DiscardHandler), now: func() time.Time { return now }, kick: make(chan string, 1), pending: map[string]*lookup{}}

	old := doneJob("old", now.Add(-25*time.Hour))
	recent := doneJob("recent", now.Add(-time.Hour))
	for _, rec := range []job.Record{old, recent} {
		if !e.wanted(rec) {
			t.Fatalf("job %s is done without a payout, but not looked for", rec.ID)
		}
		e.add(rec)
	}
	e.lookDue(ctx)

	if _, ok := e.pending["old"]; ok {
		t.Fatal("still looking for the payment of a job a day past its deadline")
	}
	rec, _ := book.Get(ctx, "old")
	if note := rec.History[len(rec.History)-1].Note; !strings.HasPrefix(note, noteNoPayment) || !strings.Contains(note, wallet.String()) {
		t.Fatalf("last note %q, want it to say no payment was found for %s", note, wallet)
	}
	if e.wanted(rec) {
		t.Fatal("a job given up on would be looked for again after a restart")
	}
	l := e.pending["recent"]
	if l == nil || l.wait != 2*earningsFirstWait || !l.next.Equal(now.Add(earningsFirstWait)) {
		t.Fatalf("recent job's lookup %+v: want the next look in %v, then twice as long", l, earningsFirstWait)
	}
	if rec, _ := book.Get(ctx, "recent"); len(rec.History) != 1 {
		t.Fatalf("a job still being looked for got notes: %+v", rec.History)
	}
}
