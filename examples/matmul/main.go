// Command matmul multiplies two matrices: /input/a.bin × /input/b.bin, or,
// when there are no inputs, two n×n matrices generated from -seed. It writes
// /output/c.bin and /output/checksum.txt. The file format is documented in
// examples/internal/matmul. With -gen it writes the generated a.bin and
// b.bin instead, to make input files:
//
//	go run ./examples/matmul -gen -n 16 -seed 10 -out examples/matmul/testdata
//
//	GOOS=wasip1 GOARCH=wasm go build -o matmul.wasm ./examples/matmul
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/vft-network/vft/examples/internal/matmul"
)

func main() {
	n := flag.Int("n", 0, "size of the generated matrices when /input has none")
	seed := flag.Uint64("seed", 1, "seed of the generated matrices")
	in := flag.String("in", "/input", "input directory")
	out := flag.String("out", "/output", "output directory")
	gen := flag.Bool("gen", false, "only write the generated a.bin and b.bin into -out (to make input files)")
	flag.Parse()
	run := matmul.Job
	if *gen {
		run = func(_, out string, n int, seed uint64) error { return matmul.GenerateFiles(out, n, seed) }
	}
	if err := run(*in, *out, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "matmul:", err)
		os.Exit(1)
	}
}
