package job

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/wire"
)

// verdictFixture is a job of 3 workers, 2 of whom must agree, and a way to
// seal its verdicts and its workers' reveals.
type verdictFixture struct {
	t         testing.TB
	submitter *identity.Key
	workers   []*identity.Key
	offer     Offer
	id        string
	now       time.Time
}

func newVerdictFixture(t *testing.T, spec Spec) *verdictFixture {
	t.Helper()
	f := &verdictFixture{t: t, now: t0.Add(time.Minute)}
	f.submitter, _ = identity.Generate()
	for range 3 {
		k, _ := identity.Generate()
		f.workers = append(f.workers, k)
	}
	var err error
	if f.offer, err = NewOffer(f.submitter, spec, t0); err != nil {
		t.Fatal(err)
	}
	f.id = f.offer.ID.String()
	return f
}

func (f *verdictFixture) reveal(w int, result string) []byte {
	f.t.Helper()
	raw, err := wire.Seal(f.workers[w], KindReveal, f.now, RevealMsg{Job: f.id, Result: result, Salt: make([]byte, 32)})
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

func (f *verdictFixture) peer(w int) string { return f.workers[w].PeerID().String() }

func (f *verdictFixture) seal(v Verdict) []byte {
	f.t.Helper()
	v.Job, v.Offer = f.id, f.offer.Raw
	raw, err := wire.Seal(f.submitter, KindVerdict, f.now, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// A rejection is the submitter's claim that no quorum was reached; it
// marks the workers it names as failed network-wide and, for an escrowed
// job, is what workers co-sign a refund on. So it holds only when the
// reveals it carries show no quorum, by the submitter's own rule
// (verify.Decide), and names as dissenters only workers that revealed no
// result. Item 3 of issue #13: a rejection listing three agreeing workers
// as dissenters was accepted, and every node lowered their reputation.
func TestOpenVerdictRejections(t *testing.T) {
	f := newVerdictFixture(t, validSpec()) // exact, 2 of 3
	good, bad, other := fakeCID("good"), fakeCID("bad"), fakeCID("other")
	cases := []struct {
		name     string
		v        Verdict
		wantErr  error // nil: accepted
		revealed int   // reveals kept as evidence when accepted
		unproven int
	}{
		{"forged: all three agreed, named dissenters", Verdict{
			Dissented: []string{f.peer(0), f.peer(1), f.peer(2)},
			Reveals:   [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, good)},
		}, ErrForgedRejection, 0, 0},
		{"forged: two agreed, the reveals carried unnamed", Verdict{
			Dissented: []string{f.peer(2)},
			Reveals:   [][]byte{f.reveal(0, good), f.reveal(1, good)},
		}, ErrForgedRejection, 0, 0},
		{"forged: a worker that revealed a result named a dissenter", Verdict{
			Dissented: []string{f.peer(0)},
			Reveals:   [][]byte{f.reveal(0, good), f.reveal(1, bad), f.reveal(2, other)},
		}, ErrForgedRejection, 0, 0},
		{"forged: a rejection that names agreeing workers", Verdict{
			Agreed:  []string{f.peer(0)},
			Reveals: [][]byte{f.reveal(0, good), f.reveal(1, bad)},
		}, ErrForgedRejection, 0, 0},
		{"honest: three different results, nobody blamed", Verdict{
			Reveals: [][]byte{f.reveal(0, good), f.reveal(1, bad), f.reveal(2, other)},
		}, nil, 3, 0},
		{"honest: two differ, the third missed the deadline", Verdict{
			Dissented: []string{f.peer(2)},
			Reasons:   map[string]string{f.peer(2): "did not commit a result by the report deadline"},
			Reveals:   [][]byte{f.reveal(0, good), f.reveal(1, bad)},
		}, nil, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OpenVerdict(f.seal(tc.v), f.now)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("OpenVerdict = %+v, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("honest rejection refused: %v", err)
			}
			if got.Accepted != "" || len(got.Agreed) != 0 || len(got.Dissented) != 0 ||
				len(got.Revealed) != tc.revealed || len(got.Unproven) != tc.unproven {
				t.Fatalf("checked rejection %+v: want %d reveals as evidence, %d unproven, nobody proven wrong", got, tc.revealed, tc.unproven)
			}
		})
	}
}

// A spot-checked job is rejected only when two runs are compared and
// differ (decide asks Decide with M = 2): one worker's reveal alone is no
// quorum, so the rejection of a run whose verifier and tie-breaker failed
// holds; a rejection of two agreeing runs does not.
func TestOpenVerdictSpotRejection(t *testing.T) {
	spec := validSpec()
	spec.Verify = VerificationPolicy{Mode: VerifySpot, Workers: 1, Quorum: 1, SpotPermille: 1000}
	f := newVerdictFixture(t, spec)
	good := fakeCID("good")
	failed := Verdict{Dissented: []string{f.peer(1), f.peer(2)}, Reveals: [][]byte{f.reveal(0, good)}}
	if _, err := OpenVerdict(f.seal(failed), f.now); err != nil {
		t.Fatalf("honest spot rejection refused: %v", err)
	}
	agreed := Verdict{Reveals: [][]byte{f.reveal(0, good), f.reveal(1, good)}}
	if _, err := OpenVerdict(f.seal(agreed), f.now); !errors.Is(err, ErrForgedRejection) {
		t.Fatalf("rejection of two agreeing runs: %v, want ErrForgedRejection", err)
	}
}

// countingOpen is wire.Open that counts the reveals it checks.
func countingOpen(reveals *atomic.Int64) openFunc {
	return func(data []byte, kind string, lim wire.Limits, now time.Time) (wire.Opened, error) {
		if kind == KindReveal {
			reveals.Add(1)
		}
		return wire.Open(data, kind, lim, now)
	}
}

// Every node that a verdict reaches checks each reveal's signature, so a
// verdict padded with copies of one reveal, or with more reveals than the
// job has workers, multiplied every node's work (item 7 of issue #13).
// Those are refused before any reveal is checked; an honest verdict costs
// one check per distinct reveal.
func TestVerdictRevealChecks(t *testing.T) {
	f := newVerdictFixture(t, validSpec()) // k = 3
	good, bad := fakeCID("good"), fakeCID("bad")
	honest := Verdict{Accepted: good, Agreed: []string{f.peer(0), f.peer(1)}, Dissented: []string{f.peer(2)},
		Reveals: [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, bad)}}
	dup := honest
	dup.Reveals = [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, bad)}
	for range 40 {
		dup.Reveals = append(dup.Reveals, dup.Reveals[0])
	}
	// Same signer, another message: a duplicate all the same.
	resigned := honest
	resigned.Reveals = [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, bad), f.reveal(2, fakeCID("again"))}
	// More reveals than the job (k = 3, up to 2 tie-breakers) had workers.
	var surplus Verdict
	for range 6 {
		k, _ := identity.Generate()
		raw, _ := wire.Seal(k, KindReveal, f.now, RevealMsg{Job: f.id, Result: good, Salt: make([]byte, 32)})
		surplus.Reveals = append(surplus.Reveals, raw)
	}
	cases := []struct {
		name    string
		v       Verdict
		wantErr error
		checks  int64
	}{
		{"honest: one check per reveal", honest, nil, 3},
		{"one reveal 41 times", dup, ErrVerdictReveals, 0},
		{"one worker's two reveals", resigned, ErrVerdictReveals, 0},
		{"more reveals than workers", surplus, ErrVerdictReveals, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var checks atomic.Int64
			_, err := openVerdict(f.seal(tc.v), f.now, countingOpen(&checks))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("openVerdict: %v, want %v", err, tc.wantErr)
			}
			if got := checks.Load(); got != tc.checks {
				t.Fatalf("%d reveal signatures checked, want %d", got, tc.checks)
			}
		})
	}
}

// verdictMarket is a worker's market over an in-memory book, with no
// network: the verdict paths are called directly.
func verdictMarket(t *testing.T, f *verdictFixture, penalized *[]peer.ID) (*Market, *Book) {
	t.Helper()
	key, _ := identity.Generate()
	book := NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), func() time.Time { return f.now })
	m := NewMarket(key, nil, book, MarketOptions{
		Penalize: func(p peer.ID, _ string) { *penalized = append(*penalized, p) },
	}, slog.New(slog.DiscardHandler))
	t.Cleanup(m.cancel) // never started: nothing to close but its context
	return m, book
}

// A node checks a verdict once, though it sees it up to three times (the
// gossip validator, the topic reader, the submitter's direct copy); and
// on the direct protocol, which anyone can open, it checks nothing about
// a job it does not work on for the sender.
func TestVerdictCheckedOncePerNode(t *testing.T) {
	ctx := t.Context()
	f := newVerdictFixture(t, validSpec())
	var penalized []peer.ID
	m, book := verdictMarket(t, f, &penalized)
	var checks atomic.Int64
	m.checkedVerdicts.check = countingOpen(&checks)
	good, bad := fakeCID("good"), fakeCID("bad")
	raw := f.seal(Verdict{Accepted: good, Agreed: []string{f.peer(0), f.peer(1)}, Dissented: []string{f.peer(2)},
		Reveals: [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, bad)}})

	if _, err := m.directVerdict(f.submitter.PeerID(), raw); err == nil || checks.Load() != 0 {
		t.Fatalf("verdict about a job this node does not work on: %v after %d reveal checks, want refused unchecked", err, checks.Load())
	}
	if _, err := book.Create(ctx, f.id, RoleWorker, f.offer.Raw, StateVerifying, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.directVerdict(f.workers[1].PeerID(), raw); err == nil || checks.Load() != 0 {
		t.Fatalf("verdict sent by someone else than the submitter: %v after %d reveal checks, want refused unchecked", err, checks.Load())
	}
	if err := m.ValidateVerdict(ctx, f.submitter.PeerID(), raw); err != nil {
		t.Fatal(err)
	}
	if _, err := m.openVerdict(raw); err != nil { // what readVerdicts does next
		t.Fatal(err)
	}
	if _, err := m.directVerdict(f.submitter.PeerID(), raw); err != nil {
		t.Fatal(err)
	}
	if got := checks.Load(); got != 3 {
		t.Fatalf("%d reveal signatures checked for a verdict of 3 reveals seen three times, want 3", got)
	}
	if len(penalized) != 0 {
		t.Fatalf("honest submitter penalised: %v", penalized)
	}
}

// A forged rejection (every worker agreed) from the job's own submitter is
// refused on both paths: the author is penalised, the worker's record does
// not turn failed, and no reputation table hears of it (only verdicts the
// validator passes reach OnVerdict).
func TestForgedRejectionChangesNothing(t *testing.T) {
	ctx := t.Context()
	f := newVerdictFixture(t, validSpec())
	var penalized []peer.ID
	m, book := verdictMarket(t, f, &penalized)
	if _, err := book.Create(ctx, f.id, RoleWorker, f.offer.Raw, StateVerifying, nil); err != nil {
		t.Fatal(err)
	}
	good := fakeCID("good")
	forged := f.seal(Verdict{Dissented: []string{f.peer(0), f.peer(1), f.peer(2)},
		Reasons: map[string]string{f.peer(0): "wrong", f.peer(1): "wrong", f.peer(2): "wrong"},
		Reveals: [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, good)}})
	if err := m.ValidateVerdict(ctx, f.submitter.PeerID(), forged); err == nil {
		t.Fatal("gossiped forged rejection passed validation: it would be relayed and counted")
	}
	if len(penalized) != 1 || penalized[0] != f.submitter.PeerID() {
		t.Fatalf("penalised %v, want the forger", penalized)
	}
	if _, err := m.directVerdict(f.submitter.PeerID(), forged); err == nil {
		t.Fatal("forged rejection accepted on the direct protocol")
	}
	rec, err := book.Get(ctx, f.id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateVerifying || rec.Verdict != nil {
		t.Fatalf("worker's record is %s with verdict %+v after a forged rejection, want verifying and none", rec.State, rec.Verdict)
	}
}

// FuzzOpenVerdict: verdicts come from any peer on the verdicts topic and
// the direct protocol. Whatever the bytes, OpenVerdict must not panic, and
// what it accepts must hold: nobody both agreeing and dissenting, and a
// rejection whose reveals reach no quorum. The seeds are real verdicts of
// a fixed job (keys from fixed seeds), honest and forged.
func FuzzOpenVerdict(f *testing.F) {
	fx := fuzzVerdictFixture(f)
	good, bad, other := fakeCID("good"), fakeCID("bad"), fakeCID("other")
	for _, v := range []Verdict{
		{Accepted: good, Agreed: []string{fx.peer(0), fx.peer(1)}, Dissented: []string{fx.peer(2)},
			Reveals: [][]byte{fx.reveal(0, good), fx.reveal(1, good), fx.reveal(2, bad)}},
		{Reveals: [][]byte{fx.reveal(0, good), fx.reveal(1, bad), fx.reveal(2, other)}},
		{Dissented: []string{fx.peer(2)}, Reveals: [][]byte{fx.reveal(0, good), fx.reveal(1, bad)}},
		{Dissented: []string{fx.peer(0), fx.peer(1), fx.peer(2)},
			Reveals: [][]byte{fx.reveal(0, good), fx.reveal(1, good), fx.reveal(2, good)}},
		{Accepted: good, Agreed: []string{fx.peer(0), fx.peer(1)},
			Reveals: [][]byte{fx.reveal(0, good), fx.reveal(1, good), fx.reveal(1, good)}},
	} {
		f.Add(fx.seal(v))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := OpenVerdict(raw, fx.now)
		if err != nil {
			return
		}
		for _, p := range v.Agreed {
			if slices.Contains(v.Dissented, p) || slices.Contains(v.Unproven, p) {
				t.Fatalf("%s both agreed and dissented", p)
			}
		}
		if v.Accepted == "" {
			count := map[string]int{}
			for _, r := range v.Revealed {
				count[r]++
				if count[r] >= 2 && r != "" {
					t.Fatalf("rejection accepted with %d reveals of %s (quorum 2)", count[r], r)
				}
			}
		}
	})
}

// fuzzVerdictFixture is newVerdictFixture with keys from fixed seeds, so
// that the seeds' signatures stay valid across runs.
func fuzzVerdictFixture(tb testing.TB) *verdictFixture {
	tb.Helper()
	key := func(name string) *identity.Key {
		seed := sha256.Sum256([]byte(name))
		k, err := identity.FromPrivateKey(ed25519.NewKeyFromSeed(seed[:]))
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	fx := &verdictFixture{t: tb, now: t0.Add(time.Minute), submitter: key("submitter")}
	for _, w := range []string{"a", "b", "c"} {
		fx.workers = append(fx.workers, key("worker-"+w))
	}
	var err error
	if fx.offer, err = NewOffer(fx.submitter, validSpec(), t0); err != nil {
		tb.Fatal(err)
	}
	fx.id = fx.offer.ID.String()
	return fx
}

// A node checks an offer's signature once, though it opens the same bytes
// as they are gossiped, as its market reads them, and inside the job's
// verdict; a changed byte is checked, and refused, all the same.
func TestOfferSignatureCheckedOncePerNode(t *testing.T) {
	ctx := t.Context()
	f := newVerdictFixture(t, validSpec())
	var penalized []peer.ID
	m, _ := verdictMarket(t, f, &penalized)
	from := f.submitter.PeerID()
	for range 2 {
		if err := m.ValidateOffer(ctx, from, f.offer.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := m.openOffer(f.offer.Raw); err != nil || o.ID != f.offer.ID {
		t.Fatalf("openOffer = %v, %v", o.ID, err)
	}
	good := fakeCID("good")
	verdict := f.seal(Verdict{Accepted: good, Agreed: []string{f.peer(0), f.peer(1), f.peer(2)},
		Reveals: [][]byte{f.reveal(0, good), f.reveal(1, good), f.reveal(2, good)}})
	if err := m.ValidateVerdict(ctx, from, verdict); err != nil {
		t.Fatal(err)
	}
	if n := m.offerSigs.Checked(); n != 1 {
		t.Fatalf("the offer's signature was checked %d times, want 1", n)
	}

	var env wire.Envelope
	if err := wire.Unmarshal(f.offer.Raw, &env); err != nil {
		t.Fatal(err)
	}
	env.Sig[0] ^= 1
	forged, _ := wire.Marshal(env)
	if err := m.ValidateOffer(ctx, from, forged); !errors.Is(err, wire.ErrBadSignature) {
		t.Fatalf("an offer with a changed signature: %v, want %v", err, wire.ErrBadSignature)
	}
}
