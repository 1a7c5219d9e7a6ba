// Command qsim simulates the quantum circuit of /input/circuit.json on a
// state vector and writes /output/result.json: the outcome of every MEASURE
// op, the final amplitudes and probabilities (states with probability below
// 1e-12 omitted), and `shots` samples of the final state. Measurement uses
// the circuit's "seed", or, without one, a seed drawn from the sandbox's
// random source, which the executor derives from the job: the result is
// deterministic either way.
//
// circuit.json:
//
//	{"qubits": 2, "shots": 1000, "seed": 7,
//	 "ops": [{"gate": "H", "target": 0}, {"gate": "CNOT", "control": 0, "target": 1}]}
//
// Gates: H X Y Z S T RZ(theta) CNOT/CX CZ MEASURE. Qubit 0 is the rightmost
// character of a basis-state label.
//
//	GOOS=wasip1 GOARCH=wasm go build -o qsim.wasm ./examples/qsim
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"github.com/vft-network/vft/examples/internal/qsim"
)

type amplitude struct {
	State string  `json:"state"`
	Re    float64 `json:"re"`
	Im    float64 `json:"im"`
	Prob  float64 `json:"prob"`
}

type measurement struct {
	Op      int `json:"op"`
	Qubit   int `json:"qubit"`
	Outcome int `json:"outcome"`
}

type result struct {
	Qubits       int            `json:"qubits"`
	Seed         uint64         `json:"seed"`
	Measurements []measurement  `json:"measurements"`
	Amplitudes   []amplitude    `json:"amplitudes"`
	Shots        int            `json:"shots"`
	Counts       map[string]int `json:"counts"`
}

func main() {
	in := flag.String("in", "/input", "input directory")
	out := flag.String("out", "/output", "output directory")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "qsim:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	data, err := os.ReadFile(filepath.Join(in, "circuit.json"))
	if err != nil {
		return err
	}
	var c qsim.Circuit
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("circuit.json: %w", err)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("circuit.json: %w", err)
	}
	seed := rand.Uint64() // from the sandbox's seeded source
	if c.Seed != nil {
		seed = *c.Seed
	}
	rng := rand.New(rand.NewPCG(seed, 0x7173696d))

	s := qsim.NewState(c.Qubits)
	res := result{Qubits: c.Qubits, Seed: seed, Shots: c.Shots, Measurements: []measurement{}, Counts: map[string]int{}}
	for i, op := range c.Ops {
		if m := s.Apply(op, rng); m >= 0 {
			res.Measurements = append(res.Measurements, measurement{Op: i, Qubit: op.Target, Outcome: m})
		}
	}
	for i, p := range s.Probabilities() {
		if p < 1e-12 {
			continue
		}
		a := s.Amp[i]
		res.Amplitudes = append(res.Amplitudes, amplitude{State: qsim.Label(i, c.Qubits), Re: round(real(a)), Im: round(imag(a)), Prob: round(p)})
	}
	sort.Slice(res.Amplitudes, func(i, j int) bool { return res.Amplitudes[i].State < res.Amplitudes[j].State })
	for state, n := range s.Sample(c.Shots, rng) {
		res.Counts[qsim.Label(state, c.Qubits)] = n
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "result.json"), append(b, '\n'), 0o644)
}

// round keeps 12 decimals, so -0 and 1e-17 noise do not leak into the output.
func round(v float64) float64 {
	r := math.Round(v*1e12) / 1e12
	if r == 0 {
		return 0
	}
	return r
}
