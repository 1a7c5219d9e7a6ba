package verify

import (
	"fmt"
	"math"

	"github.com/ipfs/go-cid"
)

// Modes, as a job spec names them (see docs/VERIFICATION.md).
const (
	ModeExact     = "exact"     // m of k result CIDs must agree
	ModeTolerance = "tolerance" // numeric outputs within rel/abs tolerance
	ModeSpot      = "spot"      // one worker, re-run by a verifier with probability p
	ModeCustom    = "custom"    // a verifier WASM module decides
)

// MaxRedundancy bounds k, so that one offer cannot ask the network for
// more workers than a job can be worth.
const MaxRedundancy = 16

// SpotCheckQuorum is how many agreeing runs decide a spot-checked job once
// it was drawn: the worker's and its verifier's.
const SpotCheckQuorum = 2

// Policy is a job's verification rule, exactly as the signed offer
// carries it (the spec's `verify` table, in deterministic CBOR: integers
// only, so every node encodes it alike). It is the one form of a policy:
// the job file fills it, job/ signs and sends it, Next and the matchers
// read it.
type Policy struct {
	Mode string `cbor:"mode"`
	// Workers (k) run the job; Quorum (m) of them must agree.
	Workers uint32 `cbor:"k"`
	Quorum  uint32 `cbor:"m"`
	// SpotPermille is the chance (in 1/1000) that a spot-checked job is re-run.
	SpotPermille uint32 `cbor:"spot_permille,omitempty"`
	// Tolerances in parts per billion, for "tolerance": two numbers agree
	// when |a-b| <= AbsTol + RelTol*max(|a|,|b|).
	RelTolPPB uint64 `cbor:"rel_tol_ppb,omitempty"`
	AbsTolPPB uint64 `cbor:"abs_tol_ppb,omitempty"`
	// Verifier is the CID of the verifier module, for "custom".
	Verifier string `cbor:"verifier,omitempty"`
}

// K is how many workers the job starts with.
func (p Policy) K() int { return int(p.Workers) }

// M is how many agreeing workers accept a result: a spot-checked job is
// accepted on its one worker when it is not drawn for a check.
func (p Policy) M() int {
	if p.Mode == ModeSpot {
		return 1
	}
	return int(p.Quorum)
}

// SpotProbability is the chance a spot-mode job is re-run by a verifier.
func (p Policy) SpotProbability() float64 { return float64(p.SpotPermille) / 1000 }

// RelTol and AbsTol are the tolerance mode's bounds as numbers.
func (p Policy) RelTol() float64 { return float64(p.RelTolPPB) / 1e9 }
func (p Policy) AbsTol() float64 { return float64(p.AbsTolPPB) / 1e9 }

// Validate checks a policy as every node must before acting on an offer.
// The error names the field, its value and what it may be.
func (p Policy) Validate() error {
	if p.Workers < 1 || p.Workers > MaxRedundancy {
		return fmt.Errorf("verify.k = %d is outside 1..%d", p.Workers, MaxRedundancy)
	}
	switch p.Mode {
	case ModeExact, ModeTolerance:
		// A strict majority, so two disjoint groups can never both "agree".
		if p.Quorum <= p.Workers/2 || p.Quorum > p.Workers {
			return fmt.Errorf("verify.m = %d with k = %d: need a majority, %d..%d", p.Quorum, p.Workers, p.Workers/2+1, p.Workers)
		}
		if p.Mode == ModeTolerance && p.RelTolPPB == 0 && p.AbsTolPPB == 0 {
			return fmt.Errorf("verify mode tolerance needs rel_tol or abs_tol")
		}
	case ModeSpot:
		if p.Workers != 1 {
			return fmt.Errorf("verify mode spot runs one worker, not k = %d", p.Workers)
		}
		if p.SpotPermille == 0 || p.SpotPermille > 1000 {
			return fmt.Errorf("verify.spot_permille = %d is outside 1..1000", p.SpotPermille)
		}
	case ModeCustom:
		if _, err := cid.Decode(p.Verifier); err != nil {
			return fmt.Errorf("verify.verifier %q is not a CID", p.Verifier)
		}
		if p.Quorum <= p.Workers/2 || p.Quorum > p.Workers {
			return fmt.Errorf("verify.m = %d with k = %d: need a majority", p.Quorum, p.Workers)
		}
	default:
		return fmt.Errorf("verify mode %q is not one of exact, tolerance, spot, custom", p.Mode)
	}
	return nil
}

// MaxTolerance is the largest rel_tol or abs_tol a person may write, so
// that it fits the spec's parts per billion.
const MaxTolerance = 1e9

// Terms is a policy as a person writes it (a job file's verify keys):
// numbers instead of the spec's integers, and zeros for the defaults.
// Policy turns it into the one form, Policy.
type Terms struct {
	Mode            string
	Workers, Quorum uint32
	// SpotChance is 0..1, for spot; RelTol and AbsTol for tolerance.
	SpotChance, RelTol, AbsTol float64
}

// Check refuses the numbers that would wrap when they become the
// policy's integers: a negative tolerance used to become about 1.8e19
// parts per billion, so a tolerance job accepted any result.
func (t Terms) Check() error {
	for _, tol := range []struct {
		key string
		v   float64
	}{{"rel_tol", t.RelTol}, {"abs_tol", t.AbsTol}} {
		if math.IsNaN(tol.v) || tol.v < 0 || tol.v > MaxTolerance {
			return fmt.Errorf("%s = %v is not a tolerance: write a number from 0 to %g", tol.key, tol.v, float64(MaxTolerance))
		}
	}
	if t.SpotChance != 0 && !(t.SpotChance > 0 && t.SpotChance <= 1) {
		return fmt.Errorf("spot_chance = %v is outside 0..1: it is the chance that a spot-checked job is run again (0.1 is one in ten)", t.SpotChance)
	}
	return nil
}

// Policy fills the defaults (exact verification by 1 worker, a majority
// quorum) and converts the numbers; the custom mode's Verifier is the
// caller's to set once the module is stored. Validate checks the result.
func (t Terms) Policy() (Policy, error) {
	if err := t.Check(); err != nil {
		return Policy{}, err
	}
	p := Policy{Mode: t.Mode, Workers: t.Workers, Quorum: t.Quorum}
	if p.Mode == "" {
		p.Mode = ModeExact
	}
	if p.Workers == 0 {
		p.Workers = 1
	}
	if p.Quorum == 0 && p.Mode != ModeSpot {
		p.Quorum = p.Workers/2 + 1
	}
	if p.Mode == ModeSpot {
		p.SpotPermille = uint32(t.SpotChance * 1000)
	}
	p.RelTolPPB = uint64(t.RelTol * 1e9)
	p.AbsTolPPB = uint64(t.AbsTol * 1e9)
	return p, nil
}

// ByCID says whether two results agree only when their CIDs are equal
// (exact and spot modes), so that anyone can check a verdict's agreement
// from the reveals it carries; tolerance and custom modes compare content.
func (p Policy) ByCID() bool { return p.Mode == ModeExact || p.Mode == ModeSpot }

// MaxWorkers is the most workers a job can have had: k, plus the
// tie-breakers Next may add (a spot check's verifier and tie-breaker among
// them), none when the reward is locked in an escrow for exactly k.
func (p Policy) MaxWorkers(escrow bool) int {
	if escrow {
		return p.K()
	}
	return p.K() + MaxTieBreakers
}

// CheckedQuorum is how many agreeing runs would have accepted a result
// once it was checked: M, or for a spot-checked job that was drawn, the
// worker's and its verifier's (SpotCheckQuorum). A rejection is proven
// by reveals that fall short of it.
func (p Policy) CheckedQuorum() int {
	if p.Mode == ModeSpot {
		return SpotCheckQuorum
	}
	return p.M()
}

// WorkersToFund is how many rewards a submitter must hold before it
// offers the job: k, and for a spot check the verifier's as well, which
// the draw may add. (A tie-breaker is rare and paid from what is left.)
func (p Policy) WorkersToFund() int {
	if p.Mode == ModeSpot {
		return SpotCheckQuorum
	}
	return p.K()
}

// WorkersKnownUpFront says whether every worker that may be paid is
// assigned at the start, as an escrow's multisig needs: not for a spot
// check, whose verifier is chosen only if the draw picks the job.
func (p Policy) WorkersKnownUpFront() bool { return p.Mode != ModeSpot }
