package qsim

import (
	"math"
	"math/rand/v2"
	"testing"
)

func run(t *testing.T, n int, ops ...Op) *State {
	t.Helper()
	c := Circuit{Qubits: n, Ops: ops}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := NewState(n)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, op := range ops {
		s.Apply(op, rng)
	}
	return s
}

func TestGates(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ops  []Op
		want map[int]float64 // basis state -> probability
	}{
		{"X flips", 1, []Op{{Gate: "X"}}, map[int]float64{1: 1}},
		{"HH is identity", 1, []Op{{Gate: "H"}, {Gate: "H"}}, map[int]float64{0: 1}},
		{"bell", 2, []Op{{Gate: "H"}, {Gate: "CNOT", Control: 0, Target: 1}}, map[int]float64{0: 0.5, 3: 0.5}},
		{"cnot needs control", 2, []Op{{Gate: "CNOT", Control: 0, Target: 1}}, map[int]float64{0: 1}},
		{"qubit 1 is bit 1", 2, []Op{{Gate: "X", Target: 1}}, map[int]float64{2: 1}},
		{"rz keeps probabilities", 1, []Op{{Gate: "H"}, {Gate: "RZ", Theta: 1.2}}, map[int]float64{0: 0.5, 1: 0.5}},
		{"HZH is X", 1, []Op{{Gate: "H"}, {Gate: "Z"}, {Gate: "H"}}, map[int]float64{1: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := run(t, tt.n, tt.ops...).Probabilities()
			for i, got := range p {
				if math.Abs(got-tt.want[i]) > 1e-12 {
					t.Fatalf("P(%s) = %v, want %v (all: %v)", Label(i, tt.n), got, tt.want[i], p)
				}
			}
		})
	}
}

func TestMeasureCollapses(t *testing.T) {
	for seed := range uint64(20) {
		s := NewState(3)
		rng := rand.New(rand.NewPCG(seed, 0))
		for _, op := range []Op{{Gate: "H"}, {Gate: "CNOT", Control: 0, Target: 1}, {Gate: "CNOT", Control: 1, Target: 2}} {
			s.Apply(op, rng)
		}
		m := s.Apply(Op{Gate: "MEASURE", Target: 2}, rng)
		want := 0
		if m == 1 {
			want = 7
		}
		if p := s.Probabilities(); math.Abs(p[want]-1) > 1e-12 {
			t.Fatalf("seed %d: measured %d but state is %v", seed, m, p)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Circuit{
		{Qubits: 0},
		{Qubits: MaxQubits + 1},
		{Qubits: 1, Ops: []Op{{Gate: "H", Target: 1}}},
		{Qubits: 2, Ops: []Op{{Gate: "CNOT", Control: 1, Target: 1}}},
		{Qubits: 1, Ops: []Op{{Gate: "SWAP"}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
