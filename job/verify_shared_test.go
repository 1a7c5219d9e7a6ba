package job

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/vft-network/vft/identity"
	"github.com/vft-network/vft/verify"
	"github.com/vft-network/vft/verify/sim"
)

// sharedMarket is a real submitter-side Market on a loopback host, with
// the verdicts it hands to node/ recorded.
type sharedMarket struct {
	*Market
	key      *identity.Key
	book     *Book
	mu       sync.Mutex
	verdicts []CheckedVerdict
}

func newSharedMarket(t *testing.T) *sharedMarket {
	t.Helper()
	key, _ := identity.Generate()
	s := &sharedMarket{key: key, book: NewBook(dssync.MutexWrap(datastore.NewMapDatastore()), nil)}
	s.Market = NewMarket(key, loopbackHost(t, key), s.book, MarketOptions{OnVerdict: func(v CheckedVerdict) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.verdicts = append(s.verdicts, v)
	}}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { s.Close() })
	return s
}

// job records a submitted job in verifying with these workers and their
// reports ("error: …" for a failed run), as reveal leaves it for decide.
func (s *sharedMarket) job(t *testing.T, pol VerificationPolicy, nonce int, workers []peer.ID, reports []string) (Offer, Record) {
	t.Helper()
	spec := validSpec()
	spec.Verify = pol
	spec.Deadline = time.Now().Add(time.Hour).UnixMilli()
	spec.Nonce = fmt.Appendf(nil, "nonce-%08d", nonce)
	o, err := NewOffer(s.key, spec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.book.Create(ctx, o.ID.String(), RoleSubmitter, o.Raw, StateVerifying, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := s.book.Update(ctx, o.ID.String(), func(r *Record) {
		r.Workers, r.Reports = workers, map[string]string{}
		for i, w := range workers {
			r.Reports[w.String()] = reports[i]
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return o, rec
}

func peers(t *testing.T, n int) []peer.ID {
	t.Helper()
	out := make([]peer.ID, n)
	for i := range out {
		k, err := identity.Generate()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k.PeerID()
	}
	return out
}

// TestMarketAndSimulatorDecideAlike: for the same policy, reports and
// secret, the market's decide does what the simulator's decision says:
// the same result accepted with the same workers agreeing, the same
// rejection, the same number of workers asked for. Spot jobs run over
// many nonces, so both sides of the draw are compared.
func TestMarketAndSimulatorDecideAlike(t *testing.T) {
	m := newSharedMarket(t)
	w := peers(t, 5)
	exact := VerificationPolicy{Mode: VerifyExact, Workers: 3, Quorum: 2}
	spot := VerificationPolicy{Mode: VerifySpot, Workers: 1, SpotPermille: 500}
	x, y, z := fakeCID("x"), fakeCID("y"), fakeCID("z")
	type tc struct {
		name    string
		pol     VerificationPolicy
		workers []peer.ID
		reports []string
	}
	cases := []tc{
		{"exact: two of three agree", exact, w[:3], []string{x, y, x}},
		{"exact: split, a tie-breaker", exact, w[:3], []string{x, y, z}},
		{"exact: a failure and a split, a tie-breaker", exact, w[:3], []string{x, "error: trap", y}},
		{"exact: split after two tie-breakers, rejected", exact, w[:5], []string{x, y, z, fakeCID("v"), fakeCID("u")}},
		{"exact: the program fails alike", exact, w[:3], []string{"error: exit code 3", "error: exit code 3", x}},
		{"spot: worker and verifier disagree, a third worker", spot, w[:2], []string{x, y}},
		{"spot: worker and verifier agree", spot, w[:2], []string{x, x}},
	}
	for i := range 24 {
		cases = append(cases, tc{fmt.Sprintf("spot: one worker, draw %d", i), spot, w[:1], []string{x}})
	}
	drawn := 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, rec := m.job(t, c.pol, i, c.workers, c.reports)
			var reports []verify.Report
			for j, r := range c.reports {
				if failed, ok := cutError(r); ok {
					// The exit code is the program's own failure here.
					reports = append(reports, verify.Report{Worker: c.workers[j], Failed: failed, Failure: failureOf(failed)})
				} else {
					reports = append(reports, verify.Report{Worker: c.workers[j], Result: r})
				}
			}
			if c.reports[0] == "error: exit code 3" {
				m.book.Update(context.Background(), rec.ID, func(r *Record) {
					r.Failures = map[string]string{c.workers[0].String(): "exit code 3", c.workers[1].String(): "exit code 3"}
				})
				rec, _ = m.book.Get(context.Background(), rec.ID)
			}
			want := sim.Decide(c.pol, len(c.workers), reports, m.spotSecret(o.ID.String()))
			m.decide(rec)
			got, err := m.book.Get(context.Background(), rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want.Workers > 0:
				drawn++
				if got.Needed != want.Workers || got.State.Terminal() {
					t.Fatalf("market: %s needing %d workers; simulator: %d more workers (%s)", got.State, got.Needed, want.Workers, want.Why)
				}
			case want.Accepted != "":
				var agreed []string
				for _, p := range want.Agreed {
					agreed = append(agreed, p.String())
				}
				if got.State != StateDone || got.Result != want.Accepted || got.Verdict == nil || !slices.Equal(got.Verdict.Agreed, agreed) {
					t.Fatalf("market: %s with %q, verdict %+v; simulator: accept %q agreed by %v", got.State, got.Result, got.Verdict, want.Accepted, agreed)
				}
			default:
				if !want.Done || got.State != StateFailed || got.Verdict == nil || got.Verdict.Reason != want.Reason {
					t.Fatalf("market: %s, verdict %+v; simulator: %+v", got.State, got.Verdict, want)
				}
			}
		})
	}
	if drawn == 0 || drawn == len(cases) {
		t.Fatalf("%d of %d cases asked for workers: the spot cases should fall on both sides of the draw", drawn, len(cases))
	}
}

func cutError(r string) (string, bool) {
	if len(r) > 7 && r[:7] == "error: " {
		return r[7:], true
	}
	return "", false
}

func failureOf(failed string) string {
	if failed == "exit code 3" {
		return failed
	}
	return ""
}

// TestMarketAndSimulatorChooseAlike: for the same bids and job, the
// market assigns the workers the simulator's pick names.
func TestMarketAndSimulatorChooseAlike(t *testing.T) {
	m := newSharedMarket(t)
	w := peers(t, 12)
	for j := range 20 {
		o, _ := m.job(t, VerificationPolicy{Mode: VerifyExact, Workers: 3, Quorum: 2}, 1000+j, nil, nil)
		var bids []Bid
		for i, p := range w {
			// Strangers, proven workers, an excluded one (0), and one
			// asking more than the reward.
			rep := []float64{0.5, 0.9, 0.7, 0, 0.5, 0.95}[i%6]
			price := o.Spec.Reward
			if i == 5 {
				price++
			}
			bids = append(bids, Bid{Worker: p, Price: price, Reputation: rep, FreeSlots: uint32(i % 3)})
		}
		for _, need := range []int{1, 3} {
			got := m.choose(o, bids, need)
			want := sim.Pick(bids, need, o.Spec.Reward, m.chooseSecret(o.ID.String()))
			if !slices.Equal(got, want) {
				t.Fatalf("job %d, %d seat(s): market chose %v, simulator %v", j, need, got, want)
			}
		}
	}
}

// TestUncheckedSpotJobIsNoEvidence: a spot job the draw passed over is
// accepted and paid, but nobody checked its result, so it must not count
// as the worker agreeing. Counted, it made every cheater "proven" after a
// few unchecked jobs, so that being caught later was one bad mark instead
// of exclusion; the simulator showed 4.9% wrong results accepted instead
// of 0.3%. A checked spot job still is evidence.
func TestUncheckedSpotJobIsNoEvidence(t *testing.T) {
	m := newSharedMarket(t)
	w := peers(t, 2)
	pol := VerificationPolicy{Mode: VerifySpot, Workers: 1, SpotPermille: 500}
	var unchecked, checked Record
	for i := 0; unchecked.ID == "" || checked.ID == ""; i++ {
		o, rec := m.job(t, pol, 2000+i, w[:1], []string{fakeCID("x")})
		if verify.SpotDraw(m.spotSecret(o.ID.String()), pol.SpotProbability()) {
			if checked.ID == "" {
				_, checked = m.job(t, pol, 3000+i, w, []string{fakeCID("x"), fakeCID("x")})
			}
			continue
		}
		if unchecked.ID == "" {
			unchecked = rec
		}
	}
	m.decide(unchecked)
	if got, _ := m.book.Get(context.Background(), unchecked.ID); got.State != StateDone {
		t.Fatalf("unchecked spot job is %s, want done", got.State)
	}
	m.mu.Lock()
	n := len(m.verdicts)
	m.mu.Unlock()
	if n != 0 {
		t.Fatalf("an unchecked spot job was handed to the reputation table: %+v", m.verdicts)
	}
	m.decide(checked)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.verdicts) != 1 || len(m.verdicts[0].Agreed) != 2 {
		t.Fatalf("a checked spot job gave verdicts %+v, want one with both workers agreeing", m.verdicts)
	}
}
