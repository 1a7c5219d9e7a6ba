// Package matmul is the compute kernel of the matmul example, shared by the
// WASM program (examples/matmul) and native Go benchmarks, so that both run
// the very same code.
//
// Matrix file format (a.bin, b.bin, c.bin), all little-endian:
//
//	4 bytes  magic "VFTM"
//	uint32   rows
//	uint32   cols
//	rows*cols float64, row-major
package matmul

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Magic starts every matrix file.
const Magic = "VFTM"

// MaxDim bounds rows and cols read from a file, so a corrupt header cannot
// make the program allocate without end.
const MaxDim = 1 << 14

// Matrix is a dense row-major matrix.
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// New returns a zero rows×cols matrix.
func New(rows, cols int) *Matrix {
	return &Matrix{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
}

// Generate returns an n×n matrix of values in [-1, 1) drawn from a
// splitmix64 sequence started at seed: the same on every platform.
func Generate(n int, seed uint64) *Matrix {
	m := New(n, n)
	s := seed
	for i := range m.Data {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		m.Data[i] = float64(z>>11)/(1<<52) - 1
	}
	return m
}

// Mul returns a×b.
//
// The loop order (i, k, j) walks b and the result row by row. Four rows of b
// are folded into a result row per pass, four columns at a time: that
// quarters the loads and stores of the result and divides the loop
// iterations by 16, which matters in WASM, where every loop iteration of a
// sandboxed module pays for a termination check (see BenchmarkLoopChecks). Each c[i][j] is still summed in k order, one product at
// a time, and the explicit float64 conversions forbid fused multiply-add, so
// the result is bit-for-bit the same on every architecture and in WASM.
func Mul(a, b *Matrix) (*Matrix, error) {
	if a.Cols != b.Rows {
		return nil, fmt.Errorf("cannot multiply %dx%d by %dx%d", a.Rows, a.Cols, b.Rows, b.Cols)
	}
	c := New(a.Rows, b.Cols)
	n, kn := b.Cols, a.Cols
	for i := 0; i < a.Rows; i++ {
		crow := c.Data[i*n : (i+1)*n]
		arow := a.Data[i*kn : (i+1)*kn]
		k := 0
		for ; k+4 <= kn; k += 4 {
			a0, a1, a2, a3 := arow[k], arow[k+1], arow[k+2], arow[k+3]
			b0 := b.Data[k*n : (k+1)*n][:len(crow)]
			b1 := b.Data[(k+1)*n : (k+2)*n][:len(crow)]
			b2 := b.Data[(k+2)*n : (k+3)*n][:len(crow)]
			b3 := b.Data[(k+3)*n : (k+4)*n][:len(crow)]
			j := 0
			for ; j+4 <= len(crow); j += 4 {
				c4 := crow[j : j+4 : j+4]
				x0, x1, x2, x3 := b0[j:j+4:j+4], b1[j:j+4:j+4], b2[j:j+4:j+4], b3[j:j+4:j+4]
				c4[0] = c4[0] + float64(a0*x0[0]) + float64(a1*x1[0]) + float64(a2*x2[0]) + float64(a3*x3[0])
				c4[1] = c4[1] + float64(a0*x0[1]) + float64(a1*x1[1]) + float64(a2*x2[1]) + float64(a3*x3[1])
				c4[2] = c4[2] + float64(a0*x0[2]) + float64(a1*x1[2]) + float64(a2*x2[2]) + float64(a3*x3[2])
				c4[3] = c4[3] + float64(a0*x0[3]) + float64(a1*x1[3]) + float64(a2*x2[3]) + float64(a3*x3[3])
			}
			for ; j < len(crow); j++ {
				crow[j] = crow[j] + float64(a0*b0[j]) + float64(a1*b1[j]) + float64(a2*b2[j]) + float64(a3*b3[j])
			}
		}
		for ; k < kn; k++ {
			aik := arow[k]
			brow := b.Data[k*n : (k+1)*n][:len(crow)]
			for j := range crow {
				crow[j] += float64(aik * brow[j])
			}
		}
	}
	return c, nil
}

// Encode writes m in the matrix file format.
func Encode(w io.Writer, m *Matrix) error {
	bw := bufio.NewWriter(w)
	var hdr [12]byte
	copy(hdr[:], Magic)
	binary.LittleEndian.PutUint32(hdr[4:], uint32(m.Rows))
	binary.LittleEndian.PutUint32(hdr[8:], uint32(m.Cols))
	bw.Write(hdr[:])
	var buf [8]byte
	for _, v := range m.Data {
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(v))
		bw.Write(buf[:])
	}
	return bw.Flush()
}

// Decode reads a matrix in the matrix file format.
func Decode(r io.Reader) (*Matrix, error) {
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:4]) != Magic {
		return nil, errors.New("not a matrix file (magic is not VFTM)")
	}
	rows, cols := binary.LittleEndian.Uint32(hdr[4:]), binary.LittleEndian.Uint32(hdr[8:])
	if rows == 0 || cols == 0 || rows > MaxDim || cols > MaxDim {
		return nil, fmt.Errorf("matrix size %dx%d out of range 1..%d", rows, cols, MaxDim)
	}
	m := New(int(rows), int(cols))
	var buf [8]byte
	for i := range m.Data {
		if _, err := io.ReadFull(br, buf[:]); err != nil {
			return nil, fmt.Errorf("read element %d: %w", i, err)
		}
		m.Data[i] = math.Float64frombits(binary.LittleEndian.Uint64(buf[:]))
	}
	return m, nil
}

// ReadFile decodes a matrix file.
func ReadFile(path string) (*Matrix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// WriteFile encodes m into a file.
func WriteFile(path string, m *Matrix) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Encode(f, m); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Job is what the matmul program does: read /input/a.bin and /input/b.bin if
// present (else generate two n×n matrices from seed and seed+1), multiply,
// and write c.bin and checksum.txt into outDir.
func Job(inDir, outDir string, n int, seed uint64) error {
	a, b, err := inputs(inDir, n, seed)
	if err != nil {
		return err
	}
	c, err := Mul(a, b)
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(outDir, "c.bin"), c); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, "checksum.txt"), []byte(Checksum(c)), 0o644)
}

// GenerateFiles writes the matrices Job would generate as a.bin and b.bin.
func GenerateFiles(outDir string, n int, seed uint64) error {
	if n <= 0 || n > MaxDim {
		return fmt.Errorf("-n %d out of range 1..%d", n, MaxDim)
	}
	if err := WriteFile(filepath.Join(outDir, "a.bin"), Generate(n, seed)); err != nil {
		return err
	}
	return WriteFile(filepath.Join(outDir, "b.bin"), Generate(n, seed+1))
}

func inputs(inDir string, n int, seed uint64) (*Matrix, *Matrix, error) {
	aPath, bPath := filepath.Join(inDir, "a.bin"), filepath.Join(inDir, "b.bin")
	if _, err := os.Stat(aPath); err != nil {
		if n <= 0 || n > MaxDim {
			return nil, nil, fmt.Errorf("no %s and no valid -n (got %d)", aPath, n)
		}
		return Generate(n, seed), Generate(n, seed+1), nil
	}
	a, err := ReadFile(aPath)
	if err != nil {
		return nil, nil, err
	}
	b, err := ReadFile(bPath)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// Checksum summarises m: its size, the sum and trace of its elements and the
// SHA-256 of its encoding.
func Checksum(m *Matrix) string {
	h := sha256.New()
	Encode(h, m)
	var sum, trace float64
	for i, v := range m.Data {
		sum += v
		if i/m.Cols == i%m.Cols {
			trace += v
		}
	}
	return fmt.Sprintf("rows %d\ncols %d\nsum %.17g\ntrace %.17g\nsha256 %x\n", m.Rows, m.Cols, sum, trace, h.Sum(nil))
}

// Repeat multiplies two generated n×n matrices reps times and returns the
// sum of the last product's first row. It is the kernel benchmark's
// workload, shared by the native benchmark and the mulkernel module.
func Repeat(n, reps int) float64 {
	a, b := Generate(n, 1), Generate(n, 2)
	var sum float64
	for range reps {
		c, _ := Mul(a, b)
		sum = 0
		for _, v := range c.Data[:n] {
			sum += v
		}
	}
	return sum
}
