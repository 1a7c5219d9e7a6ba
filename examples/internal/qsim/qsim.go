// Package qsim is a state-vector quantum circuit simulator for the qsim
// example. Qubit 0 is the least significant bit of a basis state's index;
// basis states are printed most significant qubit first ("q2 q1 q0").
package qsim

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strings"
)

// MaxQubits bounds the state vector to 2^20 amplitudes (16 MiB).
const MaxQubits = 20

// Op is one step of a circuit.
type Op struct {
	// Gate is H, X, Y, Z, S, T, RZ, CNOT (alias CX), CZ or MEASURE.
	Gate    string  `json:"gate"`
	Target  int     `json:"target"`
	Control int     `json:"control,omitempty"`
	Theta   float64 `json:"theta,omitempty"`
}

// Circuit is the content of circuit.json.
type Circuit struct {
	Qubits int  `json:"qubits"`
	Ops    []Op `json:"ops"`
	// Shots is how many times the final state is sampled.
	Shots int `json:"shots,omitempty"`
	// Seed drives measurement; nil means "take one from the sandbox's
	// random source" (which the executor seeds per job).
	Seed *uint64 `json:"seed,omitempty"`
}

// State is a state vector.
type State struct {
	N   int
	Amp []complex128
}

// NewState returns |0…0⟩ on n qubits.
func NewState(n int) *State {
	s := &State{N: n, Amp: make([]complex128, 1<<n)}
	s.Amp[0] = 1
	return s
}

// Validate checks the circuit before anything is allocated.
func (c *Circuit) Validate() error {
	if c.Qubits < 1 || c.Qubits > MaxQubits {
		return fmt.Errorf("qubits = %d, want 1..%d", c.Qubits, MaxQubits)
	}
	if c.Shots < 0 || c.Shots > 1_000_000 {
		return fmt.Errorf("shots = %d, want 0..1000000", c.Shots)
	}
	for i, op := range c.Ops {
		if op.Target < 0 || op.Target >= c.Qubits {
			return fmt.Errorf("op %d (%s): target %d out of range", i, op.Gate, op.Target)
		}
		switch strings.ToUpper(op.Gate) {
		case "CNOT", "CX", "CZ":
			if op.Control < 0 || op.Control >= c.Qubits || op.Control == op.Target {
				return fmt.Errorf("op %d (%s): control %d invalid", i, op.Gate, op.Control)
			}
		case "H", "X", "Y", "Z", "S", "T", "RZ", "MEASURE":
		default:
			return fmt.Errorf("op %d: unknown gate %q", i, op.Gate)
		}
	}
	return nil
}

var invSqrt2 = complex(1/math.Sqrt2, 0)

// Apply runs op on s; MEASURE collapses the target qubit and returns its
// outcome (0 or 1), other gates return -1.
func (s *State) Apply(op Op, rng *rand.Rand) int {
	switch strings.ToUpper(op.Gate) {
	case "H":
		s.single(op.Target, [4]complex128{invSqrt2, invSqrt2, invSqrt2, -invSqrt2})
	case "X":
		s.single(op.Target, [4]complex128{0, 1, 1, 0})
	case "Y":
		s.single(op.Target, [4]complex128{0, -1i, 1i, 0})
	case "Z":
		s.single(op.Target, [4]complex128{1, 0, 0, -1})
	case "S":
		s.single(op.Target, [4]complex128{1, 0, 0, 1i})
	case "T":
		s.single(op.Target, [4]complex128{1, 0, 0, cmplx.Exp(complex(0, math.Pi/4))})
	case "RZ":
		s.single(op.Target, [4]complex128{cmplx.Exp(complex(0, -op.Theta/2)), 0, 0, cmplx.Exp(complex(0, op.Theta/2))})
	case "CNOT", "CX":
		c, t := 1<<op.Control, 1<<op.Target
		for i := range s.Amp {
			if i&c != 0 && i&t == 0 {
				s.Amp[i], s.Amp[i|t] = s.Amp[i|t], s.Amp[i]
			}
		}
	case "CZ":
		c, t := 1<<op.Control, 1<<op.Target
		for i := range s.Amp {
			if i&c != 0 && i&t != 0 {
				s.Amp[i] = -s.Amp[i]
			}
		}
	case "MEASURE":
		return s.measure(op.Target, rng)
	}
	return -1
}

// single applies the 2×2 matrix u = [u00 u01; u10 u11] to qubit q.
func (s *State) single(q int, u [4]complex128) {
	bit := 1 << q
	for i := range s.Amp {
		if i&bit != 0 {
			continue
		}
		a0, a1 := s.Amp[i], s.Amp[i|bit]
		s.Amp[i] = u[0]*a0 + u[1]*a1
		s.Amp[i|bit] = u[2]*a0 + u[3]*a1
	}
}

func (s *State) measure(q int, rng *rand.Rand) int {
	bit := 1 << q
	var p1 float64
	for i, a := range s.Amp {
		if i&bit != 0 {
			p1 += prob(a)
		}
	}
	outcome := 0
	if rng.Float64() < p1 {
		outcome = 1
	}
	p := 1 - p1
	if outcome == 1 {
		p = p1
	}
	norm := complex(1/math.Sqrt(p), 0)
	for i := range s.Amp {
		if (i&bit != 0) == (outcome == 1) {
			s.Amp[i] *= norm
		} else {
			s.Amp[i] = 0
		}
	}
	return outcome
}

func prob(a complex128) float64 { return real(a)*real(a) + imag(a)*imag(a) }

// Probabilities returns |amp|² per basis state.
func (s *State) Probabilities() []float64 {
	p := make([]float64, len(s.Amp))
	for i, a := range s.Amp {
		p[i] = prob(a)
	}
	return p
}

// Sample draws shots basis states from the final distribution.
func (s *State) Sample(shots int, rng *rand.Rand) map[int]int {
	counts := map[int]int{}
	if shots == 0 {
		return counts
	}
	cdf := make([]float64, len(s.Amp))
	var acc float64
	for i, a := range s.Amp {
		acc += prob(a)
		cdf[i] = acc
	}
	for range shots {
		r := rng.Float64() * acc
		lo, hi := 0, len(cdf)-1
		for lo < hi {
			mid := (lo + hi) / 2
			if cdf[mid] > r {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		counts[lo]++
	}
	return counts
}

// Label prints basis state i of n qubits, most significant qubit first.
func Label(i, n int) string {
	return fmt.Sprintf("%0*b", n, i)
}
