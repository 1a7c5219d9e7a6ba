// Command closeenough is a custom verifier module: it compares two results
// made of text files of numbers and says whether they agree within 1e-6.
//
// VFT runs it with result A at /input/a and result B at /input/b (each a
// file or a directory of files). Exit code 0 means the results match, 1
// that they do not; anything else (2 here) means it could not compare them.
package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const tol = 1e-6

func main() {
	same, err := compare("/input/a", "/input/b")
	if err != nil {
		fmt.Fprintln(os.Stderr, "closeenough:", err)
		os.Exit(2)
	}
	if !same {
		os.Exit(1)
	}
}

// compare compares two files, or two directories file by file.
func compare(a, b string) (bool, error) {
	ia, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	ib, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	if ia.IsDir() != ib.IsDir() {
		fmt.Println("one result is a directory, the other a file")
		return false, nil
	}
	if !ia.IsDir() {
		return compareFiles(a, b)
	}
	na, err := names(a)
	if err != nil {
		return false, err
	}
	nb, err := names(b)
	if err != nil {
		return false, err
	}
	if !slices.Equal(na, nb) {
		fmt.Printf("different files: %v and %v\n", na, nb)
		return false, nil
	}
	for _, n := range na {
		if same, err := compareFiles(filepath.Join(a, n), filepath.Join(b, n)); err != nil || !same {
			return false, err
		}
	}
	return true, nil
}

func names(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, err
}

func compareFiles(a, b string) (bool, error) {
	xa, err := numbers(a)
	if err != nil {
		return false, err
	}
	xb, err := numbers(b)
	if err != nil {
		return false, err
	}
	if len(xa) != len(xb) {
		fmt.Printf("%s: %d numbers against %d\n", filepath.Base(a), len(xa), len(xb))
		return false, nil
	}
	for i := range xa {
		// Relative for large numbers, absolute near zero.
		if math.Abs(xa[i]-xb[i]) > tol*math.Max(1, math.Max(math.Abs(xa[i]), math.Abs(xb[i]))) {
			fmt.Printf("%s: number %d: %g against %g\n", filepath.Base(a), i, xa[i], xb[i])
			return false, nil
		}
	}
	return true, nil
}

func numbers(path string) ([]float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, f := range strings.Fields(string(data)) {
		x, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", filepath.Base(path), f)
		}
		out = append(out, x)
	}
	return out, nil
}
