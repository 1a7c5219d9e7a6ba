// Command genweights trains the nninfer example's classifier (2 inputs, 16
// hidden units, 3 classes) on Gaussian blobs and writes weights.bin, x.bin
// (fresh points to classify) and labels.txt (their true classes) into -out.
// The same -seed gives the same files on the same architecture (training
// runs natively, where math.Exp and fused multiply-add may differ by CPU).
//
//	go run ./examples/nninfer/genweights -out examples/nninfer/testdata
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/vft-network/vft/examples/internal/nn"
)

func main() {
	out := flag.String("out", ".", "directory to write weights.bin, x.bin and labels.txt into")
	seed := flag.Uint64("seed", 1, "seed of the data and the training")
	points := flag.Int("points", 32, "how many points to put in x.bin")
	flag.Parse()
	if err := run(*out, *seed, *points); err != nil {
		fmt.Fprintln(os.Stderr, "genweights:", err)
		os.Exit(1)
	}
}

func run(out string, seed uint64, points int) error {
	const classes = 3
	rng := rand.New(rand.NewPCG(seed, 0x766674))
	xs, ys := nn.Blobs(rng, 600, classes)
	m := nn.Train(rng, xs, ys, 16, classes, 30, 0.01)

	test, labels := nn.Blobs(rng, points, classes)
	correct := 0
	var sb strings.Builder
	for i, x := range test {
		if c, _ := m.Predict(x); c == labels[i] {
			correct++
		}
		fmt.Fprintln(&sb, labels[i])
	}
	fmt.Printf("accuracy on %d fresh points: %d/%d\n", points, correct, points)

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := writeWith(filepath.Join(out, "weights.bin"), m.Encode); err != nil {
		return err
	}
	if err := writeWith(filepath.Join(out, "x.bin"), func(w io.Writer) error { return nn.EncodeInputs(w, test) }); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "labels.txt"), []byte(sb.String()), 0o644)
}

func writeWith(path string, enc func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := enc(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
