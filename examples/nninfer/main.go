// Command nninfer classifies the vectors of /input/x.bin with the two-layer
// perceptron of /input/weights.bin (formats in examples/internal/nn) and
// writes /output/predictions.json: for each vector its class and the
// probability of every class (6 decimals).
//
//	GOOS=wasip1 GOARCH=wasm go build -o nninfer.wasm ./examples/nninfer
//	go run ./examples/nninfer/genweights -out DIR   # weights.bin and x.bin
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vft-network/vft/examples/internal/nn"
)

type prediction struct {
	Class int               `json:"class"`
	Probs []json.RawMessage `json:"probs"`
}

type report struct {
	Inputs      int          `json:"inputs"`
	Hidden      int          `json:"hidden"`
	Classes     int          `json:"classes"`
	Predictions []prediction `json:"predictions"`
}

func main() {
	in := flag.String("in", "/input", "input directory")
	out := flag.String("out", "/output", "output directory")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "nninfer:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	wf, err := os.Open(filepath.Join(in, "weights.bin"))
	if err != nil {
		return err
	}
	defer wf.Close()
	m, err := nn.DecodeMLP(wf)
	if err != nil {
		return fmt.Errorf("weights.bin: %w", err)
	}
	xf, err := os.Open(filepath.Join(in, "x.bin"))
	if err != nil {
		return err
	}
	defer xf.Close()
	xs, err := nn.DecodeInputs(xf)
	if err != nil {
		return fmt.Errorf("x.bin: %w", err)
	}
	rep := report{Inputs: m.In, Hidden: m.Hidden, Classes: m.Out}
	for i, x := range xs {
		if len(x) != m.In {
			return fmt.Errorf("x.bin: vector %d has %d values, the model takes %d", i, len(x), m.In)
		}
		class, probs := m.Predict(x)
		p := prediction{Class: class}
		for _, v := range probs {
			p.Probs = append(p.Probs, json.RawMessage(strconv.FormatFloat(float64(v), 'f', 6, 32)))
		}
		rep.Predictions = append(rep.Predictions, p)
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "predictions.json"), append(data, '\n'), 0o644)
}
