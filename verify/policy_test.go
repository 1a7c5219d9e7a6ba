package verify

import (
	"math"
	"strings"
	"testing"
)

func TestTermsPolicy(t *testing.T) {
	tests := []struct {
		name    string
		terms   Terms
		want    Policy
		wantErr string
	}{
		{"defaults: exact by one worker", Terms{}, Policy{Mode: ModeExact, Workers: 1, Quorum: 1}, ""},
		{"a majority quorum", Terms{Workers: 4}, Policy{Mode: ModeExact, Workers: 4, Quorum: 3}, ""},
		{"spot in thousandths, no quorum", Terms{Mode: ModeSpot, SpotChance: 0.1}, Policy{Mode: ModeSpot, Workers: 1, SpotPermille: 100}, ""},
		{"tolerance in parts per billion", Terms{Mode: ModeTolerance, Workers: 3, RelTol: 1e-6, AbsTol: 0.5},
			Policy{Mode: ModeTolerance, Workers: 3, Quorum: 2, RelTolPPB: 1000, AbsTolPPB: 500_000_000}, ""},
		{"a negative tolerance", Terms{RelTol: -1}, Policy{}, "rel_tol = -1 is not a tolerance"},
		{"a NaN tolerance", Terms{AbsTol: math.NaN()}, Policy{}, "abs_tol = NaN is not a tolerance"},
		{"a chance over 1", Terms{Mode: ModeSpot, SpotChance: 10}, Policy{}, "spot_chance = 10 is outside 0..1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.terms.Policy()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Policy() = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPolicyBounds(t *testing.T) {
	exact := Policy{Mode: ModeExact, Workers: 3, Quorum: 2}
	spot := Policy{Mode: ModeSpot, Workers: 1, SpotPermille: 100}
	tolerance := Policy{Mode: ModeTolerance, Workers: 3, Quorum: 2, RelTolPPB: 1}
	for _, tt := range []struct {
		name          string
		p             Policy
		escrow        bool
		maxWorkers, m int
		byCID         bool
	}{
		{"exact", exact, false, 5, 2, true},
		{"exact in escrow: no tie-breakers", exact, true, 3, 2, true},
		{"spot: worker, verifier, tie-breaker", spot, false, 3, 1, true},
		{"tolerance compares content", tolerance, false, 5, 2, false},
	} {
		if got := tt.p.MaxWorkers(tt.escrow); got != tt.maxWorkers {
			t.Errorf("%s: MaxWorkers = %d, want %d", tt.name, got, tt.maxWorkers)
		}
		if tt.p.M() != tt.m || tt.p.ByCID() != tt.byCID {
			t.Errorf("%s: M = %d, ByCID = %v; want %d, %v", tt.name, tt.p.M(), tt.p.ByCID(), tt.m, tt.byCID)
		}
	}
}

// TestPolicyCounts: the numbers of workers each mode's rules depend on,
// which the market, the fund check and escrow ask the policy for.
func TestPolicyCounts(t *testing.T) {
	cases := []struct {
		p                     Policy
		checkedQuorum, toFund int
		knownUpFront, byCID   bool
	}{
		{Policy{Mode: ModeExact, Workers: 3, Quorum: 2}, 2, 3, true, true},
		{Policy{Mode: ModeTolerance, Workers: 5, Quorum: 3}, 3, 5, true, false},
		{Policy{Mode: ModeCustom, Workers: 3, Quorum: 2}, 2, 3, true, false},
		{Policy{Mode: ModeSpot, Workers: 1, SpotPermille: 100}, SpotCheckQuorum, 2, false, true},
	}
	for _, tc := range cases {
		p := tc.p
		if p.CheckedQuorum() != tc.checkedQuorum || p.WorkersToFund() != tc.toFund || p.WorkersKnownUpFront() != tc.knownUpFront || p.ByCID() != tc.byCID {
			t.Errorf("%s k=%d: checked quorum %d, to fund %d, known up front %v, by CID %v; want %d %d %v %v", p.Mode, p.Workers,
				p.CheckedQuorum(), p.WorkersToFund(), p.WorkersKnownUpFront(), p.ByCID(), tc.checkedQuorum, tc.toFund, tc.knownUpFront, tc.byCID)
		}
	}
}
