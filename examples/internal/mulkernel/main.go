// Command mulkernel runs only the matmul kernel: it generates two n×n
// matrices and multiplies them -reps times, then prints one element so that
// the work cannot be skipped. BenchmarkMatmulKernel in examples/ runs the
// same code natively and under wazero, without the job's file I/O and
// checksum, to show what the kernel itself costs in WASM.
package main

import (
	"flag"
	"fmt"

	"github.com/vft-network/vft/examples/internal/matmul"
)

func main() {
	n := flag.Int("n", 256, "matrix size")
	reps := flag.Int("reps", 1, "how many times to multiply")
	flag.Parse()
	fmt.Println(matmul.Repeat(*n, *reps))
}
