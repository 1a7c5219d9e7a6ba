package verify

import (
	"context"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// spotSecrets finds a job secret the draw at p picks, and one it passes over.
func spotSecrets(t *testing.T, p float64) (drawn, passed []byte) {
	t.Helper()
	for i := 0; drawn == nil || passed == nil; i++ {
		if s := jobSecret("next", i); SpotDraw(s, p) {
			drawn = s
		} else {
			passed = s
		}
	}
	return drawn, passed
}

func TestNext(t *testing.T) {
	exact := Policy{Mode: ModeExact, Workers: 3, Quorum: 2}
	spot := Policy{Mode: ModeSpot, Workers: 1, SpotPermille: 500}
	drawn, passed := spotSecrets(t, spot.SpotProbability())
	tests := []struct {
		name      string
		policy    Policy
		at        Progress
		done      bool
		accepted  string
		failure   string
		agreed    []peer.ID
		unchecked bool
		workers   int // more workers asked for, in all
	}{
		{name: "reports still to come", policy: exact, at: Progress{Workers: 3, Reports: []Report{ok("a", "X"), ok("b", "X")}}},
		{name: "two of three agree", policy: exact, at: Progress{Workers: 3, Reports: []Report{ok("a", "X"), ok("b", "Y"), ok("c", "X")}},
			done: true, accepted: "X", agreed: ids("a", "c")},
		{name: "split: a tie-breaker", policy: exact, at: Progress{Workers: 3, MayAddWorkers: true,
			Reports: []Report{ok("a", "X"), ok("b", "Y"), ok("c", "Z")}}, workers: 4},
		{name: "split with no room for a tie-breaker (escrow, deadline): rejected", policy: exact, at: Progress{Workers: 3,
			Reports: []Report{ok("a", "X"), ok("b", "Y"), ok("c", "Z")}}, done: true},
		{name: "split after k+2 workers: rejected", policy: exact, at: Progress{Workers: 5, MayAddWorkers: true,
			Reports: []Report{ok("a", "X"), ok("b", "Y"), ok("c", "Z"), ok("d", "V"), ok("e", "W")}}, done: true},
		{name: "the program fails alike: no tie-breaker", policy: exact, at: Progress{Workers: 3, MayAddWorkers: true,
			Reports: []Report{crashed("a", "exit code 3"), crashed("b", "exit code 3"), ok("c", "X")}}, done: true, failure: "exit code 3"},
		{name: "spot, drawn: a verifier", policy: spot, at: Progress{Workers: 1, SpotSecret: drawn, Reports: []Report{ok("w", "X")}}, workers: 2},
		{name: "spot, passed over: accepted unchecked", policy: spot, at: Progress{Workers: 1, SpotSecret: passed, Reports: []Report{ok("w", "X")}},
			done: true, accepted: "X", agreed: ids("w"), unchecked: true},
		{name: "spot, program failure passed over: failed unchecked", policy: spot, at: Progress{Workers: 1, SpotSecret: passed,
			Reports: []Report{crashed("w", "exit code 3")}}, done: true, failure: "exit code 3", unchecked: true},
		{name: "spot, program failure drawn: checked like a result", policy: spot, at: Progress{Workers: 1, SpotSecret: drawn,
			Reports: []Report{crashed("w", "exit code 3")}}, workers: 2},
		{name: "spot, the worker's own failure: rejected, no draw", policy: spot, at: Progress{Workers: 1, SpotSecret: passed,
			Reports: []Report{failed("w", "fetch input: timeout")}}, done: true},
		{name: "spot, verifier agrees", policy: spot, at: Progress{Workers: 2, SpotSecret: drawn, Reports: []Report{ok("w", "X"), ok("v", "X")}},
			done: true, accepted: "X", agreed: ids("w", "v")},
		{name: "spot, verifier disagrees: a third worker", policy: spot, at: Progress{Workers: 2, SpotSecret: drawn,
			Reports: []Report{ok("w", "X"), ok("v", "Y")}}, workers: 3},
		{name: "spot, third worker sides with the verifier", policy: spot, at: Progress{Workers: 3, SpotSecret: drawn,
			Reports: []Report{ok("w", "X"), ok("v", "Y"), ok("t", "Y")}}, done: true, accepted: "Y", agreed: ids("v", "t")},
		{name: "spot, three differ: rejected", policy: spot, at: Progress{Workers: 3, SpotSecret: drawn, MayAddWorkers: true,
			Reports: []Report{ok("w", "X"), ok("v", "Y"), ok("t", "Z")}}, done: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, err := Next(context.Background(), tt.policy, tt.at, nil)
			if err != nil {
				t.Fatal(err)
			}
			if step.Workers != tt.workers || (tt.workers > 0) != (step.Why != "") {
				t.Fatalf("Workers = %d (%q), want %d", step.Workers, step.Why, tt.workers)
			}
			if step.Done != tt.done || step.Accepted != tt.accepted || step.Failure != tt.failure || step.Unchecked != tt.unchecked {
				t.Fatalf("step = %+v, want done %v, accepted %q, failure %q, unchecked %v", step, tt.done, tt.accepted, tt.failure, tt.unchecked)
			}
			if !slices.Equal(step.Agreed, tt.agreed) {
				t.Fatalf("Agreed = %v, want %v", step.Agreed, tt.agreed)
			}
		})
	}
}
